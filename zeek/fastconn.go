package zeek

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// The fast path for TSV conn.log lines: one pass over the line, each
// column read by a parser of its type that stops at the separator, into
// the Conn, without splitting the line or going through the record.
// It takes only the lines it reads exactly as the record path would and
// declines the rest: escapes, values its parsers do not take (IPv6 and
// markers excepted, which it reads with the record path's helpers), a
// wrong field count, JSON, headers. A declined line goes through the
// record path, which reads it or says what is wrong with it, so errors
// and their messages are the record path's alone. TestFastConnSame and
// FuzzFastConn hold the two paths to the same Conns.

// Column operations of a conn.log header.
const (
	opSkip uint8 = iota
	opTS
	opUID
	opOrigH
	opOrigP
	opRespH
	opRespP
	opProto
	opService
	opDuration
	opOrigBytes
	opRespBytes
	opMissedBytes
	opOrigPkts
	opOrigIPBytes
	opRespPkts
	opRespIPBytes
	opState
	opHistory
	opOrigL2
	opRespL2
	opVLAN
	opTunnelParents
	opIPProto
)

// opOfSlot maps the slots converter.fill reads to operations; every other
// slot is skipped, as fill ignores it.
var opOfSlot = [nSlots]uint8{
	fTS: opTS, fUID: opUID, fOrigH: opOrigH, fOrigP: opOrigP, fRespH: opRespH, fRespP: opRespP,
	fProto: opProto, fService: opService, fDuration: opDuration,
	fOrigBytes: opOrigBytes, fRespBytes: opRespBytes, fMissedBytes: opMissedBytes,
	fOrigPkts: opOrigPkts, fOrigIPBytes: opOrigIPBytes, fRespPkts: opRespPkts, fRespIPBytes: opRespIPBytes,
	fConnState: opState, fHistory: opHistory, fOrigL2: opOrigL2, fRespL2: opRespL2,
	fVLAN: opVLAN, fTunnelParents: opTunnelParents, fIPProto: opIPProto,
}

// connPlan is what one header block means for the fast path.
type connPlan struct {
	ops          []uint8 // per column
	sep, setSep  byte
	unset, empty []byte
}

// connPlan returns the header's plan, nil when its lines must all take
// the record path; it is made on first use because the markers may come
// after '#fields'.
func (h *header) connPlan() *connPlan {
	if !h.planned {
		h.plan, h.planned = newConnPlan(h), true
	}
	return h.plan
}

func newConnPlan(h *header) *connPlan {
	// A header the fast path would read differently: a separator of
	// several bytes, an empty marker (every empty field is then unset), a
	// marker starting with a digit (the number parsers do not look for
	// markers), a field named twice (the record keeps the last; not worth
	// copying).
	if !h.ready() || len(h.sep) != 1 || len(h.unset) == 0 || len(h.empty) == 0 ||
		isDigit(h.unset[0]) || isDigit(h.empty[0]) {
		return nil
	}
	var seen [nSlots]bool
	ops := make([]uint8, len(h.cols))
	for i, s := range h.cols {
		if s < 0 {
			continue
		}
		if seen[s] {
			return nil
		}
		seen[s] = true
		ops[i] = opOfSlot[s]
	}
	if !seen[fTS] || !seen[fOrigH] || !seen[fRespH] {
		return nil // every line is an error: the record path says which
	}
	return &connPlan{ops: ops, sep: h.sep[0], setSep: h.setSep, unset: h.unset, empty: h.empty}
}

func isDigit(c byte) bool { return c-'0' <= 9 }

// fastPlan returns the plan to read line with, nil when the line is not
// a data line the fast path takes (a header, JSON, a header-less file).
func (h *header) fastPlan(line []byte) *connPlan {
	if !h.ready() || len(line) == 0 {
		return nil
	}
	switch line[0] {
	case '#', '{', ' ', '\t':
		return nil
	}
	return h.connPlan()
}

// fastConn fills c (zero) from a TSV data line and returns the first
// tunnel parent uid; ok is false when the line is left to the record
// path, c then possibly partly set.
func (h *header) fastConn(line []byte, c *cw.Conn, cv *converter) (parent string, ok bool) {
	pl := h.fastPlan(line)
	if pl == nil {
		return "", false
	}
	return pl.conn(line, c, cv)
}

// conn reads line into c (zero). Each case leaves i at the end of its
// field; a parser that stops short of the separator sends the field to
// other, which reads markers and IPv6 addresses and declines the rest.
func (pl *connPlan) conn(line []byte, c *cw.Conn, cv *converter) (parent string, ok bool) {
	var (
		ipProto uint64
		ipOK    bool
	)
	sep := pl.sep
	last := len(pl.ops) - 1
	i := 0
	for k, op := range pl.ops {
		start := i
		switch op {
		case opSkip:
			// An escape in a field nobody reads does not matter, but
			// declining the rare line that has one is simpler.
			var esc bool
			if i, esc = findSep(line, i, sep); esc {
				return "", false
			}
		case opTS:
			sec, ns, dot, j, ok := scanDecimal(line, i)
			i = j
			if !ok || !atEnd(line, i, sep) {
				return "", false // markers included: ts is required
			}
			if ns == 0 && sec > millisAbove && !dot {
				c.TS = time.UnixMilli(sec).UTC()
			} else if sec > maxSeconds {
				return "", false
			} else {
				c.TS = time.Unix(sec, ns).UTC()
			}
		case opDuration:
			sec, ns, _, j, ok := scanDecimal(line, i)
			i = j
			if !ok || !atEnd(line, i, sep) {
				if i, _, ok = pl.other(line, start, op, c); !ok {
					return "", false
				}
				break
			}
			if sec > maxSeconds {
				return "", false
			}
			c.Duration = time.Duration(sec)*time.Second + time.Duration(ns)
		case opOrigH, opRespH:
			a, j, ok := scanIPv4(line, i)
			i = j
			if !ok || !atEnd(line, i, sep) {
				if i, _, ok = pl.other(line, start, op, c); !ok {
					return "", false
				}
				break
			}
			if op == opOrigH {
				c.Orig.Addr = a
			} else {
				c.Resp.Addr = a
			}
		case opOrigP, opRespP, opVLAN, opIPProto,
			opOrigBytes, opRespBytes, opMissedBytes, opOrigPkts, opOrigIPBytes, opRespPkts, opRespIPBytes:
			n, j, ok := scanUint(line, i)
			i = j
			if !ok || !atEnd(line, i, sep) {
				// An ip_proto that is not a number the record path
				// ignores rather than failing the line: other declines
				// it, which is safe.
				var m int
				if i, m, ok = pl.other(line, start, op, c); !ok {
					return "", false
				}
				// The record path counts an empty ip_proto as present
				// (reading 0) and an unset one as absent.
				if op == opIPProto {
					ipOK = m == 2
				}
				break
			}
			if n > math.MaxInt64 {
				return "", false
			}
			switch op {
			case opOrigP:
				if n > 65535 {
					return "", false
				}
				c.Orig.Port = uint16(n)
			case opRespP:
				if n > 65535 {
					return "", false
				}
				c.Resp.Port = uint16(n)
			case opVLAN:
				if n > 4095 {
					return "", false
				}
				c.VLAN = uint16(n)
			case opIPProto:
				ipProto, ipOK = n, true
			case opOrigBytes:
				c.OrigBytes = int64(n)
			case opRespBytes:
				c.RespBytes = int64(n)
			case opMissedBytes:
				c.MissedBytes = int64(n)
			case opOrigPkts:
				c.OrigPkts = int64(n)
			case opOrigIPBytes:
				c.OrigIPBytes = int64(n)
			case opRespPkts:
				c.RespPkts = int64(n)
			case opRespIPBytes:
				c.RespIPBytes = int64(n)
			}
		default: // strings
			var esc bool
			if i, esc = findSep(line, i, sep); esc {
				return "", false // escapes are the record path's
			}
			f := line[start:i]
			if pl.marker(f) != 0 {
				break // "", as the record path reads it
			}
			switch op {
			case opUID:
				c.UID = string(f)
			case opProto:
				c.Proto = cv.in.get(f)
			case opService:
				c.Service = cv.serviceOf(cv.in.get(f))
			case opState:
				c.State = cv.in.get(f)
			case opHistory:
				c.History = cv.in.get(f)
			case opOrigL2:
				c.Orig.MAC = cv.in.get(f)
			case opRespL2:
				c.Resp.MAC = cv.in.get(f)
			case opTunnelParents:
				for len(f) > 0 && parent == "" {
					e := f
					if j := bytes.IndexByte(f, pl.setSep); j >= 0 {
						e, f = f[:j], f[j+1:]
					} else {
						f = nil
					}
					if len(e) > 0 {
						parent = string(e)
					}
				}
			}
		}
		// i is at this field's end: the separator, or the line's end for
		// the last column; anything else is a field count the header
		// does not have.
		if k < last {
			if i >= len(line) || line[i] != sep {
				return "", false
			}
			i++
		} else if i != len(line) {
			return "", false
		}
	}
	c.Proto = protoOf(c.Proto, c, ipProto, ipOK)
	return parent, true
}

func atEnd(line []byte, i int, sep byte) bool { return i == len(line) || line[i] == sep }

// marker tells a field that is the unset (1) or the empty (2) marker.
func (pl *connPlan) marker(f []byte) int {
	switch {
	case len(f) == len(pl.unset) && string(f) == string(pl.unset):
		return 1
	case len(f) == len(pl.empty) && string(f) == string(pl.empty):
		return 2
	}
	return 0
}

// other reads a field the typed parser did not take whole: a marker
// (m is 1 for unset, 2 for empty; the caller keeps the zero value, as
// the record path reads it) or an address in another form than a dotted
// quad. It returns the field's end; false declines the line.
func (pl *connPlan) other(line []byte, start int, op uint8, c *cw.Conn) (end, m int, ok bool) {
	i := start
	for i < len(line) && line[i] != pl.sep {
		if line[i] == '\\' {
			return i, 0, false
		}
		i++
	}
	f := line[start:i]
	isAddr := op == opOrigH || op == opRespH
	if m := pl.marker(f); m != 0 {
		return i, m, !isAddr
	}
	if !isAddr {
		return i, 0, false
	}
	a, ok := parseIPv4(f)
	if !ok {
		b, err := netip.ParseAddr(string(f))
		if err != nil {
			return i, 0, false
		}
		a = b.WithZone("")
	}
	if op == opOrigH {
		c.Orig.Addr = a
	} else {
		c.Resp.Addr = a
	}
	return i, 0, true
}

// The scanners read eight bytes at a time where the line has them: a
// byte loop's exit at a field's varying length was a mispredicted branch
// per field, a fifth of a line's time.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	low7  = 0x7f7f7f7f7f7f7f7f
)

// zeroBytes has the high bit set in exactly the bytes of x that are 0.
func zeroBytes(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) }

// leadingDigits returns the value and count of the digits that start
// line[i:], when fewer than eight of the eight bytes there are digits;
// ok is false when the line has fewer than eight bytes left or all eight
// are digits.
func leadingDigits(line []byte, i int) (v uint64, k int, ok bool) {
	if i+8 > len(line) {
		return 0, 0, false
	}
	// A byte below '0' borrows from the next, but only bytes after the
	// first non-digit are spoilt, and they are shifted out.
	d := binary.LittleEndian.Uint64(line[i:]) - '0'*ones
	k = bits.TrailingZeros64(((d+0x76*ones)|d)&highs) >> 3
	if k == 8 {
		return 0, 8, false
	}
	if k == 0 {
		return 0, 0, true
	}
	// The k digits to the top bytes, first digit most significant, then
	// pairs, fours and eights combined.
	d <<= 64 - 8*uint(k)
	d = (d & (0x0f * ones)) * (10<<8 + 1) >> 8
	d = (d & 0x00ff00ff00ff00ff) * (100<<16 + 1) >> 16
	d = (d & 0x0000ffff0000ffff) * (10000<<32 + 1) >> 32
	return d, k, true
}

// findSep returns the index of the first separator in line[i:]
// (len(line) when none), or of a backslash before it, with true.
func findSep(line []byte, i int, sep byte) (int, bool) {
	sp := uint64(sep) * ones
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:])
		s, b := zeroBytes(w^sp), zeroBytes(w^('\\'*ones))
		if s|b == 0 {
			continue
		}
		if b != 0 && (s == 0 || bits.TrailingZeros64(b) < bits.TrailingZeros64(s)) {
			return i + bits.TrailingZeros64(b)>>3, true
		}
		return i + bits.TrailingZeros64(s)>>3, false
	}
	for ; i < len(line); i++ {
		switch line[i] {
		case sep:
			return i, false
		case '\\':
			return i, true
		}
	}
	return i, false
}

// scanUint reads the digits at line[i:]; ok when there are one to
// nineteen (more could overflow, and no count or port has them).
func scanUint(line []byte, i int) (n uint64, end int, ok bool) {
	if v, k, ok := leadingDigits(line, i); ok {
		return v, i + k, k > 0
	}
	start := i
	for ; i < len(line); i++ {
		d := line[i] - '0'
		if d > 9 {
			break
		}
		n = n*10 + uint64(d)
	}
	return n, i, i > start && i-start < 20
}

// scanDecimal is parseDecimal for a field at line[i:] that does not
// start with '-': digits[.digits].
func scanDecimal(line []byte, i int) (sec, ns int64, dot bool, end int, ok bool) {
	start := i
	if v, k, ok := leadingDigits(line, i); ok {
		sec, i = int64(v), i+k
	} else {
		for ; i < len(line); i++ {
			d := line[i] - '0'
			if d > 9 {
				break
			}
			sec = sec*10 + int64(d)
		}
	}
	if i == start || i-start > 18 {
		return 0, 0, false, i, false
	}
	if i < len(line) && line[i] == '.' {
		dot = true
		i++
		if v, k, ok := leadingDigits(line, i); ok {
			return sec, int64(v) * pow10[9-k], dot, i + k, true
		}
		k := 0
		for ; i < len(line); i++ {
			d := line[i] - '0'
			if d > 9 {
				break
			}
			if k < 9 {
				ns = ns*10 + int64(d)
				k++
			}
		}
		ns *= pow10[9-k]
	}
	return sec, ns, dot, i, true
}

// scanIPv4 is parseIPv4 for a field at line[i:]: it reads a dotted quad
// and returns where it stopped.
func scanIPv4(line []byte, i int) (netip.Addr, int, bool) {
	var a [4]byte
	for p := range 4 {
		if p > 0 {
			if i >= len(line) || line[i] != '.' {
				return netip.Addr{}, i, false
			}
			i++
		}
		if i >= len(line) {
			return netip.Addr{}, i, false
		}
		d := line[i] - '0'
		if d > 9 {
			return netip.Addr{}, i, false
		}
		i++
		n := uint(d)
		if d != 0 {
			for k := 0; k < 2 && i < len(line); k++ {
				d := line[i] - '0'
				if d > 9 {
					break
				}
				n = n*10 + uint(d)
				i++
			}
			if n > 255 {
				return netip.Addr{}, i, false
			}
		}
		a[p] = byte(n)
	}
	return netip.AddrFrom4(a), i, true
}
