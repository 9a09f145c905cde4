package ot

// Modbus/TCP: a 7-byte MBAP header (transaction id, protocol id 0, length
// of what follows including the unit id, unit id) and a PDU that starts
// with the function code; exceptions set its top bit. Function names are
// Zeek's (base/protocols/modbus/consts.zeek) in lower case; Schneider's
// UMAS (function 90) is named by its sub-function.

var modbusNames = map[byte]string{
	0x01: "read_coils", 0x02: "read_discrete_inputs", 0x03: "read_holding_registers",
	0x04: "read_input_registers", 0x05: "write_single_coil", 0x06: "write_single_register",
	0x07: "read_exception_status", 0x08: "diagnostics", 0x0b: "get_comm_event_counter",
	0x0c: "get_comm_event_log", 0x0f: "write_multiple_coils", 0x10: "write_multiple_registers",
	0x11: "report_slave_id", 0x14: "read_file_record", 0x15: "write_file_record",
	0x16: "mask_write_register", 0x17: "read_write_multiple_registers", 0x18: "read_fifo_queue",
	0x2b: "encap_interface_transport",
	// Machine, vendor and network specific functions.
	0x09: "program_484", 0x0a: "poll_484", 0x0d: "program_584_984", 0x0e: "poll_584_984",
	0x12: "program_884_u84", 0x13: "reset_comm_link_884_u84", 0x28: "program_concept",
	0x5a: "umas", 0x7d: "firmware_replacement", 0x7e: "program_584_984_2", 0x7f: "report_local_address",
}

// modbusWrite: functions that change coils, registers or files.
var modbusWrite = map[byte]bool{0x05: true, 0x06: true, 0x0f: true, 0x10: true, 0x15: true, 0x16: true, 0x17: true}

// modbusProgram: the program and firmware functions of the public
// function table (Modicon 484/584/984/884, Concept, firmware replacement).
var modbusProgram = map[byte]bool{0x09: true, 0x0d: true, 0x12: true, 0x28: true, 0x7d: true, 0x7e: true}

// UMAS sub-functions (Schneider Electric Unity/EcoStruxure), as described
// in public analyses of the protocol. In UMAS terms "upload" sends a
// strategy (program) to the PLC and "download" reads it back.
var umasNames = map[byte]string{
	0x01: "umas_init_comm", 0x02: "umas_read_id", 0x03: "umas_read_project_info",
	0x04: "umas_read_plc_info", 0x06: "umas_read_card_info", 0x0a: "umas_repeat",
	0x10: "umas_take_plc_reservation", 0x11: "umas_release_plc_reservation", 0x12: "umas_keep_alive",
	0x20: "umas_read_memory_block", 0x21: "umas_write_memory_block", 0x22: "umas_read_variables", 0x23: "umas_write_variables",
	0x24: "umas_read_coils_registers", 0x25: "umas_write_coils_registers",
	0x30: "umas_initialize_upload", 0x31: "umas_upload_block", 0x32: "umas_end_upload",
	0x33: "umas_initialize_download", 0x34: "umas_download_block", 0x35: "umas_end_download",
	0x39: "umas_read_ethernet_master_data", 0x40: "umas_start_plc", 0x41: "umas_stop_plc",
	0x50: "umas_monitor_plc", 0x58: "umas_check_plc", 0x70: "umas_read_io_object",
	0x71: "umas_write_io_object", 0x73: "umas_get_status_module",
}

var modbusProto = register(&proto{name: Modbus, hdr: 7, frameLen: modbusFrameLen, pdu: modbusPDU})

func init() {
	addRule(Modbus, "tcp", modbusCheck)
}

func modbusFrameLen(b []byte) int {
	if b[2] != 0 || b[3] != 0 {
		return -1
	}
	n := be16(b[4:])
	// The unit id and a function code at least; the longest PDU is 253
	// bytes (Modbus Application Protocol 1.1b3, 4.1).
	if n < 2 || n > 254 {
		return -1
	}
	return 6 + n
}

// modbusCheck wants MBAP-framed PDUs only, and among them a function code
// the protocol defines (or its exception): a scanner's function 0 probe
// frames like Modbus but says nothing by itself.
func modbusCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	v := framedCheck(modbusProto, func(b []byte, _ bool) bool { return len(b) >= 8 }, 502)(orig, resp, op, rp, final)
	if v != vYes {
		return v
	}
	for _, b := range [2][]byte{orig, resp} {
		for len(b) >= 8 {
			fc := b[7] &^ 0x80
			if _, ok := modbusNames[fc]; ok {
				return vYes
			}
			w := modbusFrameLen(b)
			if w <= 0 || w > len(b) {
				break
			}
			b = b[w:]
		}
	}
	if final {
		return vNo
	}
	return vMaybe
}

func modbusPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if len(b) < 8 {
		return false
	}
	pdu := b[7:]
	fc := pdu[0]
	if fc&0x80 != 0 {
		// Exceptions come from the server only.
		s.serverSide(fromOrig)
		return true
	}
	if !modbusIsRequest(fromOrig, s, pdu, len(b)) {
		s.serverSide(fromOrig)
		if fc == 0x2b {
			modbusDeviceID(s, pdu)
		} else if fc == 0x11 {
			modbusServerID(s, pdu)
		}
		return true
	}
	s.request(fromOrig)
	name, ok := modbusNames[fc]
	if !ok {
		name = unknown(int(fc))
	}
	write, prog := modbusWrite[fc], modbusProgram[fc]
	if fc == 0x5a && len(pdu) >= 3 {
		sub := pdu[2]
		if n, ok := umasNames[sub]; ok {
			name = n
		} else {
			name = "umas_" + unknown(int(sub))
		}
		write = sub == 0x21 || sub == 0x23 || sub == 0x25 || sub == 0x40 || sub == 0x41 || sub == 0x71
		prog = sub == 0x30 || sub == 0x33 // a transfer counts once, at its start
	}
	if fc == 0x2b && len(pdu) >= 2 && pdu[1] == 0x0e {
		name = "read_device_identification"
	}
	s.op(name, write, prog)
	return true
}

// modbusIsRequest tells a request from a normal response by shape where
// the function's request and response differ unambiguously, else by
// direction (the originator of a TCP connection is the Modbus client).
func modbusIsRequest(fromOrig bool, s *Session, pdu []byte, adu int) bool {
	n := len(pdu)
	byteCount := n >= 2 && int(pdu[1]) == n-2 // the response shape of reads
	switch pdu[0] {
	case 0x01, 0x02, 0x03, 0x04:
		// Request: address and quantity; response: byte count, bytes.
		switch {
		case n == 5 && !byteCount:
			return true
		case byteCount && n != 5:
			return false
		}
	case 0x0f, 0x10:
		// Request: address, quantity, byte count, values; response:
		// address and quantity.
		switch {
		case n >= 7 && int(pdu[5]) == n-6:
			return true
		case n == 5 && !fromOrig:
			return false
		}
	case 0x17:
		switch {
		case n >= 11 && int(pdu[9]) == n-10:
			return true
		case byteCount && !fromOrig:
			return false
		}
	case 0x2b:
		// MEI request: type, read code, object id; responses are longer.
		if n == 4 {
			return true
		}
		if n > 6 {
			return false
		}
	case 0x11, 0x07, 0x0b, 0x0c:
		// Requests are the function code alone.
		return n == 1
	case 0x5a:
		// UMAS replies carry status 0xfe (ok) or 0xfd (error) after
		// the session byte.
		if n >= 3 && (pdu[2] == 0xfe || pdu[2] == 0xfd) && !fromOrig {
			return false
		}
	}
	return fromOrig
}

// modbusDeviceID reads a Read Device Identification response (function
// 43, MEI type 14): basic objects 0 vendor, 1 product code, 2 revision.
func modbusDeviceID(s *Session, pdu []byte) {
	if len(pdu) < 7 || pdu[1] != 0x0e {
		return
	}
	n := int(pdu[6])
	b := pdu[7:]
	var vendor, product, rev, name string
	for i := 0; i < n && len(b) >= 2; i++ {
		id, l := b[0], int(b[1])
		if len(b) < 2+l {
			break
		}
		v := string(b[2 : 2+l])
		switch id {
		case 0:
			vendor = v
		case 1:
			product = v
		case 2:
			rev = v
		case 4:
			name = v
		}
		b = b[2+l:]
	}
	if name != "" && product == "" {
		product = name
	}
	s.setDevice(vendor, product, rev)
}

// modbusServerID reads Report Server ID: byte count, server id, run
// indicator, then device-specific data that is often text.
func modbusServerID(s *Session, pdu []byte) {
	if len(pdu) < 4 || int(pdu[1]) != len(pdu)-2 {
		return
	}
	data := pdu[4:]
	if len(data) >= 4 && printable(string(data)) != "" && mostlyText(data) {
		s.setDevice(string(data))
	}
}

func mostlyText(b []byte) bool {
	t := 0
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			t++
		}
	}
	return t*4 >= len(b)*3
}
