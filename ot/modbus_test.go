package ot

import "testing"

func TestModbus(t *testing.T) {
	readReq := mbap(1, 1, 0x03, 0, 0, 0, 2)
	readResp := mbap(1, 1, 0x03, 4, 0, 1, 0, 2)
	tests := []struct {
		name         string
		orig, resp   []byte
		fn           map[string]int
		writes, prog int
		device       string
		serverIsOrig bool
	}{
		{name: "read", orig: readReq, resp: readResp, fn: map[string]int{"read_holding_registers": 1}},
		{name: "writes", orig: cat(mbap(2, 1, 0x05, 0, 7, 0xff, 0), mbap(3, 1, 0x10, 0, 0, 0, 1, 2, 0, 9), mbap(4, 1, 0x16, 0, 1, 0, 0xf0, 0, 0x0f)),
			resp: cat(mbap(2, 1, 0x05, 0, 7, 0xff, 0), mbap(3, 1, 0x10, 0, 0, 0, 1)),
			fn:   map[string]int{"write_single_coil": 1, "write_multiple_registers": 1, "mask_write_register": 1}, writes: 3},
		{name: "exception from server", orig: mbap(5, 1, 0x2b, 0x0e, 1, 0), resp: mbap(5, 1, 0xab, 1),
			fn: map[string]int{"read_device_identification": 1}},
		{name: "device id", orig: mbap(6, 1, 0x2b, 0x0e, 1, 0),
			resp: mbap(6, 1, 0x2b, 0x0e, 1, 1, 0, 0, 3, 0, 9, 'S', 'c', 'h', 'n', 'e', 'i', 'd', 'e', 'r', 1, 4, 'M', '3', '4', '0', 2, 4, 'v', '3', '.', '1'),
			fn:   map[string]int{"read_device_identification": 1}, device: "Schneider M340 v3.1"},
		{name: "program functions", orig: cat(mbap(7, 1, 0x28, 1, 2), mbap(8, 1, 0x7d, 0, 0)),
			fn: map[string]int{"program_concept": 1, "firmware_replacement": 1}, prog: 2},
		{name: "umas strategy upload", orig: cat(mbap(9, 0, 0x5a, 0, 0x30, 1), mbap(10, 0, 0x5a, 0, 0x31, 1, 2, 3), mbap(11, 0, 0x5a, 0, 0x41)),
			resp: cat(mbap(9, 0, 0x5a, 0, 0xfe), mbap(10, 0, 0x5a, 0, 0xfe)),
			fn:   map[string]int{"umas_initialize_upload": 1, "umas_upload_block": 1, "umas_stop_plc": 1}, writes: 1, prog: 1},
		{name: "server connects out", orig: cat(readResp, mbap(2, 1, 0x83, 2)), resp: cat(readReq, mbap(2, 1, 0x03, 0, 9, 0, 1)),
			fn: map[string]int{"read_holding_registers": 2}, serverIsOrig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if name, done := Identify("tcp", tt.orig, tt.resp, 40000, 40001, true); name != Modbus || !done {
				if len(tt.orig)+len(tt.resp) > 20 {
					t.Errorf("identified as %q", name)
				}
			}
			s := NewSession(Modbus, nil)
			streamAll(s, true, tt.orig, 5)
			s.Stream(false, tt.resp)
			o := s.OT()
			if len(o.Functions) != len(tt.fn) {
				t.Errorf("functions %v, want %v", o.Functions, tt.fn)
			}
			for k, v := range tt.fn {
				if o.Functions[k] != v {
					t.Errorf("%s = %d, want %d (%v)", k, o.Functions[k], v, o.Functions)
				}
			}
			if o.Writes != tt.writes || o.Program != tt.prog || o.Device != tt.device || o.ServerIsOrig != tt.serverIsOrig {
				t.Errorf("writes %d program %d device %q serverIsOrig %v", o.Writes, o.Program, o.Device, o.ServerIsOrig)
			}
		})
	}
}

func TestModbusNotModbus(t *testing.T) {
	for _, b := range [][]byte{
		{0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1},         // protocol id 1
		{0, 1, 0, 0, 0, 0, 1, 3},                     // length 0
		{0, 1, 0, 0, 1, 6, 1, 3, 0, 0, 0, 1},         // length 262
		cat(mbap(1, 1, 0), mbap(1, 1, 0)),            // function 0 only: a probe
		cat(mbap(1, 1, 3, 0, 0, 0, 1), []byte{1, 2}), // trailing garbage
	} {
		if name, _ := Identify("tcp", b, nil, 1, 2, true); name == Modbus {
			t.Errorf("%x taken for modbus", b)
		}
	}
}

func FuzzModbus(f *testing.F) {
	f.Add(cat(mbap(1, 1, 0x03, 0, 0, 0, 2), mbap(1, 1, 0x03, 4, 0, 1, 0, 2)), 12)
	f.Add(cat(mbap(6, 1, 0x2b, 0x0e, 1, 0), mbap(6, 1, 0x2b, 0x0e, 1, 1, 0, 0, 9, 0, 200, 'S')), 10)
	f.Add(mbap(9, 0, 0x5a, 0, 0x30, 1), 3)
	f.Add(mbap(9, 0, 0x11, 5, 1, 0xff, 'a', 'b', 'c'), 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
		s := NewSession(Modbus, nil)
		s.Stream(true, data)
		s.Stream(false, data)
	})
}
