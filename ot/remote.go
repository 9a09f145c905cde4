package ot

import (
	"bytes"

	"github.com/cargowatch/cargowatch/dissect"
)

// Remote-access protocols. RDP, SSH and MQTT are recognised by
// dissect.Service (one rule set for the whole tool); VNC, TeamViewer and
// AnyDesk here. What each rule can and cannot see is in docs/OT.md.

func init() {
	register(&proto{name: RDP, raw: true, pdu: rdpPDU})
	register(&proto{name: SSH, raw: true, pdu: sshPDU})
	register(&proto{name: VNC, raw: true, pdu: vncPDU})
	register(&proto{name: TeamViewer, raw: true, pdu: teamViewerPDU})
	register(&proto{name: AnyDesk, raw: true, pdu: func(*Session, bool, []byte, bool) bool { return true }})
	addRule(RDP, "tcp", dissectRule(RDP, 0x03))
	addRule(SSH, "tcp", dissectRule(SSH, 'S'))
	addRule(MQTT, "tcp", dissectRule(MQTT, 0x10))
	addRule(VNC, "tcp", vncCheck)
	addRule(TeamViewer, "tcp", teamViewerCheck)
	addRule(AnyDesk, "tcp", anyDeskCheck)
}

// dissectRule defers to dissect.Service, whose rules ask for a banner or
// a framed handshake; first is the byte the originator's first message
// starts with (the responder's for SSH may be the only one seen).
func dissectRule(name string, first byte) func(orig, resp []byte, op, rp uint16, final bool) verdict {
	return func(orig, resp []byte, op, rp uint16, final bool) verdict {
		if !(len(orig) > 0 && orig[0] == first || name == SSH && len(resp) > 0 && resp[0] == 'S') {
			return vNo
		}
		if dissect.Service("tcp", orig, resp) == name {
			return vYes
		}
		if final || len(orig) >= 64 {
			return vNo
		}
		return vMaybe
	}
}

// rfbBanner matches a ProtocolVersion message: "RFB xxx.yyy\n" (RFC 6143
// 7.1.1), exactly 12 bytes.
func rfbBanner(b []byte) bool {
	if len(b) < 12 || string(b[:4]) != "RFB " || b[7] != '.' || b[11] != '\n' {
		return false
	}
	for _, i := range [...]int{4, 5, 6, 8, 9, 10} {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

// vncCheck: the server speaks first with its version; the client answers
// with one in the same format. A server banner alone counts only when
// the client never sent anything.
func vncCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	// could says the bytes are, or may still grow into, a banner.
	could := func(b []byte) bool {
		n := min(4, len(b))
		return rfbBanner(b) || len(b) < 12 && string(b[:n]) == "RFB "[:n]
	}
	switch {
	case len(orig)+len(resp) == 0:
		if final {
			return vNo
		}
		return vMaybe
	case len(resp) > 0 && !could(resp) || len(orig) > 0 && !could(orig):
		return vNo
	case rfbBanner(resp) && rfbBanner(orig):
		return vYes
	case rfbBanner(resp) && len(orig) == 0 && final:
		return vYes
	case final:
		return vNo
	}
	return vMaybe
}

// teamViewerCheck: TeamViewer's TCP messages start with the magic 0x17
// 0x24 (0x11 0x30 in some server replies), as nDPI and libprotoident
// match them; the framing past it is undocumented. Both directions must
// start so, or one direction on TeamViewer's port 5938.
func teamViewerCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	tv := func(b []byte) bool {
		return len(b) > 2 && (b[0] == 0x17 && b[1] == 0x24 || b[0] == 0x11 && b[1] == 0x30)
	}
	switch {
	case len(orig) > 0 && !tv(orig) || len(resp) > 0 && !tv(resp):
		return vNo
	case tv(orig) && len(orig) > 0 && orig[0] == 0x17 && tv(resp):
		return vYes
	case (tv(orig) || tv(resp)) && final && portIn(op, rp, []uint16{5938}):
		return vYes
	case final:
		return vNo
	}
	return vMaybe
}

// anyDeskCheck: AnyDesk runs TLS with its own self-signed certificate
// whose subject is "AnyDesk Client"; the certificate travels in clear
// with TLS 1.2, which AnyDesk uses. The responder's first bytes must be
// TLS handshake records with a Certificate message that holds the name.
func anyDeskCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	if len(resp) < 6 || resp[0] != 0x16 || resp[1] != 3 {
		return vNo
	}
	b := resp
	for len(b) >= 5 && b[0] == 0x16 && b[1] == 3 {
		rl := be16(b[3:])
		rec := b[5:]
		for len(rec) >= 4 {
			typ := rec[0]
			hl := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3])
			if typ == 11 {
				// The Certificate may continue into the next records.
				if bytes.Contains(rec[4:], []byte("AnyDesk Client")) {
					return vYes
				}
				if final || len(rec) >= 4+hl {
					return vNo
				}
				return vMaybe
			}
			if len(rec) < 4+hl || hl > rl {
				break
			}
			rec = rec[4+hl:]
		}
		if len(b) < 5+rl {
			break
		}
		b = b[5+rl:]
	}
	if final || len(resp) >= 8<<10 {
		return vNo
	}
	return vMaybe
}

// Remote-access parsers look at the first message of each direction.

func rdpPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	i := dirIdx(fromOrig)
	if s.state[i] != 0 {
		return true
	}
	s.state[i] = 1
	if len(b) >= 6 && b[0] == 3 {
		switch b[5] & 0xf0 {
		case 0xe0:
			s.request(fromOrig)
			s.op("connection_request", false, false)
		case 0xd0:
			s.serverSide(fromOrig)
		}
	}
	return true
}

// sshPDU keeps the server's software version from its identification
// string ("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3"): the responder's.
func sshPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	i := dirIdx(fromOrig)
	if s.state[i] != 0 {
		return true
	}
	s.state[i] = 1
	if !bytes.HasPrefix(b, []byte("SSH-")) {
		return true
	}
	ln := b
	if j := bytes.IndexAny(b, "\r\n"); j >= 0 {
		ln = b[:j]
	}
	if !fromOrig {
		s.serverSide(fromOrig)
		s.setDevice(string(ln))
	}
	return true
}

func vncPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	i := dirIdx(fromOrig)
	if s.state[i] != 0 {
		return true
	}
	s.state[i] = 1
	if rfbBanner(b) && !fromOrig {
		s.serverSide(fromOrig)
		s.setDevice(string(b[:11]))
	}
	return true
}

func teamViewerPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	return true
}
