package dissect

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// maxHostNames caps the names one flow yields: a forged mDNS response can
// carry hundreds of records, and the Conn must stay small.
const maxHostNames = 8

// HostNames returns the names hosts gave themselves in a flow's first
// payload of each direction: the DHCP host name and client FQDN options
// with the client's MAC and its requested (REQUEST) or assigned (ACK)
// address, NetBIOS name registrations and positive name query responses
// with the address they bind, and mDNS responses' A/AAAA records for
// ".local" names. proto is "tcp" or "udp"; only UDP carries these.
//
// Each format is recognised by structure (the DHCP magic cookie, a
// 32-letter first-level encoded NetBIOS label, an mDNS response's zero ID
// and authoritative bit), never by port. Names are kept only when every
// byte is printable ASCII, so a forged name cannot break a log line.
func HostNames(proto string, orig, resp []byte) []cw.HostName {
	if proto != "udp" {
		return nil
	}
	var out []cw.HostName
	for _, b := range [][]byte{orig, resp} {
		switch {
		case len(b) >= dhcpOptions && binary.BigEndian.Uint32(b[dhcpCookie:]) == 0x63825363:
			out = appendDHCP(out, b)
		case len(b) >= 12:
			if isNBNS(b) {
				out = appendNBNS(out, b)
			} else {
				out = appendMDNS(out, b)
			}
		}
		if len(out) > maxHostNames {
			out = out[:maxHostNames]
		}
	}
	return out
}

// BOOTP layout (RFC 2131 section 2).
const (
	dhcpCIAddr  = 12
	dhcpYIAddr  = 16
	dhcpCHAddr  = 28
	dhcpCookie  = 236
	dhcpOptions = 240

	dhcpOptHostName  = 12
	dhcpOptRequested = 50
	dhcpOptMsgType   = 53
	dhcpOptFQDN      = 81

	dhcpTypeDiscover = 1
	dhcpTypeRequest  = 3
	dhcpTypeAck      = 5
	dhcpTypeInform   = 8
)

// appendDHCP reads the host name (option 12) and client FQDN (option 81)
// of a DHCP message. The address is the one the name goes with: the
// requested address of a REQUEST (or ciaddr when renewing), the assigned
// yiaddr of an ACK, ciaddr of an INFORM; a DISCOVER or OFFER binds no
// address yet, so only the MAC is known.
func appendDHCP(out []cw.HostName, b []byte) []cw.HostName {
	if b[0] != 1 && b[0] != 2 {
		return out
	}
	opts := map[byte][]byte{}
	for i := dhcpOptions; i < len(b); {
		code := b[i]
		if code == 255 {
			break
		}
		if code == 0 {
			i++
			continue
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			break // a cut option: keep what came before it
		}
		v := b[i+2 : i+2+int(b[i+1])]
		// RFC 3396: an option split in several instances is their concatenation.
		if code == dhcpOptHostName || code == dhcpOptFQDN || code == dhcpOptRequested || code == dhcpOptMsgType {
			opts[code] = append(opts[code], v...)
		}
		i += 2 + int(b[i+1])
	}
	var names []string
	if n, ok := cleanName(opts[dhcpOptHostName]); ok {
		names = append(names, n)
	}
	if f := opts[dhcpOptFQDN]; len(f) > 3 {
		var n string
		var ok bool
		if f[0]&0x04 != 0 { // E bit: the name is in DNS wire format
			n, ok = wireName(f[3:])
		} else {
			n, ok = cleanName(f[3:])
		}
		if ok && (len(names) == 0 || !strings.EqualFold(names[0], n)) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return out
	}
	mac := ""
	if b[1] == 1 && b[2] == 6 { // Ethernet, 6-byte hardware address
		mac = net.HardwareAddr(b[dhcpCHAddr : dhcpCHAddr+6]).String()
	}
	var msgType byte
	if t := opts[dhcpOptMsgType]; len(t) == 1 {
		msgType = t[0]
	}
	ciaddr := addr4(b[dhcpCIAddr:])
	var a netip.Addr
	switch msgType {
	case dhcpTypeRequest:
		if r := opts[dhcpOptRequested]; len(r) == 4 {
			a = addr4(r)
		} else {
			a = ciaddr
		}
	case dhcpTypeAck:
		a = addr4(b[dhcpYIAddr:])
	case dhcpTypeInform:
		a = ciaddr
	case dhcpTypeDiscover:
	default:
		if b[0] == 1 {
			a = ciaddr // BOOTP request or unknown type: only what the client claims
		}
	}
	if a.IsUnspecified() {
		a = netip.Addr{}
	}
	if !a.IsValid() && mac == "" {
		return out
	}
	for _, n := range names {
		out = append(out, cw.HostName{Addr: a, MAC: mac, Name: n, Source: "dhcp"})
	}
	return out
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// cleanName accepts a host name made of printable ASCII without spaces,
// dropping the trailing NULs some DHCP clients send.
func cleanName(b []byte) (string, bool) {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 || len(b) > 255 {
		return "", false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return string(b), true
}

// wireName decodes an uncompressed DNS wire-format name (option 81's E
// form, which RFC 4702 forbids to compress).
func wireName(b []byte) (string, bool) {
	var sb strings.Builder
	for i := 0; i < len(b); {
		l := int(b[i])
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || i+1+l > len(b) {
			return "", false
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		label, ok := cleanName(b[i+1 : i+1+l])
		if !ok {
			return "", false
		}
		sb.WriteString(label)
		i += 1 + l
	}
	if sb.Len() == 0 || sb.Len() > 255 {
		return "", false
	}
	return sb.String(), true
}

// NetBIOS name service (RFC 1002 section 4.2).
const (
	nbnsLabelLen = 32
	typeNB       = 0x20
	nbGroup      = 0x8000 // NB_FLAGS G bit: a group name, not one host's

	opQuery    = 0
	opRegister = 5
	opRefresh1 = 8
	opRefresh2 = 9
	opMultiReg = 15
)

// isNBNS reports whether b's first question is a NetBIOS name: one
// 32-letter label of 'A'..'P' (first-level encoding).
func isNBNS(b []byte) bool {
	if binary.BigEndian.Uint16(b[4:]) == 0 && binary.BigEndian.Uint16(b[6:]) == 0 {
		return false
	}
	if len(b) < 12+1+nbnsLabelLen || b[12] != nbnsLabelLen {
		return false
	}
	for _, c := range b[13 : 13+nbnsLabelLen] {
		if c < 'A' || c > 'P' {
			return false
		}
	}
	return true
}

// appendNBNS reads a name registration or refresh (the host announcing its
// own name, with the address in the additional record) or a positive name
// query response (the name's owner answering, with the address in the
// answer). Group names and names of other suffixes than workstation (0x00)
// and server (0x20) name no host and are skipped.
func appendNBNS(out []cw.HostName, b []byte) []cw.HostName {
	flags := binary.BigEndian.Uint16(b[2:])
	isResp := flags&0x8000 != 0
	op := int(flags>>11) & 0xf
	qd := int(binary.BigEndian.Uint16(b[4:]))
	an := int(binary.BigEndian.Uint16(b[6:]))
	ns := int(binary.BigEndian.Uint16(b[8:]))
	ar := int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	var err error
	for i := 0; i < qd; i++ {
		if off, err = skipName(b, off); err != nil || off+4 > len(b) {
			return out
		}
		off += 4
	}
	switch {
	case !isResp && (op == opRegister || op == opRefresh1 || op == opRefresh2 || op == opMultiReg):
		// The name is the question's; the address is in the additional record.
		for i := 0; i < an+ns; i++ {
			if off, err = skipRR(b, off); err != nil {
				return out
			}
		}
		if ar == 0 {
			return out
		}
		return appendNBRecord(out, b, off, 12)
	case isResp && op == opQuery && flags&0xf == 0 && an > 0:
		return appendNBRecord(out, b, off, off)
	}
	return out
}

// appendNBRecord reads the NB resource record at off; the name is read at
// nameOff (the question's name for registrations, whose additional record
// usually points back to it anyway).
func appendNBRecord(out []cw.HostName, b []byte, off, nameOff int) []cw.HostName {
	if nameOff >= len(b) || b[nameOff] != nbnsLabelLen || nameOff+1+nbnsLabelLen > len(b) {
		return out
	}
	name, suffix, ok := decodeNetBIOS(b[nameOff+1 : nameOff+1+nbnsLabelLen])
	if !ok || (suffix != 0x00 && suffix != 0x20) {
		return out
	}
	off, err := skipName(b, off)
	if err != nil || off+10 > len(b) {
		return out
	}
	typ := binary.BigEndian.Uint16(b[off:])
	rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
	off += 10
	if typ != typeNB || off+rdlen > len(b) {
		return out
	}
	// Multi-homed hosts list several (flags, address) pairs.
	for i := 0; i+6 <= rdlen && len(out) < maxHostNames; i += 6 {
		nbFlags := binary.BigEndian.Uint16(b[off+i:])
		if nbFlags&nbGroup != 0 {
			continue
		}
		a := addr4(b[off+i+2:])
		if a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue
		}
		out = append(out, cw.HostName{Addr: a, Name: name, Source: "netbios"})
	}
	return out
}

// decodeNetBIOS undoes first-level encoding (RFC 1001 section 14.1): each
// byte is two letters 'A'+high nibble, 'A'+low nibble. The 16th byte is
// the suffix (service type); the 15 before are the name, space-padded.
func decodeNetBIOS(enc []byte) (name string, suffix byte, ok bool) {
	if len(enc) != nbnsLabelLen {
		return "", 0, false
	}
	var raw [16]byte
	for i := range raw {
		hi, lo := enc[2*i]-'A', enc[2*i+1]-'A'
		if hi > 15 || lo > 15 {
			return "", 0, false
		}
		raw[i] = hi<<4 | lo
	}
	n, ok := cleanName(bytes.TrimRight(raw[:15], " "))
	return n, raw[15], ok
}

// skipRR returns the offset after the resource record at off.
func skipRR(b []byte, off int) (int, error) {
	off, err := skipName(b, off)
	if err != nil {
		return 0, err
	}
	if off+10 > len(b) {
		return 0, ErrShort
	}
	end := off + 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	if end > len(b) {
		return 0, ErrShort
	}
	return end, nil
}

// appendMDNS reads the A and AAAA records of an mDNS response (RFC 6762:
// ID zero, authoritative) whose owner name ends in ".local": the
// responder telling which addresses its name has.
func appendMDNS(out []cw.HostName, b []byte) []cw.HostName {
	flags := binary.BigEndian.Uint16(b[2:])
	if binary.BigEndian.Uint16(b) != 0 || flags&0x8400 != 0x8400 || flags&0xf != 0 {
		return out
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	var err error
	for i := 0; i < qd; i++ {
		if off, err = skipName(b, off); err != nil || off+4 > len(b) {
			return out
		}
		off += 4
	}
	var nameBuf [maxNameWire * 4]byte
	for i := 0; i < rrs && len(out) < maxHostNames; i++ {
		var name []byte
		name, off, err = readName(b, off, nameBuf[:0])
		if err != nil || off+10 > len(b) {
			return out
		}
		typ := binary.BigEndian.Uint16(b[off:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return out
		}
		rd := b[off : off+rdlen]
		off += rdlen
		n, ok := cleanName(name)
		if !ok || !strings.HasSuffix(strings.ToLower(n), ".local") {
			continue
		}
		var a netip.Addr
		switch {
		case typ == typeA && rdlen == 4:
			a = netip.AddrFrom4([4]byte(rd))
		case typ == typeAAAA && rdlen == 16:
			a = netip.AddrFrom16([16]byte(rd))
		default:
			continue
		}
		out = append(out, cw.HostName{Addr: a, Name: strings.TrimSuffix(n, "."), Source: "mdns"})
	}
	return out
}
