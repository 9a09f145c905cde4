// Command beacon feeds synthetic Conn records straight into every
// behavioural detector analyze runs (on one shared pair index) and then
// concludes, to measure their throughput and memory without any capture
// decoding. Records are
// spread over -pairs (local host, remote) pairs over one day: a fifth
// exact beacons, a fifth jittered (±30 %) beacons with missed beats, and
// the rest Poisson arrivals; every other pair carries a remote name, so
// both the address and the name tables are exercised. It prints one line:
// records, pairs, findings by kind, seconds, records/s.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/detect"
)

func main() {
	records := flag.Int("records", 10_000_000, "Conn records to feed")
	pairs := flag.Int("pairs", 50_000, "distinct (local, remote) pairs")
	seed := flag.Uint64("seed", 1, "random seed")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "beacon:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *records <= 0 || *pairs <= 0 {
		fmt.Fprintln(os.Stderr, "beacon: -records and -pairs must be positive")
		os.Exit(2)
	}
	// The garbage collector settings of the cargowatch binary.
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(768 << 20)
	r := rand.New(rand.NewPCG(*seed, 2))
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	const day = 24 * time.Hour

	type pairGen struct {
		local, remote netip.Addr
		name          string
		period        time.Duration
		kind          int // 0 exact, 1 jittered, 2 Poisson
		next          time.Time
	}
	per := float64(*records) / float64(*pairs)
	gens := make([]pairGen, *pairs)
	for i := range gens {
		g := &gens[i]
		g.local = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.remote = netip.AddrFrom4([4]byte{47, byte(i >> 16), byte(i >> 8), byte(i)})
		if i%2 == 0 {
			g.name = fmt.Sprintf("svc%d.example.net", i)
		}
		g.kind = [5]int{0, 1, 2, 2, 2}[i%5]
		g.period = time.Duration(float64(day) / per)
		g.next = start.Add(time.Duration(r.Int64N(int64(g.period))))
	}

	// Every behavioural detector analyze runs, so the figure is what a
	// run costs, not one detector's share.
	// They share one pair index, as analyze wires them.
	ix := detect.NewPairIndex()
	prev := detect.NewPrevalence()
	prev.Pairs = ix
	ds := []cw.Detector{detect.NewBeacon(detect.BeaconConfig{Pairs: ix}), detect.NewLongConn(detect.LongConnConfig{Pairs: ix}),
		detect.NewDNSTunnel(detect.DNSTunnelConfig{}), detect.NewExfil(detect.ExfilConfig{Prevalence: prev, Pairs: ix}), prev}
	c := &cw.Conn{Proto: "tcp", Service: "ssl", State: "SF", Duration: 800 * time.Millisecond, RespBytes: 4000}
	t0 := time.Now()
	// Round-robin over pairs so that records arrive roughly in time
	// order, as from a source.
	for n := 0; n < *records; {
		for i := range gens {
			if n >= *records {
				break
			}
			g := &gens[i]
			c.TS = g.next
			c.UID = ""
			c.Orig = cw.Endpoint{Addr: g.local, Port: uint16(40000 + n%20000), Local: true}
			c.Resp = cw.Endpoint{Addr: g.remote, Port: 443, Name: g.name}
			c.OrigBytes = 600 + int64(r.IntN(400))
			for _, d := range ds {
				d.Observe(c)
			}
			n++
			switch g.kind {
			case 0:
				g.next = g.next.Add(g.period)
			case 1:
				step := time.Duration(float64(g.period) * (0.7 + 0.6*r.Float64()))
				if r.IntN(20) == 0 {
					step += g.period // a missed beat
				}
				g.next = g.next.Add(step)
			default:
				g.next = g.next.Add(time.Duration(r.ExpFloat64() * float64(g.period)))
			}
		}
	}
	observed := time.Since(t0)
	kinds := map[string]int{}
	var all []cw.Finding
	for _, d := range ds {
		all = append(all, d.Findings()...)
	}
	for _, f := range detect.Correlate(all) {
		kinds[f.Kind]++
	}
	total := time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("records %d pairs %d beacon %d strobe %d long_connection %d observe_s %.2f total_s %.2f records_per_s %.0f heap_mb %.0f\n",
		*records, *pairs, kinds[cw.KindBeacon], kinds[cw.KindStrobe], kinds[cw.KindLongConnection],
		observed.Seconds(), total.Seconds(), float64(*records)/total.Seconds(), float64(ms.HeapAlloc)/(1<<20))
}
