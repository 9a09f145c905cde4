package zeek

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
)

// Slots are the fields cargowatch reads, whatever log they come from; a
// TSV header maps its columns to slots once, a JSON line maps each key.
// Every other field (labels, community_id, local_orig, ...) is skipped.
const (
	fTS = iota
	fUID
	fOrigH
	fOrigP
	fRespH
	fRespP
	fProto
	fService
	fDuration
	fOrigBytes
	fRespBytes
	fConnState
	fMissedBytes
	fHistory
	fOrigPkts
	fOrigIPBytes
	fRespPkts
	fRespIPBytes
	fOrigL2
	fRespL2
	fVLAN
	fTunnelParents
	fIPProto
	// dns.log
	fTransID
	fQuery
	fQClass
	fQType
	fRCode
	fAnswers
	fTTLs
	// ssl.log (version is also http.log's HTTP version, which is not read)
	fVersion
	fServerName
	fNextProtocol
	fJA3
	fJA4
	// http.log
	fMethod
	fHost
	fURI
	fUserAgent
	fReqBodyLen
	fRespBodyLen
	fStatusCode
	fRespMimeTypes
	fOrigMimeTypes
	// files.log
	fConnUIDs
	fMimeType
	fSeenBytes
	fIsOrig
	// tunnel.log
	fTunnelType
	// JSON writers that add the log's name
	fPath
	nSlots
)

var slotByName = map[string]int{
	"ts": fTS, "uid": fUID,
	"id.orig_h": fOrigH, "id.orig_p": fOrigP, "id.resp_h": fRespH, "id.resp_p": fRespP,
	"proto": fProto, "service": fService, "duration": fDuration,
	"orig_bytes": fOrigBytes, "resp_bytes": fRespBytes, "conn_state": fConnState,
	"missed_bytes": fMissedBytes, "history": fHistory,
	"orig_pkts": fOrigPkts, "orig_ip_bytes": fOrigIPBytes,
	"resp_pkts": fRespPkts, "resp_ip_bytes": fRespIPBytes,
	"orig_l2_addr": fOrigL2, "resp_l2_addr": fRespL2, "vlan": fVLAN,
	"tunnel_parents": fTunnelParents, "ip_proto": fIPProto,
	"trans_id": fTransID, "query": fQuery, "qclass": fQClass, "qtype": fQType,
	"rcode": fRCode, "answers": fAnswers, "TTLs": fTTLs,
	"version": fVersion, "server_name": fServerName, "next_protocol": fNextProtocol,
	"ja3": fJA3, "ja4": fJA4,
	"method": fMethod, "host": fHost, "uri": fURI, "user_agent": fUserAgent,
	"request_body_len": fReqBodyLen, "response_body_len": fRespBodyLen,
	"status_code": fStatusCode, "resp_mime_types": fRespMimeTypes, "orig_mime_types": fOrigMimeTypes,
	"conn_uids": fConnUIDs, "mime_type": fMimeType, "seen_bytes": fSeenBytes, "is_orig": fIsOrig,
	"tunnel_type": fTunnelType,
	"_path":       fPath,
}

// slotTable is slotByName as an open-addressed table on a cheap hash of
// a key's length and three of its bytes: a JSON line looks up every key,
// and this costs a few nanoseconds where the map costs twenty.
var slotTable = func() (t [1024]struct {
	name string
	slot int16
}) {
	for name, slot := range slotByName {
		h := keyHash([]byte(name))
		for t[h].name != "" {
			h = (h + 1) & 1023
		}
		t[h].name, t[h].slot = name, int16(slot)
	}
	return t
}()

func keyHash(b []byte) int {
	n := len(b)
	if n == 0 {
		return 0
	}
	return (n*131 + int(b[0])*31 + int(b[n-1])*7 + int(b[n/2])) & 1023
}

// lookupSlot returns the slot of a field name, -1 for names not read.
func lookupSlot(b []byte) int {
	h := keyHash(b)
	for {
		e := &slotTable[h]
		if e.name == "" {
			return -1
		}
		if e.name == string(b) {
			return int(e.slot)
		}
		h = (h + 1) & 1023
	}
}

var slotNames = func() [nSlots]string {
	var n [nSlots]string
	for k, v := range slotByName {
		n[v] = k
	}
	return n
}()

// Field states: a slot is absent when the line does not carry the field,
// unset for Zeek's unset marker ('-', JSON null), empty for the empty
// marker ('(empty)') and set otherwise.
const (
	stAbsent uint8 = iota
	stUnset
	stEmpty
	stSet
)

// JSON token kinds kept for a slot.
const (
	jNone uint8 = iota
	jString
	jNumber
	jBool
	jArray
)

type field struct {
	b   []byte // raw bytes: TSV field (still \x-escaped) or JSON token (string without quotes)
	st  uint8
	jk  uint8
	esc bool // b holds an escape sequence to decode
}

// record is one parsed line, its values pointing into the line buffer:
// nothing is copied until a typed accessor makes a value of it.
type record struct {
	json   bool
	setSep byte
	// hdr is the TSV header generation whose columns filled v: a line of
	// the same header overwrites all of them, so v need not be cleared.
	hdr uint64
	// set has a bit per slot a JSON line filled, so that the next line
	// clears those rather than all 51 (a sixth of a JSON line's time).
	set uint64
	v   [nSlots]field
	// jkeys are the JSON keys seen by position, kept across lines.
	jkeys []jsonKey
}

// set is a uint64.
var _ [64 - nSlots]struct{}

func (r *record) reset(json bool, setSep byte) {
	if r.json {
		for m := r.set; m != 0; m &= m - 1 {
			r.v[bits.TrailingZeros64(m)] = field{}
		}
	} else {
		// TSV fills do not keep set.
		r.v = [nSlots]field{}
	}
	r.set = 0
	r.json = json
	r.setSep = setSep
	r.hdr = 0
}

func (r *record) has(s int) bool { return r.v[s].st == stSet || r.v[s].st == stEmpty }

// fieldError names the field and the value that could not be read.
type fieldError struct {
	name string
	val  []byte
	why  string
}

func (e *fieldError) Error() string {
	v := e.val
	if len(v) > 64 {
		v = v[:64]
	}
	return fmt.Sprintf("%s %q: %s", e.name, v, e.why)
}

func (r *record) errf(s int, why string) error {
	return &fieldError{name: slotNames[s], val: r.v[s].b, why: why}
}

// str returns the field as a string, "" when absent, unset or empty.
func (r *record) str(s int) string {
	f := &r.v[s]
	if f.st != stSet {
		return ""
	}
	if f.esc {
		if r.json {
			return string(unescapeZeekJSON(nil, f.b))
		}
		return string(unescapeTSV(nil, f.b))
	}
	return string(f.b)
}

// unescapeZeekJSON decodes a JSON string and then the \xHH escapes Zeek's
// JSON writer uses for bytes that are not UTF-8, so that a value reads
// the same from a JSON log as from a TSV one.
func unescapeZeekJSON(dst, b []byte) []byte {
	start := len(dst)
	dst = unescapeJSON(dst, b)
	if bytes.Contains(dst[start:], []byte(`\x`)) {
		v := unescapeTSV(nil, dst[start:])
		dst = append(dst[:start], v...)
	}
	return dst
}

// strIn returns the field through the interner: for fields with few
// distinct values, so that a million lines make a handful of strings.
func (r *record) strIn(s int, in *interner) string {
	f := &r.v[s]
	if f.st != stSet {
		return ""
	}
	if f.esc {
		return r.str(s)
	}
	return in.get(f.b)
}

// uint reads a count or port; absent and unset read as 0.
func (r *record) uint(s int) (uint64, error) {
	f := &r.v[s]
	if f.st != stSet {
		return 0, nil
	}
	n, ok := parseUint(f.b)
	if !ok {
		// JSON writers may print counts as 1.0 or 1e3.
		if r.json && f.jk == jNumber {
			if v, err := strconv.ParseFloat(string(f.b), 64); err == nil && v >= 0 && v <= math.MaxInt64 && v == math.Trunc(v) {
				return uint64(v), nil
			}
		}
		return 0, r.errf(s, "not a count")
	}
	return n, nil
}

func (r *record) int64(s int) (int64, error) {
	n, err := r.uint(s)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		return 0, r.errf(s, "out of range")
	}
	return int64(n), nil
}

func (r *record) port(s int) (uint16, error) {
	n, err := r.uint(s)
	if err != nil {
		return 0, err
	}
	if n > 65535 {
		return 0, r.errf(s, "port out of range")
	}
	return uint16(n), nil
}

// interval reads a Zeek interval (seconds with a fraction) exactly.
func (r *record) interval(s int) (time.Duration, error) {
	f := &r.v[s]
	if f.st != stSet {
		return 0, nil
	}
	sec, ns, ok := parseDecimal(f.b)
	if !ok {
		v, err := strconv.ParseFloat(string(f.b), 64)
		if err != nil || math.IsNaN(v) || math.Abs(v) > maxSeconds {
			return 0, r.errf(s, "not an interval")
		}
		return time.Duration(v * 1e9), nil
	}
	if sec > maxSeconds || sec < -maxSeconds {
		return 0, r.errf(s, "interval out of range")
	}
	return time.Duration(sec)*time.Second + time.Duration(ns), nil
}

// maxSeconds keeps Durations and epoch times far from overflow.
const maxSeconds = 1 << 33

// millisAbove: JSON writers with JSON::TS_MILLIS print integer
// milliseconds; an integer above this (year 5138 in seconds) is read so.
const millisAbove = 1e11

var errNoTime = errors.New("not a time")

// time reads ts: epoch seconds with a fraction (TSV and JSON::TS_EPOCH),
// integer milliseconds (JSON::TS_MILLIS) or ISO 8601 (JSON::TS_ISO8601).
func (r *record) time(s int) (time.Time, error) {
	f := &r.v[s]
	if f.st != stSet {
		return time.Time{}, r.errf(s, "missing")
	}
	sec, ns, ok := parseDecimal(f.b)
	if ok {
		if ns == 0 && sec > millisAbove && !hasDot(f.b) {
			return time.UnixMilli(sec).UTC(), nil
		}
		if sec > maxSeconds || sec < -maxSeconds {
			return time.Time{}, r.errf(s, "time out of range")
		}
		return time.Unix(sec, ns).UTC(), nil
	}
	if r.json {
		if f.jk == jString {
			if t, err := time.Parse(time.RFC3339Nano, string(f.b)); err == nil {
				return t.UTC(), nil
			}
		} else if v, err := strconv.ParseFloat(string(f.b), 64); err == nil && !math.IsNaN(v) && math.Abs(v) < maxSeconds {
			whole := math.Floor(v)
			return time.Unix(int64(whole), int64((v-whole)*1e9)).UTC(), nil
		}
	}
	return time.Time{}, r.errf(s, errNoTime.Error())
}

func hasDot(b []byte) bool {
	for _, c := range b {
		if c == '.' {
			return true
		}
	}
	return false
}

// addr reads an address; absent and unset read as the zero Addr.
func (r *record) addr(s int) (netip.Addr, error) {
	f := &r.v[s]
	if f.st != stSet {
		return netip.Addr{}, nil
	}
	if a, ok := parseIPv4(f.b); ok {
		return a, nil
	}
	a, err := netip.ParseAddr(string(f.b))
	if err != nil {
		return netip.Addr{}, r.errf(s, "not an address")
	}
	return a.WithZone(""), nil
}

// each calls fn with every element of a set or vector, decoded.
func (r *record) each(s int, fn func([]byte)) {
	f := &r.v[s]
	if f.st != stSet {
		return
	}
	if !r.json {
		var buf []byte
		b := f.b
		for len(b) > 0 {
			i := indexByte(b, r.setSep)
			var e []byte
			if i < 0 {
				e, b = b, nil
			} else {
				e, b = b[:i], b[i+1:]
			}
			if hasBackslash(e) {
				buf = unescapeTSV(buf[:0], e)
				e = buf
			}
			fn(e)
		}
		return
	}
	if f.jk != jArray {
		// A writer that flattened a set to a string: take it as one element.
		if f.esc {
			fn(unescapeZeekJSON(nil, f.b))
		} else {
			fn(f.b)
		}
		return
	}
	eachJSONArray(f.b, fn)
}

// parseUint reads decimal digits; empty or anything else is not a count.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) < 20 {
		// Nineteen digits cannot overflow: no check per digit.
		var n uint64
		for _, c := range b {
			d := c - '0'
			if d > 9 {
				return 0, false
			}
			n = n*10 + uint64(d)
		}
		return n, true
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// pow10 scales a fraction of k digits to nanoseconds: pow10[9-k].
var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// parseDecimal reads [-]digits[.digits] into whole seconds and
// nanoseconds, exactly (a float64 would lose the microseconds of an epoch
// time's last digit now and then); fraction digits past the ninth are
// checked and dropped. Anything else (exponents, more than 18 integer
// digits) is not ok.
func parseDecimal(b []byte) (sec, ns int64, ok bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	i := 0
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			break
		}
		sec = sec*10 + int64(d)
	}
	if i == 0 || i > 18 {
		return 0, 0, false
	}
	if i < len(b) {
		if b[i] != '.' {
			return 0, 0, false
		}
		frac := b[i+1:]
		k := 0
		for j, c := range frac {
			d := c - '0'
			if d > 9 {
				return 0, 0, false
			}
			if j < 9 {
				ns = ns*10 + int64(d)
				k++
			}
		}
		ns *= pow10[9-k]
	}
	if neg {
		sec, ns = -sec, -ns
	}
	return sec, ns, true
}

// parseIPv4 is the hot path for dotted quads: four parts of one to three
// digits, no leading zero, each at most 255. Anything else goes to
// netip.ParseAddr.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	i := 0
	for p := range 4 {
		if p > 0 {
			if i >= len(b) || b[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		if i >= len(b) {
			return netip.Addr{}, false
		}
		d := b[i] - '0'
		if d > 9 {
			return netip.Addr{}, false
		}
		i++
		n := uint(d)
		if d != 0 { // a part starting with 0 is "0"
			for k := 0; k < 2 && i < len(b); k++ {
				d := b[i] - '0'
				if d > 9 {
					break
				}
				n = n*10 + uint(d)
				i++
			}
			if n > 255 {
				return netip.Addr{}, false
			}
		}
		a[p] = byte(n)
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func hasBackslash(b []byte) bool { return indexByte(b, '\\') >= 0 }

// interner returns one string per distinct value, up to a cap, so that
// enum-like fields (proto, conn_state, history, service) cost no
// allocation per line; past the cap it allocates like string() would. A
// direct-mapped cache in front of the map answers most lookups: values
// of up to 16 bytes are compared there as two words, longer ones as
// strings.
type interner struct {
	m     map[string]string
	max   int
	short [256]internSlot
	long  [64]string
}

type internSlot struct {
	w0, w1 uint64
	s      string
}

func newInterner(max int) *interner {
	return &interner{m: make(map[string]string, 64), max: max}
}

func (in *interner) get(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n <= 16 {
		// Zero-padded words and the length tell values apart exactly.
		w0, w1 := loadWord(b[:min(n, 8)]), uint64(0)
		if n > 8 {
			w1 = loadWord(b[8:])
		}
		k := ((w0^w1*0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9 + uint64(n)) >> 56
		e := &in.short[k]
		if e.w0 == w0 && e.w1 == w1 && len(e.s) == n {
			return e.s
		}
		s, ok := in.lookup(b)
		if ok {
			*e = internSlot{w0: w0, w1: w1, s: s}
		}
		return s
	}
	k := (n*31 + int(b[0])*7 + int(b[n-1])*3 + int(b[n/2])) & 63
	if c := in.long[k]; c == string(b) {
		return c
	}
	s, ok := in.lookup(b)
	if ok {
		in.long[k] = s
	}
	return s
}

// lookup returns the interned string for b, interning it while under
// the cap; ok is false for a string made outside the table.
func (in *interner) lookup(b []byte) (string, bool) {
	if s, ok := in.m[string(b)]; ok {
		return s, true
	}
	s := string(b)
	if len(in.m) < in.max && len(b) <= 64 {
		in.m[s] = s
		return s, true
	}
	return s, false
}

// loadWord packs up to 8 bytes little-endian, zero-padded.
func loadWord(b []byte) uint64 {
	if cap(b) >= 8 {
		// Reading past len within cap is allowed; the mask drops it.
		return binary.LittleEndian.Uint64(b[:8]) & (^uint64(0) >> (64 - 8*len(b)))
	}
	var w uint64
	for i, c := range b {
		w |= uint64(c) << (8 * i)
	}
	return w
}
