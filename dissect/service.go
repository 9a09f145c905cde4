package dissect

import (
	"bytes"
	"encoding/binary"
)

// Service names the protocol of a flow from the first payload bytes of the
// originator (orig) and responder (resp) directions; either may be empty.
// proto is "tcp" or "udp". It returns "" when nothing is recognised. Names
// follow Zeek: "dns", "http", "ssl", "ssh", "smtp", "ftp", "pop3", "imap",
// "rdp", "ntp", "dhcp", "smb", "quic", "sip", "mqtt".
//
// Every rule looks at payload structure, never at ports, and asks for more
// than one coincidence (a header field in range and a magic value, or a
// banner and a matching command), because a wrong label misleads an
// analyst more than a missing one.
func Service(proto string, orig, resp []byte) string {
	switch proto {
	case "tcp":
		return tcpService(orig, resp)
	case "udp":
		return udpService(orig, resp)
	}
	return ""
}

func tcpService(orig, resp []byte) string {
	if len(orig) > 0 {
		switch orig[0] {
		case recordHandshake:
			if tlsHello(orig, hsClientHello) {
				return "ssl"
			}
		case 0x03:
			if isRDP(orig) {
				return "rdp"
			}
		case 0x00:
			if isSMB(orig) {
				return "smb"
			}
			if isDNSTCP(orig) {
				return "dns"
			}
		case 0x10:
			if isMQTTConnect(orig) {
				return "mqtt"
			}
		case 'S':
			if isSSH(orig) {
				return "ssh"
			}
		}
		if orig[0] >= 'A' && orig[0] <= 'Z' {
			if isHTTPRequest(orig) {
				return "http"
			}
			if isSIPRequest(orig) {
				return "sip"
			}
		}
		if isDNSTCP(orig) {
			return "dns"
		}
	}
	if len(resp) > 0 {
		switch resp[0] {
		case recordHandshake:
			// A ServerHello alone (capture started mid-handshake).
			if len(orig) == 0 && tlsHello(resp, hsServerHello) {
				return "ssl"
			}
		case 'S':
			if isSSH(resp) {
				return "ssh"
			}
			if len(orig) == 0 && hasPrefix(resp, "SIP/2.0 ") && statusDigits(resp[8:]) {
				return "sip"
			}
		case '2':
			if s := banner220(orig, resp); s != "" {
				return s
			}
		case '+':
			if isPOP3(orig, resp) {
				return "pop3"
			}
		case '*':
			if isIMAP(orig, resp) {
				return "imap"
			}
		case 'H':
			if len(orig) == 0 {
				if _, ok := statusLine(firstLine(resp)); ok {
					return "http"
				}
			}
		case 0x00:
			if len(orig) == 0 && isSMB(resp) {
				return "smb"
			}
		}
	}
	return ""
}

func udpService(orig, resp []byte) string {
	first := orig
	if len(first) == 0 {
		first = resp
	}
	if len(first) == 0 {
		return ""
	}
	if first[0]&0xc0 == 0xc0 && isQUIC(first, len(orig) > 0) {
		return "quic"
	}
	if isDHCP(first) {
		return "dhcp"
	}
	if isNTP(orig, resp) {
		return "ntp"
	}
	if first[0] >= 'A' && first[0] <= 'Z' && (isSIPRequest(first) || hasPrefix(first, "SIP/2.0 ") && statusDigits(first[8:])) {
		return "sip"
	}
	if isDNS(first, len(orig) > 0, false) {
		return "dns"
	}
	return ""
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// hasPrefixFold is hasPrefix ignoring ASCII case.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && bytes.EqualFold(b[:len(s)], []byte(s))
}

func firstLine(b []byte) []byte {
	if ln, _, ok := line(b); ok {
		return ln
	}
	return b
}

func statusDigits(b []byte) bool {
	return len(b) >= 3 && b[0] >= '1' && b[0] <= '6' && b[1] >= '0' && b[1] <= '9' && b[2] >= '0' && b[2] <= '9'
}

// tlsHello checks a handshake record header (0x16 0x03 0x00-0x04, sane
// length) carrying a handshake of type want with a matching version.
func tlsHello(b []byte, want byte) bool {
	if len(b) < 11 || b[0] != recordHandshake || b[1] != 3 || b[2] > 4 {
		return false
	}
	rlen := int(binary.BigEndian.Uint16(b[3:]))
	if rlen < 4 || rlen > maxRecord || b[5] != want {
		return false
	}
	hsLen := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
	// The hello's own version field: 3.0 to 3.4 (1.3 still says 3.3).
	return hsLen >= 38 && hsLen <= maxHandshake && b[9] == 3 && b[10] <= 4
}

// isHTTPRequest wants a known method, then " HTTP/1." before the first
// line ends (or, when the line is longer than what we have, the URI must
// at least start like one).
func isHTTPRequest(b []byte) bool {
	m := knownMethod(b)
	if m == "" {
		return false
	}
	ln, _, ok := line(b)
	if !ok {
		rest := b[len(m)+1:]
		// A cut request line: accept only an origin-form or absolute URI
		// that is already long (a 1 KiB+ GET line is common for APIs).
		return len(b) >= 1024 && len(rest) > 0 && (rest[0] == '/' || hasPrefix(rest, "http://"))
	}
	// HTTP/0.9's bare "GET /" is too little to name a flow by.
	_, _, ok, _ = requestLine(ln, false)
	return ok
}

var sipMethods = [...]string{
	"INVITE", "REGISTER", "OPTIONS", "ACK", "BYE", "CANCEL", "SUBSCRIBE",
	"NOTIFY", "MESSAGE", "INFO", "PRACK", "UPDATE", "REFER", "PUBLISH",
}

// isSIPRequest wants "METHOD sip:... SIP/2.0" (or sips:/tel:).
func isSIPRequest(b []byte) bool {
	ln := firstLine(b)
	for _, m := range sipMethods {
		if !hasPrefix(ln, m) || len(ln) <= len(m) || ln[len(m)] != ' ' {
			continue
		}
		rest := ln[len(m)+1:]
		if !hasPrefixFold(rest, "sip:") && !hasPrefixFold(rest, "sips:") && !hasPrefixFold(rest, "tel:") {
			return false
		}
		return bytes.HasSuffix(ln, []byte(" SIP/2.0"))
	}
	return false
}

// isSSH wants the RFC 4253 identification string "SSH-2.0-" or
// "SSH-1.x-" (1.99 announces both).
func isSSH(b []byte) bool {
	return hasPrefix(b, "SSH-2.0-") || hasPrefix(b, "SSH-1.") && len(b) > 8 && b[6] >= '0' && b[6] <= '9'
}

// banner220 tells SMTP from FTP: both greet with "220". SMTP: the client
// says EHLO/HELO, or the banner itself says ESMTP. FTP: the client says
// USER (or AUTH TLS, or FEAT) after the greeting.
func banner220(orig, resp []byte) string {
	if !hasPrefix(resp, "220") || len(resp) < 4 || (resp[3] != ' ' && resp[3] != '-') {
		return ""
	}
	switch {
	case hasPrefixFold(orig, "EHLO ") || hasPrefixFold(orig, "HELO "):
		return "smtp"
	case hasPrefixFold(orig, "USER ") || hasPrefixFold(orig, "AUTH TLS") || hasPrefixFold(orig, "FEAT\r\n") || hasPrefixFold(orig, "AUTH SSL"):
		return "ftp"
	case bytes.Contains(firstLine(resp), []byte("ESMTP")):
		// Only mail servers announce ESMTP, whatever the client sent
		// first (some send a blank line).
		return "smtp"
	}
	return ""
}

// isPOP3 wants a "+OK text" greeting (Redis answers a bare "+OK") and a
// client that is silent or speaks a POP3 command.
func isPOP3(orig, resp []byte) bool {
	if !hasPrefix(resp, "+OK ") {
		return false
	}
	if len(orig) == 0 {
		return true
	}
	for _, c := range [...]string{"USER ", "CAPA\r", "CAPA\n", "APOP ", "AUTH ", "STLS\r", "STLS\n"} {
		if hasPrefixFold(orig, c) {
			return true
		}
	}
	return false
}

// isIMAP wants an untagged "* OK" or "* PREAUTH" greeting that names IMAP,
// or one answered by a tagged IMAP command.
func isIMAP(orig, resp []byte) bool {
	if !hasPrefix(resp, "* OK") && !hasPrefix(resp, "* PREAUTH") {
		return false
	}
	if bytes.Contains(firstLine(resp), []byte("IMAP")) {
		return true
	}
	sp := bytes.IndexByte(orig, ' ')
	if sp <= 0 || sp > 16 {
		return false
	}
	cmd := orig[sp+1:]
	for _, c := range [...]string{"CAPABILITY", "LOGIN ", "AUTHENTICATE ", "STARTTLS", "ID "} {
		if hasPrefixFold(cmd, c) {
			return true
		}
	}
	return false
}

// isRDP wants a TPKT header (version 3, length matching what follows) with
// an X.224 Connection Request that carries either the mstshash cookie or
// an RDP Negotiation Request (MS-RDPBCGR 2.2.1.1).
func isRDP(b []byte) bool {
	if len(b) < 11 || b[0] != 3 || b[1] != 0 {
		return false
	}
	tlen := int(binary.BigEndian.Uint16(b[2:]))
	li := int(b[4])
	if tlen < 11 || tlen > len(b) || li+5 != tlen || b[5] != 0xe0 {
		return false
	}
	pdu := b[11:tlen]
	if hasPrefix(pdu, "Cookie: mstshash=") || hasPrefix(pdu, "Cookie: msts=") {
		return true
	}
	// RDP_NEG_REQ: type 1, flags, length 8, requested protocols; it ends
	// the PDU (after the optional cookie or routing token line).
	if len(pdu) >= 8 {
		neg := pdu[len(pdu)-8:]
		return neg[0] == 1 && binary.LittleEndian.Uint16(neg[2:]) == 8 && binary.LittleEndian.Uint32(neg[4:]) <= 0x1f
	}
	return false
}

// isSMB wants a NetBIOS session message (type 0, 17-bit length) holding an
// SMB1 (0xff), SMB2/3 (0xfe) or SMB3 transform (0xfd) header.
func isSMB(b []byte) bool {
	if len(b) < 8 || b[0] != 0 || b[1] > 1 {
		return false
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n < 32 || string(b[5:8]) != "SMB" {
		return false
	}
	return b[4] == 0xff || b[4] == 0xfe || b[4] == 0xfd
}

// isMQTTConnect wants a CONNECT packet: type 1, a valid remaining-length
// varint, then the protocol name "MQTT" (3.1.1/5) or "MQIsdp" (3.1) with a
// matching level.
func isMQTTConnect(b []byte) bool {
	if len(b) < 2 || b[0] != 0x10 {
		return false
	}
	i := 1
	for ; i < len(b) && i < 5; i++ {
		if b[i]&0x80 == 0 {
			break
		}
	}
	i++
	if i >= 6 || i > len(b) {
		return false
	}
	p := b[i:]
	switch {
	case len(p) >= 7 && string(p[:6]) == "\x00\x04MQTT":
		return p[6] == 4 || p[6] == 5
	case len(p) >= 9 && string(p[:8]) == "\x00\x06MQIsdp":
		return p[8] == 3
	}
	return false
}

// isDHCP wants a BOOTP header (op 1 or 2, hardware address length <= 16)
// and the DHCP magic cookie at offset 236.
func isDHCP(b []byte) bool {
	return len(b) >= 240 && (b[0] == 1 || b[0] == 2) && b[2] <= 16 &&
		binary.BigEndian.Uint32(b[236:]) == 0x63825363
}

// isNTP wants 48-byte NTPv1-4 packets (optionally with a MAC: 68 or 72
// bytes, or NTPv4 extension fields), a client mode answered by a server
// mode, sane stratum and poll. A one-way flow is accepted only for a
// client request, the commonest case (a blocked reply).
func isNTP(orig, resp []byte) bool {
	ok := func(b []byte) (mode byte, good bool) {
		if len(b) != 48 && len(b) != 68 && len(b) != 72 && (len(b) < 48 || len(b)%4 != 0 || len(b) > 1024) {
			return 0, false
		}
		v := b[0] >> 3 & 7
		mode = b[0] & 7
		return mode, v >= 1 && v <= 4 && mode >= 1 && mode <= 5 && b[1] <= 16 && (b[2] <= 17 || b[2] >= 0xfa)
	}
	switch {
	case len(orig) > 0 && len(resp) > 0:
		om, g1 := ok(orig)
		rm, g2 := ok(resp)
		return g1 && g2 && (om == 3 && rm == 4 || om == 1 && rm == 2 || om == 1 && rm == 1 || om == 2 && rm == 2) &&
			orig[0]>>3&7 == resp[0]>>3&7
	case len(orig) > 0:
		om, g := ok(orig)
		// Client request: the transmit timestamp (offset 40) is set.
		return g && om == 3 && binary.BigEndian.Uint64(orig[40:]) != 0
	}
	return false
}

// quicVersions are the QUIC versions a long header may carry that we name
// "quic": v1, v2, IETF drafts 27-34 and Google's Q043-Q050/T050/T051.
func knownQUICVersion(v uint32) bool {
	switch {
	case v == 0x00000001, v == 0x6b3343cf:
		return true
	case v >= 0xff00001b && v <= 0xff000022:
		return true
	case v == 0x51303433, v == 0x51303436, v == 0x51303530, v == 0x54303530, v == 0x54303531:
		return true
	}
	return false
}

// isQUIC wants a long header (form and fixed bits set), a known version,
// connection IDs of at most 20 bytes and, from a client, the 1200-byte
// minimum datagram that RFC 9000 section 14.1 requires of an Initial.
func isQUIC(b []byte, fromClient bool) bool {
	if len(b) < 7 {
		return false
	}
	if !knownQUICVersion(binary.BigEndian.Uint32(b[1:])) {
		return false
	}
	dcid := int(b[5])
	if dcid > 20 || 6+dcid >= len(b) {
		return false
	}
	scid := int(b[6+dcid])
	if scid > 20 || 7+dcid+scid > len(b) {
		return false
	}
	return !fromClient || len(b) >= 1200
}

// isDNSTCP checks a TCP-framed DNS message: the 2-byte length must cover
// at least a header and question, then the message must pass isDNS.
func isDNSTCP(b []byte) bool {
	if len(b) < 2+17 {
		return false
	}
	n := int(binary.BigEndian.Uint16(b))
	if n < 17 {
		return false
	}
	m := b[2:]
	if len(m) > n {
		m = m[:n]
	}
	return isDNS(m, true, len(m) < n)
}

// isDNS checks header sanity and that exactly one question parses: a known
// opcode, the reserved Z bit clear, a query without an rcode, record
// counts that fit the bytes, a class of IN/CH/HS/ANY (mDNS may set the
// top "unicast response" bit) and a non-zero type. The records after the
// question must then end exactly with the message, unless cut says the
// message continues past b (a long TCP message in its first segment).
func isDNS(b []byte, fromOrig, cut bool) bool {
	if len(b) < 17 {
		return false
	}
	flags := binary.BigEndian.Uint16(b[2:])
	qr := flags&0x8000 != 0
	opcode := flags >> 11 & 0xf
	if opcode != 0 && opcode != 1 && opcode != 2 && opcode != 4 && opcode != 5 {
		return false
	}
	if flags&0x0040 != 0 {
		return false
	}
	if fromOrig && !qr && flags&0x000f != 0 {
		return false
	}
	qd := binary.BigEndian.Uint16(b[4:])
	an := int(binary.BigEndian.Uint16(b[6:]))
	ns := int(binary.BigEndian.Uint16(b[8:]))
	ar := int(binary.BigEndian.Uint16(b[10:]))
	if qd != 1 {
		return false
	}
	// Each record takes at least 11 bytes.
	if !cut && (an+ns+ar)*11 > len(b)-12 {
		return false
	}
	off, err := skipName(b, 12)
	if err != nil || off+4 > len(b) {
		return false
	}
	qtype := binary.BigEndian.Uint16(b[off:])
	qclass := binary.BigEndian.Uint16(b[off+2:]) &^ 0x8000
	if qtype == 0 || (qclass != 1 && qclass != 3 && qclass != 4 && qclass != 255) {
		return false
	}
	off += 4
	if cut {
		return true
	}
	// A query ends with its records; responses from real servers were
	// seen padded with zeros or with records past the counts, so only
	// queries must end exactly.
	if an+ns+ar == 0 {
		return off == len(b) || qr
	}
	// Walk the records: each must fit the message.
	i := 0
	for ; i < an+ns+ar && i < 64; i++ {
		off, err = skipName(b, off)
		if err != nil || off+10 > len(b) {
			return false
		}
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
		if off > len(b) {
			return false
		}
	}
	return i == 64 || off == len(b) || qr
}
