package sim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// IP protocol numbers the simulator emits.
const (
	protoTCP = 6
	protoUDP = 17
)

// TCP flag bits.
const (
	flFIN = 0x01
	flSYN = 0x02
	flRST = 0x04
	flPSH = 0x08
	flACK = 0x10
)

// synOpts are the options of every SYN and SYN-ACK: MSS 1460, window scale 7
// and SACK permitted, what current Linux and Windows stacks offer.
var synOpts = []byte{2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2}

const (
	mss       = 1460
	snapLen   = 65535
	maxFrame  = 14 + 20 + 32 + mss + 64
	linkEther = 1
)

// pcapWriter writes a classic microsecond pcap. Frames are built into one
// scratch buffer so that writing allocates nothing per packet.
type pcapWriter struct {
	w     *bufio.Writer
	buf   [maxFrame + 16]byte
	bytes int64
	pkts  int64
	err   error
}

func newPcapWriter(w io.Writer) *pcapWriter {
	pw := &pcapWriter{w: bufio.NewWriterSize(w, 1<<20)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkEther)
	pw.write(h[:])
	return pw
}

func (pw *pcapWriter) write(b []byte) {
	if pw.err != nil {
		return
	}
	n, err := pw.w.Write(b)
	pw.bytes += int64(n)
	if err != nil {
		pw.err = fmt.Errorf("sim: write pcap: %w", err)
	}
}

func (pw *pcapWriter) flush() error {
	if pw.err != nil {
		return pw.err
	}
	if err := pw.w.Flush(); err != nil {
		pw.err = fmt.Errorf("sim: write pcap: %w", err)
	}
	return pw.err
}

// writePkt builds the Ethernet/IPv4/TCP-or-UDP frame of p on flow f and
// writes it with its record header.
func (pw *pcapWriter) writePkt(f *flow, p *pkt) {
	src, dst := f.a, f.b
	sport, dport := f.aport, f.bport
	macs := &f.macAB
	if p.rev {
		src, dst = dst, src
		sport, dport = dport, sport
		macs = &f.macBA
	}
	b := pw.buf[16:]
	copy(b[0:12], macs[:])
	b[12], b[13] = 0x08, 0x00

	ip := b[14:]
	l4 := ip[20:]
	var l4len int
	if f.proto == protoTCP {
		optLen := 0
		if p.flags&flSYN != 0 {
			optLen = len(synOpts)
			copy(l4[20:], synOpts)
		}
		hl := 20 + optLen
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint32(l4[4:], p.seq)
		ack := p.ack
		if p.flags&flACK == 0 {
			ack = 0
		}
		binary.BigEndian.PutUint32(l4[8:], ack)
		l4[12] = byte(hl/4) << 4
		l4[13] = p.flags
		binary.BigEndian.PutUint16(l4[14:], p.win)
		l4[16], l4[17] = 0, 0
		l4[18], l4[19] = 0, 0
		if p.n > 0 {
			p.data.copyTo(l4[hl:hl+p.n], p.off)
		}
		l4len = hl + p.n
	} else {
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+p.n))
		l4[6], l4[7] = 0, 0
		if p.n > 0 {
			p.data.copyTo(l4[8:8+p.n], p.off)
		}
		l4len = 8 + p.n
	}

	total := 20 + l4len
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], src.nextIPID())
	if f.proto == protoTCP {
		ip[6], ip[7] = 0x40, 0 // DF: TCP stacks do path MTU discovery
	} else {
		ip[6], ip[7] = 0, 0
	}
	ip[8] = src.ttl
	ip[9] = f.proto
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], src.ip[:])
	copy(ip[16:20], dst.ip[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(ip[:20], 0)))

	// Pseudo-header: addresses, protocol, L4 length.
	ps := sum16(ip[12:20], 0) + uint32(f.proto) + uint32(l4len)
	cs := ^fold(sum16(l4[:l4len], ps))
	if f.proto == protoTCP {
		binary.BigEndian.PutUint16(l4[16:], cs)
	} else {
		if cs == 0 {
			cs = 0xffff // zero means "no checksum" in UDP
		}
		binary.BigEndian.PutUint16(l4[6:], cs)
	}

	frameLen := 14 + total
	rec := pw.buf[:16]
	binary.LittleEndian.PutUint32(rec[0:], uint32(p.ts/1e6))
	binary.LittleEndian.PutUint32(rec[4:], uint32(p.ts%1e6))
	binary.LittleEndian.PutUint32(rec[8:], uint32(frameLen))
	binary.LittleEndian.PutUint32(rec[12:], uint32(frameLen))
	pw.write(pw.buf[:16+frameLen])
	pw.pkts++
}

// sum16 adds b as big-endian 16-bit words to s (one's-complement partial sum).
func sum16(b []byte, s uint32) uint32 {
	var acc uint64 = uint64(s)
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v >> 48
		acc += (v >> 32) & 0xffff
		acc += (v >> 16) & 0xffff
		acc += v & 0xffff
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	for acc>>32 != 0 {
		acc = (acc & 0xffffffff) + (acc >> 32)
	}
	return uint32(acc)
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}
