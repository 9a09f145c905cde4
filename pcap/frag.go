package pcap

import (
	"math/bits"
	"net/netip"
)

// maxFreeDatagrams bounds the recycled reassembly buffers kept for reuse.
const maxFreeDatagrams = 32

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8 // IPv4 only: part of the RFC 791 key
	v6       bool
}

// datagram is one IP datagram under reassembly. Coverage is tracked in
// 8-byte units, the granularity of fragment offsets, so overlapping or
// duplicated fragments cannot make an incomplete datagram look whole.
type datagram struct {
	key      fragKey
	first    int64 // capture time of the first fragment seen
	buf      []byte
	cover    []uint64
	total    int // payload length, -1 until the last fragment is seen
	proto    uint8
	hdrLen   int // IP header length (with extension headers) of fragment 0
	gotFirst bool
	frags    int
}

// reassembler holds fragments until their datagram is complete, within
// the Options bounds; everything it refuses is counted in Stats.
type reassembler struct {
	max, maxBytes int
	timeout       int64
	m             map[fragKey]*datagram
	free          []*datagram
	out           *datagram // handed to the caller, recycled on the next packet
	lastSweep     int64
	st            *Stats
}

func newReassembler(o Options, st *Stats) *reassembler {
	return &reassembler{
		max:      o.MaxFragments,
		maxBytes: o.MaxFragmentBytes,
		timeout:  int64(o.FragmentTimeout),
		m:        make(map[fragKey]*datagram),
		st:       st,
	}
}

// fragment is one fragment as the IP decoders see it.
type fragment struct {
	key     fragKey
	ts      int64
	off     int
	more    bool
	data    []byte // captured fragment payload
	claimed int    // payload length the IP header claims
	proto   uint8  // IPv4 protocol, or the fragment header's next header
	hdrLen  int
}

// add stores f. When it completes a datagram, that datagram is returned;
// its buf stays valid until release is called.
func (r *reassembler) add(f *fragment) (*datagram, verdict) {
	r.st.Fragments++
	if f.ts-r.lastSweep > r.timeout/4 || len(r.m) >= r.max {
		r.sweep(f.ts)
	}
	end := f.off + f.claimed
	switch {
	case len(f.data) < f.claimed:
		// Cut by the snap length: the bytes to fill the hole are gone.
		r.st.FragmentsDropped++
		return nil, vTruncated
	case end > r.maxBytes:
		r.st.FragmentsDropped++
		r.st.FragmentsOversize++
		return nil, vFragment
	}
	d := r.m[f.key]
	if d != nil && f.ts-d.first > r.timeout {
		r.expire(d)
		d = nil
	}
	if d == nil {
		if len(r.m) >= r.max {
			r.st.FragmentsDropped++
			r.st.FragmentsOverflow++
			return nil, vFragment
		}
		d = r.get()
		d.key, d.first = f.key, f.ts
		r.m[f.key] = d
	}
	if !f.more {
		if d.total >= 0 && d.total != end {
			r.st.FragmentsDropped++
			return nil, vMalformed
		}
		d.total = end
	}
	if f.off == 0 {
		d.gotFirst = true
		d.proto = f.proto
		d.hdrLen = f.hdrLen
	}
	d.frags++
	if end > len(d.buf) {
		if end > cap(d.buf) {
			nb := make([]byte, end, min(max(end, 2*cap(d.buf)), r.maxBytes))
			copy(nb, d.buf)
			d.buf = nb
		}
		d.buf = d.buf[:end]
	}
	copy(d.buf[f.off:end], f.data)
	// A fragment that is not the last should hold a multiple of 8 bytes;
	// when one does not, only its whole units count as covered, so the
	// datagram completes only if another fragment fills the rest.
	last := (end + 7) / 8
	if f.more {
		last = end / 8
	}
	for len(d.cover)*64 < last {
		d.cover = append(d.cover, 0)
	}
	for u := f.off / 8; u < last; u++ {
		d.cover[u/64] |= 1 << (u % 64)
	}
	// Bytes past the end that the last fragment set are overlap junk;
	// covered looks only below it.
	if d.total < 0 || !d.gotFirst || !covered(d.cover, (d.total+7)/8) {
		return nil, vFragment
	}
	delete(r.m, d.key)
	r.st.Reassembled++
	r.out = d
	d.buf = d.buf[:d.total]
	return d, vIP
}

func covered(c []uint64, units int) bool {
	full := units / 64
	if len(c) < (units+63)/64 {
		return false
	}
	for _, w := range c[:full] {
		if w != ^uint64(0) {
			return false
		}
	}
	if rest := units % 64; rest > 0 {
		return bits.OnesCount64(c[full]&(1<<rest-1)) == rest
	}
	return true
}

func (r *reassembler) get() *datagram {
	if n := len(r.free); n > 0 {
		d := r.free[n-1]
		r.free = r.free[:n-1]
		return d
	}
	return &datagram{total: -1}
}

func (r *reassembler) put(d *datagram) {
	if len(r.free) >= maxFreeDatagrams {
		return
	}
	clear(d.cover)
	buf, cover := d.buf[:0], d.cover[:0]
	*d = datagram{buf: buf, cover: cover, total: -1}
	r.free = append(r.free, d)
}

// release recycles the datagram handed out by the last add.
func (r *reassembler) release() {
	if r.out != nil {
		r.put(r.out)
		r.out = nil
	}
}

func (r *reassembler) expire(d *datagram) {
	delete(r.m, d.key)
	r.st.FragmentTimeouts++
	r.st.FragmentsDropped += int64(d.frags)
	r.put(d)
}

func (r *reassembler) sweep(now int64) {
	r.lastSweep = now
	for _, d := range r.m {
		if now-d.first > r.timeout {
			r.expire(d)
		}
	}
}

// flush gives up on every incomplete datagram at the end of the input.
func (r *reassembler) flush() {
	for _, d := range r.m {
		delete(r.m, d.key)
		r.st.FragmentsIncomplete++
		r.st.FragmentsDropped += int64(d.frags)
		r.put(d)
	}
}
