package sim

import (
	"math/rand/v2"

	"github.com/cargowatch/cargowatch/internal/minheap"
)

// Time in the generator is int64 microseconds since the Unix epoch, the
// resolution of the pcap format.
const (
	usec   = int64(1)
	msec   = 1000 * usec
	second = 1000 * msec
	minute = 60 * second
)

// pkt is one packet waiting to be written. Its payload is a window on a
// stream, materialised only when written.
type pkt struct {
	ts    int64
	rev   bool // sent by the responder
	flags uint8
	win   uint16
	seq   uint32
	ack   uint32
	data  stream
	off   int
	n     int
}

// flow is one conversation. It holds only the packets of its current
// exchange; more appends the next ones (false when the flow is over). A
// flow's packets come out in timestamp order, so a heap of flows keyed by
// their next packet merges all conversations in time order while memory
// stays proportional to the conversations open at once.
type flow struct {
	id           uint64
	proto        uint8
	a, b         *host
	aport, bport uint16
	macAB, macBA [12]byte
	pend         []pkt
	head         int
	more         func(f *flow) bool
}

func (f *flow) next() int64 { return f.pend[f.head].ts }

func (f *flow) push(p pkt) { f.pend = append(f.pend, p) }

// actor is a recurring activity (a user, a poller, a beacon). run is
// called at t and schedules flows starting at or after t; it sets t to its
// next wake-up or to done.
type actor struct {
	t   int64
	id  uint64
	r   *rand.Rand
	run func(a *actor)
}

const done = int64(-1)

type stats struct {
	tcpFlows, udpFlows int
	beats              []int64 // crane modem beacon connection times (µs)
	missedBeats        int
	bayplans           int
	containers         int
	tunnelQueries      int
	cacheResets        int
	maxFlows           int // most conversations open at once (memory bound)
}

// gen drives the simulation.
type gen struct {
	cfg        Config
	start, end int64
	scale      float64
	pw         *pcapWriter
	net        *network
	flows      *minheap.Heap[*flow]
	actors     *minheap.Heap[*actor]
	ids        uint64
	dnsCache   map[string]int64 // name -> expiry at the hub resolver
	st         stats
	rootRand   *rand.Rand
	servers    serverSet
	expect     []Expected
	notes      map[int]func() string
	modemDNS   int64 // when the modem's cached DNS answer expires
	tunnelLeft int   // queries left in the current tunnel burst
	tunnelSeq  int
	missed     map[int]bool // beacon beats the modem skips
	beatIdx    int
}

func (g *gen) newRand() *rand.Rand {
	g.ids++
	return rand.New(rand.NewPCG(uint64(g.cfg.Seed), g.ids*0x9e3779b97f4a7c15))
}

// addActor schedules fn to first run at t.
func (g *gen) addActor(t int64, fn func(a *actor)) *actor {
	g.ids++
	a := &actor{t: t, id: g.ids, r: g.newRand(), run: fn}
	if t >= 0 && t < g.end {
		g.actors.Push(a)
	}
	return a
}

// newFlow prepares a flow between a (originator) and b.
func (g *gen) newFlow(proto uint8, a, b *host, aport, bport uint16) *flow {
	g.ids++
	f := &flow{id: g.ids, proto: proto, a: a, b: b, aport: aport, bport: bport}
	f.macAB, f.macBA = g.net.macs(a, b)
	return f
}

// start puts a flow on the heap once it has packets.
func (g *gen) startFlow(f *flow) {
	for len(f.pend) == 0 {
		if f.more == nil || !f.more(f) {
			return
		}
	}
	if f.proto == protoTCP {
		g.st.tcpFlows++
	} else {
		g.st.udpFlows++
	}
	g.flows.Push(f)
	g.st.maxFlows = max(g.st.maxFlows, g.flows.Len())
}

// run merges actors and flows until both are exhausted.
func (g *gen) run() error {
	for {
		if g.pw.err != nil {
			return g.pw.err
		}
		ta, tf := int64(-1), int64(-1)
		if g.actors.Len() > 0 {
			ta = g.actors.Top().t
		}
		if g.flows.Len() > 0 {
			tf = g.flows.Top().next()
		}
		switch {
		case ta < 0 && tf < 0:
			return g.pw.flush()
		case ta >= 0 && (tf < 0 || ta <= tf):
			a := g.actors.Top()
			prev := a.t
			a.run(a)
			if a.t <= prev || a.t >= g.end { // done (or stuck), or past the end
				g.actors.Pop()
			} else {
				g.actors.FixTop()
			}
		default:
			f := g.flows.Top()
			g.pw.writePkt(f, &f.pend[f.head])
			f.head++
			if f.head == len(f.pend) {
				f.pend = f.pend[:0]
				f.head = 0
				for len(f.pend) == 0 {
					if f.more == nil || !f.more(f) {
						break
					}
				}
				if len(f.pend) == 0 {
					g.flows.Pop()
					continue
				}
			}
			g.flows.FixTop()
		}
	}
}

func cmpI64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Hand-written heaps: container/heap's interface calls cost more than the
// packet building on this path.

func flowLess(x, y *flow) bool {
	tx, ty := x.next(), y.next()
	return tx < ty || (tx == ty && x.id < y.id)
}

func actorLess(x, y *actor) bool { return x.t < y.t || (x.t == y.t && x.id < y.id) }

// udpMsg is one datagram of a UDP exchange.
type udpMsg struct {
	ts   int64
	rev  bool
	data []byte
}

// udp schedules a short UDP exchange (DNS, NTP).
func (g *gen) udp(a, b *host, aport, bport uint16, msgs ...udpMsg) {
	f := g.newFlow(protoUDP, a, b, aport, bport)
	for _, m := range msgs {
		f.push(pkt{ts: m.ts, rev: m.rev, data: bytesStream(m.data), n: len(m.data)})
	}
	g.startFlow(f)
}

// jitter returns a small processing delay in µs in [lo, hi).
func jitter(r *rand.Rand, lo, hi int64) int64 { return lo + r.Int64N(hi-lo) }
