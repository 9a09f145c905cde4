package asset

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// benchConns is a hub-like mix: HMIs polling PLCs over Modbus, office
// hosts browsing many Internet servers, DNS lookups.
func benchConns(n int) []*cw.Conn {
	cs := make([]*cw.Conn, n)
	for i := range cs {
		var c *cw.Conn
		switch i % 4 {
		case 0:
			c = conn(ep(fmt.Sprintf("10.1.%d.%d", i/256%4, i%250+1), 50000), ep(fmt.Sprintf("10.2.0.%d", i%50+1), 502), withOT("modbus", false, 0, 0, "read_holding_registers"))
		case 1, 2:
			c = conn(ep(fmt.Sprintf("10.3.%d.%d", i%16, i%200+1), 50000), ep(fmt.Sprintf("93.%d.%d.%d", i%200, i/200%250, i%7), 443), withService("ssl"), remote("US", "US", "Example"))
		default:
			c = conn(ep(fmt.Sprintf("10.3.%d.%d", i%16, i%200+1), 50000), ep("10.0.0.53", 53), withService("dns"))
			c.Proto = "udp"
			c.DNS = []cw.DNS{{Query: "wms.corp.local", QType: 1, Answers: []string{"10.0.0.11"}}}
		}
		c.TS = t0.Add(time.Duration(i) * time.Millisecond)
		c.Orig.MAC = fmt.Sprintf("00:1b:1b:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		cs[i] = c
	}
	return cs
}

func BenchmarkDiscoveryObserve(b *testing.B) {
	cs := benchConns(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	var d *Discovery
	for i := 0; i < b.N; i++ {
		if i%len(cs) == 0 {
			d = NewDiscovery(Config{})
		}
		d.Observe(cs[i%len(cs)])
	}
}

// BenchmarkDiscoveryFull measures the heap of an inventory filled to every
// cap (reported as MB/full); it backs the bound documented in the package
// doc and docs/ASSETS.md.
func BenchmarkDiscoveryFull(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d := NewDiscovery(Config{})
		for h := 0; h < DefaultMaxHosts; h++ {
			a := netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
			for p := 0; p < DefaultMaxPeerEntries/DefaultMaxHosts; p++ {
				c := &cw.Conn{TS: t0, UID: "CabcdefghijklmnopQ", Proto: "tcp", Service: "modbus",
					Orig: cw.Endpoint{Addr: a, Port: 50000, Local: true, MAC: fmt.Sprintf("00:1b:1b:%02x:%02x:%02x", h>>16&0xff, h>>8&0xff, h&0xff)},
					Resp: cw.Endpoint{Addr: netip.AddrFrom4([4]byte{93, byte(p), byte(h >> 8), byte(h)}), Port: 502, Country: "US", Org: "Example Org"},
					OT:   &cw.OT{Protocol: "modbus", Functions: map[string]int{"read_holding_registers": 1, "write_single_register": 1}}}
				d.Observe(c)
			}
			d.addName(a, fmt.Sprintf("host-%d.corp.local", h), "dns")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB/full")
		runtime.KeepAlive(d)
	}
}
