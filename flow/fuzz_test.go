package flow

import (
	"encoding/binary"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"
)

// FuzzTable turns arbitrary bytes into a packet sequence on a few
// tuples (TCP with any flags, sequence and ack numbers, payloads that may
// look like DNS or TLS; UDP; ICMP) and checks the table's invariants:
// no panic, every flow emitted exactly once, no negative counts, and no
// buffered bytes left after Flush.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x12, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0x10, 0, 0, 0, 1, 0, 0, 1, 0})
	f.Add([]byte("\x00\x18\x00\x00\x00\x01\x00\x00\x00\x00\x20\x00\x1e\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01"))
	f.Add([]byte("\x00\x18\x00\x00\x00\x01\x00\x00\x00\x00\x30\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"))
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x12\x34\x01\x00\x00\x01\x00\x00"))
	f.Fuzz(fuzzTable)
}

func fuzzTable(t *testing.T, data []byte) {
	created := 0
	var emitted []*cw.Conn
	ins := &collectInspector{}
	tb := NewTable(Config{MaxFlows: 3, DissectBytes: 64, MaxOutOfOrder: 2, MaxDNSPerFlow: 2,
		MaxBufferBytes: 4096, Inspector: ins, InspectBytes: 100},
		func(c *cw.Conn) { emitted = append(emitted, c) })
	at := time.Duration(0)
	for len(data) >= 10 {
		h := data[:10]
		data = data[10:]
		n := min(int(h[9]), len(data))
		payload := data[:n]
		data = data[n:]
		at += time.Duration(h[1]) * 100 * time.Millisecond
		p := &pcap.Packet{TS: t0.Add(at), Payload: payload, PayloadLen: n + int(h[0]&0x3)*10, IPLen: 40 + n,
			Seq: binary.BigEndian.Uint32(h[2:6]), Ack: binary.BigEndian.Uint32(h[5:9]), TCPFlags: h[0] >> 2}
		src, dst, sp, dp := hostA, hostB, uint16(40000+int(h[1]&1)), uint16(53)
		if h[0]&0x80 != 0 {
			src, dst, sp, dp = dst, src, dp, sp
		}
		p.Src, p.Dst, p.SrcPort, p.DstPort = src, dst, sp, dp
		switch h[1] >> 6 {
		case 0, 1:
			p.Proto = 6
		case 2:
			p.Proto = 17
		case 3:
			p.Proto, p.SrcPort, p.DstPort = 1, uint16(h[2]), uint16(h[3])
		}
		tb.Add(p)
	}
	tb.Flush()
	st := tb.Stats()
	created = int(st.FlowsCreated)
	if created != len(emitted) || st.FlowsEmitted != st.FlowsCreated || st.Active != 0 {
		t.Fatalf("created %d emitted %d (%d) active %d", created, len(emitted), st.FlowsEmitted, st.Active)
	}
	if st.BufferedBytes != 0 {
		t.Fatalf("%d bytes still accounted", st.BufferedBytes)
	}
	for _, c := range emitted {
		if c.OrigBytes < 0 || c.RespBytes < 0 || c.MissedBytes < 0 || c.Duration < 0 || len(c.DNS) > 2 || len(c.History) > maxHistory {
			t.Fatalf("bad conn %+v", c)
		}
	}
	for _, s := range ins.sinks {
		if s.bytes[0].Len() > 100 || s.bytes[1].Len() > 100 || !s.closed {
			t.Fatalf("inspector got %d/%d bytes, closed %v", s.bytes[0].Len(), s.bytes[1].Len(), s.closed)
		}
	}
}
