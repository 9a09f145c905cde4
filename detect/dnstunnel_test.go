package detect

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

var dtT0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// dtConn is one DNS query from a local host to a resolver.
func dtConn(host, resolver string, i int, name string, qtype uint16) *cw.Conn {
	return &cw.Conn{
		TS:    dtT0.Add(time.Duration(i) * time.Second),
		UID:   fmt.Sprintf("D%d", i),
		Orig:  cw.Endpoint{Addr: netip.MustParseAddr(host), Port: uint16(40000 + i%20000), Local: true},
		Resp:  cw.Endpoint{Addr: netip.MustParseAddr(resolver), Port: 53, Local: strings.HasPrefix(resolver, "10.")},
		Proto: "udp", Service: "dns",
		DNS: []cw.DNS{{TransID: uint16(i), Query: name, QType: qtype, QClass: 1, RCode: 0,
			QueryLen: 30 + len(name), RespLen: 60 + len(name)}},
	}
}

// dtRun feeds n queries named by gen to a fresh detector and returns the
// finding for host (score 0 when none).
func dtRun(t *testing.T, cfg DNSTunnelConfig, n int, qtype uint16, gen func(r *rand.Rand, i int) string) (cw.Finding, bool) {
	t.Helper()
	cfg.MinScore = 1e-9
	d := NewDNSTunnel(cfg)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		d.Observe(dtConn("10.0.0.7", "10.0.0.53", i, gen(r, i), qtype))
	}
	fs := d.Findings()
	if len(fs) == 0 {
		return cw.Finding{}, false
	}
	return fs[0], true
}

func b32label(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func cdnName(r *rand.Rand, i int) string {
	k := r.IntN(40)
	return fmt.Sprintf("rr%d---sn-%x.videocdn-example.com", 1+k%8, 0x4a5e6+k*7919)
}

func TestDNSTunnelScoreOrder(t *testing.T) {
	cdnPrefixes := []string{"e1234", "e5678", "a1b2", "static", "img", "video", "api", "cdn", "edge", "www"}
	cases := []struct {
		name  string
		quiet []string
		n     int
		qtype uint16
		gen   func(r *rand.Rand, i int) string
	}{
		{"base32 63-char labels, TXT", nil, 300, 16, func(r *rand.Rand, i int) string {
			return b32label(r, 38) + "." + b32label(r, 20) + ".t.evil-sync.net"
		}},
		{"base32 63-char labels, A", nil, 300, 1, func(r *rand.Rand, i int) string {
			return b32label(r, 38) + "." + b32label(r, 20) + ".t.evil-sync.net"
		}},
		{"hex 32-char labels, A", nil, 300, 1, func(r *rand.Rand, i int) string {
			b := make([]byte, 16)
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			return hex.EncodeToString(b) + ".h.evil-sync.net"
		}},
		{"few long random names, TXT", nil, 3, 16, func(r *rand.Rand, i int) string {
			return b32label(r, 30) + ".evil-sync.net"
		}},
		// A video CDN's per-cache names (googlevideo style): ~40 distinct
		// semi-random names over a day of streaming.
		{"CDN-like names, A", nil, 300, 1, cdnName},
		{"CDN object names under a public suffix, A", nil, 300, 1, func(r *rand.Rand, i int) string {
			return fmt.Sprintf("%s.dsc%d.akamaiedge.net", cdnPrefixes[r.IntN(len(cdnPrefixes))], r.IntN(40))
		}},
		{"same CDN names, quiet-listed", []string{"videocdn-example.com"}, 300, 1, cdnName},
		{"one name repeated", nil, 300, 1, func(r *rand.Rand, i int) string { return "www.example.com" }},
	}
	var prev float64 = 2
	scores := map[string]float64{}
	for _, c := range cases {
		cfg := DNSTunnelConfig{Quiet: []string{}}
		if c.quiet != nil {
			cfg.Quiet = c.quiet
		}
		f, ok := dtRun(t, cfg, c.n, c.qtype, c.gen)
		s := 0.0
		if ok {
			s = f.Score
		}
		scores[c.name] = s
		t.Logf("%-32s score %.3f %s", c.name, s, f.Summary)
		if s >= prev {
			t.Errorf("%s scored %.3f, not below the previous case (%.3f)", c.name, s, prev)
		}
		prev = s
	}
	if s := scores["base32 63-char labels, TXT"]; s < 0.65 {
		t.Errorf("TXT tunnel scored %.3f, want high (≥ 0.65)", s)
	}
	if s := scores["CDN-like names, A"]; s >= 0.45 {
		t.Errorf("CDN-like names scored %.3f, want at most low (< 0.45) even without the quiet list", s)
	}
	if s := scores["one name repeated"]; s >= 0.1 {
		t.Errorf("repeated name scored %.3f, want about 0", s)
	}
}

func TestDNSTunnelQuietLowersByFactor(t *testing.T) {
	gen := func(r *rand.Rand, i int) string { return b32label(r, 35) + ".x.cargo-sync-cdn.net" }
	loud, _ := dtRun(t, DNSTunnelConfig{Quiet: []string{}}, 200, 16, gen)
	quiet, _ := dtRun(t, DNSTunnelConfig{Quiet: []string{"Cargo-Sync-CDN.net."}, QuietFactor: 0.5}, 200, 16, gen)
	if got, want := quiet.Score, roundScore(loud.Score*0.5); dtAbs(got-want) > 0.002 {
		t.Errorf("quiet score %.3f, want %.3f (half of %.3f)", got, want, loud.Score)
	}
	if quiet.Evidence["quiet_match"] != "cargo-sync-cdn.net" {
		t.Errorf("quiet_match = %v", quiet.Evidence["quiet_match"])
	}
	// An entry more specific than the registrable domain covers it.
	sub, _ := dtRun(t, DNSTunnelConfig{Quiet: []string{"x.cargo-sync-cdn.net"}, QuietFactor: 0.5}, 200, 16, gen)
	if sub.Score != quiet.Score {
		t.Errorf("entry under the registrable domain: score %.3f, want %.3f", sub.Score, quiet.Score)
	}
}

func dtAbs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestDNSTunnelRarity(t *testing.T) {
	gen := func(r *rand.Rand, i int) string { return b32label(r, 35) + ".x.cargo-sync-cdn.net" }
	score := func(hosts int) float64 {
		d := NewDNSTunnel(DNSTunnelConfig{Quiet: []string{}, MinScore: 1e-9})
		r := rand.New(rand.NewPCG(3, 4))
		for i := range 200 {
			d.Observe(dtConn(fmt.Sprintf("10.0.1.%d", 1+i%hosts), "10.0.0.53", i, gen(r, i), 16))
		}
		fs := d.Findings()
		if len(fs) != hosts {
			t.Fatalf("%d hosts: %d findings", hosts, len(fs))
		}
		return fs[0].Score
	}
	one, four, sixteen := score(1), score(4), score(16)
	if !(one > four && four > sixteen) {
		t.Errorf("rarity does not lower scores: 1 host %.3f, 4 hosts %.3f, 16 hosts %.3f", one, four, sixteen)
	}
}

func TestSplitDomain(t *testing.T) {
	tests := []struct {
		in, reg, sub string
		ok           bool
	}{
		{"www.example.com", "example.com", "www", true},
		{"example.com", "example.com", "", true},
		{"a.b.example.co.uk", "example.co.uk", "a.b", true},
		{"x.y.cargo-sync-cdn.net.", "cargo-sync-cdn.net", "x.y", true},
		{"h4sicn03.4s2fgaaaa.test.txt", "test.txt", "h4sicn03.4s2fgaaaa", true},
		{"1.2.168.192.in-addr.arpa", "192.in-addr.arpa", "1.2.168", true},
		{"dnscat.f97c01f5006c798b8d6e990002e3772bc8", InvalidTLD, "dnscat.f97c01f5006c798b8d6e990002e3772bc8", true},
		{"foo.xn--p1ai", "foo.xn--p1ai", "", true},
		{"com", "", "", false},
		{"", "", "", false},
		{"a..", "", "", false},
		{"host.c0m", InvalidTLD, "host.c0m", true},
	}
	for _, tt := range tests {
		reg, sub, ok := splitDomain(tt.in)
		if reg != tt.reg || sub != tt.sub || ok != tt.ok {
			t.Errorf("splitDomain(%q) = %q, %q, %v; want %q, %q, %v", tt.in, reg, sub, ok, tt.reg, tt.sub, tt.ok)
		}
	}
}

func TestSubFeatures(t *testing.T) {
	tests := []struct {
		sub              string
		minShape, maxSha float64
		invalid          bool
	}{
		{"", 0, 0, false},
		{"www", 0, 0, false},
		{"175.20.244.118.origin.asn.cymru.com.felk", 0.2, 0.45, false}, // many short labels
		{"H4sICN03*2QAA3Rlc3QudHh0AAvJyCxWAKJEheLU5KLUEoW0zJxULgAge-.4S2FgAAAA==-", 0.95, 1, true},
		{"mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwezdfmztwq2lknnwg2", 0.8, 1, false},
	}
	for _, tt := range tests {
		f := subFeatures(tt.sub)
		if f.shape < tt.minShape || f.shape > tt.maxSha || f.invalid != tt.invalid {
			t.Errorf("subFeatures(%q): shape %.3f invalid %v; want shape in [%.2f, %.2f], invalid %v",
				tt.sub, f.shape, f.invalid, tt.minShape, tt.maxSha, tt.invalid)
		}
	}
}

func TestDistinctSketch(t *testing.T) {
	for _, n := range []int{0, 1, 10, 63, 64, 500, 5000, 50000} {
		var s distinctSketch
		for i := range n {
			for range 2 { // duplicates must not count
				s.add(hashName(fmt.Sprintf("name-%d", i)))
			}
		}
		got, exact := s.estimate()
		if n < sketchK {
			if !exact || got != float64(n) {
				t.Errorf("n=%d: estimate %v exact %v, want exact", n, got, exact)
			}
			continue
		}
		if exact && n > sketchK {
			t.Errorf("n=%d: claimed exact", n)
		}
		if rel := dtAbs(got-float64(n)) / float64(n); rel > 0.4 {
			t.Errorf("n=%d: estimate %.0f, off by %.0f%%", n, got, rel*100)
		}
		if len(s.h) > sketchK {
			t.Errorf("n=%d: sketch holds %d hashes, cap %d", n, len(s.h), sketchK)
		}
	}
}

func TestParseQuietDomains(t *testing.T) {
	in := "# comment\nexample.com\n  CDN.Example.NET.  # trailing\n\nbad domain\nfoo..bar\nsub.deep.example.org\narpa\n"
	got, err := ParseQuietDomains(strings.NewReader(in), "q.txt")
	want := []string{"arpa", "example.com", "example.net", "example.org"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "q.txt:5") || !strings.Contains(err.Error(), "q.txt:6") {
		t.Errorf("error %v, want it to name q.txt:5 and q.txt:6", err)
	}
	def := DefaultQuietDomains()
	if len(def) < 50 {
		t.Errorf("embedded quiet list has %d entries", len(def))
	}
	if _, err := ParseQuietDomains(strings.NewReader(quietDomainsFile), "embedded"); err != nil {
		t.Errorf("embedded quiet list: %v", err)
	}
}

func TestDNSTunnelSkips(t *testing.T) {
	d := NewDNSTunnel(DNSTunnelConfig{Quiet: []string{}, MinScore: 1e-9})
	long := "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwezdfmztwq2lknnwg2.evil.net"
	c := dtConn("10.0.0.7", "10.0.0.53", 1, long, 16)
	c.Orig.Local = false // an outside client asking our server: not our host
	d.Observe(c)
	c = dtConn("10.0.0.7", "224.0.0.251", 2, long, 16)
	c.Orig.Port, c.Resp.Port = 5353, 5353 // mDNS stays on the link
	d.Observe(c)
	if fs := d.Findings(); len(fs) != 0 {
		t.Errorf("got %d findings, want none: %v", len(fs), fs[0].Summary)
	}
	// A conn recorded response-first still names the client.
	c = dtConn("10.0.0.7", "10.0.0.53", 3, long, 16)
	c.Orig, c.Resp = c.Resp, c.Orig
	d.Observe(c)
	fs := d.Findings()
	if len(fs) != 1 || fs[0].Src.Addr != netip.MustParseAddr("10.0.0.7") || fs[0].Dst.Addr != netip.MustParseAddr("10.0.0.53") {
		t.Errorf("reversed conn: findings %+v", fs)
	}
}

func TestDNSTunnelCapKeepsTunnel(t *testing.T) {
	d := NewDNSTunnel(DNSTunnelConfig{Quiet: []string{}, MaxPairs: 64})
	r := rand.New(rand.NewPCG(5, 6))
	i := 0
	for round := range 50 {
		// The tunnel and a crowd of ordinary one-query domains.
		d.Observe(dtConn("10.0.0.7", "10.0.0.53", i, b32label(r, 35)+".t.evil-sync.net", 16))
		i++
		for k := range 20 {
			d.Observe(dtConn(fmt.Sprintf("10.0.2.%d", k), "10.0.0.53", i, fmt.Sprintf("www.site%d-%d.com", round, k), 1))
			i++
		}
	}
	if len(d.pairs) > 64 {
		t.Errorf("%d pairs, cap 64", len(d.pairs))
	}
	if d.Evicted() == 0 {
		t.Error("no evictions counted")
	}
	fs := d.Findings()
	if len(fs) == 0 || fs[0].Dst.Name != "evil-sync.net" {
		t.Fatalf("tunnel lost under the cap: %v", fs)
	}
}

func TestDNSTunnelExpire(t *testing.T) {
	d := NewDNSTunnel(DNSTunnelConfig{Quiet: []string{}, MinScore: 1e-9, Window: time.Hour})
	d.Observe(dtConn("10.0.0.7", "10.0.0.53", 0, "abc.old.example.com", 1))
	d.Observe(dtConn("10.0.0.7", "10.0.0.53", 7200, "abc.new.example.net", 1))
	d.Expire(dtT0.Add(7200 * time.Second))
	if len(d.pairs) != 1 || len(d.domains) != 1 {
		t.Fatalf("after expire: %d pairs, %d domains; want 1, 1", len(d.pairs), len(d.domains))
	}
	for k := range d.pairs {
		if k.domain != "example.net" {
			t.Errorf("kept %q", k.domain)
		}
	}
}

// The nDPI DNS captures: what nDPI flags as DNS exfiltration must be
// flagged here at medium or above, on the domain nDPI names.
func TestDNSTunnelCorpusTunnels(t *testing.T) {
	tests := []struct {
		file, host, domain string
		min                cw.Severity
	}{
		// One query whose 57-character base64 label (gzip header "H4sI")
		// carries a file: nDPI "Susp Entropy / Invalid chars / Long DNS host name".
		{"ndpi-dns-exf.pcap", "192.168.2.225", "test.txt", cw.Medium},
		// dnscat2 without a domain: hex labels, CNAME/TXT/MX, names whose
		// "TLD" is hex straight to the dnscat server. nDPI: "Susp DGA".
		{"ndpi-dns_exfiltration.pcap", "192.168.220.56", InvalidTLD, cw.High},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fs := runCaptures(t, []cw.Detector{NewDNSTunnel(DNSTunnelConfig{})}, corpus.Path(t, "pcap", "dns", tt.file))
			if len(fs) == 0 {
				t.Fatal("no dns_tunnel finding")
			}
			f := fs[0]
			t.Logf("%s %.3f %s", f.Severity, f.Score, f.Summary)
			if f.Kind != cw.KindDNSTunnel || f.Src.Addr.String() != tt.host || f.Evidence["domain"] != tt.domain || f.Severity < tt.min {
				t.Errorf("finding %s %s src %s domain %v; want %s ≥ %s from %s on %s",
					f.Kind, f.Severity, f.Src.Addr, f.Evidence["domain"], cw.KindDNSTunnel, tt.min, tt.host, tt.domain)
			}
			if s, _ := f.Evidence["samples"].([]string); len(s) == 0 {
				t.Error("no sample names in evidence")
			}
		})
	}
	// ndpi-dns2tcp_tunnel.pcap holds no DNS at all: one TLS session to
	// 1.1.1.1:443 without SNI (the tunnel rides DNS-over-HTTPS, which nDPI
	// itself only labels TLS). A DNS-message detector cannot see it; the
	// test pins that it reports nothing rather than something made up.
	fs := runCaptures(t, []cw.Detector{NewDNSTunnel(DNSTunnelConfig{MinScore: 1e-9})}, corpus.Path(t, "pcap", "dns", "ndpi-dns2tcp_tunnel.pcap"))
	if len(fs) != 0 {
		t.Errorf("dns2tcp capture: %d findings, want none (no DNS messages in it): %s", len(fs), fs[0].Summary)
	}
}

// Ordinary DNS in the other captures stays at low or below. The slips
// capture is the hard case: a host doing Team Cymru IP-to-ASN TXT lookups
// (some with the campus search domain appended: "...cymru.com.felk.cvut.cz")
// and ~170 Spamhaus DNSBL lookups, both many unique subdomains by design;
// the edge captures have DGA-looking registrable names (zeek-ticks-dns) and
// netalyzr's TXT padding probes.
func TestDNSTunnelCorpusOrdinary(t *testing.T) {
	root := corpus.Path(t, "pcap")
	var files []string
	for _, dir := range []string{"edge", "c2", "ics"} {
		ms, _ := filepath.Glob(filepath.Join(root, dir, "*.pcap*"))
		for _, m := range ms {
			if !strings.HasSuffix(m, ".out") && !strings.HasSuffix(m, ".log") {
				files = append(files, m)
			}
		}
	}
	if len(files) < 20 {
		t.Fatalf("found %d captures", len(files))
	}
	seen := 0
	for _, f := range files {
		// Without the quiet list too: the score alone keeps them low.
		for _, q := range [][]string{nil, {}} {
			fs := runCaptures(t, []cw.Detector{NewDNSTunnel(DNSTunnelConfig{Quiet: q, MinScore: 1e-9})}, f)
			seen += len(fs)
			for _, x := range fs {
				if x.Severity > cw.Low {
					t.Errorf("%s: %s %.3f %s", filepath.Base(f), x.Severity, x.Score, x.Summary)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("no DNS scored at all: the test would pass on a dead detector")
	}
}

func FuzzDNSTunnelObserve(f *testing.F) {
	f.Add("www.example.com", uint16(1), 40, 80)
	f.Add("H4sICN03*2QAA3Rlc3QudHh0AAvJyCxWAKJEheLU5KLUEoW0zJxULgAge-.4S2FgAAAA==-.test.txt", uint16(1), 163, 179)
	f.Add("dnscat.f97c01f5006c798b8d6e990002e3772bc8", uint16(16), 100, 0)
	f.Add("..", uint16(0), -1, -5)
	f.Add("\xff\xfe.\u0130.com", uint16(65535), 0, 0)
	f.Fuzz(func(t *testing.T, name string, qtype uint16, ql, rl int) {
		d := NewDNSTunnel(DNSTunnelConfig{MinScore: 1e-9, MaxPairs: 4})
		for i := range 6 {
			c := dtConn("10.0.0.7", "10.0.0.53", i, fmt.Sprintf("%s%d", name, i), qtype)
			c.DNS[0].QueryLen, c.DNS[0].RespLen = ql, rl
			c.DNS = append(c.DNS, cw.DNS{Query: name, QType: qtype})
			d.Observe(c)
		}
		for _, x := range d.Findings() {
			if x.Score < 0 || x.Score > 1 || x.Score != x.Score {
				t.Fatalf("score %v", x.Score)
			}
		}
	})
}

func FuzzParseQuietDomains(f *testing.F) {
	f.Add(quietDomainsFile)
	f.Add("a.b\n#x\n..\n\xff\n")
	f.Fuzz(func(t *testing.T, s string) {
		ds, _ := ParseQuietDomains(strings.NewReader(s), "fuzz")
		for _, d := range ds {
			if err := checkDomainName(d); err != nil {
				t.Fatalf("returned bad entry %q: %v", d, err)
			}
		}
	})
}

// BenchmarkDNSTunnelObserve: one query per Conn, half tunnel-like names,
// half ordinary ones over 1,000 hosts × 100 domains.
func BenchmarkDNSTunnelObserve(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	cs := make([]*cw.Conn, 4096)
	for i := range cs {
		name := fmt.Sprintf("www.site%d.com", r.IntN(100))
		if i%2 == 0 {
			name = b32label(r, 38) + "." + b32label(r, 10) + ".t.evil-sync.net"
		}
		cs[i] = dtConn(fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(250)), "10.0.0.53", i, name, 16)
	}
	d := NewDNSTunnel(DNSTunnelConfig{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Observe(cs[i%len(cs)])
	}
}
