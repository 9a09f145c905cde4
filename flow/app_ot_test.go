package flow

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch/pcap"
)

func mbapPDU(tid uint16, pdu ...byte) string {
	b := binary.BigEndian.AppendUint16(nil, tid)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, 1)
	return string(append(b, pdu...))
}

// Modbus requests split across segments, one out of order, and the
// answers: every PDU of the flow is counted, including those past the
// dissection buffer, and no buffered byte is left accounted.
func TestOTModbusFlow(t *testing.T) {
	ms := time.Millisecond
	var req, resp strings.Builder
	for i := range 400 {
		req.WriteString(mbapPDU(uint16(i), 0x03, 0, 0, 0, 2))
		resp.WriteString(mbapPDU(uint16(i), 0x03, 4, 0, 1, 0, 2))
	}
	req.WriteString(mbapPDU(999, 0x06, 0, 9, 0, 1))
	resp.WriteString(mbapPDU(999, 0x06, 0, 9, 0, 1))
	r, q := req.String(), resp.String()
	pkts := with(handshake)
	// Orig bytes in 7-byte pieces (split inside MBAP headers), the
	// second and third swapped; resp bytes in 1000-byte pieces.
	var segs []tp
	seq := uint32(1001)
	for off := 0; off < len(r); off += 7 {
		end := min(off+7, len(r))
		segs = append(segs, tp{'o', time.Duration(30+len(segs)) * ms, PA, seq, 5001, r[off:end]})
		seq += uint32(end - off)
	}
	segs[1], segs[2] = segs[2], segs[1]
	pkts = append(pkts, segs...)
	rseq := uint32(5001)
	for off := 0; off < len(q); off += 1000 {
		end := min(off+1000, len(q))
		pkts = append(pkts, tp{'r', time.Duration(30+len(segs)+off) * ms, PA, rseq, seq, q[off:end]})
		rseq += uint32(end - off)
	}
	conns, st := run(Config{}, tcpSeq(pkts...))
	if len(conns) != 1 {
		t.Fatalf("%d conns", len(conns))
	}
	c := conns[0]
	if c.Service != "modbus" || c.OT == nil || c.OT.Functions["read_holding_registers"] != 400 ||
		c.OT.Functions["write_single_register"] != 1 || c.OT.Writes != 1 || c.OT.ServerIsOrig {
		t.Fatalf("service %q OT %+v", c.Service, c.OT)
	}
	if st.BufferedBytes != 0 {
		t.Errorf("%d bytes still accounted", st.BufferedBytes)
	}
}

// A flow identified late (its first PDUs framed only with the other
// direction's) starts counting from its buffers; a direction that had
// delivered more than its buffer by then is not parsed further.
func TestOTLateIdentification(t *testing.T) {
	ms := time.Millisecond
	one := mbapPDU(1, 0x03, 0, 0, 0, 2)
	pkts := with(handshake,
		tp{'o', 30 * ms, PA, 1001, 5001, one},
		tp{'r', 40 * ms, PA, 5001, 1001 + uint32(len(one)), mbapPDU(1, 0x03, 4, 0, 1, 0, 2)},
	)
	conns, _ := run(Config{DissectBytes: 64}, tcpSeq(pkts...))
	c := conns[0]
	if c.OT == nil || c.OT.Functions["read_holding_registers"] != 1 {
		t.Fatalf("OT %+v", c.OT)
	}
}

// UDP: BACnet datagrams are named one by one; a DNS flow never is.
func TestOTUDP(t *testing.T) {
	whoIs := string([]byte{0x81, 0x0b, 0, 12, 1, 0x20, 0xff, 0xff, 0, 0xff, 0x10, 0x08})
	iAm := string([]byte{0x81, 0x0a, 0, 20, 1, 0, 0x10, 0, 0xc4, 2, 0, 0, 7, 0x22, 5, 0xc4, 0x91, 3, 0x21, 8})
	pkts := []*pcap.Packet{
		udpPkt(hostA, hostB, 47808, 47808, 0, whoIs),
		udpPkt(hostB, hostA, 47808, 47808, time.Millisecond, iAm),
		udpPkt(hostA, hostB, 40000, 53, 0, string(dnsMsg(7, "plc.example.com", false))),
	}
	conns, _ := run(Config{}, pkts)
	for _, c := range conns {
		switch c.Resp.Port {
		case 47808:
			if c.Service != "bacnet" || c.OT == nil || c.OT.Functions["who_is"] != 1 || c.OT.Functions["i_am"] != 1 ||
				c.OT.Device != "bacnet-device 7 vendor-id 8" {
				t.Errorf("bacnet: %q %+v", c.Service, c.OT)
			}
		case 53:
			if c.OT != nil || c.Service != "dns" {
				t.Errorf("dns flow: %q %+v", c.Service, c.OT)
			}
		}
	}
}

// OT frame buffers count against MaxBufferBytes: with no room left, PDUs
// split across segments are skipped (and counted nowhere) but the flow
// is still named and whole PDUs still counted.
func TestOTBufferCap(t *testing.T) {
	ms := time.Millisecond
	a, b := mbapPDU(1, 0x03, 0, 0, 0, 2), mbapPDU(2, 0x05, 0, 1, 0xff, 0)
	pkts := with(handshake,
		tp{'o', 30 * ms, PA, 1001, 5001, a + b},
		tp{'o', 31 * ms, PA, 1001 + uint32(len(a+b)), 5001, b[:5]},
		tp{'o', 32 * ms, PA, 1001 + uint32(len(a+b)) + 5, 5001, b[5:] + a},
	)
	conns, st := run(Config{DissectBytes: 24, MaxBufferBytes: 24}, tcpSeq(pkts...))
	c := conns[0]
	if c.OT == nil || c.OT.Functions["read_holding_registers"] != 2 || c.OT.Functions["write_single_coil"] != 1 {
		t.Errorf("OT %+v", c.OT)
	}
	if st.BufferedBytes != 0 {
		t.Errorf("%d bytes accounted", st.BufferedBytes)
	}
}
