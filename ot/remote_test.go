package ot

import "testing"

// tlsServerFlight builds a ServerHello and a Certificate message (with a
// fake DER body that holds subject) in one TLS 1.2 record.
func tlsServerFlight(subject string) []byte {
	hello := append([]byte{2, 0, 0, 38, 3, 3}, make([]byte, 36)...)
	certBody := append([]byte{0x30, 0x82, 0, 0}, []byte("...CN="+subject+"...")...)
	cert := []byte{11, 0, 0, byte(len(certBody) + 6), 0, 0, byte(len(certBody) + 3), 0, 0, byte(len(certBody))}
	cert = append(cert, certBody...)
	hs := cat(hello, cert)
	return append([]byte{0x16, 3, 3, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func TestRemoteAccess(t *testing.T) {
	clientHello := []byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 3}
	tests := []struct {
		name       string
		orig, resp []byte
		op, rp     uint16
		want       string
		device     string
	}{
		{"ssh", []byte("SSH-2.0-PuTTY_Release_0.80\r\n"), []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"), 50000, 2222, SSH, "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13"},
		{"rdp", rdpCR, nil, 50000, 3390, RDP, ""},
		{"vnc", []byte("RFB 003.008\n"), []byte("RFB 003.008\n"), 50000, 5901, VNC, "RFB 003.008"},
		{"vnc server only", nil, []byte("RFB 003.003\n"), 50000, 5900, VNC, "RFB 003.003"},
		{"not vnc", []byte("RFB 3.8\n"), []byte("RFB 003.008\n"), 50000, 5900, "", ""},
		{"teamviewer", []byte{0x17, 0x24, 0x0a, 0x20, 0, 0, 0}, []byte{0x17, 0x24, 0x0a, 0x20, 0, 0}, 50000, 443, TeamViewer, ""},
		{"teamviewer one side on 5938", []byte{0x17, 0x24, 0x10, 0x04}, nil, 50000, 5938, TeamViewer, ""},
		{"teamviewer magic elsewhere", []byte{0x17, 0x24, 0x10, 0x04}, nil, 50000, 443, "", ""},
		{"anydesk", clientHello, tlsServerFlight("AnyDesk Client"), 50000, 443, AnyDesk, ""},
		{"other tls", clientHello, tlsServerFlight("www.example.com"), 50000, 443, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, done := Identify("tcp", tt.orig, tt.resp, tt.op, tt.rp, true)
			if name != tt.want || !done {
				t.Fatalf("identified as %q (done %v), want %q", name, done, tt.want)
			}
			if name == "" {
				return
			}
			s := NewSession(name, nil)
			s.Stream(true, tt.orig)
			s.Stream(false, tt.resp)
			if o := s.OT(); o.Device != tt.device || IsOT(o.Protocol) {
				t.Errorf("%+v", o)
			}
		})
	}
}

// SSH and RDP are named as dissect.Service names them: one rule set.
func TestRemoteAgreesWithDissect(t *testing.T) {
	if name, _ := Identify("tcp", []byte("SSH-2.0-x\r\n"), nil, 1, 2, false); name != SSH {
		t.Errorf("%q", name)
	}
	if name, _ := Identify("tcp", []byte("SSH-3.0-x\r\n"), nil, 1, 2, true); name != "" {
		t.Errorf("%q", name)
	}
}

func FuzzRemoteAccess(f *testing.F) {
	f.Add([]byte("RFB 003.008\nRFB 003.008\n"), 12)
	f.Add(cat([]byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 3}, tlsServerFlight("AnyDesk Client")), 10)
	f.Add([]byte{0x17, 0x24, 0x0a, 0x20, 0x17, 0x24}, 4)
	f.Add([]byte("SSH-2.0-a\r\nSSH-2.0-b\r\n"), 11)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		fuzzSession(t, data, cut)
	})
}
