package dlp

import "bytes"

// Structure walkers: inside a classified message they find what the digit
// loop cannot see alone: X12 container numbers split over two elements,
// UN/LOCODEs in EDIFACT LOC and X12 R4 segments and DCSA JSON, and IMO
// numbers in X12 V1 segments.

func (s *Scanner) walk(b []byte) {
	for _, sp := range s.spans {
		lo := max(sp.start, s.from-back, 0)
		hi := min(sp.end, len(b))
		if lo >= hi {
			continue
		}
		switch sp.kind {
		case kEDI:
			s.walkEDI(b, lo, hi, sp)
		case kX12:
			s.walkX12(b, lo, hi, sp)
		case kJSON:
			s.walkJSON(b, lo, hi)
		}
	}
}

// segments calls fn with each segment [st, en) of b[lo:hi] that starts
// after a terminator (or at lo when lo is a span start); rel is the
// release character (0 for none).
func segments(b []byte, lo, hi int, seg, rel byte, aligned bool, fn func(st, en int)) {
	st := lo
	if !aligned {
		i := bytes.IndexByte(b[lo:hi], seg)
		if i < 0 {
			return
		}
		st = lo + i + 1
	}
	for i := st; i < hi; i++ {
		c := b[i]
		if rel != 0 && c == rel {
			i++
			continue
		}
		if c == seg {
			for st < i && (b[st] == '\n' || b[st] == '\r') {
				st++
			}
			fn(st, i)
			st = i + 1
		}
	}
}

// fields splits b[st:en] at sep (honouring rel) into at most len(out)
// [start, end) pairs.
func fields(b []byte, st, en int, sep, rel byte, out [][2]int) [][2]int {
	out = out[:0]
	f := st
	for i := st; i < en && len(out) < cap(out)-1; i++ {
		if rel != 0 && b[i] == rel {
			i++
			continue
		}
		if b[i] == sep {
			out = append(out, [2]int{f, i})
			f = i + 1
		}
	}
	return append(out, [2]int{f, en})
}

func (s *Scanner) walkEDI(b []byte, lo, hi int, sp *span) {
	var eb, cb [16][2]int
	e := sp.edi
	segments(b, lo, hi, e.seg, e.rel, lo == sp.start, func(st, en int) {
		if en-st < 10 || string(b[st:st+4]) != "LOC"+string(e.data) {
			return
		}
		el := fields(b, st, en, e.data, e.rel, eb[:0])
		if len(el) < 3 {
			return
		}
		comps := fields(b, el[2][0], el[2][1], e.comp, e.rel, cb[:0])
		v := b[comps[0][0]:comps[0][1]]
		if isLocode(v) {
			s.add(cand{typ: TypeUNLocode, start: comps[0][0], end: comps[0][1], value: string(v), check: CheckNone, strong: true})
		}
	})
}

func (s *Scanner) walkX12(b []byte, lo, hi int, sp *span) {
	var eb [32][2]int
	x := sp.x12
	segments(b, lo, hi, x.seg, 0, lo == sp.start, func(st, en int) {
		el := fields(b, st, en, x.elem, 0, eb[:0])
		tag := string(b[el[0][0]:el[0][1]])
		for i := 1; i+1 < len(el); i++ {
			o, n := b[el[i][0]:el[i][1]], b[el[i+1][0]:el[i+1][1]]
			if len(o) == 4 && allUpper(o) && (o[3] == 'U' || o[3] == 'J' || o[3] == 'Z') && (len(n) == 6 || len(n) == 7) && allDigits(n) {
				s.x12Container(b, el[i][0], el[i+1][1], o, n)
			}
		}
		switch {
		case tag == "R4" && len(el) > 3 && string(b[el[2][0]:el[2][1]]) == "UN":
			v := b[el[3][0]:el[3][1]]
			if isLocode(v) {
				s.add(cand{typ: TypeUNLocode, start: el[3][0], end: el[3][1], value: string(v), check: CheckNone, strong: true})
			}
		case tag == "V1" && len(el) > 8 && string(b[el[8][0]:el[8][1]]) == "L":
			d := b[el[1][0]:el[1][1]]
			if len(d) == 7 && allDigits(d) {
				c := cand{typ: TypeIMO, start: el[1][0], end: el[1][1], value: string(d), check: CheckInvalid, strong: true}
				if imoCheck(d) {
					c.check = CheckValid
				}
				s.add(c)
			}
		}
	})
}

func (s *Scanner) x12Container(b []byte, st, en int, owner, num []byte) {
	v := string(owner) + string(num)
	c := cand{typ: TypeContainer, start: st, end: en, value: v, check: CheckNone, strong: true}
	if len(num) == 7 {
		c.check = CheckInvalid
		if iso6346Check([]byte(v)) == int(num[6]-'0') {
			c.check = CheckValid
		}
		c.test = testContainers[v] || sameDigits(num[:6]) || sequential(num[:6])
	}
	s.add(c)
}

func (s *Scanner) walkJSON(b []byte, lo, hi int) {
	key := []byte(`"UNLocationCode"`)
	for p := lo; p < hi; {
		i := bytes.Index(b[p:hi], key)
		if i < 0 {
			return
		}
		p += i + len(key)
		q := p
		for q < hi && (b[q] == ' ' || b[q] == ':' || b[q] == '\t' || b[q] == '\n' || b[q] == '\r') {
			q++
		}
		if q+7 <= hi && b[q] == '"' && b[q+6] == '"' && isLocode(b[q+1:q+6]) {
			s.add(cand{typ: TypeUNLocode, start: q + 1, end: q + 6, value: string(b[q+1 : q+6]), check: CheckNone, strong: true})
		}
	}
}
