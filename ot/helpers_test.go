package ot

import (
	"encoding/binary"
	"testing"
)

// budget is a Budget with a limit, counting what is held.
type budget struct{ held, limit int }

func (b *budget) Reserve(n int) bool {
	if b.held+n > b.limit {
		return false
	}
	b.held += n
	return true
}
func (b *budget) Release(n int) { b.held -= n }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// mbap frames a Modbus PDU.
func mbap(tid uint16, unit byte, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tid)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	return append(b, pdu...)
}

// tpkt wraps a COTP DT TPDU around an S7 PDU.
func tpkt(cotpAndData ...byte) []byte {
	b := []byte{3, 0, 0, 0}
	b = append(b, cotpAndData...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func dt(s7 ...byte) []byte { return tpkt(append([]byte{2, 0xf0, 0x80}, s7...)...) }

// s7job builds an S7comm job (ROSCTR 1) with the given parameter bytes.
func s7job(param ...byte) []byte {
	h := []byte{0x32, 1, 0, 0, 0, 1, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[6:], uint16(len(param)))
	return dt(append(h, param...)...)
}

func s7ack(param ...byte) []byte {
	h := []byte{0x32, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[6:], uint16(len(param)))
	return dt(append(h, param...)...)
}

// dnp3Frame builds a DNP3 link frame with user data, CRCs included.
func dnp3Frame(ctrl byte, dst, src uint16, user []byte) []byte {
	h := []byte{0x05, 0x64, byte(5 + len(user)), ctrl, byte(dst), byte(dst >> 8), byte(src), byte(src >> 8)}
	c := dnp3CRC(h)
	b := append(h, byte(c), byte(c>>8))
	for len(user) > 0 {
		n := min(16, len(user))
		b = append(b, user[:n]...)
		c := dnp3CRC(user[:n])
		b = append(b, byte(c), byte(c>>8))
		user = user[n:]
	}
	return b
}

// enip builds an encapsulation packet.
func enip(cmd uint16, session uint32, data []byte) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint16(b, cmd)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(b[4:], session)
	return append(b, data...)
}

// sendRR wraps a CIP request in SendRRData with a null address item and
// an unconnected data item.
func sendRR(cip []byte) []byte {
	d := make([]byte, 6)
	d = binary.LittleEndian.AppendUint16(d, 2)
	d = append(d, 0, 0, 0, 0) // null address item
	d = binary.LittleEndian.AppendUint16(d, 0xb2)
	d = binary.LittleEndian.AppendUint16(d, uint16(len(cip)))
	return enip(0x6f, 1, append(d, cip...))
}

func opcua(typ string, chunk byte, body []byte) []byte {
	b := append([]byte(typ), chunk, 0, 0, 0, 0)
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

func uaString(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func hello(url string) []byte {
	body := binary.LittleEndian.AppendUint32(nil, 0)
	for _, v := range []uint32{65536, 65536, 0, 0} {
		body = binary.LittleEndian.AppendUint32(body, v)
	}
	return opcua("HEL", 'F', append(body, uaString(url)...))
}

// uaMsg builds a MSG chunk for service NodeId id (four-byte encoding).
func uaMsg(id uint16) []byte {
	body := make([]byte, 16) // channel, token, sequence, request id
	body = append(body, 1, 0)
	body = binary.LittleEndian.AppendUint16(body, id)
	return opcua("MSG", 'F', append(body, make([]byte, 8)...))
}

// streamAll feeds b to s split into pieces of at most step bytes.
func streamAll(s *Session, fromOrig bool, b []byte, step int) {
	for len(b) > 0 {
		n := min(step, len(b))
		s.Stream(fromOrig, b[:n])
		b = b[n:]
	}
}

// fuzzSession runs data through identification and a Session of every
// protocol the way the flow table would, split at cut: it must not
// panic, and the Session must give back every byte it reserved.
func fuzzSession(t *testing.T, data []byte, cut int) {
	if len(data) > 0 {
		cut %= len(data) + 1
		if cut < 0 {
			cut = -cut
		}
	} else {
		cut = 0
	}
	o, r := data[:cut], data[cut:]
	for _, tr := range []string{"tcp", "udp"} {
		Identify(tr, o, r, 502, 40000, false)
		Identify(tr, o, r, 502, 40000, true)
	}
	for name := range protos {
		bg := &budget{limit: 1 << 20}
		s := NewSession(name, bg)
		streamAll(s, true, o, 7)
		s.Stream(false, r)
		s.Datagram(true, data)
		s.Gap(false)
		s.Stream(false, r)
		_ = s.OT()
		s.Close()
		if bg.held != 0 {
			t.Fatalf("%s: %d bytes still reserved after Close", name, bg.held)
		}
	}
}
