package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	in := `# header
AS45102
8.208.0.0/16
2a01:4f8::/32
AS4134
1.48.0.0/18
1.48.64.0/32
`
	rt, err := parseRoutes(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want uint32
	}{
		{"8.208.0.0", 45102},
		{"8.208.255.255", 45102},
		{"8.209.0.0", 0},
		{"8.207.255.255", 0},
		{"1.48.63.255", 4134},
		{"1.48.64.0", 4134},
		{"1.48.64.1", 0},
		{"::ffff:8.208.1.1", 45102},
		{"2a01:4f8::1", 45102},
		{"2a01:4f8:ffff:ffff:ffff:ffff:ffff:ffff", 45102},
		{"2a01:4f9::", 0},
		{"2a01:4f7:ffff::", 0},
		{"0.0.0.0", 0},
	}
	for _, tt := range tests {
		if got := rt.lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("lookup(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
	if len(rt.header) != 1 || rt.header[0] != "header" {
		t.Errorf("header = %q", rt.header)
	}
	if (*routes)(nil).lookup(netip.MustParseAddr("8.208.0.0")) != 0 {
		t.Error("nil routes matched")
	}
}

func TestParseRoutesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"8.8.8.0/24\n", "line 1: prefix before any AS line"},
		{"ASx\n", `line 1: bad AS line "ASx"`},
		{"AS0\n", "bad AS line"},
		{"AS1\nbanana\n", "line 2"},
		{"AS1\n10.0.0.0/8\nAS2\n10.1.0.0/16\n", "overlapping prefixes at 10.1.0.0 (AS1 and AS2)"},
		{"AS1\n::/0\nAS2\n2001:db8::/32\n", "overlapping IPv6"},
	}
	for _, tt := range tests {
		_, err := parseRoutes(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseRoutes(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestBuiltinRoutes(t *testing.T) {
	rt, err := loadBuiltinRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.v4) < 1000 || len(rt.v6) < 100 {
		t.Errorf("only %d IPv4 and %d IPv6 prefixes embedded", len(rt.v4), len(rt.v6))
	}
	if len(routesGz) > 512<<10 {
		t.Errorf("jurisdiction_prefixes.gz is %d bytes; keep it well under 1 MB", len(routesGz))
	}
	if len(rt.header) < 2 || !strings.Contains(strings.Join(rt.header, " "), "ip-location-db") {
		t.Errorf("header does not name its source: %q", rt.header)
	}
	// Every embedded ASN must come from the curated table, by number or by
	// an organisation pattern matching the name the file gives it, or the
	// prefix file is stale.
	tab := newTable()
	for _, e := range BuiltinJurisdictions() {
		if err := tab.add(e); err != nil {
			t.Fatal(err)
		}
	}
	check := func(asn uint32) {
		t.Helper()
		if tab.byASN[asn] == nil && tab.match(netip.Addr{}, 0, strings.ToLower(rt.org(asn))) == nil {
			t.Fatalf("embedded AS%d (%q) is not in jurisdictions.yaml: run go generate ./geo", asn, rt.org(asn))
		}
	}
	for _, r := range rt.v4 {
		check(r.asn)
	}
	for _, r := range rt.v6 {
		check(r.asn)
	}
}

func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{"# c\nAS1\n1.2.3.0/24\n::/1\n", "AS4294967295\n0.0.0.0/0\n", "AS1\n1.2.3.4/32\n1.2.3.4/32\n", "AS1\n\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, err := parseRoutes(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, r := range rt.v4 {
			if got := rt.lookup(v4addr(r.lo)); got != r.asn {
				t.Fatalf("start of AS%d range resolves to AS%d", r.asn, got)
			}
			if got := rt.lookup(v4addr(r.hi)); got != r.asn {
				t.Fatalf("end of AS%d range resolves to AS%d", r.asn, got)
			}
		}
	})
}
