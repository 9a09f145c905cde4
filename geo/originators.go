package geo

import (
	"net/netip"
	"slices"

	"github.com/cargowatch/cargowatch"
)

// OriginatorCounter finds the monitored network when the local ranges do
// not cover it (networks that use public addresses inside). Feed it the
// conversations that have no local side; Infer then names the addresses
// that originate a large share of them.
//
// It is a space-saving heavy-hitter counter (Metwally et al. 2005) with k
// slots: memory is fixed whatever the input, and every address that
// originates more than 1/k of the conversations is guaranteed a slot.
type OriginatorCounter struct {
	k     int
	slots []originatorSlot
	index map[netip.Addr]int
	total uint64
}

type originatorSlot struct {
	addr  netip.Addr
	count uint64
	err   uint64 // over-count inherited from the slot's previous owner
}

// OriginatorCount is one tracked address; Count-Err is a guaranteed lower
// bound on how many conversations it originated, Count an upper bound.
type OriginatorCount struct {
	Addr       netip.Addr
	Count, Err uint64
}

// Inference thresholds, documented in Infer.
const (
	InferMinShare         = 0.20
	InferMinConversations = 10
	InferMinPerSubnet     = 4
	InferMinMemberShare   = 0.01
)

// DefaultOriginatorSlots is the k of NewOriginatorCounter: any address
// originating more than 1/64 of the conversations is sure to be tracked.
const DefaultOriginatorSlots = 64

// NewOriginatorCounter returns a counter with DefaultOriginatorSlots slots.
func NewOriginatorCounter() *OriginatorCounter {
	return NewOriginatorCounterSize(DefaultOriginatorSlots)
}

// NewOriginatorCounterSize returns a counter with k slots (the default when
// k <= 0).
func NewOriginatorCounterSize(k int) *OriginatorCounter {
	if k <= 0 {
		k = DefaultOriginatorSlots
	}
	return &OriginatorCounter{k: k, index: make(map[netip.Addr]int, k)}
}

// Observe counts c's originator when neither side of c is local (call it
// after Enrich). It reports whether c was counted.
func (o *OriginatorCounter) Observe(c *cargowatch.Conn) bool {
	if c == nil || c.Orig.Local || c.Resp.Local || !IsInternet(c.Orig.Addr) {
		return false
	}
	o.Add(c.Orig.Addr)
	return true
}

// Add counts one conversation originated by a.
func (o *OriginatorCounter) Add(a netip.Addr) {
	a = a.Unmap().WithZone("")
	o.total++
	if i, ok := o.index[a]; ok {
		o.slots[i].count++
		return
	}
	if len(o.slots) < o.k {
		o.index[a] = len(o.slots)
		o.slots = append(o.slots, originatorSlot{addr: a, count: 1})
		return
	}
	// Replace the smallest slot; the newcomer inherits its count as error.
	m := 0
	for i := range o.slots {
		if o.slots[i].count < o.slots[m].count {
			m = i
		}
	}
	delete(o.index, o.slots[m].addr)
	floor := o.slots[m].count
	o.slots[m] = originatorSlot{addr: a, count: floor + 1, err: floor}
	o.index[a] = m
}

// Total is the number of conversations counted.
func (o *OriginatorCounter) Total() uint64 { return o.total }

// Top returns the tracked addresses, most conversations first.
func (o *OriginatorCounter) Top() []OriginatorCount {
	out := make([]OriginatorCount, len(o.slots))
	for i, s := range o.slots {
		out[i] = OriginatorCount{s.addr, s.count, s.err}
	}
	slices.SortFunc(out, func(a, b OriginatorCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return a.Addr.Compare(b.Addr)
	})
	return out
}

// Infer names the monitored network as prefixes. The rule, over at least
// InferMinConversations counted conversations:
//
//   - a /24 (IPv4) or /64 (IPv6) is inferred when at least
//     InferMinPerSubnet tracked addresses in it, each originating at least
//     InferMinMemberShare (1 %, and at least 2) of the conversations,
//     together originate at least InferMinShare (20 %) of them (guaranteed
//     counts, so over-counted newcomers do not qualify);
//   - otherwise a single address is inferred (/32 or /128) when it alone
//     originates at least InferMinShare of them.
//
// So at most five single addresses can be inferred, and nothing is
// inferred from a handful of conversations.
func (o *OriginatorCounter) Infer() []netip.Prefix {
	if o.total < InferMinConversations {
		return nil
	}
	need := uint64(float64(o.total)*InferMinShare + 0.999999)
	type agg struct {
		sum uint64
		n   int
	}
	subnets := map[netip.Prefix]*agg{}
	member := uint64(float64(o.total)*InferMinMemberShare + 0.999999)
	if member < 2 {
		member = 2
	}
	for _, s := range o.slots {
		if s.count-s.err < member {
			continue // one-off originators (scanners, noise) do not make a subnet
		}
		p := subnetOf(s.addr)
		g := subnets[p]
		if g == nil {
			g = &agg{}
			subnets[p] = g
		}
		g.sum += s.count - s.err
		g.n++
	}
	var out []netip.Prefix
	for p, g := range subnets {
		if g.n >= InferMinPerSubnet && g.sum >= need {
			out = append(out, p)
		}
	}
	for _, s := range o.slots {
		if s.count-s.err < need {
			continue
		}
		if g := subnets[subnetOf(s.addr)]; g != nil && g.n >= InferMinPerSubnet && g.sum >= need {
			continue // covered by its subnet
		}
		out = append(out, netip.PrefixFrom(s.addr, s.addr.BitLen()))
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

func subnetOf(a netip.Addr) netip.Prefix {
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
