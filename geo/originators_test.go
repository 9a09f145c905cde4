package geo

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/cargowatch/cargowatch"
)

func TestOriginatorInfer(t *testing.T) {
	type batch struct {
		addr string
		n    int
	}
	many := func(prefix string, hosts, each int) []batch {
		var bs []batch
		for h := 1; h <= hosts; h++ {
			bs = append(bs, batch{fmt.Sprintf("%s.%d", prefix, h), each})
		}
		return bs
	}
	noise := many("203.0.113", 200, 1) // 200 distinct one-off originators
	tests := []struct {
		name  string
		k     int
		input []batch
		want  []string
	}{
		{"too few", 64, []batch{{"147.32.80.37", 9}}, nil},
		{"one dominant host", 64, append([]batch{{"147.32.80.37", 100}}, noise...), []string{"147.32.80.37/32"}},
		{"two hosts", 64, append([]batch{{"147.32.80.37", 100}, {"198.51.100.9", 80}}, noise[:100]...), []string{"147.32.80.37/32", "198.51.100.9/32"}},
		{"below share", 64, append([]batch{{"147.32.80.37", 40}}, noise...), nil},
		{"a /24 of hosts", 64, append(many("147.32.80", 10, 10), noise[:100]...), []string{"147.32.80.0/24"}},
		{"small k still finds the heavy hitter", 8, append(append(noise[:100:100], batch{"147.32.80.37", 100}), noise[100:]...), []string{"147.32.80.37/32"}},
		{"ipv6", 64, append([]batch{{"2001:db8::5", 50}}, noise[:50]...), []string{"2001:db8::5/128"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOriginatorCounterSize(tt.k)
			for _, b := range tt.input {
				a := netip.MustParseAddr(b.addr)
				for i := 0; i < b.n; i++ {
					o.Add(a)
				}
			}
			var got []string
			for _, p := range o.Infer() {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Infer() = %v, want %v (top %v)", got, tt.want, o.Top()[:min(3, len(o.Top()))])
			}
			if len(o.Top()) > tt.k {
				t.Errorf("%d slots, bound %d", len(o.Top()), tt.k)
			}
		})
	}
}

func TestOriginatorObserve(t *testing.T) {
	o := NewOriginatorCounter()
	mk := func(orig, resp string, ol, rl bool) *cargowatch.Conn {
		return &cargowatch.Conn{
			Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr(orig), Local: ol},
			Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr(resp), Local: rl},
		}
	}
	tests := []struct {
		c    *cargowatch.Conn
		want bool
	}{
		{mk("147.32.80.37", "8.8.8.8", false, false), true},
		{mk("10.0.0.1", "8.8.8.8", true, false), false},
		{mk("8.8.8.8", "10.0.0.1", false, true), false},
		{mk("0.0.0.0", "255.255.255.255", false, false), false}, // DHCP discover
		{nil, false},
	}
	for i, tt := range tests {
		if got := o.Observe(tt.c); got != tt.want {
			t.Errorf("case %d: Observe = %v, want %v", i, got, tt.want)
		}
	}
	if o.Total() != 1 {
		t.Errorf("Total = %d, want 1", o.Total())
	}
}

func BenchmarkOriginatorAdd(b *testing.B) {
	o := NewOriginatorCounter()
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = v4addr(0x93200000 + uint32(i*i))
	}
	for i := 0; i < b.N; i++ {
		o.Add(addrs[i&1023])
	}
}
