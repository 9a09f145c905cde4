package dlp

// The identifier recognisers. Each is called with a digit run b[st:en]
// whose length fits its format, checks what surrounds the run, and adds a
// candidate; rules grades it once the message around it is known.

// rules maps an identifier type to its grading: 0 drops, 1 low, 2 medium,
// 3 high. docs/DETECTIONS.md states these same rules; keep them in step.
var rules = map[string]func(c *cand, inMsg bool) int{
	TypeContainer: func(c *cand, inMsg bool) int {
		ctx := c.strong || c.kw || inMsg
		switch {
		case c.check == CheckNone:
			return 2 // joined from X12 elements without their check digit
		case c.test && ctx:
			return 1
		case c.test:
			return 0
		case c.check == CheckValid && ctx:
			return 3
		case c.check == CheckValid:
			return 2
		case ctx:
			return 1
		}
		return 0
	},
	TypeAWB: func(c *cand, inMsg bool) int {
		ctx := c.kw || inMsg
		switch {
		case c.test:
			return 0
		case c.check == CheckValid && ctx:
			return 3
		case c.check == CheckValid && !c.plain:
			return 2
		case ctx && !c.plain:
			return 1
		}
		return 0
	},
	TypeIMO: func(c *cand, inMsg bool) int {
		switch {
		case c.test:
			return 0
		case c.check == CheckValid && c.strong:
			return 3
		case c.check == CheckValid && (c.kw || inMsg):
			return 2
		case c.strong:
			return 1
		}
		return 0
	},
	TypeSSCC: func(c *cand, inMsg bool) int {
		ctx := c.strong || c.kw
		switch {
		case c.test:
			return 0
		case c.check == CheckValid && ctx:
			return 3
		case c.check == CheckValid && inMsg:
			return 2
		case c.check == CheckValid, ctx:
			return 1
		}
		return 0
	},
	TypeULD: func(c *cand, inMsg bool) int {
		switch {
		case c.strong || (c.kw && inMsg):
			return 3
		case c.kw || inMsg:
			return 2
		case commonULD[c.value[:3]]:
			return 1
		}
		return 0
	},
	TypeUNLocode: func(c *cand, inMsg bool) int {
		if c.strong {
			return 3
		}
		if c.kw {
			return 2
		}
		return 0
	},
	TypeHS: func(c *cand, inMsg bool) int {
		switch {
		case c.strong || (c.kw && inMsg):
			return 3
		case c.kw:
			return 2
		}
		return 0
	},
	TypeEORI: func(c *cand, inMsg bool) int {
		switch {
		case c.kw && inMsg:
			return 3
		case c.kw:
			return 2
		}
		return 0
	},
}

// testContainers are the examples printed in ISO 6346 and vendor docs.
var testContainers = map[string]bool{"CSQU3054383": true, "ABCU1234560": true}

// container recognises ABCU1234565, ABCU 1234565, ABCU-123456-5 and
// ABCU 123456 5 around the digit run b[st:en] (7 digits, or 6 followed by
// the check digit after one separator).
func (s *Scanner) container(b []byte, st, en int) bool {
	var serial [7]byte
	end := en
	if en-st == 6 {
		if en+2 > len(b) || (b[en] != ' ' && b[en] != '-') || !isDigit(b[en+1]) || !wordEnd(b, en+2) {
			return false
		}
		copy(serial[:], b[st:en])
		serial[6] = b[en+1]
		end = en + 2
	} else {
		if !wordEnd(b, en) {
			return false
		}
		copy(serial[:], b[st:en])
	}
	o := st - 4
	if o > 0 && (b[st-1] == ' ' || b[st-1] == '-') {
		o--
	}
	if o < 0 || !allUpper(b[o:o+4]) || !wordStart(b, o) {
		return false
	}
	switch b[o+3] {
	case 'U', 'J', 'Z':
	default:
		return false
	}
	var v [11]byte
	copy(v[:4], b[o:o+4])
	copy(v[4:], serial[:])
	c := cand{typ: TypeContainer, start: o, end: end, value: string(v[:]), check: CheckInvalid}
	if iso6346Check(v[:10]) == int(v[10]-'0') {
		c.check = CheckValid
	}
	c.test = testContainers[c.value] || sameDigits(v[4:10]) || sequential(v[4:10])
	c.kw = keyword(b, o, 48, "container", "cntr", "ctnr", "eqd", "equipment")
	s.add(c)
	return true
}

// awbDashed recognises 933-34099074 and 933 34099074 from the prefix run;
// in Cargo-IMP the number runs straight into the airport codes, so three
// upper-case letters may follow it.
func (s *Scanner) awbDashed(b []byte, st, en int) int {
	if !wordStart(b, st) || en+9 > len(b) || (b[en] != '-' && b[en] != ' ') {
		return en
	}
	d := b[en+1 : en+9]
	if !allDigits(d) || (en+9 < len(b) && isDigit(b[en+9])) {
		return en
	}
	e := en + 9
	if !wordEnd(b, e) && !(e+3 <= len(b) && allUpper(b[e:e+3])) {
		return en
	}
	s.addAWB(b, st, e, string(b[st:en])+"-"+string(d), d, false)
	return e
}

// awbPlain recognises an 11-digit run, which only counts with context.
func (s *Scanner) awbPlain(b []byte, st, en int) bool {
	if !wordStart(b, st) || !wordEnd(b, en) {
		return false
	}
	return s.addAWB(b, st, en, string(b[st:st+3])+"-"+string(b[st+3:en]), b[st+3:en], true)
}

func (s *Scanner) addAWB(b []byte, st, en int, v string, serial []byte, plain bool) bool {
	c := cand{typ: TypeAWB, start: st, end: en, value: v, check: CheckInvalid, plain: plain}
	if awbCheck(serial) {
		c.check = CheckValid
	}
	c.test = v[:3] == "000" || sameDigits(serial[:7]) || sequential(serial[:7])
	c.kw = keyword(b, st, 32, "awb", "waybill", "air way", "mbi/", "mawb", "hawb")
	if plain && !c.kw && c.check == CheckInvalid {
		return false
	}
	s.add(c)
	return true
}

// imo recognises IMO 9321483, IMO No. 9321483, IMO:9321483, and a
// 7-digit EDIFACT component qualified by code list 146.
func (s *Scanner) imo(b []byte, st, en int) bool {
	if !wordStart(b, st) || !wordEnd(b, en) {
		return false
	}
	d := b[st:en]
	strong := hasPrefixAt(b, en, ":146") || hasPrefixAt(b, en, "::146")
	p := st
	skip := func() {
		for p > 0 && (b[p-1] == ' ' || b[p-1] == ':' || b[p-1] == '.' || b[p-1] == '#' || b[p-1] == '-') {
			p--
		}
	}
	skip()
	for _, w := range []string{"No", "NO", "no", "Number", "NUMBER", "number", "nr", "Nr"} {
		if p >= len(w) && string(b[p-len(w):p]) == w {
			p -= len(w)
			skip()
			break
		}
	}
	if p >= 3 && string(b[p-3:p]) == "IMO" && wordStart(b, p-3) {
		strong = true
	}
	kw := !strong && keyword(b, st, 48, "imo", "vessel", "lloyd")
	if !strong && !kw {
		return false
	}
	c := cand{typ: TypeIMO, start: st, end: en, value: string(d), check: CheckInvalid, strong: strong, kw: kw}
	if imoCheck(d) {
		c.check = CheckValid
	}
	c.test = d[0] == '0' || sameDigits(d) || sequential(d)
	s.add(c)
	return true
}

// sscc recognises 18-digit SSCCs, alone, after the (00) application
// identifier or with 00 run into them (a 20-digit GS1 element string).
func (s *Scanner) sscc(b []byte, st, en int) bool {
	if !wordStart(b, st) || !wordEnd(b, en) {
		return false
	}
	d := b[st:en]
	strong := false
	if len(d) == 20 {
		if d[0] != '0' || d[1] != '0' {
			return false
		}
		d, strong = d[2:], true
	}
	if hasPrefixAt(b, st-4, "(00)") || hasPrefixAt(b, st-5, "(00) ") {
		strong = true
	}
	c := cand{typ: TypeSSCC, start: st, end: en, value: string(d), check: CheckInvalid, strong: strong}
	if gs1Check(d) {
		c.check = CheckValid
	}
	c.kw = keyword(b, st, 32, "sscc", "gin+bj", "serial shipping")
	// No GS1 company prefix starts with five zeros: such runs are padding.
	c.test = sameDigits(d[1:17]) || sequential(d[1:17]) || string(d[1:6]) == "00000"
	s.add(c)
	return true
}

// commonULD are ULD type codes frequent enough to report without context.
var commonULD = map[string]bool{
	"AKE": true, "AKH": true, "AKN": true, "ALF": true, "ALP": true, "AMA": true,
	"AMF": true, "AMJ": true, "AAP": true, "AAU": true, "DPE": true, "DQF": true,
	"PAG": true, "PAJ": true, "PGA": true, "PKC": true, "PLA": true, "PMC": true,
	"PQA": true, "PRA": true, "PYB": true, "RAP": true, "RKN": true, "HMA": true,
}

// uld recognises IATA ULD identifiers: type code (3 letters), 4 or 5 digit
// serial and a 2-character owner (airline) code, e.g. PMC98669KZ.
func (s *Scanner) uld(b []byte, st, en int) bool {
	o := st - 3
	if o < 0 || !allUpper(b[o:st]) || !wordStart(b, o) || en+2 > len(b) ||
		!isAlnum(b[en]) || !isAlnum(b[en+1]) || !wordEnd(b, en+2) ||
		!(isUpper(b[en]) || isUpper(b[en+1])) || class[b[en]]&cLower != 0 || class[b[en+1]]&cLower != 0 {
		return false
	}
	c := cand{typ: TypeULD, start: o, end: en + 2, value: string(b[o : en+2]), check: CheckNone}
	c.strong = hasPrefixAt(b, o-4, "ULD/")
	c.kw = keyword(b, o, 32, "uld", "pallet", "unit load")
	s.add(c)
	return true
}

// hsCode recognises HS/HTS/CN tariff codes, 6, 8 or 10 digits or dotted
// (8471.30.01), only behind a tariff keyword or an EDIFACT :HS qualifier.
func (s *Scanner) hsCode(b []byte, st, en int) bool {
	if !wordStart(b, st) {
		return false
	}
	var d [12]byte
	n := copy(d[:], b[st:en])
	e := en
	if n == 4 {
		for k := 0; k < 3 && e+3 <= len(b) && b[e] == '.' && isDigit(b[e+1]) && isDigit(b[e+2]); k++ {
			d[n], d[n+1] = b[e+1], b[e+2]
			n += 2
			e += 3
		}
		if n == 4 {
			return false
		}
	}
	if !wordEnd(b, e) && !(e < len(b) && b[e] == '.' && wordEnd(b, e+1)) {
		return false
	}
	ch := int(d[0]-'0')*10 + int(d[1]-'0')
	if ch < 1 || ch > 97 || ch == 77 {
		return false
	}
	strong := hasPrefixAt(b, e, ":HS") || hasPrefixAt(b, e, "::HS")
	kw := keyword(b, st, 24, "hs code", "hs-code", "hscode", "hs:", "hs ", "hts", "tariff", "commodity code", "taric", "harmoni", "cn code")
	if !strong && !kw {
		return false
	}
	s.add(cand{typ: TypeHS, start: st, end: e, value: string(d[:n]), check: CheckNone, strong: strong, kw: kw})
	return true
}

// eori recognises EORI numbers: a country code run into up to 15 digits,
// only behind the keyword EORI.
func (s *Scanner) eori(b []byte, st, en int) {
	if en-st < 5 || en-st > 15 || st < 2 || !wordStart(b, st-2) || !wordEnd(b, en) || !eoriCountry(b[st-2:st]) {
		return
	}
	if !keyword(b, st-2, 32, "eori") {
		return
	}
	s.add(cand{typ: TypeEORI, start: st - 2, end: en, value: string(b[st-2 : en]), check: CheckNone, kw: true})
}

// eoriCountry: EU member states, Northern Ireland (XI), GB and the
// countries that issue EORI-like numbers in the same form.
func eoriCountry(cc []byte) bool {
	switch string(cc) {
	case "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
		"LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI", "GB", "CH", "NO":
		return true
	}
	return false
}

// iso3166 lists the ISO 3166-1 alpha-2 codes, for UN/LOCODE prefixes.
const iso3166 = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
	"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
	"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XZ"

var countries = func() map[string]bool {
	m := map[string]bool{}
	for i := 0; i+2 <= len(iso3166); i += 3 {
		m[iso3166[i:i+2]] = true
	}
	return m
}()

// isLocode checks the UN/LOCODE form: a valid country code and three
// letters or digits 2-9.
func isLocode(v []byte) bool {
	if len(v) != 5 || !countries[string(v[:2])] {
		return false
	}
	for _, c := range v[2:] {
		if !isUpper(c) && !(c >= '2' && c <= '9') {
			return false
		}
	}
	return true
}
