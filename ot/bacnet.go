package ot

import "strconv"

// BACnet/IP (ASHRAE 135 Annex J): a BVLC header (type 0x81, function,
// length of the whole datagram), then for the NPDU-carrying functions an
// NPDU (version 1, control, optional destination/source networks, hop
// count) and an APDU whose first nibble is its type.

func init() {
	register(&proto{name: BACnet, raw: true, pdu: bacnetPDU})
	addRule(BACnet, "udp", bacnetCheck)
}

var bacnetConfirmed = map[byte]string{
	0: "acknowledge_alarm", 1: "confirmed_cov_notification", 2: "confirmed_event_notification",
	3: "get_alarm_summary", 4: "get_enrollment_summary", 5: "subscribe_cov", 6: "atomic_read_file",
	7: "atomic_write_file", 8: "add_list_element", 9: "remove_list_element", 10: "create_object",
	11: "delete_object", 12: "read_property", 14: "read_property_multiple",
	15: "write_property", 16: "write_property_multiple", 17: "device_communication_control",
	18: "confirmed_private_transfer", 19: "confirmed_text_message", 20: "reinitialize_device",
	21: "vt_open", 22: "vt_close", 23: "vt_data", 26: "read_range", 27: "life_safety_operation",
	28: "subscribe_cov_property", 29: "get_event_information", 30: "subscribe_cov_property_multiple",
	31: "confirmed_cov_notification_multiple", 32: "confirmed_audit_notification", 33: "audit_log_query",
}

var bacnetConfirmedWrite = map[byte]bool{7: true, 8: true, 9: true, 10: true, 11: true, 15: true, 16: true, 17: true, 20: true, 27: true}

var bacnetUnconfirmed = map[byte]string{
	0: "i_am", 1: "i_have", 2: "unconfirmed_cov_notification", 3: "unconfirmed_event_notification",
	4: "unconfirmed_private_transfer", 5: "unconfirmed_text_message", 6: "time_synchronization",
	7: "who_has", 8: "who_is", 9: "utc_time_synchronization", 10: "write_group",
	11: "unconfirmed_cov_notification_multiple", 12: "unconfirmed_audit_notification",
	13: "who_am_i", 14: "you_are",
}

var bvlcNames = map[byte]string{
	0x00: "bvlc_result", 0x01: "write_broadcast_distribution_table", 0x02: "read_broadcast_distribution_table",
	0x03: "read_broadcast_distribution_table_ack", 0x05: "register_foreign_device",
	0x06: "read_foreign_device_table", 0x07: "read_foreign_device_table_ack",
	0x08: "delete_foreign_device_table_entry",
}

// bacnetNPDU returns the APDU of a BVLC datagram (nil for a network
// layer message or a BVLC-only function) and whether the framing holds.
func bacnetNPDU(b []byte) (apdu []byte, fn byte, ok bool) {
	if len(b) < 4 || b[0] != 0x81 || be16(b[2:]) != len(b) {
		return nil, 0, false
	}
	fn = b[1]
	n := b[4:]
	switch fn {
	case 0x04: // Forwarded-NPDU: original source B/IP address first
		if len(n) < 6 {
			return nil, fn, false
		}
		n = n[6:]
	case 0x09, 0x0a, 0x0b:
	case 0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x08:
		return nil, fn, true
	default:
		return nil, fn, false
	}
	if len(n) < 2 || n[0] != 1 || n[1]&0x50 != 0 {
		return nil, fn, false
	}
	ctrl := n[1]
	i := 2
	if ctrl&0x20 != 0 { // destination: DNET, DLEN, DADR
		if len(n) < i+3 {
			return nil, fn, false
		}
		dlen := int(n[i+2])
		i += 3 + dlen
	}
	if ctrl&0x08 != 0 { // source: SNET, SLEN, SADR (SLEN 0 is invalid)
		if len(n) < i+3 || n[i+2] == 0 {
			return nil, fn, false
		}
		i += 3 + int(n[i+2])
	}
	if ctrl&0x20 != 0 {
		i++ // hop count
	}
	if i > len(n) {
		return nil, fn, false
	}
	if ctrl&0x80 != 0 {
		// Network layer message: type, and nothing we count.
		return nil, fn, i < len(n)
	}
	apdu = n[i:]
	if len(apdu) < 1 || apdu[0]>>4 > 7 {
		return nil, fn, false
	}
	return apdu, fn, true
}

// bacnetCheck: the BVLC length must equal the datagram length, the NPDU
// version must be 1 with reserved control bits clear, and the APDU must
// have a known type and, for requests, a service the standard defines.
func bacnetCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	ok := 0
	for _, b := range [2][]byte{orig, resp} {
		if len(b) == 0 {
			continue
		}
		apdu, fn, good := bacnetNPDU(b)
		if !good {
			return vNo
		}
		if apdu != nil {
			switch apdu[0] >> 4 {
			case 0:
				if len(apdu) < 4 || bacnetConfirmed[apdu[3]] == "" {
					return vNo
				}
			case 1:
				if len(apdu) < 2 || bacnetUnconfirmed[apdu[1]] == "" {
					return vNo
				}
			}
		} else if _, known := bvlcNames[fn]; !known && fn != 0x09 && fn != 0x0a && fn != 0x0b && fn != 0x04 {
			return vNo
		}
		ok++
	}
	if ok == 0 {
		return vNo
	}
	return vYes
}

func bacnetPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	apdu, fn, ok := bacnetNPDU(b)
	if !ok {
		return false
	}
	if apdu == nil {
		if name, ok := bvlcNames[fn]; ok && fn != 0x00 && fn != 0x03 && fn != 0x07 {
			s.op(name, fn == 0x01 || fn == 0x08, false)
		}
		return true
	}
	switch apdu[0] >> 4 {
	case 0: // confirmed request: flags, max segments/APDU, invoke id, (seq, window), service
		i := 3
		if apdu[0]&0x08 != 0 {
			i = 5 // segmented
		}
		if len(apdu) <= i {
			return true
		}
		svc := apdu[i]
		s.request(fromOrig)
		name, ok := bacnetConfirmed[svc]
		if !ok {
			name = unknown(int(svc))
		}
		s.op(name, bacnetConfirmedWrite[svc], svc == 7)
	case 1: // unconfirmed request
		if len(apdu) < 2 {
			return true
		}
		svc := apdu[1]
		name, ok := bacnetUnconfirmed[svc]
		if !ok {
			name = unknown(int(svc))
		}
		switch svc {
		case 0, 1, 2, 3:
			// I-Am, I-Have and notifications come from the device.
			s.serverSide(fromOrig)
		case 7, 8:
			s.request(fromOrig)
		}
		s.op(name, svc == 6 || svc == 9 || svc == 10 || svc == 14, false)
		if svc == 0 {
			bacnetIAm(s, apdu[2:])
		}
	case 3: // complex ack: invoke id, service, then the result
		s.serverSide(fromOrig)
		if len(apdu) > 3 && apdu[2] == 12 {
			bacnetReadPropertyAck(s, apdu[3:])
		}
	default: // simple acks, errors, rejects, aborts come from the server
		s.serverSide(fromOrig)
	}
	return true
}

// bacnetReadPropertyAck keeps a device's vendor-name (property 121) and
// model-name (70) from a ReadProperty-ACK: object identifier (context
// tag 0), property (context 1), optional index (context 2), then the
// value between opening and closing tags 3: a character string.
func bacnetReadPropertyAck(s *Session, b []byte) {
	if len(b) < 7 || b[0] != 0x0c || int(b[1])<<2|int(b[2])>>6 != 8 {
		return // not the device object
	}
	b = b[5:]
	var prop int
	switch b[0] {
	case 0x19:
		prop, b = int(b[1]), b[2:]
	case 0x1a:
		if len(b) < 3 {
			return
		}
		prop, b = be16(b[1:]), b[3:]
	default:
		return
	}
	if prop != 121 && prop != 70 {
		return
	}
	if len(b) < 3 || b[0] != 0x3e || b[1]>>4 != 7 || b[1]&0x08 != 0 {
		return
	}
	l, v := int(b[1]&7), b[2:]
	if l == 5 {
		l, v = int(v[0]), v[1:]
	}
	if l < 1 || l > len(v) {
		return
	}
	str := bacnetString(v[0], v[1:l])
	if prop == 121 {
		s.vendor = str
	} else {
		s.model = str
	}
}

// bacnetString decodes a BACnet character string: UTF-8 (0) as is,
// UCS-2 (4) by its low bytes when the high ones are zero (ASCII text).
func bacnetString(enc byte, b []byte) string {
	switch enc {
	case 0:
		return printable(string(b))
	case 4:
		out := make([]byte, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			if b[i] == 0 {
				out = append(out, b[i+1])
			}
		}
		return printable(string(out))
	}
	return ""
}

// bacnetIAm reads I-Am: device object identifier (application tag 12),
// max APDU length (unsigned), segmentation (enumerated), vendor id
// (unsigned).
func bacnetIAm(s *Session, b []byte) {
	var vals [4]uint32
	for i := range vals {
		if len(b) < 1 {
			return
		}
		l := int(b[0] & 0x07)
		if b[0]&0x08 != 0 || l < 1 || l > 4 || len(b) < 1+l {
			return // context tags or extended lengths: not an I-Am body
		}
		var v uint32
		for _, c := range b[1 : 1+l] {
			v = v<<8 | uint32(c)
		}
		vals[i] = v
		b = b[1+l:]
	}
	instance := vals[0] & 0x3fffff
	s.setDevice("bacnet-device "+strconv.FormatUint(uint64(instance), 10),
		"vendor-id "+strconv.FormatUint(uint64(vals[3]), 10))
}
