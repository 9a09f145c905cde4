package dissect

import (
	"bytes"
	"fmt"

	cw "github.com/cargowatch/cargowatch"
)

const (
	// maxHTTPMessages caps what one call returns whatever max says.
	maxHTTPMessages = 1024
	// maxHeaderLines stops a header block that never ends.
	maxHeaderLines = 256
	// maxHTTPField caps a kept URI or header value; longer ones are cut
	// (a 100 KiB URI is itself worth a look, its tail is not).
	maxHTTPField = 4096
)

// httpMethods are the request methods accepted at the start of a request
// line. Listing them (rather than accepting any token) keeps random text
// protocols from being taken for HTTP; the strings are shared so a parsed
// request's Method costs no allocation.
var httpMethods = [...]string{
	"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PATCH",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
	"REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
	"UNSUBSCRIBE", "PURGE", "LINK", "UNLINK", "BPROPFIND", "POLL",
}

// knownMethod returns the interned method that b starts with, followed by
// a space, or "".
func knownMethod(b []byte) string {
	for _, m := range httpMethods {
		if len(b) > len(m) && b[len(m)] == ' ' && string(b[:len(m)]) == m {
			return m
		}
	}
	return ""
}

// methodPrefix reports whether b could be the start of a known method
// (so that more bytes might make a request line).
func methodPrefix(b []byte) bool {
	for _, m := range httpMethods {
		n := min(len(b), len(m))
		if string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// line returns the line at the start of b without its CRLF (or bare LF),
// and the rest after it; ok is false when b holds no full line.
func line(b []byte) (ln, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	ln = b[:i]
	if len(ln) > 0 && ln[len(ln)-1] == '\r' {
		ln = ln[:len(ln)-1]
	}
	return ln, b[i+1:], true
}

// header splits "Name: value" and trims the value's blanks.
func header(ln []byte) (name, value []byte) {
	i := bytes.IndexByte(ln, ':')
	if i <= 0 {
		return nil, nil
	}
	return ln[:i], bytes.Trim(ln[i+1:], " \t")
}

func field(v []byte) string {
	if len(v) > maxHTTPField {
		v = v[:maxHTTPField]
	}
	return escapeString(v)
}

// headers is what a message's header block says about its body.
type headers struct {
	contentLength int64 // -1 when absent
	chunked       bool
	complete      bool // the blank line ending the block was seen
}

// readHeaders walks the header block at b, calling fn for each header,
// and returns where the body starts.
func readHeaders(b []byte, fn func(name, value []byte)) (headers, []byte) {
	h := headers{contentLength: -1}
	for n := 0; n < maxHeaderLines; n++ {
		ln, rest, ok := line(b)
		if !ok {
			return h, nil
		}
		b = rest
		if len(ln) == 0 {
			h.complete = true
			return h, b
		}
		name, value := header(ln)
		switch {
		case name == nil:
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, ok := parseDec(value); ok {
				h.contentLength = n
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.chunked = containsFold(value, "chunked")
		default:
			if fn != nil {
				fn(name, value)
			}
		}
	}
	return h, nil
}

func containsFold(v []byte, s string) bool {
	for i := 0; i+len(s) <= len(v); i++ {
		if bytes.EqualFold(v[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}

// parseDec reads a non-negative decimal that fits in 62 bits.
func parseDec(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// body skips a message body as the headers describe it. It returns the
// body length (declared for Content-Length, summed for chunked), the rest
// of b after the body, and whether the whole body was in b.
func body(h headers, b []byte) (int64, []byte, bool) {
	if h.chunked {
		return chunked(b)
	}
	if h.contentLength <= 0 {
		return 0, b, true
	}
	if h.contentLength > int64(len(b)) {
		return h.contentLength, nil, false
	}
	return h.contentLength, b[h.contentLength:], true
}

// chunked sums the chunk sizes of a chunked body, skipping trailers.
func chunked(b []byte) (int64, []byte, bool) {
	var total int64
	for {
		ln, rest, ok := line(b)
		if !ok {
			return total, nil, false
		}
		if i := bytes.IndexByte(ln, ';'); i >= 0 {
			ln = ln[:i] // chunk extensions
		}
		ln = bytes.TrimRight(ln, " \t")
		size, ok := parseHex(ln)
		if !ok {
			return total, nil, false
		}
		b = rest
		if size == 0 {
			// Trailer fields end with an empty line.
			for n := 0; n < maxHeaderLines; n++ {
				ln, rest, ok := line(b)
				if !ok {
					return total, nil, false
				}
				b = rest
				if len(ln) == 0 {
					return total, b, true
				}
			}
			return total, nil, false
		}
		total += size
		if size > int64(len(b)) {
			return total, nil, false
		}
		b = b[size:]
		// CRLF after the data.
		if _, rest, ok := line(b); ok {
			b = rest
		} else {
			return total, nil, false
		}
	}
}

func parseHex(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// requestLine splits "METHOD URI HTTP/1.x". It also takes HTTP/0.9's
// "GET URI" (no version, no headers follow) when simple is set; ok09
// tells which form matched.
func requestLine(ln []byte, simple bool) (method string, uri []byte, ok, ok09 bool) {
	method = knownMethod(ln)
	if method == "" {
		return "", nil, false, false
	}
	rest := ln[len(method)+1:]
	i := bytes.LastIndexByte(rest, ' ')
	if i < 0 || !bytes.HasPrefix(rest[i+1:], []byte("HTTP/1.")) {
		if simple && method == "GET" && len(rest) > 0 && rest[0] == '/' && i < 0 {
			return method, rest, false, true
		}
		return "", nil, false, false
	}
	return method, bytes.Trim(rest[:i], " "), true, false
}

// HTTPRequests parses the HTTP/1.x requests at the start of a client stream
// (pipelined requests included, at most max). The body of each request is
// skipped by Content-Length or by its chunks, whose sizes are summed into
// RequestBodyLen; when the body is cut, RequestBodyLen is what the header
// declared (chunked: what was seen). Parsing stops quietly when the bytes
// run out or stop looking like a request; a request whose header block is
// cut is still returned with the headers seen. It returns ErrNotHTTP when
// b does not start with a request line and ErrShort when b is a prefix of
// one.
func HTTPRequests(b []byte, max int) ([]cw.HTTP, error) {
	max = min(max, maxHTTPMessages)
	var out []cw.HTTP
	for len(out) < max && len(b) > 0 {
		ln, rest, ok := line(b)
		if !ok {
			if len(out) == 0 {
				if methodPrefix(b) || knownMethod(b) != "" {
					return nil, ErrShort
				}
				return nil, ErrNotHTTP
			}
			break
		}
		method, uri, ok, ok09 := requestLine(ln, true)
		if ok09 {
			// HTTP/0.9 simple request (Zeek logs these too): no headers,
			// no body; the next bytes, if any, are another request.
			out = append(out, cw.HTTP{Method: method, URI: field(uri)})
			b = rest
			continue
		}
		if !ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("http: request line %q: %w", clip(ln), ErrNotHTTP)
			}
			break
		}
		req := cw.HTTP{Method: method, URI: field(uri)}
		h, bodyStart := readHeaders(rest, func(name, value []byte) {
			switch {
			case bytes.EqualFold(name, []byte("Host")):
				req.Host = field(value)
			case bytes.EqualFold(name, []byte("User-Agent")):
				req.UserAgent = field(value)
			case bytes.EqualFold(name, []byte("Content-Type")):
				req.ContentType = field(value)
			}
		})
		if !h.complete {
			if h.contentLength > 0 {
				req.RequestBodyLen = h.contentLength
			}
			out = append(out, req)
			break
		}
		n, after, whole := body(h, bodyStart)
		req.RequestBodyLen = n
		out = append(out, req)
		if !whole {
			break
		}
		b = after
	}
	return out, nil
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// HTTPResponse is what a response's status line and framing told.
type HTTPResponse struct {
	Status int
	// BodyLen is Content-Length, the sum of chunk sizes, or for a body
	// delimited by the connection's close, the bytes seen (a lower bound).
	BodyLen int64
}

// HTTPResponses parses the HTTP/1.x responses at the start of a server
// stream, at most max. Interim 1xx responses are returned like any other.
// It cannot know which responses answer HEAD (they declare a length but
// carry no body); FillResponses, which sees the requests, can.
func HTTPResponses(b []byte, max int) ([]HTTPResponse, error) {
	return responses(b, max, nil)
}

// FillResponses parses the server stream resp and sets StatusCode and
// ResponseBodyLen on reqs in order, skipping interim 1xx responses. It
// returns how many requests were answered.
func FillResponses(reqs []cw.HTTP, resp []byte) (int, error) {
	i := 0
	head := func() bool { return i < len(reqs) && reqs[i].Method == "HEAD" }
	_, err := responses(resp, len(reqs)*2+4, head, func(r HTTPResponse) bool {
		if r.Status >= 100 && r.Status < 200 && r.Status != 101 {
			return true
		}
		if i < len(reqs) {
			reqs[i].StatusCode = r.Status
			reqs[i].ResponseBodyLen = r.BodyLen
			i++
		}
		return i < len(reqs)
	})
	return i, err
}

// responses parses status lines and skips bodies. isHead tells whether the
// response about to be parsed answers a HEAD request; each (optional)
// visitor returns false to stop.
func responses(b []byte, max int, isHead func() bool, visit ...func(HTTPResponse) bool) ([]HTTPResponse, error) {
	max = min(max, maxHTTPMessages)
	var out []HTTPResponse
	for len(out) < max && len(b) > 0 {
		ln, rest, ok := line(b)
		if !ok {
			if len(out) == 0 {
				n := min(len(b), 7)
				if string(b[:n]) == "HTTP/1."[:n] {
					return nil, ErrShort
				}
				return nil, ErrNotHTTP
			}
			break
		}
		status, ok := statusLine(ln)
		if !ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("http: status line %q: %w", clip(ln), ErrNotHTTP)
			}
			break
		}
		h, bodyStart := readHeaders(rest, nil)
		r := HTTPResponse{Status: status}
		noBody := status < 200 || status == 204 || status == 304 || (isHead != nil && isHead())
		var after []byte
		whole := h.complete
		switch {
		case !h.complete:
			if h.contentLength > 0 && !noBody {
				r.BodyLen = h.contentLength
			}
		case noBody:
			after = bodyStart
		case h.chunked || h.contentLength >= 0:
			r.BodyLen, after, whole = body(h, bodyStart)
		default:
			// Delimited by close: everything left is body.
			r.BodyLen = int64(len(bodyStart))
			whole = false
		}
		out = append(out, r)
		more := true
		for _, v := range visit {
			more = v(r) && more
		}
		if !whole || !more || status == 101 {
			break
		}
		b = after
	}
	return out, nil
}

// statusLine reads "HTTP/1.x NNN reason".
func statusLine(ln []byte) (int, bool) {
	if len(ln) < 12 || string(ln[:7]) != "HTTP/1." || ln[8] != ' ' {
		return 0, false
	}
	d := ln[9:12]
	if d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return 0, false
	}
	if len(ln) > 12 && ln[12] != ' ' {
		return 0, false
	}
	return int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), true
}
