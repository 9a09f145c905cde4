package ot

import "bytes"

// S7comm and S7comm-plus ride on ISO-on-TCP: a TPKT header (version 3,
// reserved 0, length of the whole packet; RFC 1006) and a COTP TPDU
// (ISO 8073: length indicator, PDU type). Data TPDUs (0xf0) carry
// S7comm (protocol id 0x32) or S7comm-plus (0x72). RDP shares TPKT/COTP,
// which is why both need what follows the COTP header to agree.

var s7Proto = register(&proto{name: S7comm, hdr: 4, frameLen: tpktLen, pdu: s7PDU})

func init() {
	register(&proto{name: S7commPlus, hdr: 4, frameLen: tpktLen, pdu: s7PDU})
	addRule(S7comm, "tcp", s7Check(0x32))
	addRule(S7commPlus, "tcp", s7Check(0x72))
}

func tpktLen(b []byte) int {
	if b[0] != 3 || b[1] != 0 {
		return -1
	}
	n := be16(b[2:])
	if n < 7 {
		return -1
	}
	return n
}

// cotp returns the COTP PDU type and the user data after its header, ok
// false when the header does not fit the TPKT packet.
func cotp(b []byte) (typ byte, data []byte, ok bool) {
	if len(b) < 7 {
		return 0, nil, false
	}
	li := int(b[4])
	if li < 2 || 5+li > len(b) {
		return 0, nil, false
	}
	typ = b[5] & 0xf0
	switch typ {
	case 0xf0: // DT: LI 2, then the EOT/number byte
		if li != 2 {
			return 0, nil, false
		}
	case 0xe0, 0xd0: // CR, CC: dst ref, src ref, class; then parameters
		if li < 6 {
			return 0, nil, false
		}
	case 0x80, 0x70, 0x10, 0x60, 0x20, 0x50, 0xc0: // DR, ER, ED, AK, EA, RJ, DC
	default:
		return 0, nil, false
	}
	return typ, b[5+li:], true
}

// s7Header checks an S7comm header: protocol id 0x32, a known ROSCTR, a
// zero reserved field and parameter and data lengths that add up to the
// bytes (when the packet is whole).
func s7Header(d []byte, whole bool) (rosctr byte, param, data []byte, ok bool) {
	if len(d) < 10 || d[0] != 0x32 {
		return 0, nil, nil, false
	}
	rosctr = d[1]
	hl := 10
	switch rosctr {
	case 1, 7:
	case 2, 3:
		hl = 12
	default:
		return 0, nil, nil, false
	}
	if d[2] != 0 || d[3] != 0 || len(d) < hl {
		return 0, nil, nil, false
	}
	pl, dl := be16(d[6:]), be16(d[8:])
	if whole && hl+pl+dl != len(d) {
		return 0, nil, nil, false
	}
	rest := d[hl:]
	param = rest[:min(pl, len(rest))]
	data = rest[len(param):]
	data = data[:min(dl, len(data))]
	return rosctr, param, data, true
}

// s7PlusHeader checks an S7comm-plus frame start: protocol id 0x72, a
// version the protocol has (1, 2, 3, 0xfe for the keep-alive) and a data
// length that fits.
func s7PlusHeader(d []byte, whole bool) bool {
	if len(d) < 4 || d[0] != 0x72 {
		return false
	}
	switch d[1] {
	case 1, 2, 3, 0xfe:
	default:
		return false
	}
	n := be16(d[2:])
	// Header (4) + data + the 4-byte trailer of the last fragment, or a
	// fragment without trailer.
	return !whole || n+4 == len(d) || n+8 == len(d)
}

func s7Check(id byte) func(orig, resp []byte, op, rp uint16, final bool) verdict {
	return func(orig, resp []byte, op, rp uint16, final bool) verdict {
		seen, tsap, total := false, false, 0
		valid := func(b []byte, _ bool) bool {
			typ, d, ok := cotp(b)
			if !ok {
				return false
			}
			switch typ {
			case 0xe0, 0xd0:
				// RDP's connection request carries a cookie or a
				// negotiation request; S7 carries TSAP parameters.
				if hasTSAP(b[11 : 5+int(b[4])]) {
					tsap = true
				}
				return true
			case 0xf0:
				if len(d) == 0 {
					return true
				}
				whole := len(b) == tpktLen(b[:4])
				switch d[0] {
				case 0x32:
					if _, _, _, ok := s7Header(d, whole); ok {
						seen = seen || id == 0x32
						return true
					}
				case 0x72:
					if s7PlusHeader(d, whole) {
						seen = seen || id == 0x72
						return true
					}
				}
				// A data TPDU continuing a fragmented S7 PDU.
				return total > 0
			}
			return true
		}
		for i, b := range [2][]byte{orig, resp} {
			n, ok, _ := walk(s7Proto, valid, b, i == 0)
			if !ok {
				return vNo
			}
			total += n
		}
		switch {
		case seen && total >= 2:
			return vYes
		case seen && final && (tsap || portIn(op, rp, []uint16{102})):
			return vYes
		case final:
			return vNo
		}
		return vMaybe
	}
}

// hasTSAP looks for the calling/called TSAP parameters (0xc1, 0xc2) among
// a CR/CC's parameters.
func hasTSAP(p []byte) bool {
	for len(p) >= 2 {
		code, l := p[0], int(p[1])
		if code == 0xc1 || code == 0xc2 {
			return true
		}
		if len(p) < 2+l {
			return false
		}
		p = p[2+l:]
	}
	return false
}

var s7JobNames = map[byte]string{
	0x00: "cpu_services", 0x04: "read_var", 0x05: "write_var", 0x1a: "request_download",
	0x1b: "download_block", 0x1c: "download_ended", 0x1d: "start_upload", 0x1e: "upload",
	0x1f: "end_upload", 0x28: "pi_service", 0x29: "plc_stop", 0xf0: "setup_communication",
}

// s7comm-plus function codes, from Wireshark's s7comm_plus dissector.
var s7PlusNames = map[int]string{
	0x04bb: "explore", 0x04ca: "create_object", 0x04d4: "delete_object", 0x04f2: "set_variable",
	0x04fc: "get_variable", 0x0506: "add_link", 0x051a: "remove_link", 0x0524: "get_link",
	0x0542: "set_multi_variables", 0x054c: "get_multi_variables", 0x0556: "begin_sequence",
	0x0560: "end_sequence", 0x056b: "invoke", 0x057c: "set_var_substreamed",
	0x0586: "get_var_substreamed", 0x0590: "get_variables_address", 0x059a: "abort",
}

var s7PlusWrite = map[int]bool{0x04ca: true, 0x04d4: true, 0x04f2: true, 0x0542: true, 0x057c: true, 0x0506: true, 0x051a: true, 0x056b: true}

func s7PDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	typ, d, ok := cotp(b)
	if !ok {
		return false
	}
	if typ != 0xf0 || len(d) == 0 {
		return true
	}
	switch d[0] {
	case 0x32:
		s7commPDU(s, fromOrig, d, !cut)
	case 0x72:
		s7PlusPDU(s, fromOrig, d, !cut)
	}
	// Other bytes are continuation fragments of a long PDU.
	return true
}

func s7commPDU(s *Session, fromOrig bool, d []byte, whole bool) {
	rosctr, param, data, ok := s7Header(d, whole)
	if !ok || len(param) == 0 {
		return
	}
	switch rosctr {
	case 1: // job
		s.request(fromOrig)
		fn := param[0]
		name, ok := s7JobNames[fn]
		if !ok {
			name = unknown(int(fn))
		}
		write := fn == 0x05 || fn == 0x28 || fn == 0x29
		// A transfer counts once, at its start: request_download
		// (blocks into the PLC) or start_upload (blocks out of it, the
		// theft of a program looks like this).
		prog := fn == 0x1a || fn == 0x1d
		s.op(name, write, prog)
	case 3: // ack_data
		s.serverSide(fromOrig)
	case 7: // userdata: parameter head 00 01 12, length, method, type/group, subfunction
		if len(param) < 8 || param[0] != 0 || param[1] != 1 || param[2] != 0x12 {
			return
		}
		typ, group, sub := param[5]>>4, param[5]&0x0f, param[6]
		if typ == 4 {
			s.request(fromOrig)
			s.op(s7UserdataName(group, sub), false, false)
			return
		}
		s.serverSide(fromOrig)
		if typ == 8 && group == 4 && sub == 1 {
			s7SZL(s, data)
		}
	}
}

func s7UserdataName(group, sub byte) string {
	switch group {
	case 1:
		return "programmer_commands"
	case 2:
		return "cyclic_data"
	case 3:
		switch sub {
		case 1:
			return "list_blocks"
		case 2:
			return "list_blocks_of_type"
		case 3:
			return "get_block_info"
		}
		return "block_functions"
	case 4:
		switch sub {
		case 1:
			return "read_szl"
		case 2:
			return "message_service"
		}
		return "cpu_functions"
	case 5:
		return "security"
	case 6:
		return "pbc_bsend"
	case 7:
		return "time_functions"
	}
	return unknown(int(group)<<8 | int(sub))
}

// s7SZL reads a Read SZL response: return code 0xff, transport size,
// length, SZL id and index, record length and count, records. SZL 0x0011
// (module identification) records hold the order number (MLFB); 0x001c
// (component identification) index 1 and 2 hold the station and module
// names.
func s7SZL(s *Session, data []byte) {
	if len(data) < 12 || data[0] != 0xff {
		return
	}
	id := be16(data[4:])
	rl, n := be16(data[8:]), be16(data[10:])
	recs := data[12:]
	switch id & 0xff {
	case 0x11:
		for i := 0; i < n && rl >= 22 && len(recs) >= rl; i++ {
			if be16(recs) == 1 {
				s.setDevice("Siemens", string(recs[2:22]))
				return
			}
			recs = recs[rl:]
		}
	case 0x1c:
		var station, module string
		for i := 0; i < n && rl >= 34 && len(recs) >= rl; i++ {
			switch be16(recs) {
			case 1:
				station = string(recs[2:34])
			case 2:
				module = string(recs[2:34])
			}
			recs = recs[rl:]
		}
		if station != "" || module != "" {
			s.setDevice(module, station)
		}
	}
}

func s7PlusPDU(s *Session, fromOrig bool, d []byte, whole bool) {
	if !s7PlusHeader(d, whole) || len(d) < 4 {
		return
	}
	body := d[4:]
	if d[1] == 3 && len(body) >= 33 {
		// Version 3 puts an integrity digest (length byte + 32 bytes)
		// before the opcode.
		if body[0] == 0x20 {
			body = body[33:]
		}
	}
	if len(body) < 5 {
		return
	}
	opcode := body[0]
	fn := be16(body[3:])
	switch opcode {
	case 0x31: // request
		s.request(fromOrig)
		name, ok := s7PlusNames[fn]
		if !ok {
			name = unknown(fn)
		}
		s.op(name, s7PlusWrite[fn], false)
	case 0x32: // response
		s.serverSide(fromOrig)
		if fn == 0x04ca {
			if m := findMLFB(body); m != "" {
				s.setDevice("Siemens", m)
			}
		}
	case 0x33: // notification
		s.serverSide(fromOrig)
	}
}

// findMLFB finds a Siemens order number ("6ES7 214-1AG40-0XB0", the
// "MLFB") in b: the CreateObject response of an S7-1200/1500 session
// names the CPU this way.
func findMLFB(b []byte) string {
	for i := 0; i+19 <= len(b); i++ {
		j := bytes.Index(b[i:], []byte("6ES7 "))
		if j < 0 {
			return ""
		}
		i += j
		if i+19 > len(b) {
			return ""
		}
		m := b[i : i+19]
		if m[8] == '-' && m[14] == '-' && alnum(m[5:8]) && alnum(m[9:14]) && alnum(m[15:19]) {
			return string(m)
		}
	}
	return ""
}

func alnum(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
