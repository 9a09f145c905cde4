package pcap

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// Builders for hand-made frames and captures. They write the wire formats
// from their specifications, independently of the decoder under test.

func ipv4Hdr(src, dst string, proto uint8, payloadLen int, id uint16, fragOff int, more bool) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	binary.BigEndian.PutUint16(h[4:], id)
	ff := uint16(fragOff / 8)
	if more {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], ff)
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return h
}

func ipv4(src, dst string, proto uint8, payload []byte) []byte {
	return append(ipv4Hdr(src, dst, proto, len(payload), 1, 0, false), payload...)
}

func ipv6(src, dst string, nh uint8, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = nh
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func tcp(sport, dport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = 5 << 4
	h[13] = flags
	return append(h, payload...)
}

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = []byte{0x02, 0, 0, 0, 0, 0x0b}
)

func eth(et uint16, payload []byte) []byte {
	b := append(append(append([]byte{}, macB...), macA...), byte(et>>8), byte(et))
	return append(b, payload...)
}

func vlanTag(id uint16, inner uint16) []byte {
	return []byte{byte(id >> 8), byte(id), byte(inner >> 8), byte(inner)}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

type rec struct {
	ts   int64 // Unix ns
	data []byte
	orig int // 0: len(data)
	ifc  int // pcapng interface
}

// pcapFile writes a classic pcap with the given byte order and precision.
func pcapFile(bo binary.ByteOrder, nsec bool, link uint32, recs ...rec) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nsec {
		magic = 0xa1b23c4d
	}
	w := func(v any) { binary.Write(&b, bo, v) }
	w(magic)
	w(uint16(2))
	w(uint16(4))
	w(int32(0))
	w(uint32(0))
	w(uint32(65535))
	w(link)
	for _, r := range recs {
		frac := r.ts % 1e9
		if !nsec {
			frac /= 1000
		}
		orig := r.orig
		if orig == 0 {
			orig = len(r.data)
		}
		w(uint32(r.ts / 1e9))
		w(uint32(frac))
		w(uint32(len(r.data)))
		w(uint32(orig))
		b.Write(r.data)
	}
	return b.Bytes()
}

type ngIface struct {
	link    uint16
	tsresol byte // 0: default (µs)
}

// pcapngFile writes one section with the given interfaces and EPBs.
func pcapngFile(bo binary.ByteOrder, ifaces []ngIface, recs ...rec) []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, bo, v) }
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		w(typ)
		w(uint32(12 + len(body)))
		b.Write(body)
		w(uint32(12 + len(body)))
	}
	var shb bytes.Buffer
	binary.Write(&shb, bo, uint32(0x1a2b3c4d))
	binary.Write(&shb, bo, uint16(1))
	binary.Write(&shb, bo, uint16(0))
	binary.Write(&shb, bo, int64(-1))
	block(0x0a0d0d0a, shb.Bytes())
	units := make([]uint64, len(ifaces))
	for i, f := range ifaces {
		var idb bytes.Buffer
		binary.Write(&idb, bo, f.link)
		binary.Write(&idb, bo, uint16(0))
		binary.Write(&idb, bo, uint32(0))
		units[i] = 1e6
		if f.tsresol != 0 {
			binary.Write(&idb, bo, uint16(9))
			binary.Write(&idb, bo, uint16(1))
			idb.Write([]byte{f.tsresol, 0, 0, 0})
			units[i] = 1
			for range f.tsresol {
				units[i] *= 10
			}
		}
		binary.Write(&idb, bo, uint32(0)) // opt_endofopt
		block(1, idb.Bytes())
	}
	// An unknown block must be skipped.
	block(0x0badcafe, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	for _, r := range recs {
		t := uint64(r.ts) / (1e9 / units[r.ifc])
		var epb bytes.Buffer
		binary.Write(&epb, bo, uint32(r.ifc))
		binary.Write(&epb, bo, uint32(t>>32))
		binary.Write(&epb, bo, uint32(t))
		binary.Write(&epb, bo, uint32(len(r.data)))
		binary.Write(&epb, bo, uint32(len(r.data)))
		epb.Write(r.data)
		block(6, epb.Bytes())
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// got is a copy of the fields a test checks, since Packets are reused.
type got struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	TS               int64
	VLAN             uint16
	Tunnel           string
	PayloadLen       int
	Payload          string
	Input            string
}

func readAll(t testing.TB, inputs []string, o Options) ([]got, *Reader) {
	t.Helper()
	r := NewReader(inputs, o)
	var out []got
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, got{p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto, p.TS.UnixNano(), p.VLAN, p.Tunnel, p.PayloadLen, string(p.Payload), p.Input})
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	return out, r
}
