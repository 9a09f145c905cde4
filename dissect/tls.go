package dissect

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	cw "github.com/cargowatch/cargowatch"
)

const (
	// maxHandshake caps the handshake message reassembled from several
	// records. Real ClientHellos are under 2 KiB (post-quantum key shares
	// push them to ~1.8 KiB); 64 KiB leaves room and bounds memory.
	maxHandshake = 64 << 10
	// maxRecord is TLSPlaintext's limit (2^14) plus the slack that
	// TLSCompressed/TLSCiphertext allow; anything larger is not TLS.
	maxRecord = 1<<14 + 2048
	// maxALPN caps the protocols kept from the ALPN extension.
	maxALPN = 16

	recordHandshake    = 0x16
	hsClientHello      = 1
	hsServerHello      = 2
	extServerName      = 0x0000
	extSupportedGroups = 0x000a
	extECPointFormats  = 0x000b
	extSignatureAlgs   = 0x000d
	extALPN            = 0x0010
	extSupportedVers   = 0x002b
)

// isGREASE reports RFC 8701 reserved values (0x?a?a with equal bytes).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// handshake returns the first handshake message (type, body) carried by the
// TLS records at the start of b, joining records when the message spans
// them. It returns ErrShort while the message is incomplete and ErrNotTLS
// when b does not start with a handshake record.
func handshake(b []byte) (byte, []byte, error) {
	if len(b) == 0 {
		return 0, nil, ErrShort
	}
	if b[0] != recordHandshake {
		return 0, nil, ErrNotTLS
	}
	if len(b) >= 2 && b[1] != 3 {
		return 0, nil, ErrNotTLS
	}
	if len(b) >= 3 && b[2] > 4 {
		return 0, nil, ErrNotTLS
	}
	if len(b) < 5 {
		return 0, nil, ErrShort
	}
	rlen := int(binary.BigEndian.Uint16(b[3:]))
	if rlen == 0 || rlen > maxRecord {
		return 0, nil, fmt.Errorf("tls: record length %d: %w", rlen, ErrNotTLS)
	}
	frag := b[5:min(len(b), 5+rlen)]
	if len(frag) < 4 {
		if len(b) < 5+rlen {
			return 0, nil, ErrShort
		}
		// A handshake header split across records is legal but no real
		// client does it; treat it as the multi-record case below.
	}
	if len(frag) >= 4 {
		hsType := frag[0]
		hsLen := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
		if hsLen > maxHandshake {
			return 0, nil, fmt.Errorf("tls: handshake length %d over %d: %w", hsLen, maxHandshake, ErrMalformed)
		}
		if 4+hsLen <= len(frag) {
			// Common case: the whole message sits in the first record.
			return hsType, frag[4 : 4+hsLen], nil
		}
		if len(b) < 5+rlen {
			return 0, nil, ErrShort
		}
	}
	// The message spans records: concatenate fragments until it is whole.
	var buf []byte
	need := -1
	for off := 0; ; {
		if need >= 0 && len(buf) >= need {
			return buf[0], buf[4:need], nil
		}
		if off+5 > len(b) {
			return 0, nil, ErrShort
		}
		if b[off] != recordHandshake || b[off+1] != 3 {
			return 0, nil, fmt.Errorf("tls: record at %d is not a handshake continuation: %w", off, ErrMalformed)
		}
		rl := int(binary.BigEndian.Uint16(b[off+3:]))
		if rl > maxRecord {
			return 0, nil, fmt.Errorf("tls: record length %d: %w", rl, ErrMalformed)
		}
		if off+5+rl > len(b) {
			return 0, nil, ErrShort
		}
		buf = append(buf, b[off+5:off+5+rl]...)
		off += 5 + rl
		if need < 0 && len(buf) >= 4 {
			need = 4 + (int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3]))
			if need > maxHandshake {
				return 0, nil, fmt.Errorf("tls: handshake length %d over %d: %w", need, maxHandshake, ErrMalformed)
			}
		}
	}
}

// reader walks a byte slice; a read past the end sets bad instead of panicking.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *reader) u16() int {
	if len(r.b) < 2 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return int(v)
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// helloFields is what a ClientHello carries for the fingerprints. The
// slices point into the message; nothing is copied.
type helloFields struct {
	legacyVersion uint16
	ciphers       []byte // u16 list
	exts          []uint16
	groups        []byte // u16 list
	pointFormats  []byte // u8 list
	sigAlgs       []byte // u16 list
	versions      []byte // u16 list (supported_versions)
	sni           []byte
	hasSNI        bool
	alpn          []byte // ALPN protocol_name_list
}

// ClientHello parses a TLS record stream that begins with a ClientHello
// (it may need more than one TCP segment: pass the first bytes of the
// stream). It returns ErrShort when more bytes are needed and an error
// matching ErrNotTLS when the stream is not TLS at all. Version is the
// highest version offered (supported_versions when present).
func ClientHello(b []byte) (*cw.TLS, error) {
	typ, msg, err := handshake(b)
	if err != nil {
		return nil, err
	}
	if typ != hsClientHello {
		return nil, fmt.Errorf("tls: handshake type %d, want ClientHello: %w", typ, ErrNotTLS)
	}
	var h helloFields
	if err := parseClientHello(msg, &h); err != nil {
		return nil, err
	}
	t := &cw.TLS{}
	if h.hasSNI {
		t.SNI = escapeString(h.sni)
	}
	for r := (reader{b: h.alpn}); len(r.b) > 0 && len(t.ALPN) < maxALPN; {
		p := r.bytes(r.u8())
		if r.bad {
			break
		}
		t.ALPN = append(t.ALPN, escapeString(p))
	}
	v := h.maxVersion()
	t.Version = versionName(v)
	t.JA4 = ja4(&h, v)
	t.JA3 = ja3(&h)
	return t, nil
}

func parseClientHello(msg []byte, h *helloFields) error {
	r := reader{b: msg}
	h.legacyVersion = uint16(r.u16())
	r.bytes(32) // random
	sid := r.u8()
	if sid > 32 {
		return fmt.Errorf("tls: client hello: session id of %d bytes: %w", sid, ErrMalformed)
	}
	r.bytes(sid)
	h.ciphers = r.bytes(r.u16())
	if r.bad || len(h.ciphers)%2 != 0 || len(h.ciphers) == 0 {
		return fmt.Errorf("tls: client hello: cipher suites: %w", ErrMalformed)
	}
	r.bytes(r.u8()) // compression methods
	if r.bad {
		return fmt.Errorf("tls: client hello: compression methods: %w", ErrMalformed)
	}
	if len(r.b) == 0 {
		return nil // no extensions (SSLv3-era clients)
	}
	exts := r.bytes(r.u16())
	if r.bad {
		return fmt.Errorf("tls: client hello: extensions: %w", ErrMalformed)
	}
	er := reader{b: exts}
	for len(er.b) > 0 {
		et := uint16(er.u16())
		ed := er.bytes(er.u16())
		if er.bad {
			return fmt.Errorf("tls: client hello: extension 0x%04x: %w", et, ErrMalformed)
		}
		if len(h.exts) < 256 {
			h.exts = append(h.exts, et)
		}
		d := reader{b: ed}
		switch et {
		case extServerName:
			h.hasSNI = true
			list := reader{b: d.bytes(d.u16())}
			for len(list.b) > 0 {
				nt := list.u8()
				name := list.bytes(list.u16())
				if list.bad {
					break
				}
				if nt == 0 {
					h.sni = name
					break
				}
			}
		case extALPN:
			h.alpn = d.bytes(d.u16())
		case extSupportedGroups:
			h.groups = evenOnly(d.bytes(d.u16()))
		case extECPointFormats:
			h.pointFormats = d.bytes(d.u8())
		case extSignatureAlgs:
			h.sigAlgs = evenOnly(d.bytes(d.u16()))
		case extSupportedVers:
			h.versions = evenOnly(d.bytes(d.u8()))
		}
	}
	return nil
}

func evenOnly(b []byte) []byte { return b[:len(b)&^1] }

// maxVersion is the highest non-GREASE supported_versions entry, else the
// legacy version field (as JA4 and Zeek define "offered").
func (h *helloFields) maxVersion() uint16 {
	var best uint16
	for i := 0; i+1 < len(h.versions); i += 2 {
		v := binary.BigEndian.Uint16(h.versions[i:])
		if !isGREASE(v) && v > best && v <= 0x0304 {
			best = v
		}
	}
	if best != 0 {
		return best
	}
	return h.legacyVersion
}

func versionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSLv3"
	case 0x0301:
		return "TLSv10"
	case 0x0302:
		return "TLSv11"
	case 0x0303:
		return "TLSv12"
	case 0x0304:
		return "TLSv13"
	}
	return ""
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// ja4 computes the FoxIO JA4 fingerprint (technical_details/JA4.md) for
// TLS over TCP: "t", version, d|i, cipher and extension counts, ALPN
// first/last characters, then truncated SHA-256 of the sorted ciphers and
// of the sorted extensions (less SNI and ALPN) plus signature algorithms.
func ja4(h *helloFields, v uint16) string {
	var small [128]uint16
	ciphers := small[:0]
	for i := 0; i+1 < len(h.ciphers); i += 2 {
		if c := binary.BigEndian.Uint16(h.ciphers[i:]); !isGREASE(c) {
			ciphers = append(ciphers, c)
		}
	}
	var smallExt [64]uint16
	exts := smallExt[:0]
	nExt := 0
	for _, e := range h.exts {
		if isGREASE(e) {
			continue
		}
		nExt++
		if e != extServerName && e != extALPN {
			exts = append(exts, e)
		}
	}

	out := make([]byte, 0, 36)
	out = append(out, 't')
	out = append(out, ja4Version(v)...)
	if h.hasSNI {
		out = append(out, 'd')
	} else {
		out = append(out, 'i')
	}
	out = appendCount(out, len(ciphers))
	out = appendCount(out, nExt)
	out = appendALPNChars(out, h.alpn)
	out = append(out, '_')

	var buf [1024]byte
	if len(ciphers) == 0 {
		out = append(out, "000000000000"...)
	} else {
		slices.Sort(ciphers)
		s := appendHexList(buf[:0], ciphers)
		out = appendHash12(out, s)
	}
	out = append(out, '_')
	if len(exts) == 0 {
		out = append(out, "000000000000"...)
	} else {
		slices.Sort(exts)
		s := appendHexList(buf[:0], exts)
		first := true
		for i := 0; i+1 < len(h.sigAlgs); i += 2 {
			a := binary.BigEndian.Uint16(h.sigAlgs[i:])
			if isGREASE(a) {
				continue
			}
			if first {
				s = append(s, '_')
				first = false
			} else {
				s = append(s, ',')
			}
			s = appendHex4(s, a)
		}
		out = appendHash12(out, s)
	}
	return string(out)
}

func appendCount(out []byte, n int) []byte {
	n = min(n, 99)
	return append(out, byte('0'+n/10), byte('0'+n%10))
}

// appendALPNChars appends the first and last characters of the first ALPN
// value, or of its hex form when either byte is not alphanumeric.
func appendALPNChars(out []byte, list []byte) []byte {
	if len(list) < 1 {
		return append(out, "00"...)
	}
	n := int(list[0])
	if n == 0 || 1+n > len(list) {
		return append(out, "00"...)
	}
	p := list[1 : 1+n]
	f, l := p[0], p[len(p)-1]
	if isAlnum(f) && isAlnum(l) {
		return append(out, f, l)
	}
	return append(out, hexDigits[f>>4], hexDigits[l&0xf])
}

func appendHex4(dst []byte, v uint16) []byte {
	return append(dst, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
}

func appendHexList(dst []byte, vs []uint16) []byte {
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendHex4(dst, v)
	}
	return dst
}

func appendHash12(out, s []byte) []byte {
	sum := sha256.Sum256(s)
	var h [64]byte
	hex.Encode(h[:], sum[:])
	return append(out, h[:12]...)
}

// ja3 computes Salesforce JA3: MD5 of
// "version,ciphers,extensions,curves,pointformats" in decimal, values
// joined by '-', GREASE removed, in the order the client sent them.
func ja3(h *helloFields) string {
	var buf [2048]byte
	s := strconv.AppendUint(buf[:0], uint64(h.legacyVersion), 10)
	s = append(s, ',')
	s = appendDecList(s, h.ciphers)
	s = append(s, ',')
	first := true
	for _, e := range h.exts {
		if isGREASE(e) {
			continue
		}
		if !first {
			s = append(s, '-')
		}
		first = false
		s = strconv.AppendUint(s, uint64(e), 10)
	}
	s = append(s, ',')
	s = appendDecList(s, h.groups)
	s = append(s, ',')
	for i, f := range h.pointFormats {
		if i > 0 {
			s = append(s, '-')
		}
		s = strconv.AppendUint(s, uint64(f), 10)
	}
	sum := md5.Sum(s)
	return hex.EncodeToString(sum[:])
}

func appendDecList(s []byte, u16s []byte) []byte {
	first := true
	for i := 0; i+1 < len(u16s); i += 2 {
		v := binary.BigEndian.Uint16(u16s[i:])
		if isGREASE(v) {
			continue
		}
		if !first {
			s = append(s, '-')
		}
		first = false
		s = strconv.AppendUint(s, uint64(v), 10)
	}
	return s
}

// escapeString makes untrusted bytes safe for logs (see appendEscaped)
// and copies them, so the result does not pin the caller's buffer.
func escapeString(p []byte) string {
	clean := true
	for _, c := range p {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return string(p)
	}
	out := make([]byte, 0, len(p)+16)
	for _, c := range p {
		out = appendEscaped(out, c)
	}
	return string(out)
}

// ServerHelloVersion returns the negotiated version ("TLSv12", "TLSv13",
// "SSLv3", ...) from the first bytes of the server's stream: the
// supported_versions extension when present (TLS 1.3), else the
// ServerHello's version field.
func ServerHelloVersion(b []byte) (string, error) {
	typ, msg, err := handshake(b)
	if err != nil {
		return "", err
	}
	if typ != hsServerHello {
		return "", fmt.Errorf("tls: handshake type %d, want ServerHello: %w", typ, ErrNotTLS)
	}
	r := reader{b: msg}
	v := uint16(r.u16())
	r.bytes(32)
	r.bytes(r.u8())
	r.u16() // cipher suite
	r.u8()  // compression
	if r.bad {
		return "", fmt.Errorf("tls: server hello: %w", ErrMalformed)
	}
	if len(r.b) > 0 {
		er := reader{b: r.bytes(r.u16())}
		for len(er.b) > 0 && !er.bad {
			et := er.u16()
			ed := er.bytes(er.u16())
			if et == extSupportedVers && len(ed) == 2 {
				v = binary.BigEndian.Uint16(ed)
			}
		}
	}
	name := versionName(v)
	if name == "" {
		return "", fmt.Errorf("tls: server hello: version 0x%04x: %w", v, ErrMalformed)
	}
	return name, nil
}
