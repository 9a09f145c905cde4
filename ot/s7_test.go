package ot

import "testing"

var (
	s7CR = tpkt(0x11, 0xe0, 0, 0, 0, 1, 0, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2, 0xc0, 1, 0x0a)
	s7CC = tpkt(0x11, 0xd0, 0, 1, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2)
	// Setup communication and its ack.
	s7Setup    = s7job(0xf0, 0, 0, 1, 0, 1, 1, 0xe0)
	s7SetupAck = s7ack(0xf0, 0, 0, 1, 0, 1, 1, 0xe0)
	// RDP's X.224 connection request with a cookie shares TPKT/COTP.
	rdpCR = tpkt(append([]byte{0, 0xe0, 0, 0, 0, 0, 0}, []byte("Cookie: mstshash=eltons\r\n\x01\x00\x08\x00\x03\x00\x00\x00")...)...)
)

func init() {
	rdpCR[4] = byte(len(rdpCR) - 5)
}

// szlResponse builds a userdata response to Read SZL 0x0011 with one
// record, index 1, holding the order number.
func szlResponse(mlfb string) []byte {
	param := []byte{0, 1, 0x12, 8, 0x12, 0x84, 1, 1, 0, 0, 0, 0}
	rec := append([]byte{0, 1}, []byte(mlfb)...)
	for len(rec) < 28 {
		rec = append(rec, ' ')
	}
	data := []byte{0xff, 9, 0, byte(8 + len(rec)), 0, 0x11, 0, 1, 0, 28, 0, 1}
	data = append(data, rec...)
	h := []byte{0x32, 7, 0, 0, 0, 1, 0, byte(len(param)), 0, byte(len(data))}
	return dt(append(append(h, param...), data...)...)
}

func TestS7comm(t *testing.T) {
	orig := cat(s7CR, s7Setup,
		s7job(0x04, 1, 0x12, 10, 0x10, 2, 0, 1, 0, 1, 0x84, 0, 0, 0), // read var
		s7job(0x05, 1, 0x12, 10, 0x10, 2, 0, 1, 0, 1, 0x84, 0, 0, 0), // write var
		s7job(0x1a, 0, 0, 0, 0, 0, 0, 0, 0),                          // request download
		s7job(0x1b, 0, 0, 0, 0, 0, 0, 0, 0),                          // download block
		s7job(0x29, 0, 0, 0, 0, 0, 9, 'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M'))
	resp := cat(s7CC, s7SetupAck, szlResponse("6ES7 315-2EH14-0AB0"))
	if name, _ := Identify("tcp", orig, resp, 40000, 102, false); name != S7comm {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(S7comm, nil)
	streamAll(s, true, orig, 3)
	streamAll(s, false, resp, 1000)
	o := s.OT()
	want := map[string]int{"setup_communication": 1, "read_var": 1, "write_var": 1, "request_download": 1, "download_block": 1, "plc_stop": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if o.Writes != 2 || o.Program != 1 || o.Device != "Siemens 6ES7 315-2EH14-0AB0" || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestS7Identify(t *testing.T) {
	plusReq := dt(0x72, 1, 0, 5, 0x31, 0, 0, 0x04, 0xca, 0x72, 1, 0, 0)
	plusResp := dt(0x72, 1, 0, 5, 0x32, 0, 0, 0x04, 0xca, 0x72, 1, 0, 0)
	tests := []struct {
		orig, resp []byte
		final      bool
		want       string
	}{
		{cat(s7CR, s7Setup), s7CC, false, S7comm},
		{s7CR, s7CC, true, ""}, // no S7 PDU: could be any ISO transport user
		{cat(s7CR, plusReq), cat(s7CC, plusResp), false, S7commPlus},
		{rdpCR, nil, false, RDP},
		{tpkt(2, 0xf0, 0x80, 0x32, 9, 0, 0, 0, 1, 0, 0, 0, 0), nil, true, ""}, // ROSCTR 9
	}
	for i, tt := range tests {
		if name, _ := Identify("tcp", tt.orig, tt.resp, 40000, 40001, tt.final); name != tt.want {
			t.Errorf("%d: %q, want %q", i, name, tt.want)
		}
	}
}

func TestFindMLFB(t *testing.T) {
	for in, want := range map[string]string{
		"\x00\x15\x1b1;6ES7 214-1AG40-0XB0 ;V4.2": "6ES7 214-1AG40-0XB0",
		"6ES7 214-1AG40":             "",
		"6ES7 2x4-1AG40-0XB0":        "",
		"..6ES7 6ES7 512-1CK01-0AB0": "6ES7 512-1CK01-0AB0",
	} {
		if got := findMLFB([]byte(in)); got != want {
			t.Errorf("findMLFB(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzS7(f *testing.F) {
	f.Add(cat(s7CR, s7Setup, s7job(0x05, 1, 0x12)), 0)
	f.Add(cat(s7CC, szlResponse("6ES7 315-2EH14-0AB0")), 20)
	f.Add(dt(0x72, 3, 0, 40, 0x20), 4)
	f.Add(rdpCR, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
		for _, p := range []string{S7comm, S7commPlus} {
			s := NewSession(p, nil)
			s.Stream(false, data)
		}
	})
}
