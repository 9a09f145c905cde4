package detect

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

func TestPairIndexSlots(t *testing.T) {
	a4 := netip.MustParseAddr("10.0.0.1")
	b4 := netip.MustParseAddr("93.184.216.34")
	a6 := netip.MustParseAddr("2001:db8::1")
	b6 := netip.MustParseAddr("2a00:1450::1")
	mapped := netip.AddrFrom16(b4.As16()) // ::ffff:93.184.216.34

	x := NewPairIndex()
	if id := x.findAddrs(a4, b4); id != -1 {
		t.Fatalf("empty index found id %d", id)
	}
	id4 := x.add(mkIPKey(a4, b4))
	id6 := x.add(mkIPKey(a6, b6))
	if id4 == id6 || x.Len() != 2 {
		t.Fatalf("ids %d %d, len %d", id4, id6, x.Len())
	}
	// The canonical key merges an IPv4 address with its mapped form.
	if got := x.findAddrs(a4, mapped); got != id4 {
		t.Errorf("mapped form: id %d, want %d", got, id4)
	}
	if got := x.findAddrs(a6, b6); got != id6 {
		t.Errorf("v6 pair: id %d, want %d", got, id6)
	}
	// A slot held by a detector stays; a released empty one is reused and
	// forgotten, memo included.
	x.slots[id4].long = &longPair{}
	x.release(id4)
	if x.findAddrs(a4, b4) != id4 {
		t.Fatal("slot held by a detector was released")
	}
	x.slots[id4].long = nil
	x.release(id4)
	if got := x.findAddrs(a4, b4); got != -1 || x.Len() != 1 {
		t.Fatalf("after release: id %d, len %d", got, x.Len())
	}
	if got := x.add(mkIPKey(b6, a6)); got != id4 {
		t.Errorf("new pair got id %d, want the freed %d", got, id4)
	}
	if len(x.slots) != 2 {
		t.Errorf("%d slots, want 2 (reuse)", len(x.slots))
	}
}

func TestPairIndexClaim(t *testing.T) {
	x := NewPairIndex()
	b1 := NewBeacon(BeaconConfig{Pairs: x})
	b2 := NewBeacon(BeaconConfig{Pairs: x})
	if b1.pairs != x || b2.pairs == x {
		t.Fatal("a second Beacon shares the first one's part of the index")
	}
	p1, p2 := NewPrevalence(), NewPrevalence()
	p1.Pairs, p2.Pairs = x, x
	c := &cw.Conn{TS: bt0, Orig: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Local: true},
		Resp: cw.Endpoint{Addr: netip.MustParseAddr("93.184.216.34"), Port: 443}}
	b1.Observe(c)
	b2.Observe(c)
	p1.Observe(c)
	p2.Observe(c)
	if p1.ix != x || p2.ix != nil {
		t.Errorf("prevalence claims: %v %v", p1.ix != nil, p2.ix != nil)
	}
	if b1.pairCount() != 1 || b2.pairCount() != 1 || p1.Hosts(c.Resp.Addr) != 1 || p2.Hosts(c.Resp.Addr) != 1 {
		t.Error("a detector with a private index lost state")
	}
}

// pairRun is one run's detectors as analyze wires them.
type pairRun struct {
	b    *Beacon
	l    *LongConn
	e    *Exfil
	p    *Prevalence
	list []cw.Detector
}

func newPairRun(shared bool, window time.Duration, maxPairs int) *pairRun {
	var x *PairIndex
	if shared {
		x = NewPairIndex()
	}
	r := &pairRun{p: NewPrevalence()}
	r.p.Window, r.p.Pairs = window, x
	r.b = NewBeacon(BeaconConfig{Window: window, Pairs: x, MaxPairs: maxPairs})
	r.l = NewLongConn(LongConnConfig{Window: window, Pairs: x, MaxPairs: maxPairs})
	r.e = NewExfil(ExfilConfig{Window: window, Prevalence: r.p, Pairs: x, MaxPairs: maxPairs, MinBytesOut: 1 << 16})
	r.list = []cw.Detector{r.b, r.l, r.e, r.p}
	return r
}

func (r *pairRun) findings() []cw.Finding {
	var fs []cw.Finding
	for _, d := range r.list {
		fs = append(fs, d.Findings()...)
	}
	slices.SortFunc(fs, func(x, y cw.Finding) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), x.Src.Addr.Compare(y.Src.Addr), x.Dst.Addr.Compare(y.Dst.Addr),
			cmp.Compare(x.Dst.Name, y.Dst.Name), cmp.Compare(x.Summary, y.Summary))
	})
	return fs
}

// TestSharedPairIndexSameFindings feeds the same Conns to detectors that
// share one index and to detectors that each keep their own: every
// finding, score and evidence must be the same, through expiry (slots
// freed and reused), caps (exfil eviction, beacon and long-connection
// pair caps), IPv4-mapped and IPv6 addresses, inbound sessions and
// enough series that Beacon judges them in parallel.
func TestSharedPairIndexSameFindings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxPairs int
		expire   bool
	}{{"whole input", 0, false}, {"expiring window", 0, true}, {"caps", 700, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const window = 2 * time.Hour
			shared, alone := newPairRun(true, window, tc.maxPairs), newPairRun(false, window, tc.maxPairs)
			r := rand.New(rand.NewPCG(7, 11))
			const pairs = 3000
			locals := make([]netip.Addr, pairs)
			remotes := make([]netip.Addr, pairs)
			names := make([]string, pairs)
			periods := make([]time.Duration, pairs)
			next := make([]time.Time, pairs)
			for i := range pairs {
				locals[i] = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i % 97)}) // hosts talk to several remotes
				switch i % 7 {
				case 0:
					remotes[i] = netip.MustParseAddr(fmt.Sprintf("2a00:1450::%x", i))
				case 1:
					remotes[i] = netip.AddrFrom16(netip.AddrFrom4([4]byte{45, 2, byte(i >> 8), byte(i)}).As16())
				default:
					remotes[i] = netip.AddrFrom4([4]byte{45, byte(i % 5), byte(i >> 8), byte(i)})
				}
				if i%3 != 0 {
					names[i] = fmt.Sprintf("h%d.svc%d.example.net", i%4, i%50)
				}
				periods[i] = time.Duration(30+r.IntN(600)) * time.Second
				next[i] = bt0.Add(time.Duration(r.Int64N(int64(periods[i]))))
			}
			end := bt0.Add(6 * time.Hour)
			lastExpire := bt0
			c := &cw.Conn{}
			for n := 0; n < 120_000; n++ {
				i := r.IntN(pairs)
				if i%5 == 0 {
					i = n % pairs // some pairs arrive in a row
				}
				ts := next[i]
				if ts.After(end) {
					continue
				}
				next[i] = ts.Add(periods[i] + time.Duration(r.NormFloat64()*float64(periods[i])*0.05*float64(i%3)))
				*c = cw.Conn{TS: ts, UID: fmt.Sprintf("C%d", n), Proto: "tcp", Service: "ssl", State: "SF",
					Orig:      cw.Endpoint{Addr: locals[i], Port: uint16(40000 + n%999), Local: true},
					Resp:      cw.Endpoint{Addr: remotes[i], Port: 443, Name: names[i]},
					Duration:  time.Duration(r.IntN(5000)) * time.Millisecond,
					OrigBytes: int64(500 + r.IntN(300)), RespBytes: int64(2000 + r.IntN(100))}
				switch {
				case i%11 == 0: // an upload
					c.OrigBytes = int64(r.IntN(4 << 20))
				case i%13 == 0: // an inbound session
					c.Orig, c.Resp = c.Resp, c.Orig
					c.Duration = time.Duration(r.IntN(3)) * time.Hour
				case n%1000 == 0:
					c.TS = time.Time{}
				}
				for _, d := range shared.list {
					d.Observe(c)
				}
				for _, d := range alone.list {
					d.Observe(c)
				}
				if tc.expire && ts.Sub(lastExpire) > 20*time.Minute {
					lastExpire = ts
					for _, run := range []*pairRun{shared, alone} {
						for _, d := range run.list {
							d.(cw.Expirer).Expire(ts)
						}
					}
				}
			}
			got, want := shared.findings(), alone.findings()
			kinds := map[string]int{}
			for _, f := range want {
				kinds[f.Kind]++
			}
			if kinds[cw.KindBeacon] == 0 || kinds[cw.KindExfiltration] == 0 || kinds[cw.KindLongConnection] == 0 {
				t.Fatalf("the input should raise every kind: %v", kinds)
			}
			if len(got) != len(want) {
				t.Fatalf("shared index: %d findings, alone: %d", len(got), len(want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("finding %d differs:\nshared %+v\nalone  %+v", i, got[i], want[i])
				}
			}
			for _, a := range remotes[:50] {
				if shared.p.Hosts(a) != alone.p.Hosts(a) {
					t.Errorf("prevalence of %v: %d shared, %d alone", a, shared.p.Hosts(a), alone.p.Hosts(a))
				}
			}
			if shared.b.pairCount() != alone.b.pairCount() || shared.l.n != alone.l.n || shared.e.npairs != alone.e.npairs {
				t.Errorf("pairs held: beacon %d/%d long %d/%d exfil %d/%d", shared.b.pairCount(), alone.b.pairCount(),
					shared.l.n, alone.l.n, shared.e.npairs, alone.e.npairs)
			}
			// The index holds no pair that no detector holds.
			x := shared.b.pairs
			live := 0
			for id := range x.slots {
				if s := x.slots[id]; s.beacon != nil || s.long != nil || s.exfil != nil {
					live++
				}
			}
			if live != x.Len() || len(x.slots)-len(x.free) != x.Len() {
				t.Errorf("index: %d live slots, %d keys, %d slots, %d free", live, x.Len(), len(x.slots), len(x.free))
			}
			if tc.expire {
				for _, run := range []*pairRun{shared, alone} {
					for _, d := range run.list {
						d.(cw.Expirer).Expire(end.Add(3 * window))
					}
				}
				if x.Len() != 0 || shared.e.npairs != 0 {
					t.Errorf("after the window passed: %d pairs indexed, %d exfil pairs", x.Len(), shared.e.npairs)
				}
			}
		})
	}
}
