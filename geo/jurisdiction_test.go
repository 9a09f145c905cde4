package geo

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestBuiltinJurisdictions(t *testing.T) {
	es := BuiltinJurisdictions()
	if len(es) < 8 {
		t.Fatalf("%d entries, want the curated set", len(es))
	}
	seen := map[uint32]string{}
	for _, e := range es {
		if _, ok := countryNames[e.Jurisdiction]; !ok {
			t.Errorf("%s: jurisdiction %q is not a known country code", e.Org, e.Jurisdiction)
		}
		if len(e.Sources) == 0 || e.Reason == "" {
			t.Errorf("%s: every entry needs a reason and a source", e.Org)
		}
		for _, a := range e.ASNs {
			if prev, dup := seen[a]; dup {
				t.Errorf("AS%d is listed by both %s and %s", a, prev, e.Org)
			}
			seen[a] = e.Org
		}
	}
	// The ASNs the brief names must be present.
	for _, a := range []uint32{45102, 37963, 45090, 132203, 136907, 55990, 4134, 4809, 23764, 4837, 9929, 10099, 9808, 58453, 396986, 138699, 38365, 55967, 12389} {
		if _, ok := seen[a]; !ok {
			t.Errorf("AS%d missing from jurisdictions.yaml", a)
		}
	}
	// BuiltinJurisdictions hands out copies: changing one must not leak.
	es[0].ASNs[0] = 1
	if BuiltinJurisdictions()[0].ASNs[0] == 1 {
		t.Error("BuiltinJurisdictions returned shared slices")
	}
}

func TestParseJurisdictions(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantN   int
		wantErr string
	}{
		{name: "empty", yaml: "", wantN: 0},
		{name: "one", yaml: "- org: X\n  jurisdiction: cn\n  asns: [1]\n", wantN: 1},
		{name: "prefixes", yaml: "- org: X\n  jurisdiction: RU\n  prefixes: [192.0.2.0/24, '2001:db8::/32']\n", wantN: 1},
		{name: "org only", yaml: "- org: X\n  jurisdiction: RU\n  org_contains: ['^acme']\n", wantN: 1},
		{name: "cancel", yaml: "- org: X\n  jurisdiction: ''\n  asns: [1]\n", wantN: 1},
		{name: "no org", yaml: "- jurisdiction: CN\n  asns: [1]\n", wantErr: "entry 1: entry has no org"},
		{name: "bad code", yaml: "- org: X\n  jurisdiction: China\n  asns: [1]\n", wantErr: `jurisdiction "China"`},
		{name: "no match", yaml: "- org: X\n  jurisdiction: CN\n", wantErr: "needs asns, prefixes or org_contains"},
		{name: "asn 0", yaml: "- org: X\n  jurisdiction: CN\n  asns: [0]\n", wantErr: "ASN 0"},
		{name: "asn too big", yaml: "- org: X\n  jurisdiction: CN\n  asns: [4294967296]\n", wantErr: "test.yaml"},
		{name: "bad prefix", yaml: "- org: X\n  jurisdiction: CN\n  prefixes: [10.0.0.0/40]\n", wantErr: "test.yaml"},
		{name: "unknown field", yaml: "- org: X\n  jurisdiction: CN\n  asn: [1]\n", wantErr: "field asn not found"},
		{name: "empty pattern", yaml: "- org: X\n  jurisdiction: CN\n  org_contains: ['^']\n", wantErr: "empty org_contains"},
		{name: "not a list", yaml: "org: X\n", wantErr: "test.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := ParseJurisdictions("test.yaml", []byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != tt.wantN {
				t.Fatalf("%d entries, want %d", len(es), tt.wantN)
			}
		})
	}
}

func TestTableMatch(t *testing.T) {
	tab := newTable()
	add := func(e JurisdictionEntry) {
		t.Helper()
		if err := tab.add(e); err != nil {
			t.Fatal(err)
		}
	}
	add(JurisdictionEntry{Org: "BigCloud", Jurisdiction: "CN", ASNs: []uint32{100}, OrgContains: []string{"^bigcloud"}, Sources: []string{"s1"}})
	add(JurisdictionEntry{Org: "Carrier", Jurisdiction: "RU", OrgContains: []string{"carrier"}})
	add(JurisdictionEntry{Org: "Wide", Jurisdiction: "IR", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.0.0/16")}})
	add(JurisdictionEntry{Org: "Narrow", Jurisdiction: "KP", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}})

	tests := []struct {
		addr string
		asn  uint32
		org  string
		want string // matched org, "" none
	}{
		{"203.0.113.1", 100, "", "BigCloud"},
		{"203.0.113.1", 101, "", ""},
		{"203.0.113.1", 0, "bigcloud europe", "BigCloud"},
		{"203.0.113.1", 0, "not bigcloud", ""}, // anchored pattern
		{"203.0.113.1", 0, "some carrier ltd", "Carrier"},
		{"198.51.7.1", 0, "", "Wide"},
		{"198.51.100.9", 100, "", "Narrow"}, // most specific prefix, and prefixes beat ASNs
		{"2001:db8::1", 0, "", "Narrow"},
		{"::ffff:198.51.100.9", 0, "", ""}, // callers unmap first
	}
	for _, tt := range tests {
		m := tab.match(netip.MustParseAddr(tt.addr), tt.asn, tt.org)
		got := ""
		if m != nil {
			got = m.Org
		}
		if got != tt.want {
			t.Errorf("match(%s, AS%d, %q) = %q, want %q", tt.addr, tt.asn, tt.org, got, tt.want)
		}
	}

	// A later entry overrides an earlier one for the same ASN; an empty
	// jurisdiction cancels.
	add(JurisdictionEntry{Org: "BigCloud EU (policy)", ASNs: []uint32{100}})
	if m := tab.match(netip.MustParseAddr("203.0.113.1"), 100, ""); m == nil || m.Org != "BigCloud EU (policy)" || m.Jurisdiction != "" {
		t.Errorf("override: got %+v", m)
	}
	if got := tab.asnOrg(100); got != "BigCloud EU (policy)" {
		t.Errorf("asnOrg(100) = %q", got)
	}
}

func FuzzParseJurisdictions(f *testing.F) {
	// One entry of the shipped file, not all of it: the fuzzer spends its
	// time minimising large inputs (the whole file is checked by
	// TestBuiltinJurisdictions).
	first := bytes.Index(builtinYAML, []byte("\n- org:")) + 1
	next := bytes.Index(builtinYAML[first:], []byte("\n- org:"))
	if first <= 0 || next <= 0 {
		f.Fatal("jurisdictions.yaml has fewer than two entries")
	}
	f.Add(builtinYAML[first : first+next+1])
	for _, s := range []string{
		"",
		"- org: X\n  jurisdiction: CN\n  asns: [1, 2]\n  prefixes: [10.0.0.0/8]\n",
		"- org: X\n  jurisdiction: ''\n  org_contains: ['^a', b]\n",
		"- {org: X, jurisdiction: ru, asns: [4294967295]}\n",
		"- org: &a X\n  jurisdiction: *a\n",
		"[[[[",
		"- org: X\n  prefixes: ['::ffff:1.2.3.0/120']\n  jurisdiction: CN\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseJurisdictions("fuzz.yaml", data)
		if err != nil {
			return
		}
		tab := newTable()
		for _, e := range es {
			if e.Org == "" || (e.Jurisdiction != "" && !isAlpha2(e.Jurisdiction)) {
				t.Fatalf("invalid entry passed validation: %+v", e)
			}
			if err := tab.add(e); err != nil {
				t.Fatalf("validated entry rejected by table: %v", err)
			}
			for _, p := range e.Prefixes {
				if tab.match(p.Addr(), 0, "") == nil {
					t.Fatalf("prefix %s does not match its own address", p)
				}
			}
		}
	})
}

// A policy's organisation pattern beats the built-in ASN entry, also when
// no ASN database is given and the organisation name comes from the table.
func TestAddedEntriesWinOverBuiltins(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a := netip.MustParseAddr("8.209.72.15")
	if got := e.Lookup(a).Jurisdiction; got != "CN" {
		t.Fatalf("built-in: %s, want CN", got)
	}
	if err := e.AddJurisdiction(JurisdictionEntry{Org: "analyst", Jurisdiction: "DE", OrgContains: []string{"alibaba"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.Lookup(a); got.Jurisdiction != "DE" || got.Country != "DE" {
		t.Fatalf("after the policy entry: %+v, want jurisdiction DE", got)
	}
}

// Province networks of a listed operator are matched by the name the
// routing dataset gives them, not only by the ASNs listed in the table.
func TestProvinceASNMatchedByName(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := e.Lookup(netip.MustParseAddr("180.101.49.11")) // a China Telecom Jiangsu address
	if got.Jurisdiction != "CN" || got.ASN == 0 || !strings.Contains(strings.ToLower(got.Org), "china telecom") {
		t.Fatalf("180.101.49.11: %+v, want a China Telecom AS under CN", got)
	}
}
