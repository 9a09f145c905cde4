package pcap

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	u4 := ipv4("192.0.2.1", "198.51.100.2", 17, udp(5000, 53, []byte("query")))
	u6 := ipv6("2001:db8::1", "2001:db8::2", 17, udp(5000, 53, []byte("query")))
	t4 := ipv4("192.0.2.1", "198.51.100.2", 6, tcp(40000, 443, 1000, 2000, FlagSYN|FlagACK|0x40, []byte("hello")))
	vx := ipv4("10.9.9.9", "10.8.8.8", 17, udp(1234, 4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0}, eth(0x0800, u4))))
	gre := func(flags, proto uint16, extra []byte, inner []byte) []byte {
		h := []byte{byte(flags >> 8), byte(flags), byte(proto >> 8), byte(proto)}
		return ipv4("10.1.1.1", "10.2.2.2", 47, cat(h, extra, inner))
	}
	sll := func(proto uint16, p []byte) []byte {
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 1)
		binary.BigEndian.PutUint16(h[14:], proto)
		return append(h, p...)
	}
	sll2 := func(proto uint16, p []byte) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h, proto)
		return append(h, p...)
	}
	nflog := func(bo binary.ByteOrder, p []byte) []byte {
		b := []byte{2, 0, 0, 1}
		tlv := func(typ uint16, v []byte) {
			h := make([]byte, 4)
			bo.PutUint16(h, uint16(4+len(v)))
			bo.PutUint16(h[2:], typ)
			b = append(b, h...)
			b = append(b, v...)
			for len(b)%4 != 0 {
				b = append(b, 0)
			}
		}
		tlv(1, []byte{8, 0, 2, 0}) // packet header
		tlv(10, []byte("prefix!"))
		tlv(9, p)
		return b
	}
	wifi := func(fc0, fc1 byte, qos bool, p []byte) []byte {
		h := make([]byte, 24)
		h[0], h[1] = fc0, fc1
		if qos {
			h = append(h, 0, 0)
		}
		return cat(h, []byte{0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0}, p)
	}
	radiotap := func(flags byte, p []byte) []byte {
		// present: Flags (bit 1) only
		h := []byte{0, 0, 9, 0, 2, 0, 0, 0, flags}
		return cat(h, p)
	}
	teredo := cat([]byte{0, 0, 0x0d, 0x96, 1, 2, 3, 4}, u6) // origin indication
	mpls := func(labels int, p []byte) []byte {
		var b []byte
		for i := range labels {
			e := uint32(16+i) << 12
			if i == labels-1 {
				e |= 0x100
			}
			b = binary.BigEndian.AppendUint32(b, e|64)
		}
		return append(b, p...)
	}
	pppoe := func(p []byte) []byte {
		h := []byte{0x11, 0, 0, 1, 0, 0, 0, 0x21}
		binary.BigEndian.PutUint16(h[4:], uint16(2+len(p)))
		return append(h, p...)
	}

	tests := []struct {
		name    string
		link    int
		frame   []byte
		want    verdict
		src     string
		sport   uint16
		dport   uint16
		proto   uint8
		vlan    uint16
		tunnel  string
		payload string
		hasMAC  bool
	}{
		{name: "ethernet udp", link: 1, frame: eth(0x0800, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "ethernet tcp", link: 1, frame: eth(0x0800, t4), src: "192.0.2.1", sport: 40000, dport: 443, proto: 6, payload: "hello", hasMAC: true},
		{name: "ethernet ipv6", link: 1, frame: eth(0x86dd, u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "ethernet padding trimmed", link: 1, frame: eth(0x0800, cat(u4, make([]byte, 10))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "arp", link: 1, frame: eth(0x0806, make([]byte, 28)), want: vNonIP},
		{name: "vlan", link: 1, frame: eth(0x8100, cat(vlanTag(0x2064, 0x0800), u4)), src: "192.0.2.1", sport: 5000, proto: 17, dport: 53, vlan: 100, payload: "query", hasMAC: true},
		{name: "qinqinq innermost", link: 1, frame: eth(0x88a8, cat(vlanTag(10, 0x9100), vlanTag(20, 0x8100), vlanTag(30, 0x0800), u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, vlan: 30, payload: "query", hasMAC: true},
		{name: "mpls stack", link: 1, frame: eth(0x8847, mpls(3, u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "mpls ipv6", link: 1, frame: eth(0x8847, mpls(1, u6)), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "mpls pseudowire", link: 1, frame: eth(0x8847, mpls(2, cat([]byte{0, 0, 0, 0}, eth(0x0800, u4)))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "pppoe in vlan", link: 1, frame: eth(0x8100, cat(vlanTag(7, 0x8864), pppoe(u4))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, vlan: 7, payload: "query", hasMAC: true},
		{name: "pppoe discovery", link: 1, frame: eth(0x8863, []byte{0x11, 9, 0, 0, 0, 0}), want: vNonIP},
		{name: "llc snap", link: 1, frame: cat(macB, macA, []byte{0, byte(8 + len(u4))}, []byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query", hasMAC: true},
		{name: "llc stp", link: 1, frame: cat(macB, macA, []byte{0, 38}, []byte{0x42, 0x42, 3}, make([]byte, 35)), want: vNonIP},
		{name: "sll", link: 113, frame: sll(0x0800, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "sll arp", link: 113, frame: sll(0x0806, make([]byte, 28)), want: vNonIP},
		{name: "sll2", link: 276, frame: sll2(0x86dd, u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "raw 101", link: 101, frame: u6, src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "raw 12", link: 12, frame: u4, src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "raw 14", link: 14, frame: u4, src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "ipv4 228", link: 228, frame: u4, src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "ipv6 229", link: 229, frame: u6, src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "null LE inet", link: 0, frame: cat([]byte{2, 0, 0, 0}, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "null BE inet6 darwin", link: 0, frame: cat([]byte{0, 0, 0, 30}, u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "loop BE inet", link: 108, frame: cat([]byte{0, 0, 0, 2}, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "loop LE inet6 freebsd", link: 108, frame: cat([]byte{28, 0, 0, 0}, u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "null unknown family", link: 0, frame: cat([]byte{7, 0, 0, 0}, u4), want: vNonIP},
		{name: "nflog LE", link: 239, frame: nflog(binary.LittleEndian, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "nflog BE", link: 239, frame: nflog(binary.BigEndian, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "nflog no payload", link: 239, frame: []byte{2, 0, 0, 1, 8, 0, 1, 0, 8, 0, 2, 0}, want: vNonIP},
		{name: "radiotap qos data", link: 127, frame: radiotap(0, wifi(0x88, 0x01, true, u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "radiotap with fcs", link: 127, frame: radiotap(0x10, cat(wifi(0x08, 0x02, false, u4), []byte{1, 2, 3, 4})), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "radiotap beacon", link: 127, frame: radiotap(0, cat([]byte{0x80, 0}, make([]byte, 40))), want: vNonIP},
		{name: "802.11 protected", link: 105, frame: wifi(0x08, 0x41, false, u4), want: vNonIP},
		{name: "802.11 plain", link: 105, frame: wifi(0x08, 0x01, false, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "unknown link", link: 147, frame: u4, want: vUnknownLink},
		{name: "icmp type code", link: 101, frame: ipv4("192.0.2.1", "198.51.100.2", 1, []byte{3, 1, 0, 0, 0, 0, 0, 0, 'x'}), src: "192.0.2.1", sport: 3, dport: 1, proto: 1, payload: "x"},
		{name: "icmpv6 echo", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 58, []byte{128, 0, 0, 0, 0, 1, 0, 1, 'p'}), src: "2001:db8::1", sport: 128, dport: 0, proto: 58, payload: "p"},
		{name: "ipv6 ext headers", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 0, cat([]byte{43, 0, 0, 0, 0, 0, 0, 0}, []byte{60, 0, 0, 0, 0, 0, 0, 0}, []byte{17, 0, 0, 0, 0, 0, 0, 0}, udp(5000, 53, []byte("query")))), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "ipv6 AH", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 51, cat([]byte{17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, udp(5000, 53, []byte("query")))), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "ipv6 atomic fragment", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 44, cat([]byte{17, 0, 0, 0, 0, 0, 0, 9}, udp(5000, 53, []byte("query")))), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, payload: "query"},
		{name: "ipv6 esp stops", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 50, []byte("opaque-esp")), src: "2001:db8::1", proto: 50, payload: "opaque-esp"},
		{name: "ipv6 ext overruns", link: 101, frame: ipv6("2001:db8::1", "2001:db8::2", 0, []byte{17, 5, 0, 0, 0, 0, 0, 0}), want: vMalformed},
		{name: "ipv4 header too short", link: 101, frame: []byte{0x45, 0, 0, 20, 0, 0}, want: vTruncated},
		{name: "ipv4 ihl below 5", link: 101, frame: cat([]byte{0x44}, u4[1:]), want: vMalformed},
		{name: "ipv4 total below ihl", link: 101, frame: cat([]byte{0x4f, 0, 0, 20}, make([]byte, 30)), want: vMalformed},
		{name: "tcp truncated", link: 101, frame: ipv4("192.0.2.1", "198.51.100.2", 6, tcp(1, 2, 0, 0, 2, nil))[:30], want: vTruncated},
		{name: "tcp bad data offset", link: 101, frame: func() []byte { b := append([]byte{}, t4...); b[20+12] = 0x20; return b }(), want: vMalformed},
		{name: "udp length below 8", link: 101, frame: func() []byte { b := append([]byte{}, u4...); b[20+5] = 4; return b }(), want: vMalformed},
		{name: "vxlan", link: 1, frame: eth(0x0800, vx), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "vxlan", payload: "query", hasMAC: true},
		{name: "vxlan without I flag stays outer", link: 1, frame: eth(0x0800, ipv4("10.9.9.9", "10.8.8.8", 17, udp(1234, 4789, make([]byte, 30)))), src: "10.9.9.9", sport: 1234, dport: 4789, proto: 17, payload: string(make([]byte, 30)), hasMAC: true},
		{name: "teredo origin indication", link: 101, frame: ipv4("10.9.9.9", "10.8.8.8", 17, udp(3544, 40000, teredo)), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, tunnel: "teredo", payload: "query"},
		{name: "teredo auth header", link: 101, frame: ipv4("10.9.9.9", "10.8.8.8", 17, udp(40000, 3544, cat([]byte{0, 1, 2, 1, 'i', 'd', 'a'}, make([]byte, 9), u6))), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, tunnel: "teredo", payload: "query"},
		{name: "port 3544 not ipv6", link: 101, frame: ipv4("10.9.9.9", "10.8.8.8", 17, udp(3544, 40000, []byte("plain"))), src: "10.9.9.9", sport: 3544, dport: 40000, proto: 17, payload: "plain"},
		{name: "gre ip", link: 1, frame: eth(0x0800, gre(0, 0x0800, nil, u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "gre", payload: "query"},
		{name: "gre key seq checksum", link: 101, frame: gre(0xb000, 0x86dd, make([]byte, 12), u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, tunnel: "gre", payload: "query"},
		{name: "gre teb", link: 101, frame: gre(0x2000, 0x6558, make([]byte, 4), eth(0x8100, cat(vlanTag(5, 0x0800), u4))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, vlan: 5, tunnel: "gre", payload: "query", hasMAC: true},
		{name: "erspan II", link: 101, frame: gre(0x1000, 0x88be, make([]byte, 4), cat([]byte{0x10, 0, 0, 1, 0, 0, 0, 0}, eth(0x0800, u4))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "erspan", payload: "query", hasMAC: true},
		{name: "erspan III with subheader", link: 101, frame: gre(0x1000, 0x22eb, make([]byte, 4), cat([]byte{0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 8), eth(0x0800, u4))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "erspan", payload: "query", hasMAC: true},
		{name: "aruba gre 802.11", link: 101, frame: gre(0, 0x8200, nil, wifi(0x88, 0x01, true, u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "gre", payload: "query"},
		{name: "pptp gre ppp", link: 101, frame: gre(0x3081, 0x880b, make([]byte, 12), cat([]byte{0xff, 0x03, 0x00, 0x21}, u4)), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "gre", payload: "query"},
		{name: "gre unknown proto stays outer", link: 101, frame: gre(0, 0x1234, nil, []byte("zz")), src: "10.1.1.1", proto: 47, payload: "\x00\x00\x12\x34zz"},
		{name: "ipip", link: 101, frame: ipv4("10.1.1.1", "10.2.2.2", 4, u4), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "ipip", payload: "query"},
		{name: "6in4", link: 101, frame: ipv4("10.1.1.1", "10.2.2.2", 41, u6), src: "2001:db8::1", sport: 5000, dport: 53, proto: 17, tunnel: "ipip", payload: "query"},
		{name: "nested gre in vxlan keeps outermost", link: 1, frame: eth(0x0800, ipv4("10.9.9.9", "10.8.8.8", 17, udp(1, 4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, eth(0x0800, gre(0, 0x0800, nil, u4)))))), src: "192.0.2.1", sport: 5000, dport: 53, proto: 17, tunnel: "vxlan", payload: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st Stats
			d := decoder{frag: newReassembler(Options{MaxFragments: 8, MaxFragmentBytes: 70000, FragmentTimeout: time.Second}, &st)}
			var p Packet
			v := d.decode(&p, tc.link, 0, tc.frame)
			if v != tc.want {
				t.Fatalf("verdict %d, want %d", v, tc.want)
			}
			if v != vIP {
				return
			}
			if p.Src != netip.MustParseAddr(tc.src) {
				t.Errorf("src %v, want %s", p.Src, tc.src)
			}
			if p.SrcPort != tc.sport || p.DstPort != tc.dport || p.Proto != tc.proto {
				t.Errorf("ports %d>%d proto %d, want %d>%d proto %d", p.SrcPort, p.DstPort, p.Proto, tc.sport, tc.dport, tc.proto)
			}
			if p.VLAN != tc.vlan || p.Tunnel != tc.tunnel || p.HasMAC != tc.hasMAC {
				t.Errorf("vlan %d tunnel %q mac %v, want %d %q %v", p.VLAN, p.Tunnel, p.HasMAC, tc.vlan, tc.tunnel, tc.hasMAC)
			}
			if string(p.Payload) != tc.payload || p.PayloadLen != len(tc.payload) {
				t.Errorf("payload %q (len %d), want %q", p.Payload, p.PayloadLen, tc.payload)
			}
		})
	}
}

func TestDecodeTCPFields(t *testing.T) {
	var st Stats
	d := decoder{frag: newReassembler(Options{MaxFragments: 8, MaxFragmentBytes: 70000, FragmentTimeout: time.Second}, &st)}
	var p Packet
	frame := eth(0x0800, ipv4("192.0.2.1", "198.51.100.2", 6, tcp(40000, 443, 0xdeadbeef, 0x01020304, 0xc0|FlagSYN|FlagACK, []byte("0123456789"))))
	// Snap length cut: 4 payload bytes captured of 10.
	if v := d.decode(&p, 1, 0, frame[:len(frame)-6]); v != vIP {
		t.Fatalf("verdict %d", v)
	}
	if p.Seq != 0xdeadbeef || p.Ack != 0x01020304 || p.TCPFlags != FlagSYN|FlagACK {
		t.Errorf("seq %x ack %x flags %x", p.Seq, p.Ack, p.TCPFlags)
	}
	if p.PayloadLen != 10 || string(p.Payload) != "0123" || p.IPLen != 50 {
		t.Errorf("payload %q len %d iplen %d, want \"0123\" 10 50", p.Payload, p.PayloadLen, p.IPLen)
	}
	if !p.HasMAC || p.SrcMAC != [6]byte(macA) || p.DstMAC != [6]byte(macB) {
		t.Errorf("macs %x %x", p.SrcMAC, p.DstMAC)
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	var st Stats
	d := decoder{frag: newReassembler(Options{MaxFragments: 8, MaxFragmentBytes: 70000, FragmentTimeout: time.Second}, &st)}
	var p Packet
	frame := eth(0x8100, cat(vlanTag(3, 0x0800), ipv4("192.0.2.1", "198.51.100.2", 17, udp(1234, 4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, eth(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2, 3, 4, 2, []byte("x")))))))))
	if n := testing.AllocsPerRun(100, func() { d.decode(&p, 1, 0, frame) }); n != 0 {
		t.Errorf("decode allocates %.1f times per packet", n)
	}
}
