package detect

import (
	"encoding/binary"
	"net/netip"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
)

// PairIndex numbers (local host, remote address) pairs once per run for
// the detectors that keep state per pair: Beacon (its address series),
// LongConn, Exfil, and Prevalence (as a cache in front of its per-remote
// tables). With ~50,000 pairs each of their maps outgrows the CPU caches,
// and a lookup that misses them costs ~450 ns; sharing one index makes a
// Conn pay one such lookup for all of them. The last key looked up is
// remembered, so the second and later detectors observing the same Conn
// find its pair without hashing, and the pointers to every detector's
// state for the pair sit together in one 72-byte slot.
//
// Pass the same index in the configs (BeaconConfig.Pairs,
// LongConnConfig.Pairs, ExfilConfig.Pairs, Prevalence.Pairs) of the
// detectors of one run. Each kind of detector claims its part of the
// index; a second detector of the same kind given the same index keeps a
// private one instead (a second Prevalence uses its maps alone), so
// sharing is always safe. A PairIndex, like the
// detectors, is not safe for concurrent use.
//
// A slot lives while any detector holds state for its pair and is reused
// when the last one lets go (on Expire or eviction), so the index holds no
// more pairs than the detectors sharing it do: at most the sum of their
// MaxPairs (300,000 with the defaults). Each costs, measured at 100,000
// pairs, 142 bytes for IPv4 and 171 for IPv6 (key and id in the map, the
// slot, the key by id; up to ~250 just after the slot array doubles): at
// most 75 MB at the default caps, in place of one map per detector.
type PairIndex struct {
	// IPv4 pairs, the common case, are keyed by 8 bytes: the table is a
	// third the size of one keyed by 32 and hashes faster.
	ids4  map[uint64]int32
	ids   map[ipKey]int32
	slots []pairSlot
	keys  []ipKey // by id, to delete a freed slot from ids
	free  []int32

	// memo is the key of the last lookup and its id (-1: not indexed).
	memo   ipKey
	memoID int32
	memoOK bool

	// Claims: which detector of each kind uses its field of the slots.
	beacon *Beacon
	long   *LongConn
	exfil  *Exfil
	prev   *Prevalence
}

// pairSlot is every detector's state for one pair. The beacon, long and
// exfil fields hold the slot; the prevalence ones are a cache only (the
// hostSets live in Prevalence's maps and are marked gone when dropped).
type pairSlot struct {
	beacon *series
	long   *longPair
	exfil  *exfilPair

	prevAddr  *hostSet
	prevName  *hostSet
	prevNameS string // the raw remote name prevName was looked up by
	// Latest Conn times (unix ns, 0 none) not yet moved to the sets.
	prevAddrLast, prevNameLast int64
}

// NewPairIndex returns an empty index to share among one run's detectors.
func NewPairIndex() *PairIndex {
	return &PairIndex{ids4: map[uint64]int32{}, ids: map[ipKey]int32{}, memoID: -1}
}

// claim reports whether the index may hold d's state: owner is the
// field of d's kind, set on first use.
func claim[T any](owner **T, d *T) bool {
	if *owner == nil {
		*owner = d
	}
	return *owner == d
}

// find returns the id of k, -1 when no detector holds state for it.
func (x *PairIndex) find(k ipKey) int32 {
	if x.memoOK && x.memo == k {
		return x.memoID
	}
	var id int32
	var ok bool
	if k4, is4 := v4Key(k); is4 {
		id, ok = x.ids4[k4]
	} else {
		id, ok = x.ids[k]
	}
	if !ok {
		id = -1
	}
	x.memo, x.memoID, x.memoOK = k, id, true
	return id
}

// findAddrs is find on the canonical key of two addresses.
func (x *PairIndex) findAddrs(local, remote netip.Addr) int32 {
	return x.find(mkIPKey(local, remote))
}

// add returns the id of k, giving it a slot when it has none.
func (x *PairIndex) add(k ipKey) int32 {
	if id := x.find(k); id >= 0 {
		return id
	}
	var id int32
	if n := len(x.free); n > 0 {
		id = x.free[n-1]
		x.free = x.free[:n-1]
		x.keys[id] = k
	} else {
		id = int32(len(x.slots))
		x.slots = append(x.slots, pairSlot{})
		x.keys = append(x.keys, k)
	}
	if k4, is4 := v4Key(k); is4 {
		x.ids4[k4] = id
	} else {
		x.ids[k] = id
	}
	x.memo, x.memoID, x.memoOK = k, id, true
	return id
}

// release frees slot id when no detector holds state in it any more.
func (x *PairIndex) release(id int32) {
	s := &x.slots[id]
	if s.beacon != nil || s.long != nil || s.exfil != nil {
		return
	}
	s.flush()
	*s = pairSlot{}
	if k4, is4 := v4Key(x.keys[id]); is4 {
		delete(x.ids4, k4)
	} else {
		delete(x.ids, x.keys[id])
	}
	x.free = append(x.free, id)
	if x.memoOK && x.memoID == id {
		x.memoOK = false
	}
}

// sides returns the local and remote side of a conversation with exactly
// one local side whose remote is an Internet address, as pointers into c
// (endpoints are ~150 bytes). x may be nil.
func (x *PairIndex) sides(c *cw.Conn) (loc, rem *cw.Endpoint, ok bool) {
	switch {
	case c.Orig.Local && !c.Resp.Local:
		loc, rem = &c.Orig, &c.Resp
	case c.Resp.Local && !c.Orig.Local:
		loc, rem = &c.Resp, &c.Orig
	default:
		return nil, nil, false
	}
	if !loc.Addr.IsValid() || !geo.IsInternet(rem.Addr) {
		return nil, nil, false
	}
	return loc, rem, true
}

// Len reports the pairs indexed.
func (x *PairIndex) Len() int { return len(x.ids4) + len(x.ids) }

// v4Key packs a pair of IPv4 (or IPv4-mapped) addresses into 8 bytes.
func v4Key(k ipKey) (uint64, bool) {
	if [12]byte(k.local[:12]) != v4InV6Prefix || [12]byte(k.remote[:12]) != v4InV6Prefix {
		return 0, false
	}
	return uint64(binary.BigEndian.Uint32(k.local[12:]))<<32 | uint64(binary.BigEndian.Uint32(k.remote[12:])), true
}

var v4InV6Prefix = [12]byte{10: 0xff, 11: 0xff}

// plainAddr reports whether a is its own canonical form in a pair key:
// IPv4, or IPv6 that is neither IPv4-mapped nor zoned. Exfil and
// Prevalence tell those forms apart (Beacon and LongConn do not), so they
// use the index for plain addresses only and their maps for the rest.
func plainAddr(a netip.Addr) bool {
	return a.Is4() || (a.Is6() && !a.Is4In6() && a.Zone() == "")
}
