package zeek

import (
	"math"
	"net/netip"
	"slices"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// Per-conn caps, the same as the flow table's, so a Conn from Zeek is no
// bigger than one from a capture.
const (
	maxDNSPerConn  = 64
	maxHTTPPerConn = 32
	maxMimePerConn = 32
)

// side is what the side logs say about one uid.
type side struct {
	dns        []cw.DNS
	dnsDropped int
	tls        *cw.TLS
	http       []cw.HTTP
	mimes      []string // files.log mime types, in order, for HTTP entries without one
	tunnel     string   // tunnel.log's type when this uid is a tunnel
	used       bool
}

// joinIndex holds side-log data by uid up to max uids. Past the cap, side
// records of new uids are dropped and counted: the bound on memory.
type joinIndex struct {
	m       map[string]*side
	max     int
	dropped int64
	in      *interner
}

func newJoinIndex(max int, in *interner) *joinIndex {
	return &joinIndex{m: make(map[string]*side), max: max, in: in}
}

func (j *joinIndex) len() int { return len(j.m) }

// slot returns the uid's entry, creating it when there is room.
func (j *joinIndex) slot(uid []byte) *side {
	if s, ok := j.m[string(uid)]; ok {
		return s
	}
	if len(j.m) >= j.max {
		j.dropped++
		return nil
	}
	s := &side{}
	j.m[string(uid)] = s
	return s
}

func (j *joinIndex) get(uid string) *side { return j.m[uid] }

// unmatched counts entries no conn asked for.
func (j *joinIndex) unmatched() int64 {
	var n int64
	for _, s := range j.m {
		if !s.used {
			n++
		}
	}
	return n
}

// Log kinds a group joins.
const (
	kindConn = iota
	kindDNS
	kindSSL
	kindHTTP
	kindFiles
	kindTunnel
	kindOther
)

// kindOf maps a Zeek log path to what the join does with it. RITA's
// open_* logs (connections still open at rotation) are the same formats.
func kindOf(path string) int {
	switch strings.TrimPrefix(path, "open_") {
	case "conn":
		return kindConn
	case "dns":
		return kindDNS
	case "ssl":
		return kindSSL
	case "http":
		return kindHTTP
	case "files":
		return kindFiles
	case "tunnel":
		return kindTunnel
	}
	return kindOther
}

// add files one side-log record under its uid(s). Records without a uid
// cannot be joined and are ignored.
func (j *joinIndex) add(kind int, r *record) error {
	switch kind {
	case kindDNS:
		return j.addDNS(r)
	case kindSSL:
		return j.addSSL(r)
	case kindHTTP:
		return j.addHTTP(r)
	case kindFiles:
		return j.addFiles(r)
	case kindTunnel:
		if r.has(fUID) && r.has(fTunnelType) {
			if s := j.slot(r.v[fUID].b); s != nil {
				t := strings.ToLower(strings.TrimPrefix(r.str(fTunnelType), "Tunnel::"))
				s.tunnel = j.in.get([]byte(t))
			}
		}
	}
	return nil
}

func (j *joinIndex) addDNS(r *record) error {
	if !r.has(fUID) {
		return nil
	}
	d := cw.DNS{RCode: -1}
	tid, err := r.uint(fTransID)
	if err != nil || tid > math.MaxUint16 {
		return r.errf(fTransID, "not a DNS transaction id")
	}
	d.TransID = uint16(tid)
	for _, f := range [...]struct {
		slot int
		dst  *uint16
	}{{fQType, &d.QType}, {fQClass, &d.QClass}} {
		v, err := r.uint(f.slot)
		if err != nil || v > math.MaxUint16 {
			return r.errf(f.slot, "not a DNS type or class")
		}
		*f.dst = uint16(v)
	}
	if r.has(fRCode) {
		rc, err := r.uint(fRCode)
		if err != nil || rc > 4095 {
			return r.errf(fRCode, "not a DNS rcode")
		}
		d.RCode = int(rc)
	}
	d.Query = r.str(fQuery)
	r.each(fAnswers, func(b []byte) { d.Answers = append(d.Answers, string(b)) })
	var ttlErr error
	r.each(fTTLs, func(b []byte) {
		sec, _, ok := parseDecimal(b)
		if !ok || sec < 0 || sec > math.MaxUint32 {
			ttlErr = r.errf(fTTLs, "not a TTL list")
			return
		}
		d.TTLs = append(d.TTLs, uint32(sec))
	})
	if ttlErr != nil {
		return ttlErr
	}
	d.QueryLen, d.RespLen = dnsSizes(&d)
	s := j.slot(r.v[fUID].b)
	if s == nil {
		return nil
	}
	if len(s.dns) >= maxDNSPerConn {
		s.dnsDropped++
		return nil
	}
	s.dns = append(s.dns, d)
	return nil
}

// dnsSizes estimates the DNS message sizes dns.log does not carry: a
// 12-byte header, the question (the name's wire length plus type and
// class), and for the response one record per answer with a compressed
// owner name (2), type, class, TTL and length (10) and its data (4 for an
// A record, 16 for AAAA, otherwise the answer's text length, which for a
// name or TXT string is within a few bytes of its wire size).
func dnsSizes(d *cw.DNS) (q, resp int) {
	name := len(d.Query)
	if name > 0 {
		name += 2 // first length byte and the root label
	} else {
		name = 1
	}
	q = 12 + name + 4
	if d.RCode < 0 {
		return q, 0
	}
	resp = q
	for _, a := range d.Answers {
		rd := len(a)
		if ad, err := netip.ParseAddr(a); err == nil {
			rd = 4
			if ad.Is6() {
				rd = 16
			}
		}
		resp += 12 + rd
	}
	return q, resp
}

func (j *joinIndex) addSSL(r *record) error {
	if !r.has(fUID) {
		return nil
	}
	s := j.slot(r.v[fUID].b)
	if s == nil {
		return nil
	}
	// A uid can have several ssl.log lines (StartTLS, renegotiation): the
	// first with a server name wins, later ones fill what it lacked.
	t := s.tls
	if t == nil {
		t = &cw.TLS{}
		s.tls = t
	}
	if t.SNI == "" {
		t.SNI = r.str(fServerName)
	}
	if t.Version == "" {
		t.Version = r.strIn(fVersion, j.in)
	}
	if t.JA3 == "" {
		t.JA3 = r.str(fJA3)
	}
	if t.JA4 == "" {
		t.JA4 = r.str(fJA4)
	}
	if len(t.ALPN) == 0 && r.has(fNextProtocol) {
		if p := r.strIn(fNextProtocol, j.in); p != "" {
			t.ALPN = []string{p}
		}
	}
	return nil
}

func (j *joinIndex) addHTTP(r *record) error {
	if !r.has(fUID) {
		return nil
	}
	h := cw.HTTP{}
	var err error
	if h.RequestBodyLen, err = r.int64(fReqBodyLen); err != nil {
		return err
	}
	if h.ResponseBodyLen, err = r.int64(fRespBodyLen); err != nil {
		return err
	}
	sc, err := r.uint(fStatusCode)
	if err != nil || sc > 999 {
		return r.errf(fStatusCode, "not an HTTP status")
	}
	h.StatusCode = int(sc)
	h.Method = r.strIn(fMethod, j.in)
	h.Host = r.str(fHost)
	h.URI = r.str(fURI)
	h.UserAgent = r.strIn(fUserAgent, j.in)
	r.each(fRespMimeTypes, func(b []byte) {
		if h.ContentType == "" {
			h.ContentType = j.in.get(b)
		}
	})
	s := j.slot(r.v[fUID].b)
	if s == nil || len(s.http) >= maxHTTPPerConn {
		return nil
	}
	s.http = append(s.http, h)
	return nil
}

// addFiles keeps the mime type of each file under the conn(s) that
// carried it: conn_uids in Zeek before 5.0, uid after.
func (j *joinIndex) addFiles(r *record) error {
	mime := r.strIn(fMimeType, j.in)
	if mime == "" {
		return nil
	}
	put := func(uid []byte) {
		if s := j.slot(uid); s != nil && len(s.mimes) < maxMimePerConn {
			s.mimes = append(s.mimes, mime)
		}
	}
	if r.has(fUID) {
		put(r.v[fUID].b)
		return nil
	}
	r.each(fConnUIDs, put)
	return nil
}

// attach copies the uid's side data onto c.
func (j *joinIndex) attach(c *cw.Conn, parent string) { attach(c, parent, j.get) }

// attach copies the side data get finds for c's uid onto c; parent is
// the tunnel conn's uid, whose tunnel.log type names c's tunnel.
func attach(c *cw.Conn, parent string, get func(string) *side) {
	if parent != "" {
		if p := get(parent); p != nil && p.tunnel != "" {
			c.Tunnel = p.tunnel
		} else if c.Tunnel == "" {
			c.Tunnel = "tunnel"
		}
	}
	s := get(c.UID)
	if s == nil {
		return
	}
	c.DNS = s.dns
	c.DNSDropped = s.dnsDropped
	c.TLS = s.tls
	c.HTTP = s.http
	if s.used {
		// The same uid twice (conn.log and open_conn.log, or a duplicated
		// line): later stages rewrite these in place (redaction), so each
		// Conn gets its own copy.
		c.DNS = slices.Clone(s.dns)
		c.HTTP = slices.Clone(s.http)
		if s.tls != nil {
			t := *s.tls
			c.TLS = &t
		}
	}
	s.used = true
	k := 0
	for i := range c.HTTP {
		if c.HTTP[i].ContentType == "" && k < len(s.mimes) {
			c.HTTP[i].ContentType = s.mimes[k]
			k++
		}
	}
}
