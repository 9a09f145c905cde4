package ot

// EtherNet/IP encapsulation (ODVA Vol. 2, ch. 2): a 24-byte little-endian
// header (command, length of the data that follows, session handle,
// status, sender context, options 0) over TCP or UDP 44818. SendRRData
// and SendUnitData carry CIP in Common Packet Format items. Class 1 CIP
// I/O over UDP (2222) is a bare CPF: a sequenced address item and a
// connected data item.

var enipProto = register(&proto{name: ENIP, hdr: 24, frameLen: enipFrameLen, pdu: enipPDU})

func init() {
	register(&proto{name: CIP, raw: true, pdu: cipIOPDU})
	addRule(ENIP, "tcp", framedCheck(enipProto, enipValid, 44818))
	addRule(ENIP, "udp", enipUDPCheck)
	addRule(CIP, "udp", cipIOCheck)
}

var enipCommands = map[int]string{
	0x0000: "nop", 0x0004: "list_services", 0x0063: "list_identity", 0x0064: "list_interfaces",
	0x0065: "register_session", 0x0066: "unregister_session", 0x006f: "send_rr_data",
	0x0070: "send_unit_data", 0x0072: "indicate_status", 0x0073: "cancel",
}

func enipFrameLen(b []byte) int {
	if _, ok := enipCommands[le16(b)]; !ok {
		return -1
	}
	// Options must be zero (ODVA Vol. 2, 2-3.6).
	if le32(b[20:]) != 0 {
		return -1
	}
	return 24 + le16(b[2:])
}

// enipValid checks what each command's data must be.
func enipValid(b []byte, fromOrig bool) bool {
	if len(b) < 24 {
		return false
	}
	cmd, n := le16(b), le16(b[2:])
	switch cmd {
	case 0x0065:
		// Register session: protocol version 1, options 0.
		return n == 4 && (len(b) < 28 || le16(b[24:]) == 1)
	case 0x0066:
		return n == 0
	case 0x0063, 0x0004, 0x0064:
		// Requests are empty; replies hold a CPF item list.
		if n == 0 {
			return true
		}
		return len(b) < 26 || le16(b[24:]) <= 16
	case 0x006f, 0x0070:
		// Interface handle 0, timeout, then a CPF with 2+ items.
		if n < 8 {
			return false
		}
		if len(b) >= 32 {
			return le32(b[24:]) == 0 && le16(b[30:]) >= 1 && le16(b[30:]) <= 16
		}
		return true
	}
	return true
}

// enipUDPCheck: ListIdentity and friends over UDP 44818 (broadcast
// discovery); one datagram must frame exactly and validate.
func enipUDPCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	ok := 0
	for i, b := range [2][]byte{orig, resp} {
		if len(b) == 0 {
			continue
		}
		if len(b) < 24 || enipFrameLen(b) != len(b) || !enipValid(b, i == 0) {
			return vNo
		}
		cmd := le16(b)
		if cmd != 0x0063 && cmd != 0x0004 && cmd != 0x0064 {
			// Only discovery commands travel over UDP.
			return vNo
		}
		ok++
	}
	if ok == 0 {
		return vNo
	}
	return vYes
}

func enipPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if len(b) < 24 {
		return false
	}
	cmd, n := le16(b), le16(b[2:])
	name := enipCommands[cmd]
	data := b[24:]
	switch cmd {
	case 0x0063, 0x0004, 0x0064:
		if n == 0 {
			s.request(fromOrig)
			s.op(name, false, false)
			return true
		}
		s.serverSide(fromOrig)
		if cmd == 0x0063 {
			enipIdentity(s, data)
		}
		return true
	case 0x0065, 0x0066:
		if status := le32(b[8:]); status == 0 && fromOrig {
			s.op(name, false, false)
		}
		return true
	case 0x006f, 0x0070:
		if len(data) < 8 {
			return true
		}
		items := cpfItems(data[6:])
		for _, it := range items {
			switch it.typ {
			case 0x00b2: // unconnected data: a CIP message
				cipMessage(s, fromOrig, it.data, 0)
			case 0x00b1: // connected data: sequence count, then CIP
				if len(it.data) >= 2 {
					cipMessage(s, fromOrig, it.data[2:], 0)
				}
			}
		}
		return true
	}
	return true
}

type cpfItem struct {
	typ  int
	data []byte
}

// cpfItems reads a Common Packet Format item list (count, then type,
// length, data), at most 4 items (real traffic has 2).
func cpfItems(b []byte) []cpfItem {
	if len(b) < 2 {
		return nil
	}
	n := le16(b)
	b = b[2:]
	var out []cpfItem
	for i := 0; i < n && i < 4 && len(b) >= 4; i++ {
		typ, l := le16(b), le16(b[2:])
		b = b[4:]
		l = min(l, len(b))
		out = append(out, cpfItem{typ, b[:l]})
		b = b[l:]
	}
	return out
}

// enipIdentity reads a ListIdentity reply's identity item (type 0x0c):
// version, socket address, vendor, device type, product code, revision,
// status, serial number, product name.
func enipIdentity(s *Session, data []byte) {
	for _, it := range cpfItems(data) {
		d := it.data
		if it.typ != 0x0c || len(d) < 33 {
			continue
		}
		l := int(d[32])
		if len(d) < 33+l {
			continue
		}
		s.setDevice(string(d[33 : 33+l]))
		return
	}
}

var cipServices = map[byte]string{
	0x01: "get_attributes_all", 0x02: "set_attributes_all", 0x03: "get_attribute_list",
	0x04: "set_attribute_list", 0x05: "reset", 0x06: "start", 0x07: "stop", 0x08: "create",
	0x09: "delete", 0x0a: "multiple_service_packet", 0x0d: "apply_attributes",
	0x0e: "get_attribute_single", 0x10: "set_attribute_single", 0x11: "find_next_object_instance",
	0x15: "restore", 0x16: "save", 0x17: "nop", 0x18: "get_member", 0x19: "set_member",
	0x1a: "insert_member", 0x1b: "remove_member", 0x1c: "group_sync",
}

var cipWrite = map[byte]bool{
	0x02: true, 0x04: true, 0x05: true, 0x06: true, 0x07: true, 0x08: true, 0x09: true,
	0x0d: true, 0x10: true, 0x15: true, 0x19: true, 0x1a: true, 0x1b: true,
}

// Object-specific services (0x4b and up) mean different things per
// class: the Connection Manager's, Logix tag services, the File object's.
func cipObjectService(class int, svc byte) (name string, write, program bool) {
	switch class {
	case 0x06: // Connection Manager
		switch svc {
		case 0x4e:
			return "forward_close", false, false
		case 0x52:
			return "unconnected_send", false, false
		case 0x54:
			return "forward_open", false, false
		case 0x5b:
			return "large_forward_open", false, false
		}
	case 0x37: // File object: EDS, firmware and program files
		switch svc {
		case 0x4b:
			return "file_initiate_upload", false, false
		case 0x4c:
			return "file_initiate_download", true, true
		case 0x4f:
			return "file_upload_transfer", false, false
		case 0x50:
			return "file_download_transfer", true, false
		case 0x51:
			return "file_clear", true, false
		}
	}
	// Logix controllers address tags by symbol (class 0x6b) or by name.
	switch svc {
	case 0x4c:
		return "read_tag", false, false
	case 0x4d:
		return "write_tag", true, false
	case 0x4e:
		return "read_modify_write_tag", true, false
	case 0x52:
		return "read_tag_fragmented", false, false
	case 0x53:
		return "write_tag_fragmented", true, false
	case 0x55:
		return "get_instance_attribute_list", false, false
	}
	return "cip_" + unknown(int(svc)), false, false
}

// cipMessage counts one CIP request (service, path size in words, EPATH)
// and follows Unconnected Send and Multiple Service Packet one level.
func cipMessage(s *Session, fromOrig bool, m []byte, depth int) {
	if len(m) < 2 {
		return
	}
	svc := m[0]
	if svc&0x80 != 0 {
		s.serverSide(fromOrig)
		return
	}
	pw := int(m[1]) * 2
	if len(m) < 2+pw {
		return
	}
	class := cipClass(m[2 : 2+pw])
	body := m[2+pw:]
	if depth == 0 {
		s.request(fromOrig)
	}
	var name string
	var write, prog bool
	if svc >= 0x4b {
		name, write, prog = cipObjectService(class, svc)
	} else if n, ok := cipServices[svc]; ok {
		name, write = n, cipWrite[svc]
	} else {
		name = "cip_" + unknown(int(svc))
	}
	s.op(name, write, prog)
	if depth > 0 {
		return
	}
	switch {
	case class == 0x06 && svc == 0x52 && len(body) >= 4:
		// Priority/tick, timeout ticks, embedded message size.
		n := le16(body[2:])
		if len(body) >= 4+n {
			cipMessage(s, fromOrig, body[4:4+n], depth+1)
		}
	case svc == 0x0a && len(body) >= 2:
		n := le16(body)
		for i := 0; i < n && i < 16 && len(body) >= 2+2*(i+1); i++ {
			off := le16(body[2+2*i:])
			if off < len(body) {
				cipMessage(s, fromOrig, body[off:], depth+1)
			}
		}
	}
}

// cipClass reads the class of a logical EPATH (8- or 16-bit class
// segment); -1 when the path does not start with one.
func cipClass(p []byte) int {
	if len(p) < 2 {
		return -1
	}
	switch p[0] {
	case 0x20:
		return int(p[1])
	case 0x21:
		if len(p) >= 4 {
			return le16(p[2:])
		}
	case 0x91: // ANSI extended symbol: a tag name
		return 0x6b
	}
	return -1
}

// cipIOCheck: class 0/1 I/O: a CPF of exactly two items, a sequenced
// address item (0x8002, 8 bytes) and a connected data item (0x00b1) that
// ends the datagram.
func cipIOCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	ok := 0
	for _, b := range [2][]byte{orig, resp} {
		if len(b) == 0 {
			continue
		}
		if !cipIOValid(b) {
			return vNo
		}
		ok++
	}
	if ok == 0 {
		return vNo
	}
	return vYes
}

func cipIOValid(b []byte) bool {
	if len(b) < 2+4+8+4 || le16(b) != 2 {
		return false
	}
	if le16(b[2:]) != 0x8002 || le16(b[4:]) != 8 {
		return false
	}
	d := b[14:]
	return le16(d) == 0x00b1 && le16(d[2:]) == len(d)-4
}

func cipIOPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if !cipIOValid(b) {
		return false
	}
	s.op("io_data", false, false)
	return true
}
