package dlp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"strconv"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// StreamConfig bounds what a Stream inspects and holds.
type StreamConfig struct {
	// MaxBytes is how much payload per direction is inspected (default
	// 4 MiB); the rest is counted as uninspected.
	MaxBytes int64
	// MaxBody is how much of one compressed HTTP body is buffered for
	// decoding (default 1 MiB).
	MaxBody int
	// MaxDecoded caps the decoded bytes per compressed body (default
	// 8 MiB): a zip bomb stops there.
	MaxDecoded int64
	// Samples is how many hits are kept as evidence (default 16).
	Samples int
	// Window is the scanner window per direction (default 64 KiB).
	Window int
	// MinConfidence drops hits below it unless they lie inside a cargo
	// message (default medium): a lone 18-digit number that passes the
	// GS1 check should not make a flow look like cargo traffic.
	MinConfidence string
	// Datagrams scans each Write on its own and holds nothing between
	// them (UDP: every datagram is a message of its own).
	Datagrams bool
}

func (c *StreamConfig) defaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 20
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 1 << 20
	}
	if c.MaxDecoded <= 0 {
		c.MaxDecoded = 8 << 20
	}
	if c.Samples <= 0 {
		c.Samples = 16
	}
	if c.Window <= 0 {
		c.Window = 64 << 10
	}
	if ConfidenceRank(c.MinConfidence) == 0 {
		c.MinConfidence = Medium
	}
}

// Stream inspects the in-order payload of one TCP or UDP flow, direction
// by direction, chunk by chunk. HTTP/1.x messages are parsed and their
// bodies decoded (Content-Length, chunked, gzip, deflate); TLS records are
// skipped; anything else (SMTP, FTP data, raw EDI links, UDP payloads) is
// scanned as text.
//
// Memory per Stream is bounded by, per direction: the scanner window
// (Window + 512 bytes), the HTTP header buffer (16 KiB), one compressed
// body (MaxBody) and a decoder (about 40 KiB, only while a body is
// decoded) — about 2.3 MiB with the defaults, 160 KiB while no compressed
// body is in flight — plus Samples hits.
type Stream struct {
	cfg     StreamConfig
	dir     [2]*direction
	content cw.Content
	methods []string // request methods awaiting their response (HEAD has no body)
	release func()   // set by an Inspector: gives the Stream's place back
}

// NewStream returns a Stream with cfg's bounds (zero fields take defaults).
func NewStream(cfg StreamConfig) *Stream {
	cfg.defaults()
	return &Stream{cfg: cfg, content: cw.Content{Counts: map[string]int{}, MessageTypes: map[string]int{},
		OrigCounts: map[string]int{}, OrigMessageTypes: map[string]int{}}}
}

const (
	modeUnknown = iota
	modeTLS
	modeHTTP
	modeText
)

const (
	hHeader = iota
	hBody
	hChunkSize
	hChunkData
	hChunkEnd
	hTrailer
	hUntilClose
)

const maxHeader = 16 << 10

type direction struct {
	s         *Stream
	orig      bool
	mode      int
	inspected int64
	decoded   int64
	sc        *Scanner

	hstate int
	hdr    []byte
	remain int64
	enc    string
	zbuf   []byte
	zover  bool
}

// Write feeds the next payload bytes of one direction.
func (s *Stream) Write(fromOrig bool, b []byte) {
	i := 1
	if fromOrig {
		i = 0
	}
	d := s.dir[i]
	if d == nil {
		d = &direction{s: s, orig: fromOrig}
		s.dir[i] = d
	}
	d.write(b)
}

func (d *direction) scanner() *Scanner {
	if d.sc == nil {
		st := d.s
		orig := d.orig
		d.sc = NewScanner(Options{Window: st.cfg.Window, lean: true,
			OnHit:     func(h cw.Hit) { st.hit(h, orig) },
			OnMessage: func(m Message) { st.message(m, orig) }})
	}
	return d.sc
}

func (s *Stream) hit(h cw.Hit, fromOrig bool) {
	if h.MessageType == "" && ConfidenceRank(h.Confidence) < ConfidenceRank(s.cfg.MinConfidence) {
		return
	}
	s.content.Counts[h.Type]++
	if fromOrig {
		s.content.OrigCounts[h.Type]++
	}
	if len(s.content.Hits) < s.cfg.Samples {
		h.Value = Mask(h.Type, h.Value)
		s.content.Hits = append(s.content.Hits, h)
	}
}

func (s *Stream) message(m Message, fromOrig bool) {
	if m.Cargo && (len(s.content.MessageTypes) < 64 || s.content.MessageTypes[m.Type] > 0) {
		s.content.MessageTypes[m.Type]++
		if fromOrig {
			s.content.OrigMessageTypes[m.Type]++
		}
	}
}

var httpMethods = []string{"GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ", "HTTP/1."}

func (d *direction) write(b []byte) {
	if budget := d.s.cfg.MaxBytes - d.inspected; int64(len(b)) > budget {
		b = b[:max(budget, 0)]
	}
	if len(b) == 0 {
		return
	}
	if d.mode == modeUnknown || (d.mode == modeText && isTLSRecord(b)) {
		switch {
		case isTLSRecord(b):
			d.mode = modeTLS
		case hasMethod(b):
			d.mode = modeHTTP
		default:
			d.mode = modeText
		}
	}
	switch d.mode {
	case modeTLS:
		// Encrypted: left uninspected, and the Stream holds nothing more,
		// so its place among the inspected flows goes to another flow.
		d.s.releaseSlot()
		return
	case modeText:
		d.inspected += int64(len(b))
		d.scanner().Write(b)
		if d.s.cfg.Datagrams {
			d.sc.Close() // scan this datagram now; hold nothing
		}
	case modeHTTP:
		d.inspected += int64(len(b))
		d.http(b)
	}
}

// isTLSRecord: a handshake, alert, change-cipher-spec or application-data
// record header of TLS 1.0-1.3 (SSL 3.0 included).
func isTLSRecord(b []byte) bool {
	return len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

func hasMethod(b []byte) bool {
	for _, m := range httpMethods {
		n := min(len(m), len(b))
		if string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// http runs the HTTP/1.x framing state machine over b.
func (d *direction) http(b []byte) {
	for len(b) > 0 {
		switch d.hstate {
		case hHeader:
			k := min(len(b), maxHeader-len(d.hdr))
			d.hdr = append(d.hdr, b[:k]...)
			end := headerEnd(d.hdr)
			if end < 0 {
				if len(d.hdr) >= maxHeader {
					// Not HTTP after all, or a header no server takes: scan as text.
					d.mode = modeText
					d.scanner().Write(d.hdr)
					d.scanner().Write(b[k:])
					d.hdr = d.hdr[:0]
					return
				}
				b = b[k:]
				continue
			}
			// Bytes past the header end go back to the input.
			rest := len(d.hdr) - end
			b = b[k-rest:]
			d.header(d.hdr[:end])
			d.hdr = d.hdr[:0]
		case hBody, hChunkData:
			k := int(min(int64(len(b)), d.remain))
			d.body(b[:k])
			b = b[k:]
			d.remain -= int64(k)
			if d.remain == 0 {
				if d.hstate == hBody {
					d.bodyEnd()
					d.hstate = hHeader
				} else {
					d.hstate = hChunkEnd
				}
			}
		case hUntilClose:
			d.body(b)
			return
		case hChunkSize, hChunkEnd, hTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(d.hdr)+len(b) > 1024 {
					d.mode = modeText
					return
				}
				d.hdr = append(d.hdr, b...)
				return
			}
			line := append(d.hdr, b[:i]...)
			b = b[i+1:]
			d.hdr = d.hdr[:0]
			d.chunkLine(bytes.TrimSpace(line))
		}
	}
}

func (d *direction) chunkLine(line []byte) {
	switch d.hstate {
	case hChunkEnd:
		d.hstate = hChunkSize
	case hChunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		switch {
		case err != nil || n < 0:
			d.bodyEnd()
			d.mode = modeText // lost framing: the rest is scanned as text
		case n == 0:
			d.bodyEnd()
			d.hstate = hTrailer
		default:
			d.remain, d.hstate = n, hChunkData
		}
	case hTrailer:
		if len(line) == 0 {
			d.hstate = hHeader
		}
	}
}

func headerEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return -1
}

// header reads the framing of one request or response; the header itself
// is scanned too (a URL can carry a container number).
func (d *direction) header(h []byte) {
	d.scanner().Write(h)
	lines := strings.Split(string(h), "\n")
	first := strings.TrimSpace(lines[0])
	var length int64 = -1
	chunked := false
	d.enc = ""
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.ToLower(strings.TrimSpace(v))
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				length = n
			}
		case "transfer-encoding":
			chunked = strings.Contains(v, "chunked")
		case "content-encoding":
			switch v {
			case "gzip", "x-gzip", "deflate":
				d.enc = v
			}
		}
	}
	noBody := false
	if strings.HasPrefix(first, "HTTP/") {
		code := 0
		if f := strings.Fields(first); len(f) > 1 {
			code, _ = strconv.Atoi(f[1])
		}
		method := ""
		if len(d.s.methods) > 0 {
			method, d.s.methods = d.s.methods[0], d.s.methods[1:]
		}
		noBody = code/100 == 1 || code == 204 || code == 304 || method == "HEAD"
		if !noBody && !chunked && length < 0 {
			d.hstate = hUntilClose
			return
		}
	} else {
		if len(d.s.methods) < 64 {
			m, _, _ := strings.Cut(first, " ")
			d.s.methods = append(d.s.methods, m)
		}
		noBody = !chunked && length < 0
	}
	switch {
	case noBody || (!chunked && length == 0):
		d.hstate = hHeader
	case chunked:
		d.hstate = hChunkSize
	default:
		d.remain, d.hstate = length, hBody
	}
}

func (d *direction) body(p []byte) {
	if d.enc == "" {
		d.scanner().Write(p)
		return
	}
	room := d.s.cfg.MaxBody - len(d.zbuf)
	if len(p) > room {
		d.inspected -= int64(len(p) - max(room, 0))
		p = p[:max(room, 0)]
		d.zover = true
	}
	d.zbuf = append(d.zbuf, p...)
}

// bodyEnd decodes a buffered compressed body into the scanner, at most
// MaxDecoded bytes of it, and never more than 4×MaxBytes per direction.
func (d *direction) bodyEnd() {
	if d.enc == "" || len(d.zbuf) == 0 {
		d.enc = ""
		return
	}
	var r io.Reader
	var err error
	src := bytes.NewReader(d.zbuf)
	if d.enc == "deflate" {
		// "deflate" is zlib-wrapped by the RFC, raw in some servers.
		if len(d.zbuf) > 2 && d.zbuf[0]&0x0f == 8 && (uint16(d.zbuf[0])<<8|uint16(d.zbuf[1]))%31 == 0 {
			src.Seek(2, io.SeekStart)
		}
		r = flate.NewReader(src)
	} else if r, err = gzip.NewReader(src); err != nil {
		d.scanner().Write(d.zbuf) // not gzip after all: scan what came
		d.zbuf, d.enc = d.zbuf[:0], ""
		return
	}
	limit := min(d.s.cfg.MaxDecoded, 4*d.s.cfg.MaxBytes-d.decoded)
	var buf [32 << 10]byte
	lr := io.LimitReader(r, max(limit, 0))
	for {
		n, err := lr.Read(buf[:])
		d.decoded += int64(n)
		d.scanner().Write(buf[:n])
		if err != nil {
			break // io.EOF, or a truncated or corrupt body: what decoded was scanned
		}
	}
	d.zbuf, d.enc, d.zover = d.zbuf[:0], "", false
	if cap(d.zbuf) > 64<<10 {
		d.zbuf = nil // do not hold a large buffer for the life of the flow
	}
}

// releaseSlot gives the Stream's place back to its Inspector (once).
func (s *Stream) releaseSlot() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// Close finishes the flow and sets c.Content: counts per identifier type
// (both directions together; Hit.Offset is the offset in the decoded
// stream of its direction)
// and per cargo message type, up to Samples hits with masked values, and
// how many payload bytes of c were inspected and how many were not
// (encrypted, over the cap, lost to gaps). c may be nil.
func (s *Stream) Close(c *cw.Conn) {
	for _, d := range s.dir {
		if d == nil {
			continue
		}
		if d.mode == modeHTTP && len(d.zbuf) > 0 {
			d.bodyEnd()
		}
		if d.sc != nil {
			d.sc.Close()
		}
		s.content.Inspected += d.inspected
	}
	s.releaseSlot()
	if c == nil {
		return
	}
	content := s.content
	content.Uninspected = max(c.OrigBytes+c.RespBytes-content.Inspected, 0)
	c.Content = &content
}
