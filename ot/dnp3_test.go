package ot

import "testing"

func TestDNP3(t *testing.T) {
	// Master (DIR set) to outstation 10: read class 0, direct operate,
	// cold restart; the outstation answers and sends unsolicited data.
	read := dnp3Frame(0xc4, 10, 1, []byte{0xc0, 0xc1, 0x01, 0x3c, 0x01, 0x06})
	operate := dnp3Frame(0xc4, 10, 1, append([]byte{0xc1, 0xc2, 0x05, 0x0c, 0x01, 0x28, 1, 0, 0, 0}, make([]byte, 11)...))
	cold := dnp3Frame(0xc4, 10, 1, []byte{0xc2, 0xc3, 0x0d})
	resp := dnp3Frame(0x44, 1, 10, []byte{0xc0, 0xc1, 0x81, 0, 0})
	unsol := dnp3Frame(0x44, 1, 10, []byte{0xc1, 0xf0, 0x82, 0, 0})
	link := dnp3Frame(0xc9, 10, 1, nil) // link status request
	orig, back := cat(link, read, operate, cold), cat(resp, unsol)
	if name, _ := Identify("tcp", orig, back, 40000, 40001, false); name != DNP3 {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(DNP3, nil)
	streamAll(s, true, orig, 11)
	streamAll(s, false, back, 4)
	o := s.OT()
	want := map[string]int{"read": 1, "direct_operate": 1, "cold_restart": 1, "unsolicited_response": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if o.Writes != 2 || o.Program != 1 || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestDNP3Identify(t *testing.T) {
	good := dnp3Frame(0x44, 1, 10, []byte{0xc1, 0xf0, 0x82, 0, 0})
	badHdr := append([]byte(nil), good...)
	badHdr[8] ^= 1
	badBlock := append([]byte(nil), good...)
	badBlock[len(badBlock)-1] ^= 1
	tests := []struct {
		orig, resp []byte
		want       string
	}{
		{nil, good, DNP3},
		{[]byte{5, 5, 0x11, 0xc4, 4, 0, 3, 0, 0x46, 0xa2}, good, DNP3}, // malformed request, real reply
		{badHdr, nil, ""},
		{badBlock, nil, ""},
		{dnp3Frame(0xc9, 10, 1, nil), nil, ""}, // one header-only frame is too little
	}
	for i, tt := range tests {
		if name, _ := Identify("tcp", tt.orig, tt.resp, 40000, 40001, true); name != tt.want {
			t.Errorf("%d: %q, want %q", i, name, tt.want)
		}
	}
	if name, _ := Identify("udp", good, nil, 20000, 20000, true); name != DNP3 {
		t.Errorf("udp: %q", name)
	}
}

// The CRC of the IEEE 1815 example header 05 64 05 C0 01 00 00 04.
func TestDNP3CRC(t *testing.T) {
	if c := dnp3CRC([]byte{0x05, 0x64, 0x05, 0xc0, 0x01, 0x00, 0x00, 0x04}); c != 0x21e9 {
		t.Errorf("crc %#04x", c)
	}
}

func FuzzDNP3(f *testing.F) {
	f.Add(cat(dnp3Frame(0xc4, 10, 1, []byte{0xc0, 0xc1, 0x01, 0x3c, 0x01, 0x06}), dnp3Frame(0x44, 1, 10, []byte{0xc0, 0xc1, 0x81, 0, 0})), 16)
	f.Add(dnp3Frame(0xc4, 10, 1, make([]byte, 60)), 3)
	f.Add([]byte{5, 0x64, 0xff, 0xc4, 0, 0, 0, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
	})
}
