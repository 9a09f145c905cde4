package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// A deliberately independent reader of what Generate writes, so the tests
// check the bytes on the wire rather than the generator's own bookkeeping.

type rawPkt struct {
	ts    int64 // µs
	frame []byte
}

func readPcap(b []byte) ([]rawPkt, error) {
	if len(b) < 24 {
		return nil, fmt.Errorf("short header: %d bytes", len(b))
	}
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		return nil, fmt.Errorf("bad magic %x", b[:4])
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("link type %d, want 1", lt)
	}
	var out []rawPkt
	b = b[24:]
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("record %d: short header", len(out))
		}
		sec := binary.LittleEndian.Uint32(b)
		us := binary.LittleEndian.Uint32(b[4:])
		incl := binary.LittleEndian.Uint32(b[8:])
		orig := binary.LittleEndian.Uint32(b[12:])
		if us >= 1e6 || incl != orig || int(incl) > len(b)-16 {
			return nil, fmt.Errorf("record %d: bad header us=%d incl=%d orig=%d", len(out), us, incl, orig)
		}
		out = append(out, rawPkt{int64(sec)*1e6 + int64(us), b[16 : 16+incl]})
		b = b[16+incl:]
	}
	return out, nil
}

type decoded struct {
	ts                int64
	srcMAC, dstMAC    [6]byte
	src, dst          netip.Addr
	proto             uint8
	sport, dport      uint16
	flags             uint8
	seq, ack          uint32
	payload           []byte
	ipOK, l4OK, lenOK bool
}

func csum(b []byte, init uint32) uint16 { return fold(sum16(b, init)) }

func decode(p rawPkt) (decoded, error) {
	var d decoded
	d.ts = p.ts
	f := p.frame
	if len(f) < 34 || f[12] != 8 || f[13] != 0 {
		return d, fmt.Errorf("not Ethernet/IPv4")
	}
	copy(d.dstMAC[:], f[0:6])
	copy(d.srcMAC[:], f[6:12])
	ip := f[14:]
	ihl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	d.lenOK = ip[0]>>4 == 4 && ihl == 20 && tot == len(ip)
	if !d.lenOK || tot < ihl+8 {
		return d, fmt.Errorf("bad IP lengths: ihl %d total %d frame %d", ihl, tot, len(ip))
	}
	d.ipOK = csum(ip[:ihl], 0) == 0xffff
	d.src = netip.AddrFrom4([4]byte(ip[12:16]))
	d.dst = netip.AddrFrom4([4]byte(ip[16:20]))
	d.proto = ip[9]
	l4 := ip[ihl:tot]
	ps := sum16(ip[12:20], 0) + uint32(d.proto) + uint32(len(l4))
	d.l4OK = csum(l4, ps) == 0xffff
	d.sport = binary.BigEndian.Uint16(l4)
	d.dport = binary.BigEndian.Uint16(l4[2:])
	switch d.proto {
	case protoTCP:
		if len(l4) < 20 {
			return d, fmt.Errorf("short TCP")
		}
		d.seq = binary.BigEndian.Uint32(l4[4:])
		d.ack = binary.BigEndian.Uint32(l4[8:])
		hl := int(l4[12]>>4) * 4
		if hl < 20 || hl > len(l4) {
			return d, fmt.Errorf("bad TCP header length %d", hl)
		}
		d.flags = l4[13]
		d.payload = l4[hl:]
	case protoUDP:
		if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			d.lenOK = false
		}
		d.payload = l4[8:]
	default:
		return d, fmt.Errorf("protocol %d", d.proto)
	}
	return d, nil
}

// tcpKey names one direction of a TCP connection.
type tcpKey struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (k tcpKey) rev() tcpKey { return tcpKey{k.dst, k.src, k.dport, k.sport} }

// streams reassembles the client payload of every TCP connection matching
// keep, in sequence order, keyed by the client's direction.
func streams(pkts []decoded, keep func(d *decoded) bool) map[tcpKey]*bytes.Buffer {
	out := map[tcpKey]*bytes.Buffer{}
	for i := range pkts {
		d := &pkts[i]
		if d.proto != protoTCP || len(d.payload) == 0 || !keep(d) {
			continue
		}
		k := tcpKey{d.src, d.dst, d.sport, d.dport}
		if out[k] == nil {
			out[k] = &bytes.Buffer{}
		}
		out[k].Write(d.payload)
	}
	return out
}
