package dlp

import cw "github.com/cargowatch/cargowatch"

// Redact masks the cargo identifiers in a short string (a URI, a DNS name,
// a Host header) as Mask does in findings, so that the names and URIs the
// tool prints and stores cannot carry what its findings hide. UN/LOCODEs
// are public and stay. A string without identifiers comes back unchanged.
func Redact(s string) string {
	// Every identifier holds a run of at least four digits (a ULD's
	// serial is the shortest); names and URIs without one, nearly all of
	// them, skip the scanner.
	if !hasDigitRun(s, 4) {
		return s
	}
	hits, _ := Scan([]byte(s))
	var b []byte
	for _, h := range hits {
		if h.Type == TypeUNLocode {
			continue
		}
		off, v := int(h.Offset), h.Value
		m := Mask(h.Type, v)
		// Values joined from several elements (X12) do not stand in the
		// text as such; what does stand there is masked.
		if off < 0 || off+len(v) > len(s) || s[off:off+len(v)] != v || len(m) != len(v) {
			continue
		}
		if b == nil {
			b = []byte(s)
		}
		copy(b[off:], m)
	}
	if b == nil {
		return s
	}
	return string(b)
}

// RedactConn masks identifiers in the names and URIs a Conn carries: HTTP
// URIs and Host headers, DNS queries and answers, TLS SNI. The engine
// calls it before anything prints, stores or aggregates the Conn.
func RedactConn(c *cw.Conn) {
	for i := range c.HTTP {
		h := &c.HTTP[i]
		h.URI, h.Host = Redact(h.URI), Redact(h.Host)
	}
	for i := range c.DNS {
		d := &c.DNS[i]
		d.Query = Redact(d.Query)
		for j, a := range d.Answers {
			d.Answers[j] = Redact(a)
		}
	}
	if c.TLS != nil {
		c.TLS.SNI = Redact(c.TLS.SNI)
	}
	c.Orig.Name, c.Resp.Name = Redact(c.Orig.Name), Redact(c.Resp.Name)
}

func hasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}
