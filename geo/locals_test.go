package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDefaultLocals(t *testing.T) {
	l := DefaultLocals()
	tests := []struct {
		addr  string
		local bool
	}{
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"172.15.255.255", false},
		{"172.16.0.0", true},
		{"172.31.255.255", true},
		{"172.32.0.0", false},
		{"192.168.1.1", true},
		{"192.169.0.1", false},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.0", false},
		{"127.0.0.1", true},
		{"169.254.10.1", true},
		{"8.8.8.8", false},
		{"147.32.80.37", false},
		{"::ffff:192.168.1.1", true}, // IPv4-mapped counts as IPv4
		{"::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fd12:3456::1", true},
		{"fc00::1", true},
		{"2001:db8::1", false},
		{"2a00:1450::1", false},
		{"224.0.0.251", false}, // multicast is not ours, but not remote either (IsInternet)
	}
	for _, tt := range tests {
		if got := l.Contains(netip.MustParseAddr(tt.addr)); got != tt.local {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.local)
		}
	}
	if (*Locals)(nil).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("nil Locals contains 10.0.0.1")
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the result
		wantErr string // substring of the error
	}{
		{in: "10.0.0.0/8,147.32.0.0/16", want: "10.0.0.0/8,147.32.0.0/16"},
		{in: " 147.32.80.37 , 2001:db8::/32 ", want: "147.32.80.37/32,2001:db8::/32"},
		{in: "192.168.1.77/24", want: "192.168.1.0/24"}, // host bits are masked
		{in: "10.0.0.0/9,10.128.0.0/9", want: "10.0.0.0/8"},
		{in: "10.0.0.0/8,10.1.0.0/16", want: "10.0.0.0/8"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "", want: ""},
		{in: ",,", want: ""},
		{in: "10.0.0.0/8,10.0.0.0/33", wantErr: `entry 2 "10.0.0.0/33"`},
		{in: "banana", wantErr: `entry 1 "banana"`},
		{in: "10.0.0.0/8,1.2.3", wantErr: `"1.2.3"`},
		{in: "fe80::/10%eth0", wantErr: `"fe80::/10%eth0"`},
	}
	for _, tt := range tests {
		l, err := ParseCIDRs(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCIDRs(%q) error = %v, want one containing %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCIDRs(%q): %v", tt.in, err)
			continue
		}
		if got := l.String(); got != tt.want {
			t.Errorf("ParseCIDRs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAddCIDRsAllOrNothing(t *testing.T) {
	l := &Locals{}
	if err := l.AddCIDRs("147.32.0.0/16,nope"); err == nil {
		t.Fatal("want an error")
	}
	if l.Contains(netip.MustParseAddr("147.32.1.1")) {
		t.Error("a failed AddCIDRs added its good entries")
	}
}

func TestRangeToPrefixes4(t *testing.T) {
	tests := []struct {
		lo, hi string
		want   string
	}{
		{"10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"255.255.255.255", "255.255.255.255", "255.255.255.255/32"},
	}
	for _, tt := range tests {
		ps := rangeToPrefixes4(v4int(netip.MustParseAddr(tt.lo)), v4int(netip.MustParseAddr(tt.hi)))
		var ss []string
		for _, p := range ps {
			ss = append(ss, p.String())
		}
		if got := strings.Join(ss, " "); got != tt.want {
			t.Errorf("%s-%s = %s, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestIsInternet(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"147.32.80.37", true},
		{"192.0.2.1", true}, // documentation: kept remote for simulated traffic
		{"10.1.1.1", false},
		{"172.20.0.1", false},
		{"172.32.0.1", true},
		{"192.168.0.1", false},
		{"100.64.0.1", false},
		{"100.128.0.1", true},
		{"127.0.0.1", false},
		{"169.254.1.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"224.0.0.251", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"ff02::fb", false},
		{"2a00:1450:4001::1", true},
		{"::ffff:8.8.8.8", true},
		{"::ffff:10.0.0.1", false},
	}
	for _, tt := range tests {
		if got := IsInternet(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IsInternet(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if IsInternet(netip.Addr{}) {
		t.Error("IsInternet(zero Addr) = true")
	}
}

func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8,147.32.0.0/16", "1.2.3.4", "::/0", "fe80::1%eth0", "10.0.0.0/33", ",", "0.0.0.0/0,255.255.255.255/32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseCIDRs(s)
		if err != nil {
			if l != nil {
				t.Fatal("non-nil set with an error")
			}
			return
		}
		// What it prints it must read back to the same set.
		l2, err := ParseCIDRs(l.String())
		if err != nil {
			t.Fatalf("re-parse %q: %v", l.String(), err)
		}
		if l2.String() != l.String() {
			t.Fatalf("round trip %q -> %q", l.String(), l2.String())
		}
		for _, p := range l.Prefixes() {
			if !l.Contains(p.Addr()) {
				t.Fatalf("%s not contained in its own set", p)
			}
		}
	})
}

func BenchmarkLocalsContains4(b *testing.B) {
	l := DefaultLocals()
	if err := l.AddCIDRs("147.32.0.0/16,198.51.100.0/24"); err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("147.32.80.37"), netip.MustParseAddr("192.168.7.7")}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		if l.Contains(addrs[i&3]) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("nothing local")
	}
}
