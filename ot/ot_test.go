package ot

import (
	"fmt"
	"strings"
	"testing"
)

// Every way of splitting a stream into segments gives the same counts:
// PDUs split inside the header, inside the body, or several per segment.
func TestStreamSplits(t *testing.T) {
	var stream []byte
	for i := range 20 {
		stream = append(stream, mbap(uint16(i), 1, 0x03, 0, 0, 0, 10)...)
		stream = append(stream, mbap(uint16(i), 1, 0x10, 0, 0, 0, 2, 4, 0, 1, 0, 2)...)
	}
	for step := 1; step <= len(stream); step++ {
		bg := &budget{limit: FrameCap * 2}
		s := NewSession(Modbus, bg)
		streamAll(s, true, stream, step)
		o := s.OT()
		if o.Functions["read_holding_registers"] != 20 || o.Functions["write_multiple_registers"] != 20 || o.Writes != 20 {
			t.Fatalf("step %d: %+v", step, o)
		}
		s.Close()
		if bg.held != 0 {
			t.Fatalf("step %d: %d bytes held after Close", step, bg.held)
		}
	}
}

// Without a frame buffer (budget exhausted) split PDUs are skipped, not
// misparsed: framing holds and later whole PDUs still count.
func TestStreamNoBudget(t *testing.T) {
	a := mbap(1, 1, 0x03, 0, 0, 0, 10)
	b := mbap(2, 1, 0x06, 0, 1, 0, 5)
	s := NewSession(Modbus, &budget{limit: 0})
	s.Stream(true, a[:9])
	s.Stream(true, cat(a[9:], b))
	o := s.OT()
	if o.Functions["read_holding_registers"] != 0 || o.Functions["write_single_register"] != 1 || s.unbufferedPDUs != 1 {
		t.Errorf("got %+v, unbuffered %d", o, s.unbufferedPDUs)
	}
}

// A PDU longer than FrameCap is parsed on its first FrameCap bytes and
// the rest skipped; the next PDU still frames.
func TestStreamLongPDU(t *testing.T) {
	big := dnp3Frame(0xc4, 1, 2, append([]byte{0xc0, 0xc0, 0x02}, make([]byte, 240)...))
	var long []byte
	for range 6 {
		long = append(long, big...)
	}
	// A ENIP packet is allowed 64 KiB: make one of 3000 bytes.
	e := enip(0x70, 1, make([]byte, 3000))
	next := enip(0x63, 0, nil)
	for _, step := range []int{100, 1500, 5000} {
		s := NewSession(ENIP, &budget{limit: 1 << 20})
		streamAll(s, true, cat(e, next), step)
		// A PDU whole in one segment is parsed in place, uncut.
		if s.OT().Functions["list_identity"] != 1 || (s.truncatedPDUs == 1) != (step < len(e)) {
			t.Errorf("step %d: %+v truncated %d", step, s.OT(), s.truncatedPDUs)
		}
	}
	s := NewSession(DNP3, &budget{limit: 1 << 20})
	streamAll(s, true, long, 77)
	if s.OT().Functions["write"] != 6 {
		t.Errorf("dnp3: %+v", s.OT())
	}
}

func TestGapStopsDirection(t *testing.T) {
	s := NewSession(Modbus, nil)
	a := mbap(1, 1, 0x05, 0, 1, 0xff, 0)
	s.Stream(true, a)
	s.Gap(true)
	s.Stream(true, a)
	s.Stream(false, a) // the other direction goes on
	if n := s.OT().Functions["write_single_coil"]; n != 1 {
		t.Errorf("after gap: %d", n)
	}
	if s.Wants(true) || !s.Wants(false) {
		t.Errorf("wants %v %v", s.Wants(true), s.Wants(false))
	}
}

// A direction whose bytes stop framing is abandoned, not counted.
func TestBadFramingStops(t *testing.T) {
	s := NewSession(Modbus, nil)
	s.Stream(true, cat(mbap(1, 1, 0x03, 0, 0, 0, 1), []byte("GET / HTTP/1.1\r\n\r\n"), mbap(2, 1, 0x03, 0, 0, 0, 1)))
	if n := s.OT().Functions["read_holding_registers"]; n != 1 {
		t.Errorf("counted past garbage: %d", n)
	}
}

func TestBounds(t *testing.T) {
	s := NewSession(Modbus, nil)
	var b []byte
	n := 0
	for fc := 0x41; fc < 0x7d; fc++ {
		if fc != 0x5a {
			b = append(b, mbap(uint16(fc), 1, byte(fc), 0, 0, 0, 1)...)
			n++
		}
	}
	s.Stream(true, b)
	o := s.OT()
	if len(o.Functions) != MaxFunctions+1 || o.Functions["other"] != n-MaxFunctions {
		t.Errorf("%d names, other %d", len(o.Functions), o.Functions["other"])
	}
	s = NewSession(Modbus, nil)
	one := mbap(1, 1, 0x03, 0, 0, 0, 1)
	for range MaxPDUs + 10 {
		s.Stream(true, one)
	}
	if n := s.OT().Functions["read_holding_registers"]; n != MaxPDUs {
		t.Errorf("PDUs past the cap: %d", n)
	}
	s.setDevice(strings.Repeat("x", 500))
	if len(s.device) != maxDevice {
		t.Errorf("device %d bytes", len(s.device))
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"  ab\x00\x01cd  ": "ab cd",
		"\xff\xfe":         "",
		"6ES7 214":         "6ES7 214",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// Identification decides only when the bytes allow it, and never by
// port: the same bytes on port 502 or elsewhere give the same answer
// while more than one PDU was seen.
func TestIdentifyPending(t *testing.T) {
	req := mbap(1, 1, 0x03, 0, 0, 0, 1)
	resp := mbap(1, 1, 0x03, 2, 0, 7)
	tests := []struct {
		orig, resp []byte
		op, rp     uint16
		final      bool
		want       string
		done       bool
	}{
		{req[:5], nil, 40000, 502, false, "", false},
		{req, nil, 40000, 40001, false, "", false},
		{req, resp, 40000, 40001, false, Modbus, true},
		{req, nil, 40000, 502, true, Modbus, true}, // one PDU: the port supports it
		{req, nil, 40000, 40001, true, "", true},   // one PDU, no support
		{req[:9], nil, 40000, 502, true, "", true}, // cut
		{[]byte("GET / HTTP/1.1\r\nHost: plc\r\n\r\n"), nil, 1, 502, false, "", true},
	}
	for i, tt := range tests {
		name, done := Identify("tcp", tt.orig, tt.resp, tt.op, tt.rp, tt.final)
		if name != tt.want || done != tt.done {
			t.Errorf("%d: got %q %v, want %q %v", i, name, done, tt.want, tt.done)
		}
	}
}

// Random bytes are never taken for an OT protocol.
func TestIdentifyRandom(t *testing.T) {
	x := uint64(88172645463325252)
	next := func() byte {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return byte(x)
	}
	for i := range 20000 {
		o, r := make([]byte, 1+i%300), make([]byte, 1+i%200)
		for j := range o {
			o[j] = next()
		}
		for j := range r {
			r[j] = next()
		}
		for _, tr := range []string{"tcp", "udp"} {
			if name, _ := Identify(tr, o, r, 40000, 40001, true); name != "" {
				t.Fatalf("random bytes named %s (%s): %x / %x", name, tr, o, r)
			}
		}
	}
}

func ExampleIdentify() {
	req := []byte{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2}
	resp := []byte{0, 1, 0, 0, 0, 7, 1, 3, 4, 0, 1, 0, 2}
	name, done := Identify("tcp", req, resp, 49152, 502, false)
	fmt.Println(name, done)
	// Output: modbus true
}

// BenchmarkSession: a Modbus polling stream in 1460-byte segments.
func BenchmarkSession(b *testing.B) {
	var stream []byte
	for i := range 2000 {
		stream = append(stream, mbap(uint16(i), 1, 0x03, 0, 0, 0, 10)...)
		stream = append(stream, mbap(uint16(i), 1, 0x10, 0, 0, 0, 2, 4, 0, 1, 0, 2)...)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for range b.N {
		s := NewSession(Modbus, &budget{limit: 1 << 20})
		streamAll(s, true, stream, 1460)
		s.Close()
	}
}

// BenchmarkIdentify: the cost of one identification attempt on bytes
// no rule accepts (what every non-OT TCP flow pays per buffer growth).
func BenchmarkIdentify(b *testing.B) {
	o := []byte("GET /api/v1/containers?bay=12 HTTP/1.1\r\nHost: tos.example\r\n\r\n")
	r := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	for range b.N {
		Identify("tcp", o, r, 40000, 80, false)
	}
}
