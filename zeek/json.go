package zeek

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"unicode/utf8"
)

// A hand-written scanner for Zeek's JSON lines: flat objects of strings,
// numbers, booleans and arrays (one level of nesting is followed, for
// writers that nest "id": {"orig_h": ...}). encoding/json would allocate
// a map or struct per line; this one keeps slices into the line.

var (
	errJSONSyntax = errors.New("not a JSON object")
	errJSONEnd    = errors.New("JSON object cut short")
	errJSONDepth  = errors.New("JSON nested too deep")
)

// maxJSONDepth bounds recursion on hostile input.
const maxJSONDepth = 32

// parseJSON fills r's slots from one JSON object line.
func parseJSON(line []byte, r *record) error {
	r.reset(true, 0)
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return errJSONSyntax
	}
	i, err := parseObject(line, i, r, nil)
	if err != nil {
		return err
	}
	if i = skipWS(line, i); i != len(line) {
		return errJSONSyntax
	}
	return nil
}

// parseObject reads the object starting at line[i] == '{' and returns the
// index after it. prefix is the dotted name of the enclosing key.
func parseObject(line []byte, i int, r *record, prefix []byte) (int, error) {
	i++ // '{'
	i = skipWS(line, i)
	if i < len(line) && line[i] == '}' {
		return i + 1, nil
	}
	var keyBuf [96]byte
	for nk := 0; ; nk++ {
		i = skipWS(line, i)
		if i >= len(line) {
			return i, errJSONEnd
		}
		if line[i] != '"' {
			return i, errJSONSyntax
		}
		var (
			name []byte
			slot int
		)
		if pk := r.predictKey(prefix, nk, line[i:]); pk != nil {
			name, slot = pk.raw[1:1+pk.n], pk.slot
			i += len(pk.raw)
		} else {
			k0 := i
			ks, ke, kesc, err := scanString(line, i)
			if err != nil {
				return i, err
			}
			key := line[ks:ke]
			if kesc {
				key = unescapeJSON(nil, key)
			}
			i = skipWS(line, ke+1)
			if i >= len(line) {
				return i, errJSONEnd
			}
			if line[i] != ':' {
				return i, errJSONSyntax
			}
			name = key
			if prefix != nil {
				if len(prefix)+1+len(key) <= len(keyBuf) {
					n := copy(keyBuf[:], prefix)
					keyBuf[n] = '.'
					n++
					n += copy(keyBuf[n:], key)
					name = keyBuf[:n]
				} else {
					name = nil
				}
			}
			slot = lookupSlot(name)
			if prefix == nil && !kesc {
				r.learnKey(nk, line[k0:i+1], ke-ks, slot)
			}
			i++
		}
		i = skipWS(line, i)
		if i >= len(line) {
			return i, errJSONEnd
		}
		known := slot >= 0
		var f field
		switch c := line[i]; {
		case c == '"':
			s, e, esc, err := scanString(line, i)
			if err != nil {
				return i, err
			}
			f = field{b: line[s:e], st: stSet, jk: jString, esc: esc}
			i = e + 1
		case c == '{':
			var err error
			if len(prefix) == 0 && name != nil && len(name) < 48 {
				var pb [48]byte
				n := copy(pb[:], name)
				i, err = parseObject(line, i, r, pb[:n])
			} else {
				i, err = skipValue(line, i, 1)
			}
			if err != nil {
				return i, err
			}
			known = false
		case c == '[':
			e, err := skipValue(line, i, 1)
			if err != nil {
				return i, err
			}
			f = field{b: line[i+1 : e-1], st: stSet, jk: jArray}
			if len(trimWS(f.b)) == 0 {
				f.st = stEmpty
			}
			i = e
		case c == 't' || c == 'f' || c == 'n':
			e, ok := scanLiteral(line, i)
			if !ok {
				return i, errJSONSyntax
			}
			f = field{b: line[i:e], st: stSet, jk: jBool}
			if c == 'n' {
				f = field{st: stUnset}
			}
			i = e
		case c == '-' || (c >= '0' && c <= '9'):
			e := scanNumber(line, i)
			f = field{b: line[i:e], st: stSet, jk: jNumber}
			i = e
		default:
			return i, errJSONSyntax
		}
		if known {
			r.v[slot] = f
			r.set |= 1 << slot
		}
		i = skipWS(line, i)
		if i >= len(line) {
			return i, errJSONEnd
		}
		switch line[i] {
		case ',':
			i++
		case '}':
			return i + 1, nil
		default:
			return i, errJSONSyntax
		}
	}
}

// Zeek writes a log's keys in the same order on every line, leaving out
// unset fields: the record remembers the bytes from each top-level key's
// opening quote to its colon, by position in the line, and a line that
// has the same bytes there skips scanning and looking up the key (a
// third of a JSON line's time).
const maxPredictedKeys = 64

type jsonKey struct {
	raw  []byte // "key" and the colon, as the line had them
	n    int    // length of the key
	slot int
}

// predictKey returns the key remembered for position nk when line starts
// with it, else nil.
func (r *record) predictKey(prefix []byte, nk int, line []byte) *jsonKey {
	if prefix != nil || nk >= len(r.jkeys) {
		return nil
	}
	pk := &r.jkeys[nk]
	if len(pk.raw) == 0 || !bytes.HasPrefix(line, pk.raw) {
		return nil
	}
	return pk
}

// learnKey remembers raw (from the key's quote to its colon; the key has
// no escape) at position nk.
func (r *record) learnKey(nk int, raw []byte, n, slot int) {
	if nk >= maxPredictedKeys {
		return
	}
	for len(r.jkeys) <= nk {
		r.jkeys = append(r.jkeys, jsonKey{})
	}
	pk := &r.jkeys[nk]
	pk.raw = append(pk.raw[:0], raw...)
	pk.n, pk.slot = n, slot
}

// scanString returns the content bounds of the string at line[i] == '"'
// (end is the index of the closing quote) and whether it has escapes. It
// looks at eight bytes at a time for a quote or a backslash.
func scanString(line []byte, i int) (start, end int, esc bool, err error) {
	const (
		ones = 0x0101010101010101
		low7 = 0x7f7f7f7f7f7f7f7f
	)
	start = i + 1
	j := start
	for j+8 <= len(line) {
		w := binary.LittleEndian.Uint64(line[j:])
		// The high bit of each byte of ^((x&low7+low7)|x|low7) is set
		// exactly where x has a zero byte.
		q := w ^ ('"' * ones)
		b := w ^ ('\\' * ones)
		t := ^((q&low7 + low7) | q | low7) | ^((b&low7 + low7) | b | low7)
		if t == 0 {
			j += 8
			continue
		}
		k := j + bits.TrailingZeros64(t)>>3
		if line[k] == '"' {
			return start, k, esc, nil
		}
		esc = true
		j = k + 2 // the escaped byte is never the end
	}
	for ; j < len(line); j++ {
		switch line[j] {
		case '"':
			return start, j, esc, nil
		case '\\':
			esc = true
			j++
		}
	}
	return 0, 0, false, errJSONEnd
}

func scanNumber(line []byte, i int) int {
	for i < len(line) {
		c := line[i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			i++
			continue
		}
		break
	}
	return i
}

func scanLiteral(line []byte, i int) (int, bool) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(line)-i >= len(lit) && string(line[i:i+len(lit)]) == lit {
			return i + len(lit), true
		}
	}
	return i, false
}

// skipValue returns the index after the array or object at line[i].
func skipValue(line []byte, i, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, errJSONDepth
	}
	open := line[i]
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; c {
		case '"':
			_, e, _, err := scanString(line, j)
			if err != nil {
				return j, err
			}
			j = e
		case '[', '{':
			e, err := skipValue(line, j, depth+1)
			if err != nil {
				return e, err
			}
			j = e - 1
		case ']', '}':
			if c != closing {
				return j, errJSONSyntax
			}
			return j + 1, nil
		}
	}
	return len(line), errJSONEnd
}

// eachJSONArray calls fn with each element of an array's inner bytes:
// strings decoded, numbers and booleans as written, nulls skipped.
func eachJSONArray(b []byte, fn func([]byte)) {
	var buf []byte
	i := 0
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return
		}
		switch c := b[i]; {
		case c == '"':
			s, e, esc, err := scanString(b, i)
			if err != nil {
				return
			}
			if esc {
				buf = unescapeZeekJSON(buf[:0], b[s:e])
				fn(buf)
			} else {
				fn(b[s:e])
			}
			i = e + 1
		case c == '[' || c == '{':
			e, err := skipValue(b, i, 1)
			if err != nil {
				return
			}
			i = e
		case c == 'n':
			e, ok := scanLiteral(b, i)
			if !ok {
				return
			}
			i = e
		default:
			e := i
			for e < len(b) && b[e] != ',' && b[e] != ' ' && b[e] != '\t' {
				e++
			}
			fn(b[i:e])
			i = e
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ',' {
			return
		}
		i++
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func trimWS(b []byte) []byte {
	i := skipWS(b, 0)
	j := len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\r' || b[j-1] == '\n') {
		j--
	}
	return b[i:j]
}

// unescapeJSON decodes a JSON string's escapes into dst; malformed
// escapes are kept as written rather than failing the line.
func unescapeJSON(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			dst = append(dst, c)
			continue
		}
		i++
		switch b[i] {
		case '"', '\\', '/':
			dst = append(dst, b[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := hex4(b[i+1:])
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += n
			if r >= 0xD800 && r < 0xDC00 && i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, n2 := hex4(b[i+3:]); n2 > 0 && r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 2 + n2
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = append(dst, '\\', b[i])
		}
	}
	return dst
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		v, ok := unhex(c)
		if !ok {
			return 0, 0
		}
		r = r<<4 | rune(v)
	}
	return r, 4
}
