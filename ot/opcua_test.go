package ot

import (
	"encoding/binary"
	"testing"
)

func TestOPCUA(t *testing.T) {
	ack := opcua("ACK", 'F', make([]byte, 20))
	orig := cat(hello("opc.tcp://plc-crane-3:4840/ua"), uaMsg(461), uaMsg(631), uaMsg(673), uaMsg(712))
	// A message in two chunks: only the first says what it is.
	first := uaMsg(631)
	first[3] = 'C'
	cont := opcua("MSG", 'F', make([]byte, 30))
	orig = cat(orig, first, cont)
	resp := cat(ack, uaMsg(634))
	if name, _ := Identify("tcp", orig, resp, 40000, 40001, false); name != OPCUA {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(OPCUA, nil)
	streamAll(s, true, orig, 17)
	s.Stream(false, resp)
	o := s.OT()
	want := map[string]int{"hello": 1, "create_session": 1, "read": 2, "write": 1, "call": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if len(o.Functions) != len(want) || o.Writes != 2 || o.Device != "opc.tcp://plc-crane-3:4840/ua" || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestOPCUAIdentify(t *testing.T) {
	h := hello("opc.tcp://x:4840")
	v1 := append([]byte(nil), h...)
	binary.LittleEndian.PutUint32(v1[8:], 1) // protocol version 1
	tests := []struct {
		orig []byte
		want string
	}{
		{h, OPCUA},
		{hello("http://x"), ""}, // final, one PDU, no port support
		{v1, ""},
		{[]byte("HELLO WORLD, HOW ARE YOU"), ""},
		{opcua("MSG", 'X', make([]byte, 20)), ""},
	}
	for i, tt := range tests {
		if name, _ := Identify("tcp", tt.orig, nil, 40000, 40001, true); name != tt.want {
			t.Errorf("%d: %q, want %q", i, name, tt.want)
		}
	}
}

func FuzzOPCUA(f *testing.F) {
	f.Add(cat(hello("opc.tcp://a:4840"), uaMsg(631)), 10)
	f.Add(cat(opcua("ACK", 'F', make([]byte, 20)), uaMsg(634)), 0)
	f.Add(opcua("OPN", 'F', make([]byte, 40)), 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
	})
}
