package pcap

import (
	"encoding/binary"
	"net/netip"
)

// verdict is what became of one frame; the Reader counts it in Stats.
type verdict uint8

const (
	vIP verdict = iota
	vNonIP
	vTruncated
	vMalformed
	vUnknownLink
	vFragment // held for reassembly or dropped by it (counted there)
	vL2       // a layer-2 frame returned without IP (PROFINET)
)

// Link types (https://www.tcpdump.org/linktypes.html).
const (
	linkNull      = 0
	linkEthernet  = 1
	linkRaw12     = 12
	linkRaw14     = 14
	linkRaw       = 101
	linkIEEE80211 = 105
	linkLoop      = 108
	linkSLL       = 113
	linkRadiotap  = 127
	linkIPv4      = 228
	linkIPv6      = 229
	linkNFLOG     = 239
	linkSLL2      = 276
)

const (
	// maxTunnelDepth bounds nested decapsulation; deeper tunnels are
	// returned as they are rather than followed.
	maxTunnelDepth = 4
	// maxHeaderChain bounds VLAN tags, MPLS labels and IPv6 extension
	// headers walked in one packet.
	maxHeaderChain = 32
)

var be = binary.BigEndian

// decoder turns one link-layer frame into a Packet. It is stateful only
// through the fragment reassembler.
type decoder struct {
	frag  *reassembler
	depth int
	ts    int64
}

// decode fills p from one frame. p is reset first; fields it sets alias data.
func (d *decoder) decode(p *Packet, link int, ts int64, data []byte) verdict {
	*p = Packet{}
	d.depth = 0
	d.ts = ts
	switch link {
	case linkEthernet:
		return d.ether(p, data)
	case linkRaw, linkRaw12, linkRaw14:
		return d.ipAny(p, data)
	case linkIPv4:
		return d.ipv4(p, data)
	case linkIPv6:
		return d.ipv6(p, data)
	case linkSLL:
		return d.sll(p, data)
	case linkSLL2:
		return d.sll2(p, data)
	case linkNull, linkLoop:
		return d.null(p, data)
	case linkNFLOG:
		return d.nflog(p, data)
	case linkRadiotap:
		return d.radiotap(p, data)
	case linkIEEE80211:
		return d.wifi(p, data)
	}
	return vUnknownLink
}

func (d *decoder) ether(p *Packet, b []byte) verdict {
	if len(b) < 14 {
		return vTruncated
	}
	copy(p.DstMAC[:], b[0:6])
	copy(p.SrcMAC[:], b[6:12])
	p.HasMAC = true
	et := be.Uint16(b[12:])
	if et <= 1500 {
		// 802.3 length field: an LLC header follows.
		return d.llc(p, b[14:])
	}
	return d.etherType(p, et, b[14:])
}

func (d *decoder) etherType(p *Packet, et uint16, b []byte) verdict {
	for range maxHeaderChain {
		switch et {
		case 0x0800:
			return d.ipv4(p, b)
		case 0x86dd:
			return d.ipv6(p, b)
		case 0x8100, 0x88a8, 0x9100, 0x9200, 0x9300:
			if len(b) < 4 {
				return vTruncated
			}
			p.VLAN = be.Uint16(b) & 0x0fff
			et = be.Uint16(b[2:])
			b = b[4:]
			if et <= 1500 {
				return d.llc(p, b)
			}
		case 0x8847, 0x8848:
			return d.mpls(p, b)
		case 0x8864:
			return d.pppoe(p, b)
		case EtherTypePROFINET:
			return l2(p, et, b)
		default:
			return vNonIP
		}
	}
	return vMalformed
}

// l2 returns a frame that has no IP layer but that the flow table wants.
// Nothing in it is checked here: which of its frames are well formed is
// the protocol parser's business, and a runt is still a frame seen.
func l2(p *Packet, et uint16, b []byte) verdict {
	// Inside a tunnel the outer IP header already filled the IP fields;
	// they describe the tunnel, not this frame.
	*p = Packet{SrcMAC: p.SrcMAC, DstMAC: p.DstMAC, HasMAC: p.HasMAC, VLAN: p.VLAN, Tunnel: p.Tunnel}
	p.EtherType = et
	p.Payload = b
	p.PayloadLen = len(b)
	p.IPLen = len(b)
	return vL2
}

// llc handles 802.2 LLC; only SNAP with an EtherType carries IP here.
func (d *decoder) llc(p *Packet, b []byte) verdict {
	if len(b) < 3 {
		return vTruncated
	}
	if b[0] != 0xaa || b[1] != 0xaa || b[2] != 0x03 {
		return vNonIP
	}
	if len(b) < 8 {
		return vTruncated
	}
	// OUI 00-00-00 (RFC 1042) and 00-00-F8 (Cisco) carry EtherTypes.
	if b[3] != 0 || b[4] != 0 || (b[5] != 0 && b[5] != 0xf8) {
		return vNonIP
	}
	return d.etherType(p, be.Uint16(b[6:]), b[8:])
}

func (d *decoder) mpls(p *Packet, b []byte) verdict {
	for i := 0; ; i++ {
		if len(b) < 4 {
			return vTruncated
		}
		bottom := b[2]&0x01 != 0
		b = b[4:]
		if bottom {
			break
		}
		if i >= maxHeaderChain {
			return vMalformed
		}
	}
	if len(b) == 0 {
		return vTruncated
	}
	// No protocol field: guess by the first nibble, as Zeek and tcpdump do.
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(p, b)
	case 6:
		return d.ipv6(p, b)
	case 0:
		// Ethernet pseudowire with its 4-byte control word (RFC 4448).
		if len(b) < 4 {
			return vTruncated
		}
		return d.ether(p, b[4:])
	}
	return d.ether(p, b)
}

func (d *decoder) pppoe(p *Packet, b []byte) verdict {
	if len(b) < 8 {
		return vTruncated
	}
	if b[1] != 0 { // discovery stage codes carry no IP
		return vNonIP
	}
	if n := int(be.Uint16(b[4:])); n+6 < len(b) {
		b = b[:n+6]
	}
	return d.ppp(p, b[6:])
}

// ppp dispatches on a PPP protocol field, compressed (1 byte) or not.
func (d *decoder) ppp(p *Packet, b []byte) verdict {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:] // address and control fields
	}
	if len(b) < 1 {
		return vTruncated
	}
	var proto uint16
	if b[0]&1 == 1 {
		proto, b = uint16(b[0]), b[1:]
	} else {
		if len(b) < 2 {
			return vTruncated
		}
		proto, b = be.Uint16(b), b[2:]
	}
	switch proto {
	case 0x0021:
		return d.ipv4(p, b)
	case 0x0057:
		return d.ipv6(p, b)
	}
	return vNonIP
}

func (d *decoder) sll(p *Packet, b []byte) verdict {
	if len(b) < 16 {
		return vTruncated
	}
	return d.sllProto(p, be.Uint16(b[14:]), b[16:])
}

func (d *decoder) sll2(p *Packet, b []byte) verdict {
	if len(b) < 20 {
		return vTruncated
	}
	return d.sllProto(p, be.Uint16(b), b[20:])
}

func (d *decoder) sllProto(p *Packet, proto uint16, b []byte) verdict {
	switch proto {
	case 0x0004: // raw 802.2 frames
		return d.llc(p, b)
	}
	return d.etherType(p, proto, b)
}

// null handles BSD loopback: a 4-byte address family in the byte order of
// the machine that wrote it (network order for LINKTYPE_LOOP, but both are
// found in the wild).
func (d *decoder) null(p *Packet, b []byte) verdict {
	if len(b) < 4 {
		return vTruncated
	}
	fam := binary.LittleEndian.Uint32(b)
	if fam > 0xffff {
		fam = be.Uint32(b)
	}
	switch fam {
	case 2:
		return d.ipv4(p, b[4:])
	case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
		return d.ipv6(p, b[4:])
	}
	return vNonIP
}

// nflog walks the TLVs of a Linux NFLOG record to NFULA_PAYLOAD. TLV
// fields are in the capturing host's byte order; pick the one that gives a
// sane first length.
func (d *decoder) nflog(p *Packet, b []byte) verdict {
	if len(b) < 4 {
		return vTruncated
	}
	family := b[0]
	var bo binary.ByteOrder = binary.LittleEndian
	if len(b) >= 8 {
		if l := int(binary.LittleEndian.Uint16(b[4:])); l < 4 || l > len(b)-4 {
			bo = be
		}
	}
	for off := 4; off+4 <= len(b); {
		l := int(bo.Uint16(b[off:]))
		typ := bo.Uint16(b[off+2:]) & 0x7fff
		if l < 4 {
			return vMalformed
		}
		if typ == 9 { // NFULA_PAYLOAD
			end := min(off+l, len(b))
			pl := b[off+4 : end]
			switch family {
			case 2:
				return d.ipv4(p, pl)
			case 10:
				return d.ipv6(p, pl)
			}
			return d.ipAny(p, pl)
		}
		off += (l + 3) &^ 3
	}
	return vNonIP
}

func (d *decoder) radiotap(p *Packet, b []byte) verdict {
	if len(b) < 8 {
		return vTruncated
	}
	hl := int(binary.LittleEndian.Uint16(b[2:]))
	if hl < 8 {
		return vMalformed
	}
	if len(b) < hl {
		return vTruncated
	}
	// Find the Flags field to learn whether an FCS trails the frame: skip
	// the extended presence words, then TSFT (8 bytes, 8-aligned).
	present := binary.LittleEndian.Uint32(b[4:])
	off := 8
	for w := present; w&(1<<31) != 0 && off+4 <= hl; off += 4 {
		w = binary.LittleEndian.Uint32(b[off:])
	}
	if present&1 != 0 {
		off = (off+7)&^7 + 8
	}
	frame := b[hl:]
	if present&2 != 0 && off < hl && b[off]&0x10 != 0 && len(frame) >= 4 {
		frame = frame[:len(frame)-4]
	}
	return d.wifi(p, frame)
}

// wifi decodes an 802.11 data frame carrying LLC/SNAP. Addresses are not
// copied: which of the three or four is the host depends on the DS bits,
// and the flow table only needs Ethernet MACs.
func (d *decoder) wifi(p *Packet, b []byte) verdict {
	if len(b) < 24 {
		if len(b) >= 2 && (b[0]>>2)&3 != 2 {
			return vNonIP
		}
		return vTruncated
	}
	fc0, fc1 := b[0], b[1]
	if (fc0>>2)&3 != 2 { // management or control
		return vNonIP
	}
	sub := fc0 >> 4
	if sub&0x4 != 0 || fc1&0x40 != 0 { // null data, or encrypted
		return vNonIP
	}
	hl := 24
	if fc1&3 == 3 {
		hl += 6
	}
	if sub&0x8 != 0 {
		hl += 2
		if fc1&0x80 != 0 {
			hl += 4 // HT control
		}
	}
	if len(b) < hl {
		return vTruncated
	}
	return d.llc(p, b[hl:])
}

// ipAny picks IPv4 or IPv6 by the version nibble.
func (d *decoder) ipAny(p *Packet, b []byte) verdict {
	if len(b) < 1 {
		return vTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(p, b)
	case 6:
		return d.ipv6(p, b)
	}
	return vNonIP
}

func (d *decoder) ipv4(p *Packet, b []byte) verdict {
	if len(b) < 20 {
		return vTruncated
	}
	if b[0]>>4 != 4 {
		return vMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return vMalformed
	}
	tot := int(be.Uint16(b[2:]))
	if tot == 0 {
		tot = len(b) // TCP segmentation offload leaves the length unset
	}
	if tot < ihl {
		return vMalformed
	}
	if len(b) < ihl {
		return vTruncated
	}
	if len(b) > tot {
		b = b[:tot] // Ethernet padding
	}
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.IPLen = tot
	proto := b[9]
	ff := be.Uint16(b[6:])
	if off := int(ff&0x1fff) * 8; off != 0 || ff&0x2000 != 0 {
		f := fragment{
			key:     fragKey{src: p.Src, dst: p.Dst, id: uint32(be.Uint16(b[4:])), proto: proto},
			ts:      d.ts,
			off:     off,
			more:    ff&0x2000 != 0,
			data:    b[ihl:],
			claimed: tot - ihl,
			proto:   proto,
			hdrLen:  ihl,
		}
		return d.reassemble(p, &f)
	}
	return d.transport(p, proto, b[ihl:], tot-ihl)
}

func (d *decoder) ipv6(p *Packet, b []byte) verdict {
	if len(b) < 40 {
		return vTruncated
	}
	if b[0]>>4 != 6 {
		return vMalformed
	}
	tot := 40 + int(be.Uint16(b[4:]))
	if tot == 40 && len(b) > 40 {
		tot = len(b) // jumbogram or offload: trust what was captured
	}
	if len(b) > tot {
		b = b[:tot]
	}
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.IPLen = tot
	nh := b[6]
	off := 40
	for range maxHeaderChain {
		switch nh {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, dest opts, mobility, HIP, shim6
			if len(b) < off+2 {
				return vTruncated
			}
			l := (int(b[off+1]) + 1) * 8
			if off+l > tot {
				return vMalformed
			}
			nh = b[off]
			off += l
		case 51: // AH: length in 4-byte units, minus 2
			if len(b) < off+2 {
				return vTruncated
			}
			l := (int(b[off+1]) + 2) * 4
			if off+l > tot {
				return vMalformed
			}
			nh = b[off]
			off += l
		case 44:
			if len(b) < off+8 {
				return vTruncated
			}
			next := b[off]
			ff := be.Uint16(b[off+2:])
			id := be.Uint32(b[off+4:])
			off += 8
			fo, more := int(ff&0xfff8), ff&1 != 0
			if fo == 0 && !more {
				nh = next // atomic fragment (RFC 6946): not really fragmented
				continue
			}
			f := fragment{
				key:     fragKey{src: p.Src, dst: p.Dst, id: id, v6: true},
				ts:      d.ts,
				off:     fo,
				more:    more,
				data:    b[min(off, len(b)):],
				claimed: tot - off,
				proto:   next,
				hdrLen:  off,
			}
			return d.reassemble(p, &f)
		default:
			if off > len(b) {
				return vTruncated
			}
			return d.transport(p, nh, b[off:], tot-off)
		}
	}
	return vMalformed
}

func (d *decoder) reassemble(p *Packet, f *fragment) verdict {
	if f.claimed < 0 {
		return vMalformed
	}
	dg, v := d.frag.add(f)
	if v != vIP {
		return v
	}
	p.IPLen = dg.hdrLen + dg.total
	return d.transport(p, dg.proto, dg.buf, dg.total)
}

// transport decodes the layer above IP. data is what was captured of the
// IP payload, claimed what the IP header says it holds.
func (d *decoder) transport(p *Packet, proto uint8, data []byte, claimed int) verdict {
	p.Proto = proto
	switch proto {
	case 6:
		return d.tcp(p, data, claimed)
	case 17:
		return d.udp(p, data, claimed)
	case 1, 58:
		// Like Zeek: type as source port, code as destination port.
		if len(data) < 4 {
			return shortHeader(claimed, 4)
		}
		p.SrcPort, p.DstPort = uint16(data[0]), uint16(data[1])
		h := min(8, len(data), max(claimed, 0))
		p.Payload = data[h:]
		p.PayloadLen = max(claimed-8, 0)
		return vIP
	case 4, 41:
		if d.enter(p, "ipip") {
			if proto == 4 {
				return d.ipv4(p, data)
			}
			return d.ipv6(p, data)
		}
	case 47:
		if v, ok := d.gre(p, data); ok {
			return v
		}
	}
	p.Payload = data
	p.PayloadLen = claimed
	return vIP
}

// shortHeader tells a header cut by the snap length from one that the IP
// length says cannot be there at all.
func shortHeader(claimed, need int) verdict {
	if claimed < need {
		return vMalformed
	}
	return vTruncated
}

func (d *decoder) tcp(p *Packet, b []byte, claimed int) verdict {
	if len(b) < 20 {
		return shortHeader(claimed, 20)
	}
	doff := int(b[12]>>4) * 4
	if doff < 20 || doff > claimed {
		return vMalformed
	}
	p.SrcPort, p.DstPort = be.Uint16(b), be.Uint16(b[2:])
	p.Seq, p.Ack = be.Uint32(b[4:]), be.Uint32(b[8:])
	p.TCPFlags = b[13] & 0x3f
	p.Payload = b[min(doff, len(b)):]
	p.PayloadLen = claimed - doff
	return vIP
}

func (d *decoder) udp(p *Packet, b []byte, claimed int) verdict {
	if len(b) < 8 {
		return shortHeader(claimed, 8)
	}
	ulen := int(be.Uint16(b[4:]))
	switch {
	case ulen == 0:
		ulen = claimed // jumbogram
	case ulen < 8:
		return vMalformed
	case ulen > claimed:
		ulen = claimed // Zeek notes the mismatch and goes on
	}
	p.SrcPort, p.DstPort = be.Uint16(b), be.Uint16(b[2:])
	p.PayloadLen = ulen - 8
	p.Payload = b[8:min(len(b), ulen)]
	if d.depth < maxTunnelDepth {
		switch {
		case p.DstPort == 4789:
			return d.vxlan(p)
		case p.DstPort == 6081:
			return d.geneve(p)
		case p.SrcPort == 3544 || p.DstPort == 3544:
			return d.teredo(p)
		}
	}
	return vIP
}

// enter records one more decapsulation; false means the depth limit was
// reached and the packet is returned as it stands. The outer MACs belong
// to the tunnel endpoints, not to the inner conversation, so they go.
func (d *decoder) enter(p *Packet, name string) bool {
	if d.depth >= maxTunnelDepth {
		return false
	}
	d.depth++
	if p.Tunnel == "" {
		p.Tunnel = name
	}
	p.HasMAC = false
	p.SrcMAC, p.DstMAC = [6]byte{}, [6]byte{}
	return true
}

// The UDP-port tunnels below are guesses: when the inner packet is not
// sound, the outer UDP packet is restored and returned instead.

func (d *decoder) vxlan(p *Packet) verdict {
	b := p.Payload
	if len(b) < 8+14 || b[0]&0x08 == 0 { // I flag: VNI valid
		return vIP
	}
	saved, depth := *p, d.depth
	d.enter(p, "vxlan")
	v := d.ether(p, b[8:])
	if v == vTruncated || v == vMalformed {
		*p, d.depth = saved, depth
		return vIP
	}
	return v
}

func (d *decoder) geneve(p *Packet) verdict {
	b := p.Payload
	if len(b) < 8 || b[0]>>6 != 0 {
		return vIP
	}
	hl := 8 + int(b[0]&0x3f)*4
	if len(b) < hl {
		return vIP
	}
	saved, depth := *p, d.depth
	d.enter(p, "geneve")
	var v verdict
	if et := be.Uint16(b[2:]); et == 0x6558 {
		v = d.ether(p, b[hl:])
	} else {
		v = d.etherType(p, et, b[hl:])
	}
	if v == vTruncated || v == vMalformed {
		*p, d.depth = saved, depth
		return vIP
	}
	return v
}

// teredo follows RFC 4380: optional authentication and origin indication
// headers, then an IPv6 packet whose length must match the UDP payload
// exactly, which is what keeps port 3544 from capturing unrelated traffic.
func (d *decoder) teredo(p *Packet) verdict {
	b := p.Payload
	claimed := p.PayloadLen
	if len(b) >= 4 && b[0] == 0 && b[1] == 1 {
		hl := 4 + int(b[2]) + int(b[3]) + 9
		if len(b) < hl {
			return vIP
		}
		b, claimed = b[hl:], claimed-hl
	}
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 {
		b, claimed = b[8:], claimed-8
	}
	if len(b) < 40 || b[0]>>4 != 6 || 40+int(be.Uint16(b[4:])) != claimed {
		return vIP
	}
	saved, depth := *p, d.depth
	d.enter(p, "teredo")
	v := d.ipv6(p, b)
	if v == vTruncated || v == vMalformed {
		*p, d.depth = saved, depth
		return vIP
	}
	return v
}

// gre decapsulates GRE (RFC 2784/2890), PPTP's enhanced GRE, ERSPAN and
// Aruba's 802.11-in-GRE. ok is false when the payload is left as it is.
func (d *decoder) gre(p *Packet, b []byte) (verdict, bool) {
	if len(b) < 4 {
		return vIP, false
	}
	flags, proto := be.Uint16(b), be.Uint16(b[2:])
	off := 4
	switch flags & 7 {
	case 0:
		if flags&0x4000 != 0 { // source routing (obsolete): not followed
			return vIP, false
		}
		if flags&0x8000 != 0 {
			off += 4
		}
		if flags&0x2000 != 0 {
			off += 4
		}
		if flags&0x1000 != 0 {
			off += 4
		}
	case 1:
		if proto != 0x880b || flags&0x2000 == 0 {
			return vIP, false
		}
		off += 4
		if flags&0x1000 != 0 {
			off += 4
		}
		if flags&0x0080 != 0 {
			off += 4
		}
	default:
		return vIP, false
	}
	if len(b) < off {
		return vIP, false
	}
	in := b[off:]
	switch proto {
	case 0x6558:
		if d.enter(p, "gre") {
			return d.ether(p, in), true
		}
	case 0x88be:
		if d.enter(p, "erspan") {
			if flags&0x1000 != 0 { // type II has a header; type I has none
				if len(in) < 8 {
					return vTruncated, true
				}
				in = in[8:]
			}
			return d.ether(p, in), true
		}
	case 0x22eb:
		if d.enter(p, "erspan") {
			if len(in) < 12 {
				return vTruncated, true
			}
			hl := 12
			if in[11]&1 != 0 { // platform-specific subheader
				hl += 8
			}
			if len(in) < hl {
				return vTruncated, true
			}
			return d.ether(p, in[hl:]), true
		}
	case 0x8200:
		if d.enter(p, "gre") {
			return d.wifi(p, in), true
		}
	case 0x880b:
		if len(in) == 0 { // PPTP acknowledgement without payload
			return vNonIP, true
		}
		if d.enter(p, "gre") {
			return d.ppp(p, in), true
		}
	case 0x0800, 0x86dd, 0x8847, 0x8848, 0x8100, 0x88a8:
		if d.enter(p, "gre") {
			return d.etherType(p, proto, in), true
		}
	}
	return vIP, false
}
