package ot

import "testing"

var (
	startAct = []byte{0x68, 4, 0x07, 0, 0, 0}
	startCon = []byte{0x68, 4, 0x0b, 0, 0, 0}
	sFrame   = []byte{0x68, 4, 0x01, 0, 0x02, 0}
	// C_IC_NA_1 general interrogation, activation, CA 1.
	interrogation = []byte{0x68, 0x0e, 0, 0, 0, 0, 100, 1, 6, 0, 1, 0, 0, 0, 0, 0x14}
	// C_SC_NA_1 single command, activation; and its confirmation.
	command    = []byte{0x68, 0x0e, 2, 0, 0, 0, 45, 1, 6, 0, 1, 0, 0x11, 0x00, 0, 0x01}
	commandCon = []byte{0x68, 0x0e, 0, 0, 4, 0, 45, 1, 7, 0, 1, 0, 0x11, 0x00, 0, 0x01}
	// M_ME_NC_1 spontaneous measured value.
	measured = []byte{0x68, 0x12, 2, 0, 4, 0, 13, 1, 3, 0, 1, 0, 0x01, 0x10, 0, 0, 0, 0x80, 0x3f, 0}
)

func TestIEC104(t *testing.T) {
	orig := cat(startAct, interrogation, command, sFrame)
	resp := cat(startCon, commandCon, measured)
	if name, _ := Identify("tcp", orig, resp, 40000, 40001, false); name != IEC104 {
		t.Fatalf("identified as %q", name)
	}
	s := NewSession(IEC104, nil)
	streamAll(s, true, orig, 1)
	streamAll(s, false, resp, 9)
	o := s.OT()
	want := map[string]int{"startdt_act": 1, "startdt_con": 1, "c_ic_na_1": 1, "c_sc_na_1": 1, "s_frame": 1, "m_me_nc_1": 1}
	for k, v := range want {
		if o.Functions[k] != v {
			t.Errorf("%s = %d (%v)", k, o.Functions[k], o.Functions)
		}
	}
	if o.Writes != 1 || o.ServerIsOrig {
		t.Errorf("%+v", o)
	}
}

func TestIEC104Not(t *testing.T) {
	for i, b := range [][]byte{
		{0x68, 4, 0x05, 0, 0, 0, 0x68, 4, 0x07, 0, 0, 0}, // U frame with two functions
		{0x68, 5, 0x07, 0, 0, 0, 0, 0x68, 4, 0x07, 0, 0, 0},
		{0x68, 0x0e, 0, 0, 0, 0, 99, 1, 6, 0, 1, 0, 0, 0, 0, 0x14, 0x68, 4, 1, 0, 0, 0}, // type 99
		[]byte("hello there, general kenobi"),
	} {
		if name, _ := Identify("tcp", b, nil, 1, 2, true); name == IEC104 {
			t.Errorf("%d: taken for iec104", i)
		}
	}
}

func FuzzIEC104(f *testing.F) {
	f.Add(cat(startAct, interrogation, command), 6)
	f.Add(cat(startCon, commandCon, measured), 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
	})
}
