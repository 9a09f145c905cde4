package ot

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func dcpFrame(frameID uint16, svc, typ byte, blocks ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, frameID)
	b = append(b, svc, typ, 0, 0, 0x12, 0x34, 0, 0)
	var data []byte
	for _, bl := range blocks {
		data = append(data, bl...)
		if len(bl)%2 == 1 {
			data = append(data, 0)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func dcpBlock(opt, sub byte, v ...byte) []byte {
	b := []byte{opt, sub}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func TestDCP(t *testing.T) {
	identifyResp := dcpFrame(0xfeff, 5, 1,
		dcpBlock(2, 2, append([]byte{0, 0}, "crane-plc-3"...)...),
		dcpBlock(2, 1, append([]byte{0, 0}, "S7-1500"...)...),
		dcpBlock(2, 3, 0, 0, 0x00, 0x2a, 0x01, 0x0e),
		dcpBlock(2, 4, 0, 0, 2, 0),
		dcpBlock(1, 2, 0, 1, 192, 168, 0, 10, 255, 255, 255, 0, 192, 168, 0, 1))
	m, err := ParseDCP(identifyResp)
	if err != nil {
		t.Fatal(err)
	}
	if m.Service != "identify" || !m.Response || m.Xid != 0x1234 || m.StationName != "crane-plc-3" || m.TypeOfStation != "S7-1500" ||
		m.VendorID != 0x2a || m.DeviceID != 0x010e || m.Role != 2 || m.IP != netip.MustParseAddr("192.168.0.10") ||
		m.Gateway != netip.MustParseAddr("192.168.0.1") {
		t.Errorf("%+v", m)
	}
	if d := m.Device(); d != "crane-plc-3 S7-1500 vendor 0x002a device 0x010e" {
		t.Errorf("device %q", d)
	}

	set := dcpFrame(0xfefd, 4, 0,
		dcpBlock(2, 2, append([]byte{0, 1}, "evil"...)...),
		dcpBlock(5, 5, 0, 0))
	m, err = ParseDCP(set)
	if err != nil || m.Service != "set" || m.Response || len(m.Writes) != 2 || m.Writes[0] != "name_of_station" || m.Writes[1] != "factory_reset" {
		t.Errorf("set: %+v %v", m, err)
	}

	req := dcpFrame(0xfefe, 5, 0, dcpBlock(2, 2, []byte("crane-plc-3")...))
	if m, err = ParseDCP(req); err != nil || m.StationName != "crane-plc-3" || m.Response {
		t.Errorf("identify request: %+v %v", m, err)
	}
}

func TestDCPErrors(t *testing.T) {
	long := dcpFrame(0xfeff, 5, 1, dcpBlock(2, 2, 0, 0, 'a'))
	long[len(long)-5] = 9 // block length past the data
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"cyclic data", []byte{0x80, 0x00, 1, 2, 3}, ErrNotDCP},
		{"short", []byte{0xfe}, nil},
		{"cut header", []byte{0xfe, 0xff, 3, 1}, nil},
		{"service", dcpFrame(0xfeff, 9, 1), nil},
		{"type", dcpFrame(0xfeff, 5, 7), nil},
		{"block length", long, nil},
	}
	for _, tt := range tests {
		_, err := ParseDCP(tt.b)
		if err == nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
}

func FuzzDCP(f *testing.F) {
	f.Add(dcpFrame(0xfeff, 5, 1, dcpBlock(2, 2, 0, 0, 'a', 'b'), dcpBlock(1, 2, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)))
	f.Add(dcpFrame(0xfefd, 4, 0, dcpBlock(5, 5, 0, 0), dcpBlock(1, 2, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)))
	f.Add(dcpFrame(0xfefc, 6, 0, dcpBlock(2, 3, 0, 0, 1, 2, 3, 4)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseDCP(data)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if m != nil {
			_ = m.Device()
		}
	})
}
