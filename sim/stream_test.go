package sim

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func materialise(s stream) []byte {
	b := make([]byte, s.size())
	s.copyTo(b, 0)
	return b
}

// TestStreams checks that reading a stream in segments of any size gives
// the same bytes as reading it whole, and that TLS framing is intact.
func TestStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name string
		s    stream
	}{
		{"bytes", bytesStream("hello, terminal")},
		{"tls small", newTLSData(r, 53)},
		{"tls one record", newTLSData(r, 16384+17)},
		{"tls many", newTLSData(r, 100000)},
		{"concat", newConcat(bytesStream(ccs), newTLSData(r, 53), newTLSData(r, 40000), bytesStream("x"))},
		{"empty", bytesStream(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := materialise(tt.s)
			for _, seg := range []int{1, 7, 1460, 5000} {
				var got []byte
				for off := 0; off < len(whole); off += seg {
					n := min(seg, len(whole)-off)
					b := make([]byte, n)
					tt.s.copyTo(b, off)
					got = append(got, b...)
				}
				if !bytes.Equal(got, whole) {
					t.Fatalf("segment size %d: bytes differ", seg)
				}
			}
		})
	}
	// Every TLS stream is a clean sequence of records.
	for _, n := range []int{1, 53, 16401, 16402, 100000} {
		b := materialise(newTLSData(r, n))
		body := 0
		for len(b) > 0 {
			if len(b) < 5 || b[0] != 0x17 || b[1] != 3 || b[2] != 3 {
				t.Fatalf("n=%d: bad record header % x", n, b[:min(5, len(b))])
			}
			l := int(binary.BigEndian.Uint16(b[3:]))
			if l > 16384+256 || 5+l > len(b) {
				t.Fatalf("n=%d: record length %d", n, l)
			}
			body += l
			b = b[5+l:]
		}
		if body != n {
			t.Errorf("n=%d: %d body bytes", n, body)
		}
	}
}

// TestChecksum uses the RFC 1071 example.
func TestChecksum(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := fold(sum16(b, 0)); got != 0xddf2 {
		t.Fatalf("sum %#x, want 0xddf2", got)
	}
	// Odd lengths pad with a zero byte.
	if fold(sum16([]byte{1, 2, 3}, 0)) != fold(sum16([]byte{1, 2, 3, 0}, 0)) {
		t.Fatal("odd length")
	}
	var long [1500]byte
	for i := range long {
		long[i] = byte(i * 7)
	}
	var ref uint32
	for i := 0; i < len(long); i += 2 {
		ref += uint32(binary.BigEndian.Uint16(long[i:]))
	}
	if fold(sum16(long[:], 0)) != fold(ref) {
		t.Fatal("8-byte loop disagrees with the 2-byte sum")
	}
}
