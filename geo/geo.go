// Package geo tells, for each address of a conversation, whether it belongs
// to the monitored network, where it sits (country), who announces it (ASN
// and organisation) and which state controls its operator (the controlling
// jurisdiction: a Chinese cloud's Frankfurt region is in DE but under CN
// law).
//
// Countries come from the IP2Location LITE data embedded in
// github.com/phuslu/iploc unless a MaxMind-format country database is
// given; ASNs from a MaxMind-format ASN database when given, else from a
// prefix table embedded for the curated networks only (derived from
// ip-location-db, CC BY 4.0). The curated table is jurisdictions.yaml.
package geo

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/cargowatch/cargowatch"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/phuslu/iploc"
)

// Config says where to find the optional databases.
type Config struct {
	// Locals are added to the default local ranges (private, shared,
	// link-local, loopback, unique-local) unless NoDefaultLocals is set.
	Locals          *Locals
	NoDefaultLocals bool

	CountryDB string // MaxMind-format country or city database (GeoLite2-Country layout, or ip-location-db country_code)
	ASNDB     string // MaxMind-format ASN database (GeoLite2-ASN layout)

	// CacheSize bounds the per-address cache (default 65536 addresses);
	// negative disables it.
	CacheSize int

	// NoBuiltinJurisdictions starts with an empty jurisdiction table
	// instead of jurisdictions.yaml.
	NoBuiltinJurisdictions bool

	Logger *slog.Logger
}

// DefaultCacheSize is the cache bound when Config.CacheSize is 0.
const DefaultCacheSize = 1 << 16

// Stats counts what the enricher did, for the run record.
type Stats struct {
	Lookups        uint64 // addresses resolved (cache misses included)
	CacheHits      uint64
	CacheEvictions uint64 // addresses dropped from the cache because it was full
	DBErrors       uint64 // lookups a database failed on (corrupt record)
	TableMatches   uint64 // resolutions where the jurisdiction table matched
}

// Enricher fills endpoints with locality, country, ASN and jurisdiction.
// It is safe for concurrent use.
type Enricher struct {
	mu      sync.Mutex
	locals  *Locals
	country *maxminddb.Reader
	asn     *maxminddb.Reader
	tab     *table // the built-in table
	over    *table // entries added by AddJurisdiction (policy): matched first
	routes  *routes
	cache   cache
	stats   Stats
	log     *slog.Logger
	dbErrs  int // errors logged so far, so a corrupt file does not flood the log
}

var _ cargowatch.Enricher = (*Enricher)(nil)

// New opens the databases named in cfg. Errors name the file and the
// problem.
func New(cfg Config) (*Enricher, error) {
	e := &Enricher{log: cfg.Logger, tab: newTable(), over: newTable()}
	if e.log == nil {
		e.log = slog.Default()
	}
	if cfg.NoDefaultLocals {
		e.locals = &Locals{}
	} else {
		e.locals = DefaultLocals()
	}
	e.locals.Merge(cfg.Locals)

	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	e.cache.init(size)

	if !cfg.NoBuiltinJurisdictions {
		for _, je := range BuiltinJurisdictions() {
			if err := e.tab.add(je); err != nil {
				return nil, fmt.Errorf("geo: built-in jurisdictions: %w", err)
			}
		}
	}
	rt, err := loadBuiltinRoutes()
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	e.routes = rt

	if cfg.CountryDB != "" {
		if e.country, err = openDB(cfg.CountryDB, "country"); err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
	}
	if cfg.ASNDB != "" {
		if e.asn, err = openDB(cfg.ASNDB, "ASN"); err != nil {
			e.Close()
			return nil, fmt.Errorf("geo: %w", err)
		}
	}
	return e, nil
}

// Close releases the databases.
func (e *Enricher) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	if e.country != nil {
		errs = append(errs, e.country.Close())
		e.country = nil
	}
	if e.asn != nil {
		errs = append(errs, e.asn.Close())
		e.asn = nil
	}
	return errors.Join(errs...)
}

// AddJurisdiction adds an entry that takes precedence over the built-in
// table whatever it matches on (an organisation pattern in a policy beats
// a built-in ASN: the analyst's word is the more specific one); among added
// entries later ones win, and an entry with an empty Jurisdiction cancels
// a match.
func (e *Enricher) AddJurisdiction(je JurisdictionEntry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.over.add(je); err != nil {
		return fmt.Errorf("geo: %w", err)
	}
	e.cache.clear()
	return nil
}

// AddLocal adds prefixes to the monitored network, e.g. ones inferred by
// OriginatorCounter.
func (e *Enricher) AddLocal(ps ...netip.Prefix) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range ps {
		e.locals.Add(p)
	}
	e.cache.clear()
}

// Locals returns a copy of the monitored network's ranges.
func (e *Enricher) Locals() *Locals {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.locals.Clone()
}

// IsLocal reports whether a belongs to the monitored network.
func (e *Enricher) IsLocal(a netip.Addr) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.locals.Contains(a)
}

// Stats returns the counters so far.
func (e *Enricher) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.CacheEvictions = e.cache.evictions
	return s
}

// Enrich fills both endpoints of c. Fields a source already set are kept
// where enrichment knows nothing better: Name, MAC, Asset, Local=true, and
// an ASN (NetFlow carries one) when no ASN database is given.
func (e *Enricher) Enrich(c *cargowatch.Conn) {
	if c == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fill(&c.Orig)
	e.fill(&c.Resp)
}

// Lookup resolves one address.
func (e *Enricher) Lookup(a netip.Addr) cargowatch.Endpoint {
	ep := cargowatch.Endpoint{Addr: a}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fill(&ep)
	return ep
}

func (e *Enricher) fill(ep *cargowatch.Endpoint) {
	if !ep.Addr.IsValid() {
		return
	}
	if ep.Local || e.locals.Contains(ep.Addr) {
		// Cheaper than the cache, and local addresses get no geography.
		// Local set by an earlier enricher (an assets file) is kept.
		ep.Local = true
		return
	}
	r, ok := e.cache.get(ep.Addr)
	if ok {
		e.stats.CacheHits++
	} else {
		r = e.resolve(ep.Addr)
		e.cache.put(ep.Addr, r)
	}
	if !r.remote {
		return
	}
	if r.asn == 0 && ep.ASN != 0 {
		// The source knew the ASN and we do not: let it drive the table.
		r.asn, r.org = ep.ASN, ep.Org
		r.jur, r.jurSrc = r.country, ""
		e.applyTable(&r, ep.Addr.Unmap())
	}
	ep.Country = r.country
	ep.ASN = r.asn
	if r.org != "" {
		ep.Org = r.org
	}
	ep.Jurisdiction = r.jur
	ep.JurisdictionSource = r.jurSrc
}

// result is what the cache holds per address.
type result struct {
	remote      bool // a public address: the rest applies
	country     string
	asn         uint32
	org         string
	jur, jurSrc string
}

func (e *Enricher) resolve(a netip.Addr) result {
	e.stats.Lookups++
	a = a.Unmap().WithZone("")
	var r result // fill has already handled local addresses
	if !IsInternet(a) {
		return r
	}
	r.remote = true
	if e.country != nil && (a.Is4() || e.country.Metadata.IPVersion == 6) {
		cc, err := lookupCountry(e.country, a)
		if err != nil {
			e.dbError("country", a, err)
		}
		r.country = cc
	}
	if r.country == "" {
		// The user's database overrides the embedded one where it knows
		// the address; where it does not, the embedded data still helps.
		r.country = normCountry(iploc.IPCountry(a))
	}
	if e.asn != nil && (a.Is4() || e.asn.Metadata.IPVersion == 6) {
		n, org, err := lookupASN(e.asn, a)
		if err != nil {
			e.dbError("ASN", a, err)
		}
		r.asn, r.org = n, org
	}
	if r.asn == 0 {
		if r.asn = e.routes.lookup(a); r.asn != 0 {
			// The curated entry's name first; else the routing dataset's,
			// which the table's organisation patterns can then match.
			if r.org = e.tab.asnOrg(r.asn); r.org == "" {
				r.org = e.routes.org(r.asn)
			}
		}
	}
	r.jur = r.country
	e.applyTable(&r, a)
	return r
}

func (e *Enricher) applyTable(r *result, a netip.Addr) {
	org := strings.ToLower(r.org)
	m := e.tab.match(a, r.asn, org)
	if org == "" && m != nil {
		// With no ASN database the built-in entry names the organisation,
		// and a policy's org pattern must be able to match that name.
		org = strings.ToLower(m.Org)
	}
	if o := e.over.match(a, r.asn, org); o != nil {
		m = o
	}
	if m == nil {
		return
	}
	e.stats.TableMatches++
	if m.Jurisdiction == "" {
		return
	}
	r.jur = m.Jurisdiction
	if r.jur != r.country {
		r.jurSrc = m.Source()
	}
	if r.org == "" {
		r.org = m.Org
	}
}

func (e *Enricher) dbError(which string, a netip.Addr, err error) {
	e.stats.DBErrors++
	if e.dbErrs < 5 {
		e.dbErrs++
		e.log.Warn("geo: database lookup failed", "db", which, "addr", a, "err", err)
	}
}

// cache is a bounded two-generation map: when the young generation fills,
// it becomes the old one and the previous old one is dropped. Hot addresses
// found in the old generation move back to the young one, so this
// approximates LRU with O(1) work and no per-entry links. IPv4 addresses
// are keyed as uint32 and values are pointers, which keeps the maps small
// and their probes cheap.
type cache struct {
	max       int // per generation; 0 disables
	young     gen
	old       gen
	evictions uint64
}

type gen struct {
	v4 map[uint32]*result
	v6 map[netip.Addr]*result
}

func (g *gen) len() int { return len(g.v4) + len(g.v6) }

func (c *cache) init(size int) {
	if size <= 0 {
		c.max = 0
		return
	}
	c.max = (size + 1) / 2
	c.clear()
}

func (c *cache) get(a netip.Addr) (result, bool) {
	if c.max == 0 {
		return result{}, false
	}
	if a.Is4() {
		k := v4int(a)
		if r := c.young.v4[k]; r != nil {
			return *r, true
		}
		if r := c.old.v4[k]; r != nil {
			delete(c.old.v4, k)
			c.put(a, *r)
			return *r, true
		}
		return result{}, false
	}
	if r := c.young.v6[a]; r != nil {
		return *r, true
	}
	if r := c.old.v6[a]; r != nil {
		delete(c.old.v6, a)
		c.put(a, *r)
		return *r, true
	}
	return result{}, false
}

func (c *cache) put(a netip.Addr, r result) {
	if c.max == 0 {
		return
	}
	if c.young.len() >= c.max {
		c.evictions += uint64(c.old.len())
		c.old = c.young
		c.young = gen{v4: make(map[uint32]*result), v6: make(map[netip.Addr]*result)}
	}
	if a.Is4() {
		c.young.v4[v4int(a)] = &r
	} else {
		c.young.v6[a] = &r
	}
}

func (c *cache) clear() {
	if c.max == 0 {
		return
	}
	c.young = gen{v4: make(map[uint32]*result), v6: make(map[netip.Addr]*result)}
	c.old = gen{}
}
