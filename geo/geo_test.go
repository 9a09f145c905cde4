package geo

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

func corpusDB(t testing.TB, name string) string {
	t.Helper()
	return corpus.Path(t, "geoip", name)
}

func newEnricher(t testing.TB, cfg Config) *Enricher {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// want describes the enrichment of one address; "-" means "must be empty".
type want struct {
	addr    string
	local   bool
	country string
	asn     uint32
	jur     string
	srcHas  string // substring of JurisdictionSource, "" when it must be empty
}

func checkLookup(t *testing.T, e *Enricher, tests []want) {
	t.Helper()
	for _, tt := range tests {
		ep := e.Lookup(netip.MustParseAddr(tt.addr))
		if ep.Local != tt.local || ep.Country != tt.country || ep.ASN != tt.asn || ep.Jurisdiction != tt.jur {
			t.Errorf("%s: got local=%v country=%q asn=%d jur=%q, want local=%v country=%q asn=%d jur=%q",
				tt.addr, ep.Local, ep.Country, ep.ASN, ep.Jurisdiction, tt.local, tt.country, tt.asn, tt.jur)
		}
		if tt.srcHas == "" && ep.JurisdictionSource != "" || !strings.Contains(ep.JurisdictionSource, tt.srcHas) {
			t.Errorf("%s: JurisdictionSource = %q, want it to contain %q", tt.addr, ep.JurisdictionSource, tt.srcHas)
		}
	}
}

func TestLookupEmbedded(t *testing.T) {
	e := newEnricher(t, Config{})
	checkLookup(t, e, []want{
		{addr: "10.1.2.3", local: true},
		{addr: "192.168.0.10", local: true},
		{addr: "fe80::1", local: true},
		{addr: "224.0.0.251"},
		{addr: "255.255.255.255"},
		{addr: "0.0.0.0"},
		{addr: "8.8.8.8", country: "US", jur: "US"},
		{addr: "2001:4860:4860::8888", country: "US", jur: "US"},
		{addr: "::ffff:8.8.8.8", country: "US", jur: "US"},
		// Alibaba Cloud Frankfurt: sits in DE, controlled from CN.
		{addr: "8.209.72.15", country: "DE", asn: 45102, jur: "CN", srcHas: "Alibaba Cloud"},
		{addr: "47.254.128.1", country: "DE", asn: 45102, jur: "CN", srcHas: "Alibaba Cloud"},
		// China Telecom Europe (AS49209) in London and CTG (AS23764) in Frankfurt.
		{addr: "5.10.141.1", country: "GB", asn: 49209, jur: "CN", srcHas: "China Telecom"},
		{addr: "5.154.144.1", country: "DE", asn: 23764, jur: "CN", srcHas: "China Telecom"},
		// Tencent Cloud Singapore.
		{addr: "43.156.0.1", country: "SG", asn: 132203, jur: "CN", srcHas: "Tencent"},
		// In China already: same jurisdiction, so no source.
		{addr: "49.64.0.1", country: "CN", asn: 4134, jur: "CN"},
	})
}

func TestLookupMMDB(t *testing.T) {
	e := newEnricher(t, Config{
		CountryDB: corpusDB(t, "GeoLite2-Country-Test.mmdb"),
		ASNDB:     corpusDB(t, "GeoLite2-ASN-Test.mmdb"),
	})
	checkLookup(t, e, []want{
		{addr: "2.125.160.216", country: "GB", jur: "GB"},
		{addr: "89.160.20.115", country: "SE", asn: 29518, jur: "SE"},
		{addr: "67.43.156.1", country: "BT", asn: 35908, jur: "BT"}, // the test db's own country wins
		{addr: "1.0.0.1", country: "AU", asn: 15169, jur: "AU"},     // country not in the test db: embedded fallback (APNIC space)
		{addr: "1.128.0.1", country: "AU", asn: 1221, jur: "AU"},
		// ASN from the database drives the table.
		{addr: "49.64.0.1", country: "CN", asn: 4134, jur: "CN"},
		{addr: "27.192.0.1", country: "CN", asn: 4837, jur: "CN"},
		{addr: "36.192.8.1", country: "CN", asn: 9394, jur: "CN"},
		// Not in the test ASN db: the embedded prefix table still finds Alibaba.
		{addr: "8.209.72.15", country: "DE", asn: 45102, jur: "CN", srcHas: "Alibaba"},
		{addr: "10.0.0.1", local: true},
	})
	if ep := e.Lookup(netip.MustParseAddr("1.0.0.1")); ep.Org != "Google Inc." {
		t.Errorf("1.0.0.1 org = %q, want Google Inc.", ep.Org)
	}
	if s := e.Stats(); s.DBErrors != 0 {
		t.Errorf("%d database errors", s.DBErrors)
	}
}

// An organisation pattern matches an ASN the table does not list.
func TestOrgPatternWithASNDB(t *testing.T) {
	e := newEnricher(t, Config{ASNDB: corpusDB(t, "GeoLite2-ASN-Test.mmdb"), NoBuiltinJurisdictions: true})
	if err := e.AddJurisdiction(JurisdictionEntry{Org: "Telstra (test)", Jurisdiction: "NZ", OrgContains: []string{"^telstra"}, Sources: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	checkLookup(t, e, []want{
		{addr: "1.128.0.1", country: "AU", asn: 1221, jur: "NZ", srcHas: "Telstra (test); test"},
		{addr: "1.0.0.1", country: "AU", asn: 15169, jur: "AU"},
	})
}

func TestBadDatabases(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("this is not a MaxMind database\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Metadata marker but nothing valid around it.
	half := filepath.Join(dir, "half.mmdb")
	if err := os.WriteFile(half, append(make([]byte, 64), []byte("\xab\xcd\xefMaxMind.com\xe0")...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"missing", Config{CountryDB: filepath.Join(dir, "nope.mmdb")}, []string{"country database", "nope.mmdb"}},
		{"garbage", Config{ASNDB: garbage}, []string{"ASN database", "garbage.mmdb", "not a readable MaxMind DB"}},
		{"truncated", Config{CountryDB: half}, []string{"country database", "half.mmdb"}},
		{"directory", Config{ASNDB: dir}, []string{"ASN database", dir}},
	}
	if root := corpus.Root(); root != "" && fileExists(filepath.Join(root, "geoip", "GeoLite2-ASN-Test.mmdb")) {
		p := filepath.Join(root, "geoip", "GeoLite2-ASN-Test.mmdb")
		tests = append(tests,
			struct {
				name string
				cfg  Config
				want []string
			}{"asn as country", Config{CountryDB: p}, []string{"country database", "GeoLite2-ASN", "holds no country data"}},
			struct {
				name string
				cfg  Config
				want []string
			}{"country as asn", Config{ASNDB: filepath.Join(root, "geoip", "GeoLite2-Country-Test.mmdb")}, []string{"ASN database", "GeoLite2-Country", "holds no ASN data"}},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.cfg)
			if err == nil {
				e.Close()
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestEnrichConn(t *testing.T) {
	e := newEnricher(t, Config{})
	asset := &cargowatch.Asset{Name: "crane-7"}
	c := &cargowatch.Conn{
		Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr("10.20.0.7"), Port: 50123, Asset: asset, Name: "crane-7"},
		Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr("8.209.72.15"), Port: 443, Name: "api.example.cn"},
	}
	e.Enrich(c)
	if !c.Orig.Local || c.Orig.Country != "" || c.Orig.Asset != asset || c.Orig.Name != "crane-7" || c.Orig.Port != 50123 {
		t.Errorf("orig = %+v", c.Orig)
	}
	if c.Resp.Local || c.Resp.Country != "DE" || c.Resp.Jurisdiction != "CN" || c.Resp.Name != "api.example.cn" || c.Resp.Port != 443 {
		t.Errorf("resp = %+v", c.Resp)
	}
	// Local set by an earlier enricher (an assets file) is kept, without geography.
	pre := &cargowatch.Conn{Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr("147.32.80.37"), Local: true}}
	e.Enrich(pre)
	if !pre.Orig.Local || pre.Orig.Country != "" || pre.Orig.Jurisdiction != "" {
		t.Errorf("preset local = %+v", pre.Orig)
	}
	e.Enrich(nil) // must not panic
	e.Enrich(&cargowatch.Conn{})
}

// A source that knows the ASN (NetFlow) drives the table when no ASN
// database is given.
func TestEnrichKeepsSourceASN(t *testing.T) {
	e := newEnricher(t, Config{})
	c := &cargowatch.Conn{
		Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr("10.0.0.1")},
		Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr("8.8.4.4"), ASN: 45090},
	}
	e.Enrich(c)
	if c.Resp.ASN != 45090 || c.Resp.Jurisdiction != "CN" || c.Resp.Country != "US" || !strings.Contains(c.Resp.JurisdictionSource, "Tencent") {
		t.Errorf("resp = %+v", c.Resp)
	}
	// The cache must not carry the source's ASN over to a plain lookup.
	if ep := e.Lookup(netip.MustParseAddr("8.8.4.4")); ep.ASN != 0 || ep.Jurisdiction != "US" {
		t.Errorf("lookup after enrich = %+v", ep)
	}
}

func TestAddJurisdictionAndLocal(t *testing.T) {
	e := newEnricher(t, Config{})
	a := netip.MustParseAddr("8.209.72.15")
	if ep := e.Lookup(a); ep.Jurisdiction != "CN" {
		t.Fatalf("before override: %+v", ep)
	}
	// Policy cancels the shipped entry for AS45102.
	if err := e.AddJurisdiction(JurisdictionEntry{Org: "Alibaba EU (accepted)", ASNs: []uint32{45102}}); err != nil {
		t.Fatal(err)
	}
	if ep := e.Lookup(a); ep.Jurisdiction != "DE" || ep.JurisdictionSource != "" {
		t.Errorf("after cancel: %+v", ep)
	}
	// A prefix entry beats the ASN entry.
	if err := e.AddJurisdiction(JurisdictionEntry{Org: "Specific", Jurisdiction: "RU", Prefixes: []netip.Prefix{netip.MustParsePrefix("8.209.72.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if ep := e.Lookup(a); ep.Jurisdiction != "RU" || !strings.HasPrefix(ep.JurisdictionSource, "Specific") {
		t.Errorf("after prefix entry: %+v", ep)
	}
	if err := e.AddJurisdiction(JurisdictionEntry{Org: "bad", Jurisdiction: "XXX", ASNs: []uint32{1}}); err == nil {
		t.Error("bad entry accepted")
	}

	pub := netip.MustParseAddr("147.32.80.37")
	if e.Lookup(pub).Local {
		t.Fatal("147.32.80.37 local before AddLocal")
	}
	e.AddLocal(netip.MustParsePrefix("147.32.0.0/16"))
	if ep := e.Lookup(pub); !ep.Local || ep.Country != "" {
		t.Errorf("after AddLocal: %+v", ep)
	}
	if !e.IsLocal(pub) || !e.Locals().Contains(pub) {
		t.Error("IsLocal/Locals disagree with AddLocal")
	}
}

func TestConfigLocals(t *testing.T) {
	extra, err := ParseCIDRs("147.32.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnricher(t, Config{Locals: extra})
	if !e.IsLocal(netip.MustParseAddr("147.32.80.37")) || !e.IsLocal(netip.MustParseAddr("10.0.0.1")) {
		t.Error("extra locals not added to defaults")
	}
	e2 := newEnricher(t, Config{Locals: extra, NoDefaultLocals: true})
	if e2.IsLocal(netip.MustParseAddr("10.0.0.1")) {
		t.Error("NoDefaultLocals kept the defaults")
	}
	if ep := e2.Lookup(netip.MustParseAddr("10.0.0.1")); ep.Local || ep.Country != "" {
		t.Errorf("private address with no local ranges: %+v (must stay without a country)", ep)
	}
}

func TestCacheBounded(t *testing.T) {
	e := newEnricher(t, Config{CacheSize: 100})
	for i := 0; i < 1000; i++ {
		e.Lookup(v4addr(0x08000000 + uint32(i)))
	}
	if n := e.cache.young.len() + e.cache.old.len(); n > 100 {
		t.Errorf("cache holds %d addresses, bound 100", n)
	}
	s := e.Stats()
	if s.CacheEvictions < 800 || s.Lookups != 1000 {
		t.Errorf("stats = %+v, want ~900 evictions and 1000 lookups", s)
	}
	// A recently used address is a hit.
	e.Lookup(v4addr(0x08000000 + 999))
	if e.Stats().CacheHits != 1 {
		t.Errorf("hits = %d, want 1", e.Stats().CacheHits)
	}
	off := newEnricher(t, Config{CacheSize: -1})
	off.Lookup(netip.MustParseAddr("8.8.8.8"))
	off.Lookup(netip.MustParseAddr("8.8.8.8"))
	if s := off.Stats(); s.CacheHits != 0 || s.Lookups != 2 {
		t.Errorf("disabled cache: %+v", s)
	}
}

func TestConcurrentEnrich(t *testing.T) {
	e := newEnricher(t, Config{CacheSize: 64})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				c := &cargowatch.Conn{
					Orig: cargowatch.Endpoint{Addr: v4addr(0x0A000000 + uint32(i%50))},
					Resp: cargowatch.Endpoint{Addr: v4addr(0x08D1480F + uint32(i%100))},
				}
				e.Enrich(c)
				if !c.Orig.Local || c.Resp.Jurisdiction == "" {
					t.Errorf("goroutine %d: %+v", g, c)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func BenchmarkEnrich(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	// 256 local hosts talking to 4096 remote addresses: a cache-friendly but
	// realistic spread.
	conns := make([]cargowatch.Conn, 4096)
	for i := range conns {
		conns[i].Orig.Addr = v4addr(0x0A000000 + uint32(i%256))
		conns[i].Resp.Addr = v4addr(0x08D10000 + uint32(i*16))
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c := &conns[i&4095]
		e.Enrich(c)
	}
	b.ReportMetric(float64(cpuTime()-t0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's CPU time in ns: on a shared, overloaded machine
// wall-clock ns/op mostly measures the neighbours.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkLookupUncached(b *testing.B) {
	e, err := New(Config{CacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		e.Lookup(v4addr(0x08000000 + uint32(i*2654435761)))
	}
	b.ReportMetric(float64(cpuTime()-t0)/float64(b.N), "cpu-ns/op")
}
