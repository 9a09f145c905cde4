package ot

import "testing"

func bvlc(fn byte, npdu ...byte) []byte {
	b := []byte{0x81, fn, 0, 0}
	b = append(b, npdu...)
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	return b
}

var (
	whoIs        = bvlc(0x0b, 1, 0x20, 0xff, 0xff, 0, 0xff, 0x10, 0x08)
	iAm          = bvlc(0x0b, 1, 0x00, 0x10, 0x00, 0xc4, 0x02, 0x00, 0x01, 0xd9, 0x22, 0x05, 0xc4, 0x91, 0x03, 0x22, 0x01, 0x04)
	readProp     = bvlc(0x0a, 1, 0x04, 0x00, 0x05, 0x01, 0x0c, 0x0c, 0x02, 0x00, 0x01, 0xd9, 0x19, 0x4d)
	writeProp    = bvlc(0x0a, 1, 0x04, 0x00, 0x05, 0x02, 0x0f, 0x0c, 0x00, 0x80, 0x00, 0x01, 0x19, 0x55, 0x3e, 0x44, 0x42, 0x20, 0, 0, 0x3f)
	atomicWrite  = bvlc(0x0a, 1, 0x04, 0x00, 0x05, 0x03, 0x07, 0x0c, 0x02, 0x80, 0, 1)
	forwardedIAm = bvlc(0x04, append([]byte{10, 0, 0, 5, 0xba, 0xc0}, iAm[4:]...)...)
)

func TestBACnet(t *testing.T) {
	for i, b := range [][]byte{whoIs, iAm, readProp, writeProp, atomicWrite, forwardedIAm} {
		if name, _ := Identify("udp", b, nil, 47808, 47808, true); name != BACnet {
			t.Errorf("%d: %q", i, name)
		}
	}
	s := NewSession(BACnet, nil)
	for _, b := range [][]byte{whoIs, readProp, writeProp, atomicWrite} {
		s.Datagram(true, b)
	}
	s.Datagram(false, iAm)
	s.Datagram(false, forwardedIAm)
	o := s.OT()
	want := map[string]int{"who_is": 1, "i_am": 2, "read_property": 1, "write_property": 1, "atomic_write_file": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	// I-Am object identifier 0x020001d9: type 8 (device), instance 473.
	if o.Writes != 2 || o.Program != 1 || o.Device != "bacnet-device 473 vendor-id 260" || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestBACnetNot(t *testing.T) {
	bad := append([]byte(nil), readProp...)
	bad[3]++ // BVLC length no longer the datagram's
	npduV2 := append([]byte(nil), readProp...)
	npduV2[4] = 2
	svc := append([]byte(nil), readProp...)
	svc[9] = 0x63 // unknown confirmed service
	for i, b := range [][]byte{bad, npduV2, svc, {0x81, 0x0a, 0, 4}} {
		if name, _ := Identify("udp", b, nil, 47808, 47808, true); name == BACnet {
			t.Errorf("%d: %x taken for bacnet", i, b)
		}
	}
}

func FuzzBACnet(f *testing.F) {
	for _, b := range [][]byte{whoIs, iAm, readProp, writeProp, forwardedIAm} {
		f.Add(b, 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
		s := NewSession(BACnet, nil)
		s.Datagram(true, data)
	})
}
