package zeek

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
)

// header is the state a TSV log's '#' lines set. A file may hold several
// header blocks (a writer restarted, logs concatenated): '#separator'
// starts a new one with Zeek's defaults.
type header struct {
	sep    []byte
	setSep byte
	empty  []byte
	unset  []byte
	path   string
	fields []string
	cols   []int16 // slot of each column, -1 for fields cargowatch does not read
	gen    uint64  // changes with cols, so records know when to clear

	// plan is the fast path's reading of this header, made on first use
	// (planned) and dropped by every header line.
	plan    *connPlan
	planned bool
}

// headerGen numbers header layouts across all parsers, so a record never
// mistakes one header's columns for another's.
var headerGen atomic.Uint64

func newHeader() header {
	return header{sep: []byte{'\t'}, setSep: ',', empty: []byte("(empty)"), unset: []byte("-")}
}

// ready reports whether data lines can be read: '#fields' was seen.
func (h *header) ready() bool { return h.cols != nil }

var errNoFields = errors.New("data line before any #fields header")

// headerLine applies one line starting with '#'. Unknown '#' lines (#open,
// #close, comments such as btest's '###') are ignored.
func (h *header) headerLine(line []byte) error {
	h.plan, h.planned = nil, false
	if rest, ok := bytes.CutPrefix(line, []byte("#separator")); ok {
		*h = newHeader()
		v := bytes.TrimLeft(rest, " \t")
		sep := unescapeTSV(nil, v)
		if len(sep) == 0 {
			return fmt.Errorf("#separator %q: empty", v)
		}
		h.sep = sep
		return nil
	}
	key, val, ok := h.cut(line)
	if !ok {
		return nil
	}
	switch string(key) {
	case "#set_separator":
		v := unescapeTSV(nil, val)
		if len(v) != 1 {
			return fmt.Errorf("#set_separator %q: want one byte", val)
		}
		h.setSep = v[0]
	case "#empty_field":
		h.empty = unescapeTSV(nil, val)
	case "#unset_field":
		h.unset = unescapeTSV(nil, val)
	case "#path":
		h.path = string(val)
	case "#fields":
		h.setFields(splitSep(val, h.sep))
	}
	return nil
}

// cut splits '#key<sep>value'; a space is accepted too because btest
// baselines and hand edits use it.
func (h *header) cut(line []byte) (key, val []byte, ok bool) {
	if i := bytes.Index(line, h.sep); i > 0 {
		return line[:i], line[i+len(h.sep):], true
	}
	if i := bytes.IndexByte(line, ' '); i > 0 {
		return line[:i], line[i+1:], true
	}
	return line, nil, false
}

func (h *header) setFields(names [][]byte) {
	h.plan, h.planned = nil, false
	h.fields = h.fields[:0]
	h.cols = make([]int16, len(names))
	h.gen = headerGen.Add(1)
	for i, n := range names {
		h.fields = append(h.fields, string(n))
		h.cols[i] = int16(lookupSlot(n))
	}
}

// plainTSVHeader recognises the header of LogAscii's "tsv" mode: one row
// of column names without '#fields' or any other meta line.
func (h *header) plainTSVHeader(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("ts\t")) || !bytes.Contains(line, []byte("\tuid\t")) && !bytes.Contains(line, []byte("\tid.orig_h\t")) {
		return false
	}
	h.setFields(splitSep(line, []byte{'\t'}))
	return true
}

func splitSep(b, sep []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, sep)
}

// parseTSV splits a data line into r's slots without copying.
func (h *header) parseTSV(line []byte, r *record) error {
	if !h.ready() {
		return errNoFields
	}
	if r.json || r.hdr != h.gen {
		r.reset(false, h.setSep)
		r.hdr = h.gen
	}
	if len(h.sep) != 1 {
		return h.parseTSVSlow(line, r)
	}
	// IndexByte is vectorised: on a conn.log line it is faster than a
	// byte loop even with a call per field.
	sep := h.sep[0]
	cols := h.cols
	// Most lines have no escape at all: one look at the line spares one
	// per field.
	esc := bytes.IndexByte(line, '\\') >= 0
	n := 0
	for {
		i := bytes.IndexByte(line, sep)
		f := line
		if i >= 0 {
			f, line = line[:i], line[i+1:]
		}
		if n < len(cols) {
			if s := cols[n]; s >= 0 {
				h.setField(&r.v[s], f, esc)
			}
		}
		n++
		if i < 0 {
			break
		}
	}
	if n != len(cols) {
		return fmt.Errorf("%d fields, header has %d", n, len(cols))
	}
	return nil
}

func (h *header) setField(v *field, f []byte, esc bool) {
	v.b = f
	v.esc = false
	switch {
	case len(f) == len(h.unset) && bytes.Equal(f, h.unset):
		v.st = stUnset
	case len(f) == len(h.empty) && bytes.Equal(f, h.empty):
		v.st = stEmpty
	default:
		v.st = stSet
		v.esc = esc && bytes.IndexByte(f, '\\') >= 0
	}
}

// parseTSVSlow splits on a separator of several bytes.
func (h *header) parseTSVSlow(line []byte, r *record) error {
	n := 0
	for {
		i := bytes.Index(line, h.sep)
		f := line
		if i >= 0 {
			f, line = line[:i], line[i+len(h.sep):]
		}
		if n < len(h.cols) {
			if s := h.cols[n]; s >= 0 {
				h.setField(&r.v[s], f, true)
			}
		}
		n++
		if i < 0 {
			break
		}
	}
	if n != len(h.cols) {
		return fmt.Errorf("%d fields, header has %d", n, len(h.cols))
	}
	return nil
}

// unescapeTSV decodes Zeek's \xHH escapes (separators, non-printable
// bytes, and values that would read as the unset or empty marker) into
// dst. A backslash not followed by x and two hex digits is kept.
func unescapeTSV(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			hi, ok1 := unhex(b[i+2])
			lo, ok2 := unhex(b[i+3])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 3
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
