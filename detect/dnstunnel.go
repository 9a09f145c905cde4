package detect

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	cw "github.com/cargowatch/cargowatch"
)

// DNS tunnelling. A tunnel carries data in the names it asks for, so it
// shows as a registrable domain (the part a registrant controls, which the
// tunnel's authoritative server needs) under which one host asks for
// very many distinct, long, random-looking names, often with TXT, NULL,
// CNAME or MX queries whose answers carry the data back. Each feature is
// common alone (CDNs use long random names, DNS blocklists many unique
// ones, anti-virus TXT lookups); the score asks for them together, and a
// configurable list of well-known services lowers it.
//
// Scores per (querying local host, registrable domain), all sub-scores in
// [0, 1]; docs/DETECTIONS.md has the same with examples:
//
//	per query, on the subdomain s (the name minus the registrable domain):
//	  length   = 0.35·clamp((len(s) − 16)/48) + 0.65·clamp((longest label − 12)/40)
//	  entropy  = clamp((H(s) − 3)/1.5), H the Shannon entropy in bits per
//	             character of s without dots, case folded; 0 when fewer than
//	             8 characters
//	  invalid  = 1 when s holds a character outside [a-z0-9_-] (base64
//	             '+', '/', '=', '*'), else 0
//	  shape_q  = 0.5·length + 0.35·entropy + 0.15·invalid
//	shape   = mean of shape_q over the queries
//	unique  = clamp(log10(distinct subdomains)/3)          (1000 → 1)
//	bytes   = clamp(log2(carried/64)/10), carried = distinct × mean len(s)
//	volume  = max(unique, bytes)
//	qtype   = share of queries of an unusual type (not A, AAAA, PTR, SRV,
//	          NS, SOA, SVCB, HTTPS) × min(1, queries/10)
//	raw     = 1 − (1 − 0.55·shape)(1 − 0.5·volume)(1 − 0.35·qtype)
//	rarity  = clamp(1 − 0.15·log2(hosts querying the domain), 0.4, 1)
//	score   = raw × rarity × (QuietFactor when the domain is quiet, else 1)
//
// Severity from score (ScoreSeverity): ≥ 0.65 high, ≥ 0.45 medium, ≥ 0.25
// low; findings below MinScore (0.25) are not reported.
//
// Names whose last label cannot be a top-level domain (digits, over 24
// characters: dnscat2 without a domain sends such names straight to its
// server) share one pseudo-domain, InvalidTLD, per host: they can only
// reach the server the host sends them to, and spread over one domain each
// they would never add up.
//
// Memory: at most MaxPairs (host, domain) aggregates. Each holds a
// distinct-count sketch of at most 64 hashes (512 bytes), 6 sample names
// of at most 128 characters, 4 resolver endpoints, 6 uids and at most 16
// query-type counters: measured 3.7 KiB at worst with its map entries
// (150 MB at the default cap), 1.1 KiB for a pair with one name. When the
// cap is reached the half with the lowest current score is evicted
// (counted in Evicted), so a tunnel that starts late still finds room and
// ordinary pairs cannot crowd it out. Hosts per domain are counted up to
// 16 (rarity reaches its floor there).
type DNSTunnel struct {
	cfg DNSTunnelConfig

	pairs   map[dnsKey]*dnsPair
	domains map[string]*dnsDomain
	quiet   []string
	evicted int64
}

// DNSTunnelConfig tunes the DNS-tunnelling detector; zero fields take the
// defaults.
type DNSTunnelConfig struct {
	// Quiet lists domains whose scores are lowered (see
	// quiet_domains.txt); nil takes DefaultQuietDomains, an empty non-nil
	// slice disables the list.
	Quiet []string
	// QuietFactor multiplies the score of a quiet domain (default 0.3).
	QuietFactor float64
	// MinScore is the lowest score reported (default 0.25, low).
	MinScore float64
	// MaxPairs caps the (host, domain) aggregates (default 40,000).
	MaxPairs int
	// Window is what Expire keeps over a continuous source (default 24 h).
	Window time.Duration
}

// InvalidTLD is the pseudo-domain of names whose last label cannot be a
// top-level domain.
const InvalidTLD = "(invalid-tld)"

// Caps of the DNS-tunnelling detector.
const (
	DefaultMaxDNSPairs = 40_000
	sketchK            = 64 // distinct-count sketch size: ~13% error beyond 64 names
	dnsSamples         = 6
	dnsSampleLen       = 128
	dnsResolvers       = 4
	dnsUIDs            = 6
	domainHosts        = 16
)

//go:embed quiet_domains.txt
var quietDomainsFile string

// DefaultQuietDomains returns the embedded quiet list (quiet_domains.txt).
func DefaultQuietDomains() []string {
	ds, err := ParseQuietDomains(strings.NewReader(quietDomainsFile), "quiet_domains.txt")
	if err != nil {
		panic(err) // the embedded file is tested; a bad one is a build bug
	}
	return ds
}

// ParseQuietDomains reads a quiet list: one domain per line, "#" comments,
// blank lines ignored. A bad line is reported (name:line) and skipped; the
// good ones are returned with the joined errors.
func ParseQuietDomains(r io.Reader, name string) ([]string, error) {
	var out []string
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
		if s == "" {
			continue
		}
		if err := checkDomainName(s); err != nil {
			errs = append(errs, fmt.Errorf("dns tunnel: quiet list %s:%d: %q: %w", name, line, s, err))
			continue
		}
		if reg, _, ok := splitDomain(s); ok && reg != InvalidTLD {
			s = reg
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("dns tunnel: quiet list %s:%d: %w", name, line+1, err))
	}
	slices.Sort(out)
	return slices.Compact(out), errors.Join(errs...)
}

func checkDomainName(s string) error {
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > 63 {
			return errors.New("label longer than 63 characters")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("character %q not allowed in a domain name", c)
			}
		}
	}
	return nil
}

type dnsKey struct {
	host   netip.Addr
	domain string
}

type dnsPair struct {
	host          cw.Endpoint
	domain        string
	first, last   time.Time
	queries       int64
	dropped       int64
	qtypes        map[uint16]int64 // at most maxQTypes keys
	unusual       int64
	nxdomain      int64
	sumShape      float64
	sumLen        float64 // subdomain characters
	sumEntropy    float64
	invalid       int64
	maxLabel      int
	queryBytes    int64
	respBytes     int64
	uniq          distinctSketch
	samples       []string
	resolvers     []cw.Endpoint
	resolverCount []int64
	uids          []string
}

const maxQTypes = 16

type dnsDomain struct {
	hosts []netip.Addr // at most domainHosts
	pairs int          // live pairs referring to the domain
}

// NewDNSTunnel returns the detector with cfg's zero fields defaulted.
func NewDNSTunnel(cfg DNSTunnelConfig) *DNSTunnel {
	if cfg.Quiet == nil {
		cfg.Quiet = DefaultQuietDomains()
	}
	if cfg.QuietFactor <= 0 || cfg.QuietFactor > 1 {
		cfg.QuietFactor = 0.3
	}
	if cfg.MinScore <= 0 {
		cfg.MinScore = 0.25
	}
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = DefaultMaxDNSPairs
	}
	if cfg.Window <= 0 {
		cfg.Window = dayWindow
	}
	q := make([]string, 0, len(cfg.Quiet))
	for _, d := range cfg.Quiet {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if d == "" {
			continue
		}
		if reg, _, ok := splitDomain(d); ok && reg != InvalidTLD {
			d = reg
		}
		q = append(q, d)
	}
	return &DNSTunnel{cfg: cfg, pairs: map[dnsKey]*dnsPair{}, domains: map[string]*dnsDomain{}, quiet: q}
}

// Name implements cw.Detector.
func (d *DNSTunnel) Name() string { return cw.KindDNSTunnel }

// Evicted reports how many (host, domain) aggregates were dropped to stay
// within MaxPairs.
func (d *DNSTunnel) Evicted() int64 { return d.evicted }

// Observe implements cw.Detector.
func (d *DNSTunnel) Observe(c *cw.Conn) {
	if len(c.DNS) == 0 && c.DNSDropped == 0 {
		return
	}
	client, server := c.Orig, c.Resp
	if isDNSServerPort(c.Orig.Port) && !isDNSServerPort(c.Resp.Port) {
		client, server = c.Resp, c.Orig
	}
	// mDNS, LLMNR and NetBIOS names stay on the link: nothing leaves.
	if linkLocalNamePort(client.Port) || linkLocalNamePort(server.Port) {
		return
	}
	if !client.Local || !client.Addr.IsValid() {
		return
	}
	var last *dnsPair
	for i := range c.DNS {
		m := &c.DNS[i]
		name := strings.TrimSuffix(m.Query, ".")
		if name == "" {
			continue
		}
		lower := strings.ToLower(name)
		if len(lower) != len(name) {
			name = lower // non-ASCII folding changed lengths: slice the folded name
		}
		reg, _, ok := splitDomain(lower)
		if !ok {
			continue
		}
		p := d.pair(client, reg, c.TS)
		if p == nil {
			continue
		}
		// The subdomain keeps its case for the invalid-character test;
		// reg is a suffix of the lowered name of the same length.
		sub := ""
		if reg == InvalidTLD {
			sub = name
		} else if n := len(name) - len(reg); n > 0 {
			sub = strings.TrimSuffix(name[:n], ".")
		}
		p.add(m, sub, c, client, server)
		last = p
	}
	if last != nil && c.DNSDropped > 0 {
		last.dropped += int64(c.DNSDropped)
	}
}

func isDNSServerPort(p uint16) bool { return p == 53 || p == 853 }

func linkLocalNamePort(p uint16) bool { return p == 5353 || p == 5355 || p == 137 }

func (d *DNSTunnel) pair(host cw.Endpoint, domain string, ts time.Time) *dnsPair {
	k := dnsKey{host.Addr, domain}
	p := d.pairs[k]
	if p != nil {
		return p
	}
	if len(d.pairs) >= d.cfg.MaxPairs {
		d.evict()
	}
	p = &dnsPair{host: host, domain: domain, first: ts, last: ts}
	d.pairs[k] = p
	dom := d.domains[domain]
	if dom == nil {
		dom = &dnsDomain{}
		d.domains[domain] = dom
	}
	dom.pairs++
	if len(dom.hosts) < domainHosts && !slices.Contains(dom.hosts, host.Addr) {
		dom.hosts = append(dom.hosts, host.Addr)
	}
	return p
}

// evict drops the half of the pairs with the lowest current score.
func (d *DNSTunnel) evict() {
	type ks struct {
		k dnsKey
		s float64
	}
	all := make([]ks, 0, len(d.pairs))
	for k, p := range d.pairs {
		all = append(all, ks{k, d.score(p).raw})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].s < all[j].s })
	for _, e := range all[:max(1, len(all)/2)] {
		d.drop(e.k)
		d.evicted++
	}
}

func (d *DNSTunnel) drop(k dnsKey) {
	delete(d.pairs, k)
	if dom := d.domains[k.domain]; dom != nil {
		if dom.pairs--; dom.pairs <= 0 {
			delete(d.domains, k.domain)
		}
	}
}

// Expire implements cw.Expirer: pairs silent for the whole window that
// ends at now are forgotten. A pair still active keeps what it learned
// since it started, so a slow tunnel keeps adding up.
func (d *DNSTunnel) Expire(now time.Time) {
	start := now.Add(-d.cfg.Window)
	for k, p := range d.pairs {
		if p.last.Before(start) {
			d.drop(k)
		}
	}
}

func (p *dnsPair) add(m *cw.DNS, sub string, c *cw.Conn, client, server cw.Endpoint) {
	if !c.TS.IsZero() && (p.first.IsZero() || c.TS.Before(p.first)) {
		p.first = c.TS
	}
	if end := c.TS.Add(max(c.Duration, 0)); end.After(p.last) {
		p.last = end
	}
	if p.host.Asset == nil && client.Asset != nil {
		p.host = client // an asset learned mid-run names the host better
	}
	p.queries++
	if p.qtypes == nil {
		p.qtypes = map[uint16]int64{}
	}
	if _, ok := p.qtypes[m.QType]; ok || len(p.qtypes) < maxQTypes {
		p.qtypes[m.QType]++
	}
	if unusualQType(m.QType) {
		p.unusual++
	}
	if m.RCode == 3 {
		p.nxdomain++
	}
	p.queryBytes += int64(max(m.QueryLen, 0))
	p.respBytes += int64(max(m.RespLen, 0))

	f := subFeatures(sub)
	p.sumShape += f.shape
	p.sumLen += float64(f.length)
	p.sumEntropy += f.entropy
	if f.invalid {
		p.invalid++
	}
	p.maxLabel = max(p.maxLabel, f.maxLabel)
	if sub != "" {
		p.uniq.add(hashName(sub))
		if len(p.samples) < dnsSamples {
			s := sub + "." + p.domain
			if p.domain == InvalidTLD {
				s = sub
			}
			if len(s) > dnsSampleLen {
				s = s[:dnsSampleLen-3] + "..."
			}
			if !slices.Contains(p.samples, s) {
				p.samples = append(p.samples, s)
			}
		}
	}
	if c.UID != "" && len(p.uids) < dnsUIDs && !slices.Contains(p.uids, c.UID) {
		p.uids = append(p.uids, c.UID)
	}
	for i := range p.resolvers {
		if p.resolvers[i].Addr == server.Addr {
			p.resolverCount[i]++
			return
		}
	}
	if len(p.resolvers) < dnsResolvers {
		p.resolvers = append(p.resolvers, server)
		p.resolverCount = append(p.resolverCount, 1)
	}
}

// unusualQType reports query types that ordinary clients rarely ask for
// but tunnels favour because their answers carry arbitrary data.
func unusualQType(t uint16) bool {
	switch t {
	case 1, 2, 6, 12, 28, 33, 64, 65: // A NS SOA PTR AAAA SRV SVCB HTTPS
		return false
	}
	return true
}

var qtypeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 15: "MX", 16: "TXT",
	28: "AAAA", 33: "SRV", 35: "NAPTR", 64: "SVCB", 65: "HTTPS", 99: "SPF", 255: "ANY",
}

func qtypeName(t uint16) string {
	if n, ok := qtypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("TYPE%d", t)
}

type nameFeatures struct {
	length   int // characters of the subdomain, dots included
	maxLabel int
	entropy  float64 // bits per character, case folded, dots excluded
	invalid  bool
	shape    float64
}

// subFeatures measures one subdomain; see the DNSTunnel doc for the
// formulas.
func subFeatures(s string) nameFeatures {
	var f nameFeatures
	f.length = len(s)
	var counts [256]uint16
	n, label := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			f.maxLabel = max(f.maxLabel, label)
			label = 0
			continue
		}
		label++
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			f.invalid = true
		}
		counts[c]++
		n++
	}
	f.maxLabel = max(f.maxLabel, label)
	if n > 0 {
		// H = log2 n − Σ k·log2 k / n, with k·log2 k from a table: one
		// logarithm per name instead of one per distinct character.
		sum := 0.0
		for _, k := range counts {
			if k > 1 {
				if int(k) < len(kLog2k) {
					sum += kLog2k[k]
				} else {
					sum += float64(k) * math.Log2(float64(k))
				}
			}
		}
		f.entropy = max(0, math.Log2(float64(n))-sum/float64(n))
	}
	// Tunnels fill labels towards the 63-byte limit to carry the most per
	// query; ordinary long names are many short labels (search-domain
	// suffixes, reverse and DNSBL lookups), so the longest label weighs most.
	length := 0.35*clampUnit(float64(f.length-16)/48) + 0.65*clampUnit(float64(f.maxLabel-12)/40)
	ent := 0.0
	if n >= 8 {
		ent = clampUnit((f.entropy - 3) / 1.5)
	}
	inv := 0.0
	if f.invalid {
		inv = 1
	}
	f.shape = 0.5*length + 0.35*ent + 0.15*inv
	return f
}

// kLog2k[k] = k·log2(k) for the counts a DNS name can hold.
var kLog2k = func() (t [256]float64) {
	for k := 2; k < len(t); k++ {
		t[k] = float64(k) * math.Log2(float64(k))
	}
	return t
}()

// splitDomain splits a lower-case name into its registrable domain and the
// subdomain before it. ok is false for names that are a public suffix
// themselves or malformed. Names whose last label cannot be a TLD return
// InvalidTLD and the whole name.
func splitDomain(name string) (reg, sub string, ok bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 1024 {
		return "", "", false
	}
	tld := name[strings.LastIndexByte(name, '.')+1:]
	if !plausibleTLD(tld) {
		if tld == "" {
			return "", "", false
		}
		return InvalidTLD, name, true
	}
	reg, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return "", "", false
	}
	sub = strings.TrimSuffix(name[:len(name)-len(reg)], ".")
	return reg, sub, true
}

// plausibleTLD: every delegated TLD is 2–24 letters, or an IDN in
// "xn--" form; private pseudo-TLDs (local, lan, corp) follow the same form.
func plausibleTLD(t string) bool {
	if strings.HasPrefix(t, "xn--") {
		return len(t) <= 63
	}
	if len(t) < 2 || len(t) > 24 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// hashName is FNV-1a with a murmur3 finaliser: the sketch needs hashes
// spread evenly over the whole 64-bit range, which FNV alone does not give
// for short strings.
func hashName(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// distinctSketch counts distinct values in bounded memory: exactly up to sketchK,
// then by the k-minimum-values estimate (k−1)/x_k, x_k the k-th smallest
// hash as a fraction of the hash range (relative error about 1/√(k−2)).
type distinctSketch struct{ h []uint64 } // ascending, at most sketchK

func (s *distinctSketch) add(x uint64) {
	i, found := slices.BinarySearch(s.h, x)
	if found {
		return
	}
	if len(s.h) < sketchK {
		s.h = slices.Insert(s.h, i, x)
		return
	}
	if i >= sketchK {
		return
	}
	copy(s.h[i+1:], s.h[i:sketchK-1])
	s.h[i] = x
}

// estimate returns the distinct count and whether it is exact.
func (s *distinctSketch) estimate() (float64, bool) {
	if len(s.h) < sketchK {
		return float64(len(s.h)), true
	}
	frac := (float64(s.h[sketchK-1]) + 1) / math.Exp2(64)
	return math.Max(sketchK, (sketchK-1)/frac), false
}

type dnsScore struct {
	shape, unique, bytes, volume float64
	qtype, qtypeShare            float64
	raw, rarity, quietF, score   float64
	distinct, carried            float64
	exact                        bool
	hosts                        int
	quiet                        string
}

func (d *DNSTunnel) score(p *dnsPair) dnsScore {
	var s dnsScore
	q := float64(max(p.queries, 1))
	s.shape = p.sumShape / q
	s.distinct, s.exact = p.uniq.estimate()
	s.carried = s.distinct * (p.sumLen / q)
	if s.distinct > 0 {
		s.unique = clampUnit(math.Log10(s.distinct) / 3)
	}
	if s.carried > 0 {
		s.bytes = clampUnit(math.Log2(s.carried/64) / 10)
	}
	s.volume = max(s.unique, s.bytes)
	s.qtypeShare = float64(p.unusual) / q
	// Two TXT lookups make a share of 100% but say little: the share
	// counts fully from 10 queries on.
	s.qtype = s.qtypeShare * min(1, q/10)
	s.raw = 1 - (1-0.55*s.shape)*(1-0.5*s.volume)*(1-0.35*s.qtype)
	s.hosts = 1
	if dom := d.domains[p.domain]; dom != nil {
		s.hosts = max(1, len(dom.hosts))
	}
	s.rarity = min(1, max(0.4, 1-0.15*math.Log2(float64(s.hosts))))
	s.quietF = 1
	if s.quiet = d.quietMatch(p.domain); s.quiet != "" {
		s.quietF = d.cfg.QuietFactor
	}
	s.score = clampUnit(s.raw * s.rarity * s.quietF)
	return s
}

func (d *DNSTunnel) quietMatch(domain string) string {
	for _, q := range d.quiet {
		if domain == q || strings.HasSuffix(domain, "."+q) {
			return q
		}
	}
	return ""
}

// Findings implements cw.Detector: one finding per (host, domain) scoring
// at least MinScore, highest first.
func (d *DNSTunnel) Findings() []cw.Finding {
	var fs []cw.Finding
	for _, p := range d.pairs {
		s := d.score(p)
		if s.score < d.cfg.MinScore {
			continue
		}
		fs = append(fs, d.finding(p, s))
	}
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Score != fs[j].Score {
			return fs[i].Score > fs[j].Score
		}
		if c := fs[i].Src.Addr.Compare(fs[j].Src.Addr); c != 0 {
			return c < 0
		}
		return fs[i].Dst.Name < fs[j].Dst.Name
	})
	return fs
}

func (d *DNSTunnel) finding(p *dnsPair, s dnsScore) cw.Finding {
	var dst cw.Endpoint
	best := int64(-1)
	resolvers := make([]string, 0, len(p.resolvers))
	for i, r := range p.resolvers {
		resolvers = append(resolvers, r.Addr.String())
		if p.resolverCount[i] > best {
			dst, best = r, p.resolverCount[i]
		}
	}
	// The name is what the tunnel is about; the address is the resolver
	// the host asked (the tunnel's own server when it bypasses ours).
	dst.Name = p.domain
	if p.domain == InvalidTLD {
		dst.Name = ""
	}
	qt := make(map[string]int64, len(p.qtypes))
	for t, n := range p.qtypes {
		qt[qtypeName(t)] += n
	}
	q := float64(max(p.queries, 1))
	sev := ScoreSeverity(s.score)
	return cw.Finding{
		Kind:      cw.KindDNSTunnel,
		Severity:  sev,
		Score:     roundScore(s.score),
		Src:       p.host,
		Dst:       dst,
		FirstSeen: p.first,
		LastSeen:  p.last,
		Count:     p.queries,
		BytesOut:  p.queryBytes,
		BytesIn:   p.respBytes,
		Summary:   d.summary(p, s),
		Evidence: map[string]any{
			"domain":                p.domain,
			"queries":               p.queries,
			"queries_not_kept":      p.dropped,
			"unique_subdomains":     int64(math.Round(s.distinct)),
			"unique_exact":          s.exact,
			"mean_subdomain_len":    roundScore(p.sumLen / q),
			"max_label_len":         p.maxLabel,
			"mean_entropy_bits":     roundScore(p.sumEntropy / q),
			"invalid_char_queries":  p.invalid,
			"qtypes":                qt,
			"unusual_qtype_share":   roundScore(s.qtypeShare),
			"bytes_carried_est":     int64(math.Round(s.carried)),
			"query_bytes":           p.queryBytes,
			"response_bytes":        p.respBytes,
			"nxdomain":              p.nxdomain,
			"hosts_querying_domain": s.hosts,
			"quiet_match":           s.quiet,
			"sub_scores": map[string]any{
				"shape": roundScore(s.shape), "unique": roundScore(s.unique), "bytes": roundScore(s.bytes),
				"volume": roundScore(s.volume), "qtype": roundScore(s.qtype), "raw": roundScore(s.raw),
				"rarity": roundScore(s.rarity), "quiet_factor": s.quietF,
			},
			"samples":   append([]string{}, p.samples...),
			"resolvers": resolvers,
			"uids":      append([]string{}, p.uids...),
			"rule":      "score = (1−(1−0.55·shape)(1−0.5·volume)(1−0.35·qtype)) × rarity × quiet_factor",
		},
	}
}

// summary reads like "scanner-07 (10.20.3.17): 1,204 queries, ~1,180
// unique subdomains (mean 98 chars, 4.6 bits/char), 100% TXT under
// cargo-sync-cdn.net via 203.0.113.53".
func (d *DNSTunnel) summary(p *dnsPair, s dnsScore) string {
	var b strings.Builder
	b.WriteString(endpointLabel(p.host))
	q := float64(max(p.queries, 1))
	approx := ""
	if !s.exact {
		approx = "~"
	}
	fmt.Fprintf(&b, ": %d DNS queries, %s%.0f unique subdomains (mean %.0f chars, %.1f bits/char)",
		p.queries, approx, s.distinct, p.sumLen/q, p.sumEntropy/q)
	if p.unusual > 0 {
		fmt.Fprintf(&b, ", %.0f%% %s", 100*s.qtypeShare, unusualLabel(p.qtypes))
	}
	if p.domain == InvalidTLD {
		b.WriteString(" for names with no valid top-level domain")
	} else {
		b.WriteString(" under " + p.domain)
	}
	if len(p.resolvers) > 0 {
		b.WriteString(" via " + p.resolvers[0].Addr.String())
		if len(p.resolvers) > 1 {
			fmt.Fprintf(&b, " +%d more", len(p.resolvers)-1)
		}
	}
	if s.quiet != "" {
		b.WriteString(" (quiet-listed: " + s.quiet + ", score lowered)")
	}
	return b.String()
}

// unusualLabel names the unusual query types, most frequent first: "TXT",
// "TXT/MX/CNAME".
func unusualLabel(m map[uint16]int64) string {
	type tn struct {
		t uint16
		n int64
	}
	var ts []tn
	for t, n := range m {
		if unusualQType(t) {
			ts = append(ts, tn{t, n})
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].n != ts[j].n {
			return ts[i].n > ts[j].n
		}
		return ts[i].t < ts[j].t
	})
	names := make([]string, 0, 3)
	for i, x := range ts {
		if i == 3 {
			break
		}
		names = append(names, qtypeName(x.t))
	}
	return strings.Join(names, "/")
}

// endpointLabel names a local host: "scanner-07 (10.20.3.17)" or the address.
func endpointLabel(e cw.Endpoint) string {
	ip := e.Addr.String()
	switch {
	case e.Asset != nil && e.Asset.Name != "":
		return e.Asset.Name + " (" + ip + ")"
	case e.Name != "":
		return e.Name + " (" + ip + ")"
	}
	return ip
}
