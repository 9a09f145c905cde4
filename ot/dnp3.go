package ot

// DNP3 (IEEE 1815) link frames: start bytes 0x05 0x64, length (5 plus the
// user data), control, destination, source, a CRC over those 8 bytes,
// then user data in blocks of up to 16 bytes each followed by its CRC.
// The first block of a fragment starts with the transport header (FIR
// bit 0x40) and the application header: control, function code.

var dnp3Proto = register(&proto{name: DNP3, hdr: 10, frameLen: dnp3FrameLen, pdu: dnp3PDU})

func init() {
	addRule(DNP3, "tcp", dnp3Check)
	addRule(DNP3, "udp", dnp3UDPCheck)
}

func dnp3FrameLen(b []byte) int {
	if b[0] != 0x05 || b[1] != 0x64 || b[2] < 5 {
		return -1
	}
	if dnp3CRC(b[:8]) != uint16(b[8])|uint16(b[9])<<8 {
		return -1
	}
	n := int(b[2]) - 5
	return 10 + n + 2*((n+15)/16)
}

// dnp3Valid: the header CRC already matched in dnp3FrameLen (16 bits of
// evidence beyond the start bytes); a whole frame must also have the
// right CRC on its first data block.
func dnp3Valid(b []byte, _ bool) bool {
	if len(b) < 10 {
		return false
	}
	n := int(b[2]) - 5
	if n == 0 || len(b) < 10+min(n, 16)+2 {
		return true
	}
	k := min(n, 16)
	blk := b[10 : 10+k]
	return dnp3CRC(blk) == uint16(b[10+k])|uint16(b[11+k])<<8
}

// dnp3Check: a frame whose header CRC and first data block CRC both
// match (start bytes plus 32 bits of checksum) names the flow by itself,
// whatever the other direction sent (a malformed request answered by an
// outstation is still DNP3); else two valid frames as for other framed
// protocols.
func dnp3Check(orig, resp []byte, op, rp uint16, final bool) verdict {
	for _, b := range [2][]byte{orig, resp} {
		if len(b) >= 10 {
			w := dnp3FrameLen(b)
			if w > 10 && w <= len(b) && dnp3Valid(b[:w], false) {
				return vYes
			}
		}
	}
	return framedCheck(dnp3Proto, dnp3Valid, 20000)(orig, resp, op, rp, final)
}

func dnp3UDPCheck(orig, resp []byte, op, rp uint16, final bool) verdict {
	ok := 0
	for _, b := range [2][]byte{orig, resp} {
		if len(b) == 0 {
			continue
		}
		if len(b) < 10 {
			return vNo
		}
		w := dnp3FrameLen(b)
		if w <= 0 || w > len(b) || !dnp3Valid(b[:w], false) {
			return vNo
		}
		ok++
	}
	if ok == 0 {
		return vNo
	}
	return vYes
}

var dnp3Names = [...]string{
	"confirm", "read", "write", "select", "operate", "direct_operate", "direct_operate_nr",
	"immed_freeze", "immed_freeze_nr", "freeze_clear", "freeze_clear_nr", "freeze_at_time",
	"freeze_at_time_nr", "cold_restart", "warm_restart", "initialize_data", "initialize_appl",
	"start_appl", "stop_appl", "save_config", "enable_unsolicited", "disable_unsolicited",
	"assign_class", "delay_measure", "record_current_time", "open_file", "close_file",
	"delete_file", "get_file_info", "authenticate_file", "abort_file", "activate_config",
	"authenticate_req", "authenticate_err",
}

// dnp3Write: requests that change outputs, counters, configuration or
// the running application.
var dnp3Write = map[byte]bool{
	2: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true, 11: true, 12: true,
	13: true, 14: true, 15: true, 16: true, 17: true, 18: true, 19: true, 22: true, 27: true, 31: true,
}

// dnp3Program: file transfer, configuration activation and cold restart
// (how new firmware or configuration is put into service).
var dnp3Program = map[byte]bool{13: true, 25: true, 27: true, 31: true}

func dnp3PDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if len(b) < 10 {
		return false
	}
	ctrl := b[3]
	// DIR bit: set on frames from the master.
	fromMaster := ctrl&0x80 != 0
	n := int(b[2]) - 5
	if n < 3 || len(b) < 13 {
		return true // link-layer only (status, reset link)
	}
	th, fc := b[10], b[12]
	if th&0x40 == 0 {
		return true // not the first fragment: no application header
	}
	switch {
	case fc <= 0x21:
		if fromMaster {
			s.request(fromOrig)
		}
		s.op(dnp3Names[fc], dnp3Write[fc], dnp3Program[fc])
	case fc == 0x81:
		s.serverSide(fromOrig)
	case fc == 0x82:
		s.serverSide(fromOrig)
		s.op("unsolicited_response", false, false)
	case fc == 0x83:
		s.serverSide(fromOrig)
	default:
		s.op(unknown(int(fc)), false, false)
	}
	return true
}

var dnp3Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xa6bc
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// dnp3CRC is DNP3's CRC-16 (polynomial 0x3d65, reflected, inverted).
func dnp3CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c>>8 ^ dnp3Table[byte(c)^x]
	}
	return ^c
}
