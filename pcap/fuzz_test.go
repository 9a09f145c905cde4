package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

// FuzzReader feeds whole files to the reader: it must end with io.EOF,
// never panic, and keep its counters consistent.
func FuzzReader(f *testing.F) {
	u := udpFrame("10.0.0.1", "10.0.0.2", 1, "x")
	frag := frags4(3, bytes.Repeat([]byte("y"), 40), 16)
	f.Add(pcapFile(binary.LittleEndian, false, 1, rec{ts: t0, data: u}))
	f.Add(pcapFile(binary.BigEndian, true, 101, rec{ts: t0, data: frag[0]}, rec{ts: t0, data: frag[1]}, rec{ts: t0, data: frag[2]}))
	f.Add(pcapngFile(binary.LittleEndian, []ngIface{{link: 1}, {link: 229, tsresol: 9}}, rec{ts: t0, data: u}))
	f.Add(gz(pcapFile(binary.LittleEndian, false, 113, rec{ts: t0, data: u})))
	f.Add(pcapFile(binary.LittleEndian, false, 1, rec{ts: t0, data: eth(0x8892, dcpIdentify)},
		rec{ts: t0 + 1, data: eth(0x8100, cat(vlanTag(5, 0x8892), dcpIdentify[:5]))}, rec{ts: t0 + 2, data: u}))
	f.Add([]byte("not a capture"))
	if files, _ := filepath.Glob(filepath.Join(corpus.Root(), "pcap/edge/*.pcap*")); len(files) > 0 {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(Options{MaxFragments: 16})
		s, err := newSource("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		r.start(s)
		n := 0
		for {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if p.EtherType != 0 && (p.Src.IsValid() || p.Proto != 0 || len(p.Payload) != p.PayloadLen) {
				t.Fatalf("layer-2 frame with IP fields: %+v", p)
			}
			if len(p.Payload) > p.PayloadLen && p.Proto != 0 {
				t.Fatalf("payload %d longer than claimed %d", len(p.Payload), p.PayloadLen)
			}
			n++
		}
		st := r.Stats()
		if st.IP+st.L2 != int64(n) {
			t.Fatalf("IP %d + L2 %d, returned %d", st.IP, st.L2, n)
		}
		if frames := st.IP - st.Reassembled + st.L2 + st.NonIP + st.Truncated + st.Malformed + st.UnknownLink + st.Fragments; frames < st.Packets {
			t.Fatalf("frames unaccounted for: %+v", st)
		}
	})
}

// FuzzDecode feeds one frame of a chosen link type to the decoder.
func FuzzDecode(f *testing.F) {
	links := []int{linkEthernet, linkSLL, linkSLL2, linkRaw, linkRaw12, linkRaw14, linkIPv4, linkIPv6, linkNull, linkLoop, linkNFLOG, linkRadiotap, linkIEEE80211}
	u4 := ipv4("192.0.2.1", "198.51.100.2", 17, udp(5000, 53, []byte("q")))
	f.Add(uint8(0), eth(0x8100, cat(vlanTag(3, 0x0800), u4)))
	f.Add(uint8(0), eth(0x0800, ipv4("10.9.9.9", "10.8.8.8", 17, udp(1, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, eth(0x0800, u4))))))
	f.Add(uint8(0), eth(0x8847, []byte{0, 1, 0x01, 64, 0, 0, 0, 0}))
	f.Add(uint8(3), ipv4("10.1.1.1", "10.2.2.2", 47, cat([]byte{0x10, 0, 0x88, 0xbe, 0, 0, 0, 1}, make([]byte, 8), eth(0x0800, u4))))
	f.Add(uint8(3), ipv4("10.1.1.1", "10.2.2.2", 17, udp(3544, 1, cat([]byte{0, 1, 0, 0}, make([]byte, 9), ipv6("::1", "::2", 59, nil)))))
	f.Add(uint8(7), ipv6("2001:db8::1", "2001:db8::2", 44, cat([]byte{17, 0, 0, 1, 0, 0, 0, 9}, udp(1, 2, nil))))
	f.Add(uint8(10), []byte{2, 0, 0, 0, 8, 0, 9, 0, 0x45, 0, 0, 20})
	f.Add(uint8(11), []byte{0, 0, 8, 0, 0, 0, 0, 0, 0x88, 1})
	f.Add(uint8(0), eth(0x8892, dcpIdentify))
	f.Add(uint8(0), eth(0x88a8, cat(vlanTag(10, 0x8100), vlanTag(20, 0x8892), dcpIdentify)))
	f.Add(uint8(1), cat([]byte{0, 0, 0, 1, 0, 6}, macA, []byte{0, 0, 0x88, 0x92}, dcpIdentify))
	f.Add(uint8(3), ipv4("10.1.1.1", "10.2.2.2", 47, cat([]byte{0, 0, 0x65, 0x58}, eth(0x8892, dcpIdentify))))
	f.Fuzz(func(t *testing.T, sel uint8, frame []byte) {
		var st Stats
		d := decoder{frag: newReassembler(Options{MaxFragments: 4, MaxFragmentBytes: 1 << 16, FragmentTimeout: 1e9}, &st)}
		var p Packet
		v := d.decode(&p, links[int(sel)%len(links)], 0, frame)
		if (v == vL2) != (p.EtherType != 0) {
			t.Fatalf("verdict %d with EtherType %#x", v, p.EtherType)
		}
		if v == vL2 && (p.Src.IsValid() || p.Dst.IsValid() || p.Proto != 0 || len(p.Payload) != p.PayloadLen || p.IPLen != p.PayloadLen) {
			t.Fatalf("layer-2 frame with IP fields: %+v", p)
		}
		if v == vIP {
			if !p.Src.IsValid() || !p.Dst.IsValid() {
				t.Fatalf("IP packet without addresses: %+v", p)
			}
			if p.IPLen < 20 {
				t.Fatalf("IPLen %d", p.IPLen)
			}
		}
	})
}
