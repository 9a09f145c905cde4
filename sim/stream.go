package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
)

// stream is the byte content one side sends in one step of a conversation.
// Packets keep a reference and an offset instead of a copy, so a 30 MB
// upload costs a few words until its segments are written.
type stream interface {
	size() int
	// copyTo fills dst with the bytes starting at off.
	copyTo(dst []byte, off int)
}

type bytesStream []byte

func (b bytesStream) size() int                  { return len(b) }
func (b bytesStream) copyTo(dst []byte, off int) { copy(dst, b[off:]) }

// opaqueBlock is shared random content standing in for ciphertext. It is
// fixed (not seeded by Config.Seed) because it only needs to look random.
var opaqueBlock = sync.OnceValue(func() []byte {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(0x6361726777617463, 0x68))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
})

// opaque copies from the random block, wrapping around.
func opaqueCopy(dst []byte, at int) {
	blk := opaqueBlock()
	at %= len(blk)
	for len(dst) > 0 {
		n := copy(dst, blk[at:])
		dst = dst[n:]
		at = 0
	}
}

// tlsData is a stream of TLS records of one content type carrying n body
// bytes of ciphertext in records of at most maxRec bytes.
type tlsData struct {
	ctype  byte
	n      int // body bytes in total
	maxRec int
	base   int // offset into the opaque block
}

func newTLSData(r *rand.Rand, n int) *tlsData {
	// 16384 plaintext bytes + content type + 16-byte AEAD tag per record.
	return &tlsData{ctype: 0x17, n: n, maxRec: 16384 + 17, base: r.IntN(1 << 20)}
}

func (t *tlsData) size() int {
	full := t.n / t.maxRec
	s := full * (5 + t.maxRec)
	if rem := t.n % t.maxRec; rem > 0 {
		s += 5 + rem
	}
	return s
}

func (t *tlsData) copyTo(dst []byte, off int) {
	recLen := 5 + t.maxRec
	for len(dst) > 0 {
		k := off / recLen
		in := off % recLen
		body := t.maxRec
		if rem := t.n - k*t.maxRec; rem < body {
			body = rem
		}
		var n int
		if in < 5 {
			var h [5]byte
			h[0], h[1], h[2] = t.ctype, 3, 3
			binary.BigEndian.PutUint16(h[3:], uint16(body))
			n = copy(dst, h[in:])
		} else {
			end := 5 + body
			n = end - in
			if n > len(dst) {
				n = len(dst)
			}
			opaqueCopy(dst[:n], t.base+k*t.maxRec+in-5)
		}
		dst = dst[n:]
		off += n
	}
}

// concat joins streams, e.g. a ServerHello followed by encrypted records.
type concat struct {
	parts []stream
	total int
}

func newConcat(parts ...stream) *concat {
	c := &concat{parts: parts}
	for _, p := range parts {
		c.total += p.size()
	}
	return c
}

func (c *concat) size() int { return c.total }

func (c *concat) copyTo(dst []byte, off int) {
	for _, p := range c.parts {
		sz := p.size()
		if off >= sz {
			off -= sz
			continue
		}
		n := sz - off
		if n > len(dst) {
			n = len(dst)
		}
		p.copyTo(dst[:n], off)
		dst = dst[n:]
		off = 0
		if len(dst) == 0 {
			return
		}
	}
}
