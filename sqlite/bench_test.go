package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

// benchConns makes n conns between 250 local hosts and 5000 remotes over
// one day; every tenth carries DNS/TLS/HTTP/Content like fullConn.
// scattered draws each remote from one Zipf over all 5000 (a few clouds and
// CDNs take most conns, a long tail the rest), so nearly every conn starts
// a new pair-hour: the worst case for the rollup upserts. Otherwise each
// local host talks to its own ~20 remotes, as devices with a fixed job do.
func benchConns(n int, scattered bool) []*cargowatch.Conn {
	rnd := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rnd, 1.1, 1, 4999)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	cs := make([]*cargowatch.Conn, n)
	for i := range cs {
		var c *cargowatch.Conn
		if i%10 == 0 {
			c = fullConn(i)
		} else {
			c = &cargowatch.Conn{Proto: "tcp", Service: "http", State: "SF", History: "ShADadFf",
				OrigBytes: 512, RespBytes: 4096, OrigPkts: 6, RespPkts: 8, OrigIPBytes: 832, RespIPBytes: 4512,
				Duration: 350 * time.Millisecond, Source: "bench.pcap"}
			c.Orig = cargowatch.Endpoint{Local: true, Port: uint16(40000 + i%20000)}
			c.Resp = cargowatch.Endpoint{Port: 443, Country: "DE", ASN: 45102, Org: "Alibaba", Jurisdiction: "CN", Name: "x.example.cn"}
		}
		c.UID = fmt.Sprintf("C%d", i)
		c.TS = t0.Add(time.Duration(i) * 86400 * time.Second / time.Duration(n))
		local := i % 250
		c.Orig.Addr = netip.AddrFrom4([4]byte{10, 0, 0, byte(local)})
		r := zipf.Uint64()
		if !scattered {
			r = (uint64(local)*20 + r%20) % 5000
		}
		c.Resp.Addr = netip.AddrFrom4([4]byte{203, 0, byte(r / 256), byte(r)})
		cs[i] = c
	}
	return cs
}

// BenchmarkWriteConns writes 100k conns in batches of 5k per op into a
// file-backed store and reports conns/s.
func BenchmarkWriteConns(b *testing.B) {
	for _, bc := range []struct {
		name      string
		scattered bool
	}{{"clustered", false}, {"scattered", true}} {
		b.Run(bc.name, func(b *testing.B) {
			const total, batch = 100_000, 5_000
			cs := benchConns(total, bc.scattered)
			ctx := context.Background()
			b.ReportAllocs()
			var written int
			for b.Loop() {
				b.StopTimer()
				db := openTemp(b)
				run := beginRun(b, db)
				b.StartTimer()
				for i := 0; i < total; i += batch {
					if err := db.WriteConns(ctx, run, cs[i:i+batch]); err != nil {
						b.Fatal(err)
					}
				}
				written += total
				b.StopTimer()
				db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

// BenchmarkConnsRead streams 100k stored conns back.
func BenchmarkConnsRead(b *testing.B) {
	const total = 100_000
	ctx := context.Background()
	db := openTemp(b)
	run := beginRun(b, db)
	cs := benchConns(total, false)
	for i := 0; i < total; i += 5000 {
		if err := db.WriteConns(ctx, run, cs[i:i+5000]); err != nil {
			b.Fatal(err)
		}
	}
	var read int
	for b.Loop() {
		if err := db.Conns(ctx, cargowatch.ConnQuery{}, func(*cargowatch.Conn) error { read++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "conns/s")
}
