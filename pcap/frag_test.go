package pcap

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// frags4 splits a UDP datagram into IPv4 fragments of size bytes (a
// multiple of 8) and returns them as raw IP frames in order.
func frags4(id uint16, payload []byte, size int) [][]byte {
	u := udp(7000, 53, payload)
	var out [][]byte
	for off := 0; off < len(u); off += size {
		end := min(off+size, len(u))
		h := ipv4Hdr("192.0.2.1", "198.51.100.2", 17, end-off, id, off, end < len(u))
		out = append(out, append(h, u[off:end]...))
	}
	return out
}

func frags6(id uint32, payload []byte, size int) [][]byte {
	u := udp(7000, 53, payload)
	var out [][]byte
	for off := 0; off < len(u); off += size {
		end := min(off+size, len(u))
		fh := make([]byte, 8)
		fh[0] = 17
		ff := uint16(off)
		if end < len(u) {
			ff |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], ff)
		binary.BigEndian.PutUint32(fh[4:], id)
		out = append(out, ipv6("2001:db8::1", "2001:db8::2", 44, append(fh, u[off:end]...)))
	}
	return out
}

func TestReassembly(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes
	f4 := frags4(7, body, 1480)
	f6 := frags6(9, body, 1232)
	tests := []struct {
		name      string
		frames    [][]byte
		dts       []time.Duration // capture time of each frame, 0 apart by default
		opts      Options
		wantOK    int // packets returned
		wantStats Stats
	}{
		{name: "ipv4 in order", frames: f4, wantOK: 1, wantStats: Stats{Fragments: 3, Reassembled: 1}},
		{name: "ipv4 reversed", frames: [][]byte{f4[2], f4[1], f4[0]}, wantOK: 1, wantStats: Stats{Fragments: 3, Reassembled: 1}},
		{name: "ipv4 duplicate middle", frames: [][]byte{f4[0], f4[1], f4[1], f4[2]}, wantOK: 1, wantStats: Stats{Fragments: 4, Reassembled: 1}},
		{name: "ipv4 missing middle", frames: [][]byte{f4[0], f4[2]}, wantStats: Stats{Fragments: 2, FragmentsDropped: 2, FragmentsIncomplete: 1}},
		{name: "ipv6 in order", frames: f6, wantOK: 1, wantStats: Stats{Fragments: 3, Reassembled: 1}},
		{name: "ipv6 shuffled", frames: [][]byte{f6[1], f6[2], f6[0]}, wantOK: 1, wantStats: Stats{Fragments: 3, Reassembled: 1}},
		{
			name: "timeout", frames: f4, dts: []time.Duration{0, 0, 2 * time.Second},
			opts:      Options{FragmentTimeout: time.Second},
			wantStats: Stats{Fragments: 3, FragmentsDropped: 3, FragmentTimeouts: 1, FragmentsIncomplete: 1},
		},
		{
			name: "max fragments", frames: [][]byte{frags4(1, body, 1480)[0], frags4(2, body, 1480)[0], frags4(3, body, 1480)[0]},
			opts:      Options{MaxFragments: 2},
			wantStats: Stats{Fragments: 3, FragmentsDropped: 3, FragmentsOverflow: 1, FragmentsIncomplete: 2},
		},
		{
			name: "oversize", frames: f4, opts: Options{MaxFragmentBytes: 2000},
			wantStats: Stats{Fragments: 3, FragmentsDropped: 3, FragmentsOversize: 2, FragmentsIncomplete: 1},
		},
		{name: "cut by snaplen", frames: [][]byte{f4[0][:100], f4[1], f4[2]}, wantStats: Stats{Fragments: 3, FragmentsDropped: 3, FragmentsIncomplete: 1, Truncated: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var recs []rec
			for i, f := range tc.frames {
				ts := t0
				if tc.dts != nil {
					ts += int64(tc.dts[i])
				}
				recs = append(recs, rec{ts: ts, data: f})
			}
			path := writeFile(t, t.TempDir(), "f.pcap", pcapFile(binary.LittleEndian, true, 101, recs...))
			pkts, r := readAll(t, []string{path}, tc.opts)
			if len(pkts) != tc.wantOK {
				t.Fatalf("got %d packets, want %d", len(pkts), tc.wantOK)
			}
			for _, p := range pkts {
				if p.SrcPort != 7000 || p.PayloadLen != len(body) || p.Payload != string(body) {
					t.Errorf("reassembled: sport %d payload len %d/%d, body equal %v", p.SrcPort, p.PayloadLen, len(p.Payload), p.Payload == string(body))
				}
			}
			s := r.Stats()
			got := Stats{Fragments: s.Fragments, Reassembled: s.Reassembled, FragmentsDropped: s.FragmentsDropped,
				FragmentTimeouts: s.FragmentTimeouts, FragmentsOverflow: s.FragmentsOverflow, FragmentsOversize: s.FragmentsOversize,
				FragmentsIncomplete: s.FragmentsIncomplete, Truncated: s.Truncated}
			if got != tc.wantStats {
				t.Errorf("stats\n got %+v\nwant %+v", got, tc.wantStats)
			}
		})
	}
}

// Overlapping fragments must not make a datagram with a hole look whole.
func TestReassemblyHoleNotCovered(t *testing.T) {
	var st Stats
	r := newReassembler(Options{MaxFragments: 4, MaxFragmentBytes: 70000, FragmentTimeout: time.Second}, &st)
	k := fragKey{id: 1}
	data := make([]byte, 64)
	add := func(off, n int, more bool) verdict {
		_, v := r.add(&fragment{key: k, off: off, more: more, data: data[:n], claimed: n})
		return v
	}
	// 0..16 (non-multiple of 8 beyond: 0..20 counts as 0..16), 24..40 last.
	if v := add(0, 20, true); v != vFragment {
		t.Fatalf("first: %d", v)
	}
	if v := add(24, 16, false); v != vFragment {
		t.Fatalf("last: %d", v)
	}
	if v := add(24, 16, false); v != vFragment {
		t.Fatalf("duplicate last completed a datagram with a hole at 16..24")
	}
	if v := add(16, 8, true); v != vIP {
		t.Fatalf("filling the hole: %d", v)
	}
}
