package flow

import (
	"encoding/binary"
	"hash/fnv"
	"math/bits"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// makeUID derives a Zeek-looking uid ("C" + 17 base62 characters) from the
// flow's first timestamp, its key and the table's creation counter, so the
// same input always yields the same uids (Zeek's are random per run, which
// makes runs impossible to diff).
func makeUID(tsNano int64, k *key, counter uint64) string {
	h := fnv.New128a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(tsNano))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], counter)
	h.Write(b[:])
	a1, a2 := k.a.As16(), k.b.As16()
	h.Write(a1[:])
	h.Write(a2[:])
	binary.BigEndian.PutUint16(b[:2], k.pa)
	binary.BigEndian.PutUint16(b[2:4], k.pb)
	b[4] = k.proto
	h.Write(b[:5])
	sum := h.Sum(nil)
	hi := binary.BigEndian.Uint64(sum[:8])
	lo := binary.BigEndian.Uint64(sum[8:])
	var out [18]byte
	out[0] = 'C'
	for i := 17; i >= 1; i-- {
		var r uint64
		hi, r = bits.Div64(0, hi, 62)
		lo, r = bits.Div64(r, lo, 62)
		out[i] = base62[r]
	}
	return string(out[:])
}
