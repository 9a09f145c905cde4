package dlp

import (
	"bytes"
	"sort"
)

// Message classification. Headers are found with a few bytes.Index passes
// whose first byte is rare in text (UN, ISA/ST, Reference", "@) and, for
// Cargo-IMP and Cargo-XML, from the digit loop (a line starting XXX/n, a
// namespace iata:name:N). Each header opens a span that ends at the
// message's trailer; a span still open at the end of a window is carried
// into the next one.

const openEnd = 1 << 40

type msgKind uint8

const (
	kEDI msgKind = iota + 1
	kX12
	kIMP
	kXML
	kJSON
)

type span struct {
	start, end int // in buf; end == openEnd while no trailer was seen
	msg        Message
	kind       msgKind
	edi        ediSeps
	x12        x12Seps
	closeTag   string
}

type ediSeps struct{ comp, data, rel, seg byte }

var defaultEDI = ediSeps{':', '+', '?', '\''}

type x12Seps struct{ elem, comp, seg byte }

// Message types that carry cargo data (container, transport, customs and
// despatch messages); others of the same syntax are classified but Cargo
// is false.
var ediCargo = set("BAPLIE BAYPLN CALINF COARRI CODECO CODENO COEDOR COHAOR COPARN COPINO COPRAR COREOR COSTCO COSTOR " +
	"CUSCAR CUSDEC CUSREP CUSRES CUSEXP DESADV DGRECA IFCSUM IFTCCA IFTDGN IFTIAG IFTICL IFTMAN IFTMBC IFTMBF IFTMBP " +
	"IFTMCS IFTMIN IFTRIN IFTSAI IFTSTA IFTSTQ MOVINS TANSTA VERMAS VESDEP BERMAN WASDIS SANCRT CONTRL")

var x12Cargo = set("104 106 107 108 109 110 120 125 126 127 128 129 130 204 210 211 212 213 214 215 216 217 218 219 220 " +
	"222 223 224 225 300 301 303 304 309 310 311 312 313 315 317 319 322 323 324 325 326 350 352 353 354 355 356 357 " +
	"358 361 404 410 414 417 418 419 420 421 424 425 426 429 431 432 433 434 435 436 437 440 451 452 453 455 456 460 " +
	"463 466 468 470 475 485 486 490 492 494 601 602 856 857 858 859 990 996")

// impTypes are the IATA Cargo-IMP message identifiers; MVT, LDM and the
// other aircraft messages have no /version and are not cargo messages.
var impTypes = set("FWB FFM FHL FSU FZB FWR FSR FMA FNA FBL FFR FFA FDA FSA FSB FSI FXB FXR FMB FRC FRI FRX FVR FBR FOH CSD CSN UCM FWR FAD FBM")

var xmlTypes = map[string]string{
	"waybill": "XFWB", "housewaybill": "XFZB", "housemanifest": "XFHL", "flightmanifest": "XFFM",
	"statusmessage": "XFSU", "bookingrequest": "XFFR", "bookingresponse": "XFFA", "freightbooked": "XFBL",
	"customsstatus": "XCSN", "securitydeclaration": "XSDG",
}

var dcsaKeys = set("transportDocumentReference carrierBookingReference carrierBookingRequestReference equipmentReference shippingInstructionsReference")

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range bytes.Fields([]byte(s)) {
		m[string(w)] = true
	}
	return m
}

// Classify returns the messages in b (a whole input held in memory).
func Classify(b []byte) []Message {
	_, m := Scan(b)
	return m
}

func (s *Scanner) classify(b []byte, from, limit int, final bool) {
	s.spans = s.spans[:0]
	var found []*span
	if s.open != nil {
		sp := s.open
		sp.end = openEnd
		s.findEnd(b, sp, max(0, from-64), limit, final)
		found = append(found, sp)
	}
	s.headersEDI(b, from, limit, &found)
	s.headersX12(b, from, limit, &found)
	s.headersIMP(b, from, limit, &found)
	s.headersIATA(b, from, limit, &found)
	s.headersDCSA(b, from, limit, &found)
	sort.SliceStable(found, func(i, j int) bool { return found[i].start < found[j].start })
	// A span that reaches into the next one ends where that one begins;
	// of two at one place the first found is kept.
	for _, sp := range found {
		if n := len(s.spans); n > 0 {
			prev := s.spans[n-1]
			if sp.start <= prev.start {
				continue
			}
			if prev.end > sp.start {
				prev.end = sp.start
			}
		}
		s.spans = append(s.spans, sp)
	}
	s.open = nil
	if n := len(s.spans); n > 0 && s.spans[n-1].end > limit && !final {
		s.open = s.spans[n-1]
	}
}

func (s *Scanner) newSpan(b []byte, start int, kind msgKind, typ, ver string, cargo bool) *span {
	return &span{start: start, end: openEnd, kind: kind,
		msg: Message{Type: typ, Version: ver, Offset: s.base + int64(start), Cargo: cargo}}
}

// findEnd looks for sp's trailer from p on; a trailer past limit leaves the
// span open unless this is the last window.
func (s *Scanner) findEnd(b []byte, sp *span, p, limit int, final bool) {
	end := -1
	switch sp.kind {
	case kEDI:
		end = ediEnd(b, max(p, sp.start+3), sp.edi)
	case kX12:
		end = x12End(b, p, sp.x12)
	case kIMP:
		end = impEnd(b, max(p, sp.start))
	case kXML:
		if i := bytes.Index(b[p:], []byte(sp.closeTag)); i >= 0 {
			end = p + i + len(sp.closeTag)
		}
	case kJSON:
		end = jsonEnd(b, max(p, sp.start))
		if end < 0 {
			end = limit // JSON spans are not carried: the object is taken to end here
		}
	}
	switch {
	case end >= 0 && (end <= limit || final):
		sp.end = end
	case final:
		sp.end = len(b)
	}
}

// ---- UN/EDIFACT

func (s *Scanner) headersEDI(b []byte, from, limit int, found *[]*span) {
	for p := from; p < limit; {
		i := bytes.Index(b[p:limit], []byte("UN"))
		if i < 0 {
			return
		}
		p += i
		if p+3 < len(b) && wordStart(b, p) {
			switch b[p+2] {
			case 'A':
				if p+9 <= len(b) {
					u := ediSeps{comp: b[p+3], data: b[p+4], rel: b[p+6], seg: b[p+8]}
					if !isAlnum(u.comp) && !isAlnum(u.data) && !isAlnum(u.seg) {
						s.una = &u
					}
				}
			case 'H':
				if sp := s.parseUNH(b, p); sp != nil {
					s.findEnd(b, sp, p, limit, false)
					*found = append(*found, sp)
				}
			}
		}
		p += 3
	}
}

// parseUNH reads UNH+ref+TYPE:VER:REL:AGENCY[:ASSOC]'.
func (s *Scanner) parseUNH(b []byte, p int) *span {
	seps := defaultEDI
	if s.una != nil {
		seps = *s.una
	}
	if p+4 > len(b) || b[p+3] != seps.data {
		return nil
	}
	end := min(len(b), p+256)
	var elems [][]byte
	cur := []byte{}
	for i := p + 4; i < end; i++ {
		c := b[i]
		if c == seps.rel && i+1 < end {
			i++
			cur = append(cur, b[i])
			continue
		}
		if c == seps.data || c == seps.seg {
			elems = append(elems, cur)
			cur = []byte{}
			if c == seps.seg {
				break
			}
			continue
		}
		cur = append(cur, c)
	}
	if len(elems) < 2 {
		return nil
	}
	comps := bytes.Split(elems[1], []byte{seps.comp})
	typ := comps[0]
	if len(typ) != 6 || !allUpper(typ) {
		return nil
	}
	ver := ""
	if len(comps) >= 3 {
		ver = string(comps[1]) + string(comps[2])
	}
	sp := s.newSpan(b, p, kEDI, "EDIFACT/"+string(typ), ver, ediCargo[string(typ)])
	sp.edi = seps
	return sp
}

// ediEnd finds the end of the UNT segment (or the start of the next UNH or
// UNZ when a trailer is missing).
func ediEnd(b []byte, p int, seps ediSeps) int {
	for p < len(b) {
		i := bytes.Index(b[p:], []byte("UN"))
		if i < 0 {
			return -1
		}
		p += i
		if p+3 < len(b) && (p == 0 || b[p-1] == seps.seg || b[p-1] == '\n' || b[p-1] == '\r') {
			switch b[p+2] {
			case 'T':
				for j := p + 3; j < len(b) && j < p+128; j++ {
					if b[j] == seps.rel {
						j++
						continue
					}
					if b[j] == seps.seg {
						return j + 1
					}
				}
			case 'H', 'Z':
				if p > 0 {
					return p
				}
			}
		}
		p += 2
	}
	return -1
}

// ---- ANSI X12

func (s *Scanner) headersX12(b []byte, from, limit int, found *[]*span) {
	type isa struct {
		pos  int
		seps x12Seps
	}
	var isas []isa
	if s.x12 != nil {
		isas = append(isas, isa{from, *s.x12}) // an interchange still open
	}
	for p := from; p < limit && len(isas) < 64; {
		i := bytes.Index(b[p:limit], []byte("ISA"))
		if i < 0 {
			break
		}
		p += i
		if x, ok := parseISA(b, p); ok {
			isas = append(isas, isa{p, x})
		}
		p += 3
	}
	// Transaction sets are searched for only inside an interchange, from
	// its ISA to its IEA, with that ISA's separators.
	s.x12 = nil
	seg := 0
	for k, in := range isas {
		x := in.seps
		hi := limit
		if k+1 < len(isas) {
			hi = isas[k+1].pos
		}
		open := true
		if e := bytes.Index(b[in.pos:hi], []byte{'I', 'E', 'A', x.elem}); e >= 0 {
			hi, open = in.pos+e, false
		}
		if open && k == len(isas)-1 {
			s.x12 = &isas[k].seps
		}
		pat := []byte{'S', 'T', x.elem}
		for p := in.pos; p < hi && seg < 4096; {
			i := bytes.Index(b[p:hi], pat)
			if i < 0 {
				break
			}
			p += i
			if p+6 < len(b) && segStart(b, p, x.seg) && allDigits(b[p+3:p+6]) && b[p+6] == x.elem {
				code := string(b[p+3 : p+6])
				sp := s.newSpan(b, p, kX12, "X12/"+code, "", x12Cargo[code])
				sp.x12 = x
				s.findEnd(b, sp, p, limit, false)
				*found = append(*found, sp)
				seg++
			}
			p += 3
		}
	}
}

// segStart reports whether p follows a segment terminator (and optional
// line break), i.e. a segment begins there.
func segStart(b []byte, p int, seg byte) bool {
	q := p
	for q > 0 && (b[q-1] == '\n' || b[q-1] == '\r') && b[q-1] != seg {
		q--
	}
	return q == 0 || b[q-1] == seg
}

// parseISA reads the separators from the fixed-layout ISA segment: the
// element separator is its fourth byte, the component separator is ISA16,
// and the byte after it terminates segments.
func parseISA(b []byte, p int) (x12Seps, bool) {
	if p+106 > len(b) || !wordStart(b, p) {
		return x12Seps{}, false
	}
	e := b[p+3]
	if isAlnum(e) || e == ' ' {
		return x12Seps{}, false
	}
	n := 0
	for i := p + 3; i < p+120 && i < len(b); i++ {
		if b[i] == e {
			n++
			if n == 16 && i+2 < len(b) {
				seg := b[i+2]
				if isAlnum(seg) || seg == ' ' {
					return x12Seps{}, false
				}
				return x12Seps{elem: e, comp: b[i+1], seg: seg}, true
			}
		}
	}
	return x12Seps{}, false
}

func x12End(b []byte, p int, x x12Seps) int {
	pat := []byte{'S', 'E', x.elem}
	for p < len(b) {
		i := bytes.Index(b[p:], pat)
		if i < 0 {
			return -1
		}
		p += i
		if segStart(b, p, x.seg) {
			if j := bytes.IndexByte(b[p:min(len(b), p+128)], x.seg); j >= 0 {
				return p + j + 1
			}
			return -1
		}
		p += 3
	}
	return -1
}

// ---- IATA Cargo-IMP

func (s *Scanner) headersIMP(b []byte, from, limit int, found *[]*span) {
	for _, p := range s.imp {
		if p < from || p >= limit || (p > 0 && b[p-1] != '\n') || !impTypes[string(b[p:p+3])] {
			continue
		}
		q := p + 4
		for q < len(b) && isDigit(b[q]) {
			q++
		}
		if q < len(b) && b[q] == '\r' {
			q++
		}
		if q < len(b) && b[q] != '\n' {
			continue
		}
		if !hasAWB(b[q:min(len(b), q+600)]) {
			continue
		}
		sp := s.newSpan(b, p, kIMP, "CARGO-IMP/"+string(b[p:p+3]), string(bytes.TrimSpace(b[p+4:q])), true)
		s.findEnd(b, sp, p, limit, false)
		*found = append(*found, sp)
	}
}

// hasAWB reports a ddd-dddddddd run in b, the mark of a Cargo-IMP body.
func hasAWB(b []byte) bool {
	for i := 0; i+12 <= len(b); i++ {
		if b[i+3] == '-' && allDigits(b[i:i+3]) && allDigits(b[i+4:i+12]) {
			return true
		}
	}
	return false
}

// impEnd: Cargo-IMP is upper case in lines of at most 69 characters; a
// blank line or a line with lower case letters ends the message.
func impEnd(b []byte, p int) int {
	line := p
	for i := p; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			if i == line || (i == line+1 && b[line] == '\r') {
				return line
			}
			line = i + 1
			continue
		}
		if class[c]&cLower != 0 {
			return line
		}
	}
	return -1
}

// ---- IATA Cargo-XML and ONE Record

func (s *Scanner) headersIATA(b []byte, from, limit int, found *[]*span) {
	for _, p := range s.xmlNS {
		if p < from || p >= limit {
			continue
		}
		q := p + 5
		for q < len(b) && class[b[q]]&cLower != 0 {
			q++
		}
		if typ, ok := xmlTypes[string(b[p+5:q])]; ok {
			if sp := s.xmlSpan(b, p, "CARGO-XML/"+typ); sp != nil {
				s.findEnd(b, sp, p, limit, false)
				*found = append(*found, sp)
			}
		}
	}
	// ONE Record is JSON-LD: its objects carry "@context", "@type" or
	// "@id", and '@' is rare enough in text to search for.
	for p := from; p < limit; {
		i := bytes.Index(b[p:limit], []byte(`"@`))
		if i < 0 {
			return
		}
		p += i
		k := bytes.Index(b[p:min(len(b), p+4096)], []byte("onerecord.iata.org"))
		if k < 0 {
			p += 2
			continue
		}
		if o := outerBrace(b, p); o >= 0 {
			sp := s.newSpan(b, o, kJSON, "JSON/ONE-RECORD", "", true)
			s.findEnd(b, sp, o, limit, false)
			*found = append(*found, sp)
			if sp.end == openEnd {
				return
			}
			if sp.end > p {
				p = sp.end
				continue
			}
		}
		p += 2
	}
}

// xmlSpan starts at the element whose namespace declaration is at p and
// ends at its closing tag.
func (s *Scanner) xmlSpan(b []byte, p int, typ string) *span {
	lo := max(0, p-1024)
	k := bytes.LastIndexByte(b[lo:p], '<')
	if k < 0 {
		return nil
	}
	st := lo + k
	e := st + 1
	for e < p && b[e] != ' ' && b[e] != '\t' && b[e] != '\n' && b[e] != '\r' && b[e] != '>' {
		e++
	}
	if e == st+1 || b[st+1] == '/' || b[st+1] == '?' {
		return nil
	}
	sp := s.newSpan(b, st, kXML, typ, "", true)
	sp.closeTag = "</" + string(b[st+1:e]) + ">"
	return sp
}

// ---- DCSA JSON

func (s *Scanner) headersDCSA(b []byte, from, limit int, found *[]*span) {
	for p := from; p < limit; {
		i := bytes.Index(b[p:limit], []byte(`Reference"`))
		if i < 0 {
			return
		}
		p += i
		k := p
		for k > 0 && class[b[k-1]]&(cUpper|cLower) != 0 {
			k--
		}
		if k > 0 && b[k-1] == '"' && dcsaKeys[string(b[k:p+9])] {
			if j := outerBrace(b, k); j >= 0 {
				sp := s.newSpan(b, j, kJSON, "JSON/DCSA", "", true)
				s.findEnd(b, sp, j, limit, false)
				*found = append(*found, sp)
				if sp.end == openEnd {
					return
				}
				if sp.end > p {
					p = sp.end
					continue
				}
			}
		}
		p += 10
	}
}

// outerBrace finds, within 2 KiB before p, the outermost '{' whose object
// encloses p (or does not close within b), -1 when none does.
func outerBrace(b []byte, p int) int {
	lo := max(0, p-2048)
	best := -1
	for q := p; q > lo; {
		k := bytes.LastIndexByte(b[lo:q], '{')
		if k < 0 {
			break
		}
		q = lo + k
		if e := jsonEnd(b, q); e < 0 || e > p {
			best = q
		}
	}
	return best
}

// jsonEnd returns the end of the JSON value starting with '{' at p, or -1
// when it does not close within b (or nests deeper than 64).
func jsonEnd(b []byte, p int) int {
	depth, inStr := 0, false
	for i := p; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > 64 {
				return -1
			}
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
