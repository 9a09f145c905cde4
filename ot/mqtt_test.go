package ot

import "testing"

var mqttConnect311 = []byte{0x10, 0x17, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 11, 'c', 'r', 'a', 'n', 'e', '-', 'p', 'l', 'c', '-', '7'}

func TestMQTT(t *testing.T) {
	connack := []byte{0x20, 2, 0, 0}
	publish := []byte{0x30, 9, 0, 3, 'a', '/', 'b', 'h', 'e', 'l', 'o'}
	sub := []byte{0x82, 8, 0, 1, 0, 3, 'a', '/', '#', 0}
	ping := []byte{0xc0, 0}
	// A 200-byte publish: the remaining length takes two bytes.
	big := append([]byte{0x30, 0xc8, 0x01, 0, 1, 't'}, make([]byte, 197)...)
	orig := cat(mqttConnect311, publish, sub, ping, big)
	if name, _ := Identify("tcp", orig, connack, 40000, 40001, false); name != MQTT {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(MQTT, nil)
	streamAll(s, true, orig, 2)
	s.Stream(false, connack)
	o := s.OT()
	want := map[string]int{"connect": 1, "connack": 1, "publish": 2, "subscribe": 1, "pingreq": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if o.Device != "mqtt-client crane-plc-7" || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func FuzzMQTT(f *testing.F) {
	f.Add(mqttConnect311, 2)
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4}, 1)
	f.Add([]byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 3, 0x21, 0, 10, 0, 1, 'x'}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
	})
}
