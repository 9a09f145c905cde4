package flow

import (
	"encoding/binary"
	"hash/fnv"

	cw "github.com/cargowatch/cargowatch"
)

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
	return cw.FormatUID(hi, lo)
}
