package ot

// IEC 60870-5-104: APDUs start with 0x68 and the length of what follows
// (4 to 253): a 4-byte control field that makes an I frame (numbered,
// with an ASDU), an S frame (0x01 0x00, receive number) or a U frame
// (0x03 with exactly one of STARTDT/STOPDT/TESTFR act/con set, and nothing
// after it).

var iec104Proto = register(&proto{name: IEC104, hdr: 2, frameLen: iec104FrameLen, pdu: iec104PDU})

func init() {
	addRule(IEC104, "tcp", framedCheck(iec104Proto, iec104Valid, 2404))
}

func iec104FrameLen(b []byte) int {
	if b[0] != 0x68 || b[1] < 4 {
		return -1
	}
	return 2 + int(b[1])
}

var iec104U = map[byte]string{
	0x07: "startdt_act", 0x0b: "startdt_con", 0x13: "stopdt_act", 0x23: "stopdt_con",
	0x43: "testfr_act", 0x83: "testfr_con",
}

func iec104Valid(b []byte, _ bool) bool {
	if len(b) < 6 {
		return false
	}
	c := b[2:6]
	switch {
	case c[0]&1 == 0: // I frame: an ASDU of type, VSQ, COT, (ORG), address
		if b[1] < 4+6 {
			return false
		}
		if len(b) < 12 {
			return true
		}
		return iec104Names[b[6]] != "" && b[8]&0x3f != 0 && b[8]&0x3f <= 47
	case c[0]&3 == 1: // S frame
		return b[1] == 4 && c[0] == 1 && c[1] == 0
	default: // U frame
		return b[1] == 4 && iec104U[c[0]] != "" && c[1] == 0 && c[2] == 0 && c[3] == 0
	}
}

var iec104Names = map[byte]string{
	1: "m_sp_na_1", 2: "m_sp_ta_1", 3: "m_dp_na_1", 4: "m_dp_ta_1", 5: "m_st_na_1", 6: "m_st_ta_1",
	7: "m_bo_na_1", 8: "m_bo_ta_1", 9: "m_me_na_1", 10: "m_me_ta_1", 11: "m_me_nb_1", 12: "m_me_tb_1",
	13: "m_me_nc_1", 14: "m_me_tc_1", 15: "m_it_na_1", 16: "m_it_ta_1", 17: "m_ep_ta_1", 18: "m_ep_tb_1",
	19: "m_ep_tc_1", 20: "m_ps_na_1", 21: "m_me_nd_1", 30: "m_sp_tb_1", 31: "m_dp_tb_1", 32: "m_st_tb_1",
	33: "m_bo_tb_1", 34: "m_me_td_1", 35: "m_me_te_1", 36: "m_me_tf_1", 37: "m_it_tb_1", 38: "m_ep_td_1",
	39: "m_ep_te_1", 40: "m_ep_tf_1", 45: "c_sc_na_1", 46: "c_dc_na_1", 47: "c_rc_na_1", 48: "c_se_na_1",
	49: "c_se_nb_1", 50: "c_se_nc_1", 51: "c_bo_na_1", 58: "c_sc_ta_1", 59: "c_dc_ta_1", 60: "c_rc_ta_1",
	61: "c_se_ta_1", 62: "c_se_tb_1", 63: "c_se_tc_1", 64: "c_bo_ta_1", 70: "m_ei_na_1",
	100: "c_ic_na_1", 101: "c_ci_na_1", 102: "c_rd_na_1", 103: "c_cs_na_1", 104: "c_ts_na_1",
	105: "c_rp_na_1", 106: "c_cd_na_1", 107: "c_ts_ta_1", 110: "p_me_na_1", 111: "p_me_nb_1",
	112: "p_me_nc_1", 113: "p_ac_na_1", 120: "f_fr_na_1", 121: "f_sr_na_1", 122: "f_sc_na_1",
	123: "f_ls_na_1", 124: "f_af_na_1", 125: "f_sg_na_1", 126: "f_dr_ta_1", 127: "f_sc_nb_1",
}

func iec104PDU(s *Session, fromOrig bool, b []byte, cut bool) bool {
	if !iec104Valid(b, fromOrig) {
		return false
	}
	c := b[2]
	switch {
	case c&1 == 0:
		if len(b) < 9 {
			return true
		}
		typ, cot := b[6], b[8]&0x3f
		name := iec104Names[typ]
		// Activation (6) and deactivation (8) are the controlling
		// station's requests; everything else is the outstation's.
		if cot == 6 || cot == 8 {
			s.request(fromOrig)
			command := typ >= 45 && typ <= 64 || typ == 105 || typ >= 110 && typ <= 113
			s.op(name, command, typ == 122)
			return true
		}
		if typ < 45 {
			s.serverSide(fromOrig)
			s.op(name, false, false)
		}
	case c&3 == 1:
		s.op("s_frame", false, false)
	default:
		switch c {
		case 0x07, 0x13:
			s.request(fromOrig)
		}
		s.op(iec104U[c], false, false)
	}
	return true
}
