package ot

import "bytes"

// OPC UA binary (OPC 10000-6, 7.1.2): every message starts with a 3-byte
// type (HEL, ACK, OPN, MSG, CLO, ERR, RHE), a chunk type ('F' final, 'C'
// intermediate, 'A' abort) and the message size (little-endian, header
// included). HEL carries the endpoint URL; MSG chunks carry a service
// request or response whose type is a numeric NodeId.

var opcuaProto = register(&proto{name: OPCUA, hdr: 8, frameLen: opcuaFrameLen, pdu: opcuaPDU})

func init() {
	addRule(OPCUA, "tcp", opcuaCheck)
}

func opcuaFrameLen(b []byte) int {
	switch string(b[:3]) {
	case "HEL", "ACK", "ERR", "RHE":
		if b[3] != 'F' {
			return -1
		}
	case "OPN", "MSG", "CLO":
		if b[3] != 'F' && b[3] != 'C' && b[3] != 'A' {
			return -1
		}
	default:
		return -1
	}
	n := le32(b[4:])
	// HEL is the longest fixed part (32 bytes); chunks are at most the
	// negotiated buffer size, which no implementation sets past 16 MiB.
	if n < 8 || n > 16<<20 {
		return -1
	}
	return int(n)
}

func opcuaValid(b []byte, fromOrig bool) bool {
	switch string(b[:3]) {
	case "HEL":
		// Protocol version 0, buffer sizes >= 8192, then the URL.
		if len(b) < 32 || le32(b[8:]) != 0 || le32(b[12:]) < 8192 || le32(b[16:]) < 8192 {
			return false
		}
		return true
	case "ACK":
		return len(b) >= 28 && le32(b[8:]) == 0
	case "MSG", "OPN", "CLO":
		return len(b) >= 12
	}
	return len(b) >= 8
}

// opcuaCheck: a HEL whose endpoint URL starts "opc.tcp://" is enough by
// itself (a magic, a size that frames the segment, protocol version 0 and
// the URL scheme); otherwise two framed, valid messages.
func opcuaCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	if len(orig) >= 8 && string(orig[:4]) == "HELF" {
		if w := opcuaFrameLen(orig); w > 0 && w <= len(orig) && opcuaValid(orig[:w], true) {
			if u, ok := opcuaString(orig[28:w]); ok && bytes.HasPrefix(u, []byte("opc.tcp://")) {
				return vYes
			}
		}
	}
	return framedCheck(opcuaProto, opcuaValid, 4840)(orig, resp, op, rp, final)
}

// opcuaString reads an OPC UA String (int32 length, -1 for null, bytes).
func opcuaString(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := int32(le32(b))
	if n < 0 {
		return nil, true
	}
	if int(n) > len(b)-4 {
		return nil, false
	}
	return b[4 : 4+n], true
}

// Service request encodings (the DefaultBinary NodeIds of
// Opc.Ua.NodeIds.csv). Writes change the address space or values; Call
// runs a method, which in practice commands the device.
var opcuaServices = map[int]string{
	422: "find_servers", 428: "get_endpoints", 446: "open_secure_channel", 452: "close_secure_channel",
	461: "create_session", 467: "activate_session", 473: "close_session", 479: "cancel",
	488: "add_nodes", 494: "add_references", 500: "delete_nodes", 506: "delete_references",
	527: "browse", 533: "browse_next", 554: "translate_browse_paths", 560: "register_nodes",
	566: "unregister_nodes", 615: "query_first", 621: "query_next", 631: "read", 664: "history_read",
	673: "write", 700: "history_update", 712: "call", 751: "create_monitored_items",
	763: "modify_monitored_items", 769: "set_monitoring_mode", 775: "set_triggering",
	781: "delete_monitored_items", 787: "create_subscription", 793: "modify_subscription",
	799: "set_publishing_mode", 826: "publish", 832: "republish", 841: "transfer_subscriptions",
	847: "delete_subscriptions",
}

var opcuaWrite = map[int]bool{488: true, 494: true, 500: true, 506: true, 673: true, 700: true, 712: true}

func opcuaPDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if len(b) < 8 {
		return false
	}
	i := dirIdx(fromOrig)
	switch string(b[:3]) {
	case "HEL":
		s.request(fromOrig)
		s.op("hello", false, false)
		if len(b) >= 32 {
			if u, ok := opcuaString(b[28:]); ok && len(u) > 0 {
				s.setDevice(string(u))
			}
		}
	case "ACK", "RHE":
		s.serverSide(fromOrig)
	case "OPN", "CLO":
		// Requests come from the client; the service NodeId tells.
	case "MSG":
		// Only the first chunk of a message carries its type. state[i]
		// is 1 while a multi-chunk message continues.
		first := s.state[i] == 0
		if b[3] == 'C' {
			s.state[i] = 1
		} else {
			s.state[i] = 0
		}
		if !first || len(b) < 28 {
			return true
		}
		// Header 8, secure channel 4, token 4, sequence number 4,
		// request id 4, then the type NodeId.
		id, ok := opcuaNodeID(b[24:])
		if !ok {
			// Encrypted (SignAndEncrypt) bodies hide the service.
			s.op("encrypted", false, false)
			return true
		}
		if name, ok := opcuaServices[id]; ok {
			s.request(fromOrig)
			s.op(name, opcuaWrite[id], false)
		} else if _, ok := opcuaServices[id-3]; ok {
			// Responses are the request's NodeId + 3.
			s.serverSide(fromOrig)
		} else {
			s.op("service_"+unknown(id), false, false)
		}
	}
	return true
}

// opcuaNodeID reads a numeric NodeId in namespace 0 (two-byte or
// four-byte encoding).
func opcuaNodeID(b []byte) (int, bool) {
	switch {
	case len(b) >= 2 && b[0] == 0x00:
		return int(b[1]), true
	case len(b) >= 4 && b[0] == 0x01 && b[1] == 0:
		return le16(b[2:]), true
	}
	return 0, false
}
