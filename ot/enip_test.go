package ot

import (
	"encoding/binary"
	"testing"
)

// identityReply builds a ListIdentity reply with one identity item.
func identityReply(product string) []byte {
	item := make([]byte, 32)
	binary.LittleEndian.PutUint16(item, 1)
	item = append(item, byte(len(product)))
	item = append(item, product...)
	item = append(item, 3)
	d := binary.LittleEndian.AppendUint16(nil, 1)
	d = binary.LittleEndian.AppendUint16(d, 0x0c)
	d = binary.LittleEndian.AppendUint16(d, uint16(len(item)))
	return enip(0x63, 0, append(d, item...))
}

func TestENIP(t *testing.T) {
	register := enip(0x65, 0, []byte{1, 0, 0, 0})
	readTag := sendRR([]byte{0x4c, 2, 0x91, 4, 'T', 'a', 'g', '1', 1, 0})
	writeTag := sendRR([]byte{0x4d, 2, 0x91, 4, 'T', 'a', 'g', '1', 0xc3, 0, 1, 0, 7, 0})
	// Unconnected Send to the Connection Manager wrapping Set_Attribute_Single.
	inner := []byte{0x10, 3, 0x20, 0xf5, 0x24, 1, 0x30, 5, 9}
	ucmm := append([]byte{0x52, 2, 0x20, 0x06, 0x24, 1, 0x0a, 0xf0, byte(len(inner)), 0}, inner...)
	ucmm = append(ucmm, 1, 0, 1, 0) // route path
	fileDownload := sendRR([]byte{0x4c, 2, 0x20, 0x37, 0x24, 1, 0, 0})
	reset := sendRR([]byte{0x05, 2, 0x20, 0x01, 0x24, 1})
	orig := cat(enip(0x63, 0, nil), register, readTag, writeTag, sendRR(ucmm), fileDownload, reset)
	resp := cat(identityReply("1756-L61/B LOGIX5561"), enip(0x65, 7, []byte{1, 0, 0, 0}), sendRR([]byte{0xcc, 0, 0, 0, 0xc3, 0, 5, 0}))
	if name, _ := Identify("tcp", orig, resp, 40000, 40001, false); name != ENIP {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(ENIP, nil)
	streamAll(s, true, orig, 13)
	s.Stream(false, resp)
	o := s.OT()
	want := map[string]int{"list_identity": 1, "register_session": 1, "read_tag": 1, "write_tag": 1,
		"unconnected_send": 1, "set_attribute_single": 1, "file_initiate_download": 1, "reset": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if o.Writes != 4 || o.Program != 1 || o.Device != "1756-L61/B LOGIX5561" || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestENIPUDP(t *testing.T) {
	req, reply := enip(0x63, 0, nil), identityReply("PowerFlex 525")
	if name, _ := Identify("udp", req, nil, 50000, 44818, true); name != ENIP {
		t.Errorf("ListIdentity request: %q", name)
	}
	if name, _ := Identify("udp", enip(0x6f, 0, make([]byte, 16)), nil, 50000, 44818, true); name != "" {
		t.Errorf("SendRRData over UDP: %q", name)
	}
	s := NewSession(ENIP, nil)
	s.Datagram(true, reply) // a reply from the originator: the device is the orig
	if o := s.OT(); o.Device != "PowerFlex 525" || !o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestCIPIO(t *testing.T) {
	io := []byte{2, 0, 0x02, 0x80, 8, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0xb1, 0, 4, 0, 1, 0, 0xaa, 0xbb}
	if name, _ := Identify("udp", io, nil, 2222, 2222, true); name != CIP {
		t.Errorf("%q", name)
	}
	bad := append([]byte(nil), io...)
	bad[16] = 9 // data item length past the datagram
	if name, _ := Identify("udp", bad, nil, 2222, 2222, true); name != "" {
		t.Errorf("bad length: %q", name)
	}
	s := NewSession(CIP, nil)
	s.Datagram(true, io)
	s.Datagram(false, io)
	if s.OT().Functions["io_data"] != 2 {
		t.Errorf("%+v", s.OT())
	}
}

func FuzzENIP(f *testing.F) {
	f.Add(cat(enip(0x63, 0, nil), identityReply("1756-ENBT/A")), 24)
	f.Add(sendRR([]byte{0x0a, 2, 0x20, 2, 0x24, 1, 2, 0, 6, 0, 12, 0, 0x0e, 1, 0x20, 1, 0x0e, 1, 0x20, 1}), 0)
	f.Add(sendRR([]byte{0x52, 2, 0x20, 0x06, 0x24, 1, 0x0a, 0xf0, 40, 0, 0x10}), 30)
	f.Add([]byte{2, 0, 0x02, 0x80, 8, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0xb1, 0, 4, 0, 1, 0, 0xaa, 0xbb}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
		s := NewSession(ENIP, nil)
		s.Stream(true, data)
		s.Datagram(false, data)
	})
}
