package netflow_test

import (
	"net/netip"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/netflow"
	"github.com/cargowatch/cargowatch/netflow/nftest"
)

// BenchmarkDecode measures the decoder alone on full datagrams (30
// records of 9 fields, the shape of a router's v9 export; 30 v5 records),
// reporting records per second.
func BenchmarkDecode(b *testing.B) {
	now := time.Now()
	from := netip.MustParseAddrPort("192.0.2.1:2055")
	var v5recs []v5rec
	for i := 0; i < 30; i++ {
		v5recs = append(v5recs, v5rec{src: hostL, dst: hostR, sport: uint16(i), dport: 443, proto: 6, pkts: 3, octets: 120, first: 1, last: 2})
	}
	cases := []struct {
		name     string
		template []byte
		data     []byte
		records  int
	}{
		{"v9", nftest.TemplateDatagram(now), nftest.DataDatagram(now, 0, 30), 30},
		{"v5", nil, v5(1000, uint32(now.Unix()), 0, 30, v5recs...), 30},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			d := netflow.NewDecoder(netflow.Config{})
			n := 0
			emit := func(*cw.Conn) { n++ }
			if c.template != nil {
				_ = d.Decode(from, now, c.template, emit)
			}
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.Decode(from, now, c.data, emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*c.records)/b.Elapsed().Seconds(), "records/s")
			if n != b.N*c.records {
				b.Fatalf("%d records, want %d", n, b.N*c.records)
			}
		})
	}
}
