package dlp

import (
	"encoding/binary"
	"io"
	"math/bits"
	"sort"
	"sync"

	cw "github.com/cargowatch/cargowatch"
)

// Options configure a Scanner.
type Options struct {
	// Window is how many bytes are scanned at once (default 1 MiB). The
	// Scanner holds at most Window+Margin bytes whatever the input size.
	Window int
	// OnHit receives every hit at or above low confidence, in offset order.
	OnHit func(cw.Hit)
	// OnMessage receives each classified message once its trailer (or the
	// end of input) is seen, with the counts of the hits inside it.
	OnMessage func(Message)

	// lean drops large per-window slices after each window: set by Stream,
	// of which up to 1024 directions are open at once (see keepPerWindow).
	lean bool
}

const (
	// margin is held back at the end of a window so that an identifier or
	// a message header that starts before the cut is seen whole.
	margin = 512
	// back is kept before the cut for the keyword window and owner codes.
	back = 256
	// maxCands caps candidates per window: a pathological input full of
	// valid-looking numbers must not grow memory. Extra ones are counted.
	maxCands = 1 << 16
	// keepPerWindow is the most per-window entries (candidates, spans,
	// header positions) whose room a lean Scanner keeps between windows. A
	// dense window needs thousands of candidates (88 bytes each), and a
	// Stream keeps its Scanners for the life of a flow: without this, 1024
	// open directions each held ~300 KiB beyond their 32 KiB window.
	keepPerWindow = 256
)

// candPool holds the candidate lists of lean Scanners between windows, so
// that many open Streams share a few large lists instead of each keeping one.
var candPool sync.Pool

// bufPool holds the window buffers of closed lean Scanners: every flow
// with payload gets a Scanner, and allocating its window afresh was a
// tenth of analyze's time.
var bufPool sync.Pool

// Scanner finds cargo data in a byte stream written to it in pieces of
// any size: identifiers that straddle two writes are found. It is not
// safe for concurrent use.
type Scanner struct {
	opt  Options
	buf  []byte
	base int64 // absolute offset of buf[0]
	done int64 // absolute offset up to which hits were decided

	open  *span // message still open at the end of the last window
	x12   *x12Seps
	una   *ediSeps
	cands []cand
	spans []*span
	imp   []int // Cargo-IMP header candidates in this window
	xmlNS []int // "iata:name:N" namespace positions in this window

	from, limit int // the part of buf decided in this window

	// Dropped counts candidates beyond the per-window cap.
	Dropped int
	// Bytes counts the bytes scanned.
	Bytes int64
}

// cand is an identifier candidate before grading.
type cand struct {
	typ        string
	start, end int // in buf
	value      string
	check      string
	kw         bool // a keyword of its type sits in the window before it
	strong     bool // a structural position: EQD+CN, (00), IMO prefix, ULD/, ...
	plain      bool // a form that alone means little (an 11-digit AWB run)
	test       bool // a placeholder value
	conf       int
	span       *span
}

// NewScanner returns a Scanner with o's callbacks.
func NewScanner(o Options) *Scanner {
	if o.Window <= 0 {
		o.Window = 1 << 20
	}
	if o.Window < 4*margin {
		o.Window = 4 * margin
	}
	return &Scanner{opt: o}
}

// Write scans p. It never fails; the error is for io.Writer.
func (s *Scanner) Write(p []byte) (int, error) {
	n := len(p)
	full := s.opt.Window + margin
	if s.buf == nil && s.opt.lean {
		if b, _ := bufPool.Get().(*[]byte); b != nil && cap(*b) <= full {
			s.buf = (*b)[:0]
		}
	}
	for len(p) > 0 {
		k := min(full-len(s.buf), len(p))
		if need := len(s.buf) + k; need > cap(s.buf) {
			// Grow by doubling up to the window: a small input never pays
			// for a full window.
			nb := make([]byte, len(s.buf), min(max(2*cap(s.buf), need, 4096), full))
			copy(nb, s.buf)
			s.buf = nb
		}
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		s.Bytes += int64(k)
		if len(s.buf) == full {
			s.process(false)
		}
	}
	return n, nil
}

// ReadFrom scans r to its end, reading straight into the scan window (no
// copy through a caller's buffer). It returns the bytes read and the first
// error other than io.EOF; what was read before an error is scanned, but
// the input is not closed: call Close.
func (s *Scanner) ReadFrom(r io.Reader) (int64, error) {
	full := s.opt.Window + margin
	var total int64
	for {
		if len(s.buf) == cap(s.buf) {
			if cap(s.buf) < full {
				nb := make([]byte, len(s.buf), min(max(2*cap(s.buf), 64<<10), full))
				copy(nb, s.buf)
				s.buf = nb
			} else {
				s.process(false)
			}
		}
		n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		total += int64(n)
		s.Bytes += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close scans what is left and reports the open message, if any. The
// Scanner can be used again after Close for a new input.
func (s *Scanner) Close() error {
	s.process(true)
	s.buf = s.buf[:0]
	if s.opt.lean && cap(s.buf) >= 4096 {
		b := s.buf
		bufPool.Put(&b)
		s.buf = nil
	}
	s.base, s.done = 0, 0
	s.open, s.x12, s.una = nil, nil, nil
	return nil
}

func (s *Scanner) process(final bool) {
	b := s.buf
	limit := len(b)
	if !final {
		limit -= margin
	}
	from := int(s.done - s.base)
	if limit <= from && !final {
		return
	}
	s.from, s.limit = from, limit
	s.cands = s.cands[:0]
	if s.opt.lean && s.cands == nil {
		if c, _ := candPool.Get().(*[]cand); c != nil {
			s.cands = *c
		}
	}
	s.imp = s.imp[:0]
	s.xmlNS = s.xmlNS[:0]
	s.findIDs(b, from, limit)
	s.classify(b, from, limit, final)
	s.walk(b)
	s.grade()
	s.emit(b, limit, final)

	s.done = s.base + int64(limit)
	keep := max(limit-back, 0)
	if final {
		keep = len(b)
	}
	n := copy(s.buf, b[keep:])
	s.buf = s.buf[:n]
	s.base += int64(keep)
	for _, sp := range s.spans {
		sp.start -= keep
		sp.end -= keep
	}
	if !s.opt.lean {
		return
	}
	if cap(s.cands) > keepPerWindow {
		c := s.cands[:0]
		candPool.Put(&c) // the next dense window, of any lean Scanner, reuses it
		s.cands = nil
	}
	if cap(s.spans) > keepPerWindow {
		s.spans = nil // s.open, if any, is held on its own
	}
	if cap(s.imp) > keepPerWindow {
		s.imp = nil
	}
	if cap(s.xmlNS) > keepPerWindow {
		s.xmlNS = nil
	}
}

// Byte classes.
const (
	cDigit = 1 << iota
	cUpper
	cLower
	cAlnum = cDigit | cUpper | cLower
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
		t[c+32] = cLower
	}
	return
}()

func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isUpper(c byte) bool { return class[c]&cUpper != 0 }
func isAlnum(c byte) bool { return class[c]&cAlnum != 0 }

// digitMask has the high bit set in each byte of x that is an ASCII digit.
func digitMask(x uint64) uint64 {
	const hi = 0x8080808080808080
	x7 := x &^ hi
	ge := (x7 + 0x5050505050505050) & hi // byte >= '0'
	gt := (x7 + 0x4646464646464646) & hi // byte > '9'
	return ge &^ gt &^ x & hi
}

func wordStart(b []byte, p int) bool { return p <= 0 || !isAlnum(b[p-1]) }
func wordEnd(b []byte, p int) bool   { return p >= len(b) || !isAlnum(b[p]) }

func allUpper(b []byte) bool {
	for _, c := range b {
		if !isUpper(c) {
			return false
		}
	}
	return true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// findIDs is the hot loop: it skips to the next digit run eight bytes at a
// time and hands each run of at least three digits to the recognisers.
func (s *Scanner) findIDs(b []byte, from, limit int) {
	i := from
	if i > 0 && i < len(b) && isDigit(b[i]) {
		// A run cut by the last window was decided there.
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	const hi = 0x8080808080808080
	for i < limit {
		// Skip to the next digit 16 bytes at a time.
		for i+16 <= len(b) {
			m1 := digitMask(binary.LittleEndian.Uint64(b[i:]))
			m2 := digitMask(binary.LittleEndian.Uint64(b[i+8:]))
			if m1 != 0 {
				i += bits.TrailingZeros64(m1) >> 3
				break
			}
			if m2 != 0 {
				i += 8 + bits.TrailingZeros64(m2)>>3
				break
			}
			i += 16
		}
		if i >= limit {
			break
		}
		if !isDigit(b[i]) {
			i++
			continue
		}
		st := i
		// Find the end of the run eight bytes at a time too.
		for i+8 <= len(b) {
			nd := ^digitMask(binary.LittleEndian.Uint64(b[i:])) & hi
			if nd != 0 {
				i += bits.TrailingZeros64(nd) >> 3
				goto runEnd
			}
			i += 8
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	runEnd:
		if i-st < 3 {
			if st >= 4 && b[st-1] == '/' && len(s.imp) < 1024 {
				s.imp = append(s.imp, st-4)
			}
			if st >= 8 && b[st-1] == ':' && len(s.xmlNS) < 1024 {
				s.noteNamespace(b, st-1)
			}
			continue
		}
		if next := s.run(b, st, i); next > i {
			i = next
		}
	}
}

// noteNamespace notes a Cargo-XML namespace "iata:name:N" whose second
// colon is at p: namespaces end in a version digit, so the digit loop
// finds them for free where a search for "iata" would cost a pass.
func (s *Scanner) noteNamespace(b []byte, p int) {
	q := p
	for q > 0 && p-q < 24 && class[b[q-1]]&cLower != 0 {
		q--
	}
	if q < p && q >= 5 && b[q-1] == ':' && string(b[q-5:q-1]) == "iata" {
		s.xmlNS = append(s.xmlNS, q-5)
	}
}

func (s *Scanner) add(c cand) {
	if c.start < s.from || c.start >= s.limit {
		return // decided in another window
	}
	if len(s.cands) >= maxCands {
		s.Dropped++
		return
	}
	s.cands = append(s.cands, c)
}

// run tries the recognisers on the digit run b[st:en]; it returns where
// scanning goes on (past a multi-run identifier such as ddd-dddddddd).
func (s *Scanner) run(b []byte, st, en int) int {
	switch en - st {
	case 3:
		return s.awbDashed(b, st, en)
	case 4:
		if s.uld(b, st, en) {
			return en
		}
		s.hsCode(b, st, en)
	case 5:
		if s.uld(b, st, en) {
			return en
		}
		s.eori(b, st, en)
	case 6:
		if s.container(b, st, en) {
			return en + 2
		}
		if !s.hsCode(b, st, en) {
			s.eori(b, st, en)
		}
	case 7:
		if s.container(b, st, en) || s.imo(b, st, en) {
			return en
		}
		s.eori(b, st, en)
	case 8, 10:
		if !s.hsCode(b, st, en) {
			s.eori(b, st, en)
		}
	case 11:
		if !s.awbPlain(b, st, en) {
			s.eori(b, st, en)
		}
	case 18, 20:
		if !s.sscc(b, st, en) {
			s.eori(b, st, en)
		}
	default:
		s.eori(b, st, en)
	}
	return en
}

// keyword reports whether one of kws (lower case) starts a word in the
// win bytes before p, compared case-insensitively. It runs only for
// candidates that passed their format check, so it is off the hot path,
// but 6- to 10-digit runs are common enough that it must stay cheap.
func keyword(b []byte, p, win int, kws ...string) bool {
	var first [256]bool
	for _, k := range kws {
		first[k[0]] = true
	}
	lo := max(p-win, 0)
	w := b[lo:p]
	for i := 0; i < len(w); i++ {
		c := w[i] | 0x20 // ASCII lower case; harmless for the bytes compared
		if !first[c] || (i > 0 && class[w[i-1]]&(cUpper|cLower) != 0) || (i == 0 && lo > 0 && class[b[lo-1]]&(cUpper|cLower) != 0) {
			continue
		}
		for _, k := range kws {
			if k[0] == c && hasFold(w[i:], k) {
				return true
			}
		}
	}
	return false
}

// hasFold reports whether b starts with k (lower case), ignoring the case
// of ASCII letters in b.
func hasFold(b []byte, k string) bool {
	if len(b) < len(k) {
		return false
	}
	for j := 0; j < len(k); j++ {
		c := b[j]
		if class[c]&cUpper != 0 {
			c += 32
		}
		if c != k[j] {
			return false
		}
	}
	return true
}

func hasPrefixAt(b []byte, p int, k string) bool {
	return p >= 0 && p+len(k) <= len(b) && string(b[p:p+len(k)]) == k
}

// grade sets each candidate's confidence from its type's rules; 0 drops it.
func (s *Scanner) grade() {
	si := 0
	sort.Slice(s.cands, func(i, j int) bool {
		if s.cands[i].start != s.cands[j].start {
			return s.cands[i].start < s.cands[j].start
		}
		return s.cands[i].typ < s.cands[j].typ
	})
	for i := range s.cands {
		c := &s.cands[i]
		for si < len(s.spans) && s.spans[si].end <= c.start {
			si++
		}
		if si < len(s.spans) && s.spans[si].start <= c.start {
			c.span = s.spans[si]
		}
		inMsg := c.span != nil && c.span.msg.Cargo
		c.conf = rules[c.typ](c, inMsg)
	}
}

func (s *Scanner) emit(b []byte, limit int, final bool) {
	lastStart, lastTyp := -1, ""
	for i := range s.cands {
		c := &s.cands[i]
		if c.conf == 0 {
			continue
		}
		if c.start == lastStart && c.typ == lastTyp {
			continue
		}
		// Of candidates of one type at one offset the strongest goes out.
		best := c
		for j := i + 1; j < len(s.cands) && s.cands[j].start == c.start; j++ {
			if s.cands[j].typ == c.typ && s.cands[j].conf > best.conf {
				best = &s.cands[j]
			}
		}
		lastStart, lastTyp = c.start, c.typ
		h := cw.Hit{
			Type:       best.typ,
			Value:      best.value,
			Offset:     s.base + int64(best.start),
			CheckDigit: best.check,
			Confidence: confNames[best.conf],
		}
		if best.span != nil {
			h.MessageType = best.span.msg.Type
			if best.span.msg.Counts == nil {
				best.span.msg.Counts = map[string]int{}
			}
			best.span.msg.Counts[best.typ]++
		}
		if s.opt.OnHit != nil {
			s.opt.OnHit(h)
		}
	}
	// Messages that closed in this window go out; the open one is carried.
	for _, sp := range s.spans {
		if sp.end <= limit || final {
			if sp.end > len(b) {
				sp.end = len(b)
			}
			sp.msg.Length = s.base + int64(sp.end) - sp.msg.Offset
			if s.opt.OnMessage != nil {
				s.opt.OnMessage(sp.msg)
			}
			if s.open == sp {
				s.open = nil
			}
		}
	}
}
