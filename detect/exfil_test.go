package detect

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/sim"
	"github.com/cargowatch/cargowatch/sqlite"
)

const mib = 1 << 20

var exT0 = time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)

// exConn is a TCP conversation the local host opened (reversed: the remote
// opened it).
func exConn(local, remote string, ts time.Time, out, in int64, reversed bool) *cw.Conn {
	l := cw.Endpoint{Addr: netip.MustParseAddr(local), Port: 50000, Local: !strings.HasPrefix(local, "203.")}
	r := cw.Endpoint{Addr: netip.MustParseAddr(remote), Port: 443, Local: strings.HasPrefix(remote, "10."), Country: "DE"}
	c := &cw.Conn{TS: ts, UID: fmt.Sprintf("C%s%d", remote, ts.Unix()), Orig: l, Resp: r, Proto: "tcp", Service: "ssl",
		Duration: time.Minute, OrigBytes: out, RespBytes: in, OrigIPBytes: out + 400, RespIPBytes: in + 400, State: "SF"}
	if reversed {
		c.Orig, c.Resp = r, l
		c.OrigBytes, c.RespBytes = in, out
		c.OrigIPBytes, c.RespIPBytes = in+400, out+400
	}
	return c
}

func exFind(fs []cw.Finding, local, remote string) (cw.Finding, bool) {
	for _, f := range fs {
		if f.Src.Addr.String() == local && f.Dst.Addr.String() == remote {
			return f, true
		}
	}
	return cw.Finding{}, false
}

func TestExfilScoreOrder(t *testing.T) {
	e := NewExfil(ExfilConfig{})
	anomalous := &exfilBaseline{has: true, threshold: 20 * mib, anomalous: true}
	usual := &exfilBaseline{has: true, threshold: 800 * mib, anomalous: false}
	cases := []struct {
		name    string
		out, in int64
		base    *exfilBaseline
		age     time.Duration
		known   bool
		hosts   int
	}{
		{"1 GiB, 1000:1, new, one host", 1024 * mib, mib, nil, 0, true, 1},
		{"200 MiB, 10× the host's usual day, new", 200 * mib, mib / 10, anomalous, 0, true, 1},
		{"1 GiB, 1000:1, unknown age, one host", 1024 * mib, mib, nil, 0, false, 1},
		{"200 MiB, 100:1, unknown age, one host", 200 * mib, 2 * mib, nil, 0, false, 1},
		{"200 MiB, 100:1, unknown age, 16 hosts", 200 * mib, 2 * mib, nil, 0, false, 16},
		{"200 MiB, symmetric, 16 hosts", 200 * mib, 200 * mib, nil, 0, false, 16},
		{"200 MiB, 100:1, an ordinary day for the host, known 30 days", 200 * mib, 2 * mib, usual, 30 * 24 * time.Hour, true, 1},
		{"10 MiB, 100:1, one host", 10 * mib, mib / 10, nil, 0, false, 1},
		{"2 MiB, 1000:1, one host", 2 * mib, 2048, nil, 0, false, 1},
		{"512 KiB", mib / 2, 100, nil, 0, false, 1},
	}
	prev := 2.0
	for _, c := range cases {
		s := e.exfilScore(c.out, c.in, c.base, c.age, c.known, c.hosts)
		t.Logf("%-62s %.3f %+v", c.name, s.score, s)
		if s.score >= prev {
			t.Errorf("%s: %.3f not below the case before (%.3f)", c.name, s.score, prev)
		}
		if s.score < 0 || s.score > 1 {
			t.Errorf("%s: score %v out of [0, 1]", c.name, s.score)
		}
		prev = s.score
	}
	// Sub-score anchors of the documented formula.
	if s := e.exfilScore(1024*mib, 1, nil, 0, false, 1); s.absolute != 1 || s.asym != 1 || s.rare != 1 || dtAbs(s.score-0.8) > 1e-9 {
		t.Errorf("1 GiB, nothing back, one host, no store: %+v; want absolute 1, asym 1, rare 1, score 0.8", s)
	}
	if s := e.exfilScore(4*mib, 0, nil, 3*24*time.Hour+12*time.Hour, true, 1); dtAbs(s.fresh-(1-2.5/6)) > 1e-9 {
		t.Errorf("destination 3.5 days old: new = %v, want %v", s.fresh, 1-2.5/6)
	}
}

func TestExfilObserve(t *testing.T) {
	e := NewExfil(ExfilConfig{})
	at := func(i int) time.Time { return exT0.Add(time.Duration(i) * time.Minute) }
	for i := range 30 { // 300 MiB in 30 uploads, little back
		e.Observe(exConn("10.0.0.5", "203.0.113.50", at(i), 10*mib, 20_000, false))
	}
	e.Observe(exConn("10.0.0.6", "198.51.100.7", at(1), 2*mib, 4000, false))      // a 2 MiB backup
	e.Observe(exConn("10.0.0.7", "198.51.100.8", at(2), 500*mib, 1000, true))     // our web server serving a client
	e.Observe(exConn("10.0.0.8", "10.0.9.9", at(3), 1024*mib, 10, false))         // inside the plant
	e.Observe(exConn("203.0.113.60", "198.51.100.9", at(4), 1024*mib, 10, false)) // nothing local
	for h := range 16 {                                                           // a popular SaaS everybody syncs to
		e.Observe(exConn(fmt.Sprintf("10.0.1.%d", h), "192.0.2.80", at(h), 300*mib, 3*mib, false))
	}
	fs := e.Findings()
	up, ok := exFind(fs, "10.0.0.5", "203.0.113.50")
	if !ok || up.Severity < cw.Medium || up.BytesOut != 300*mib || up.Count != 30 {
		t.Fatalf("300 MiB upload: %+v (ok %v); want ≥ medium, 300 MiB, 30 conns", up, ok)
	}
	saas, ok := exFind(fs, "10.0.1.0", "192.0.2.80")
	if ok && saas.Score >= up.Score {
		t.Errorf("popular destination scored %.3f, not below the rare one %.3f", saas.Score, up.Score)
	}
	for _, f := range fs {
		switch f.Src.Addr.String() {
		case "10.0.0.6", "10.0.0.7", "10.0.0.8", "203.0.113.60":
			t.Errorf("unexpected finding: %s", f.Summary)
		}
	}
	b, _ := up.Evidence["baseline"].(map[string]any)
	if b == nil || b["learned"] != false {
		t.Errorf("without a store the evidence must say so: %v", up.Evidence["baseline"])
	}
	t.Log(up.Summary)
}

// A host that uploads a lot in total, a little to each of many
// destinations, is one host-level finding; a host whose biggest upload is
// already reported gets none, and many small uploads that add up to
// little get none.
func TestExfilSpread(t *testing.T) {
	e := NewExfil(ExfilConfig{})
	at := func(i int) time.Time { return exT0.Add(time.Duration(i) * time.Minute) }
	for i := range 200 { // 200 destinations, 3 MiB each: 600 MiB in all
		e.Observe(exConn("10.0.0.5", fmt.Sprintf("203.0.%d.%d", 113+i/250, 1+i%250), at(i), 3*mib, 2_000, false))
	}
	for i := range 20 { // 20 × 100 KiB: 2 MiB in all, too little
		e.Observe(exConn("10.0.0.6", fmt.Sprintf("198.51.100.%d", 1+i), at(i), 100<<10, 2_000, false))
	}
	for i := range 30 { // one big upload (reported as a pair) and small ones
		e.Observe(exConn("10.0.0.7", "192.0.2.9", at(i), 20*mib, 1_000, false))
		e.Observe(exConn("10.0.0.7", fmt.Sprintf("192.0.2.%d", 100+i), at(i), 2*mib, 1_000, false))
	}
	fs := e.Findings()
	var host *cw.Finding
	for i, f := range fs {
		if f.Evidence["scope"] == "host" {
			if f.Src.Addr.String() != "10.0.0.5" {
				t.Errorf("unexpected host-level finding: %s", f.Summary)
				continue
			}
			host = &fs[i]
		}
	}
	if host == nil {
		t.Fatalf("no host-level finding for 600 MiB spread over 200 destinations in %d findings", len(fs))
	}
	if host.BytesOut != 600*mib || host.Evidence["destinations"] != 200 || host.Severity < cw.Medium {
		t.Errorf("host finding: %s, %s, evidence %v", host.Severity, host.Summary, host.Evidence)
	}
	if top, _ := host.Evidence["top_destinations"].([]map[string]any); len(top) != spreadTop {
		t.Errorf("top destinations: %v", host.Evidence["top_destinations"])
	}
	if _, ok := exFind(fs, "10.0.0.7", "192.0.2.9"); !ok {
		t.Error("the 600 MiB upload of 10.0.0.7 to one destination is not reported as a pair")
	}
}

// With a store: a host that uploads ~20 MiB a day uploading 200 MiB to a
// destination never seen before rises; a backup server's routine 400 MiB to
// its usual destination falls.
func TestExfilWithHistory(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "cw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run := &cw.Run{Command: "test"}
	if err := db.BeginRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	const wms, backup = "10.0.0.11", "10.0.0.12"
	const usual, fresh, vault = "203.0.113.10", "203.0.113.66", "198.51.100.20"
	var hist []*cw.Conn
	for d := 14; d >= 1; d-- {
		day := exT0.AddDate(0, 0, -d)
		hist = append(hist,
			exConn(wms, usual, day, int64(18+d%5)*mib, mib, false),
			exConn(backup, vault, day, int64(380+d*3)*mib, mib, false))
	}
	if err := db.WriteConns(ctx, run.ID, hist); err != nil {
		t.Fatal(err)
	}
	today := []*cw.Conn{
		exConn(wms, fresh, exT0, 200*mib, mib/10, false),
		exConn(wms, usual, exT0, 20*mib, mib, false),
		exConn(backup, vault, exT0, 400*mib, mib, false),
	}
	// The engine stores the input before asking for findings.
	if err := db.WriteConns(ctx, run.ID, today); err != nil {
		t.Fatal(err)
	}
	score := func(h History) map[string]cw.Finding {
		e := NewExfil(ExfilConfig{History: h, MinScore: 1e-9})
		for _, c := range today {
			e.Observe(c)
		}
		m := map[string]cw.Finding{}
		for _, f := range e.Findings() {
			m[f.Src.Addr.String()+">"+f.Dst.Addr.String()] = f
		}
		return m
	}
	without, with := score(nil), score(db)
	k1, k2 := wms+">"+fresh, backup+">"+vault
	t.Logf("no store: %.3f / %.3f; store: %.3f / %.3f", without[k1].Score, without[k2].Score, with[k1].Score, with[k2].Score)
	t.Logf("%s", with[k1].Summary)
	if with[k1].Score <= without[k1].Score || with[k1].Severity < cw.High {
		t.Errorf("new destination on an unusual day: %.3f with store, %.3f without; want higher and high", with[k1].Score, without[k1].Score)
	}
	if with[k2].Score >= without[k2].Score {
		t.Errorf("routine backup: %.3f with store, %.3f without; want lower", with[k2].Score, without[k2].Score)
	}
	if with[k2].Score >= with[k1].Score {
		t.Errorf("routine backup %.3f ranks above the unusual upload %.3f", with[k2].Score, with[k1].Score)
	}
	b, _ := with[k1].Evidence["baseline"].(map[string]any)
	if b == nil || b["learned"] != true || b["days"] != 14 || b["unusual_day"] != true {
		t.Errorf("baseline evidence %v", b)
	}
	if with[k1].Evidence["first_seen_in_store"] == nil || with[k1].Evidence["hosts_in_history"] != 1 {
		t.Errorf("store evidence missing: %v", with[k1].Evidence)
	}
	sub := with[k2].Evidence["sub_scores"].(map[string]any)
	if sub["new"] != 0.0 {
		t.Errorf("destination known for 14 days scored new=%v", sub["new"])
	}
}

func TestExfilCapAndExpire(t *testing.T) {
	e := NewExfil(ExfilConfig{MaxPairs: 8, Window: time.Hour})
	e.Observe(exConn("10.0.0.5", "203.0.113.50", exT0, 500*mib, 1, false))
	for i := range 40 {
		e.Observe(exConn("10.0.0.6", fmt.Sprintf("198.51.100.%d", i), exT0, 1000, 1000, false))
	}
	if e.npairs > 8 || e.Evicted() == 0 {
		t.Errorf("%d pairs (cap 8), %d evicted", e.npairs, e.Evicted())
	}
	if _, ok := exFind(e.Findings(), "10.0.0.5", "203.0.113.50"); !ok {
		t.Error("the large upload was evicted")
	}
	e.Observe(exConn("10.0.0.7", "203.0.113.51", exT0.Add(3*time.Hour), 500*mib, 1, false))
	e.Expire(exT0.Add(3 * time.Hour))
	fs := e.Findings()
	if len(fs) != 1 || fs[0].Src.Addr.String() != "10.0.0.7" {
		t.Errorf("after expiry: %d findings %v", len(fs), fs)
	}
}

// Plant-internal polling and the odd outside conversation in the OT
// captures are no exfiltration.
func TestExfilICSCorpus(t *testing.T) {
	ms, _ := filepath.Glob(filepath.Join(corpus.Path(t, "pcap", "ics"), "*.pcap*"))
	n := 0
	for _, m := range ms {
		if strings.HasSuffix(m, ".out") {
			continue
		}
		n++
		for _, f := range runCaptures(t, []cw.Detector{NewExfil(ExfilConfig{MinScore: 1e-9})}, m) {
			if f.Severity > cw.Low {
				t.Errorf("%s: %s %.3f %s", filepath.Base(m), f.Severity, f.Score, f.Summary)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d ICS captures", n)
	}
}

// The demo hub: the DNS-tunnelling scanner is found, and nothing the truth
// marks legitimate gets a dns_tunnel or exfiltration finding.
func TestSimDNSTunnelAndExfil(t *testing.T) {
	p, truth, err := sim.WriteDir(t.TempDir(), sim.Config{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	fs := runCaptures(t, []cw.Detector{NewDNSTunnel(DNSTunnelConfig{}), NewExfil(ExfilConfig{})}, p)
	tunnels := 0
	for _, x := range truth.Expect {
		switch x.Kind {
		case cw.KindDNSTunnel:
			tunnels++
			found := false
			for _, f := range fs {
				if f.Kind == cw.KindDNSTunnel && f.Src.Addr.String() == x.Src && f.Dst.Addr.String() == x.Dst {
					found = true
					t.Logf("%s %.3f %s", f.Severity, f.Score, f.Summary)
					if f.Severity < cw.High || f.Dst.Name != "cargo-sync-cdn.net" {
						t.Errorf("tunnel found at %s on %q; want high on cargo-sync-cdn.net", f.Severity, f.Dst.Name)
					}
				}
			}
			if !found {
				t.Errorf("dns_tunnel %s -> %s (%s) not found", x.Src, x.Dst, x.Note)
			}
		case sim.KindNone:
			for _, f := range fs {
				if f.Src.Addr.String() == x.Src && f.Dst.Addr.String() == x.Dst {
					t.Errorf("%s -> %s is legitimate (%s) but got %s: %s", x.Src, x.Dst, x.Note, f.Kind, f.Summary)
				}
			}
		}
	}
	if tunnels == 0 {
		t.Fatal("the simulator's truth has no dns_tunnel to look for")
	}
	for _, f := range fs {
		if f.Kind == cw.KindDNSTunnel && f.Dst.Name != "cargo-sync-cdn.net" && f.Severity > cw.Low {
			t.Errorf("ordinary hub DNS flagged: %s %s", f.Severity, f.Summary)
		}
	}
}

// BenchmarkExfilObserve: 50,000 pairs over 1,000 hosts.
func BenchmarkExfilObserve(b *testing.B) {
	cs := make([]*cw.Conn, 50_000)
	for i := range cs {
		cs[i] = exConn(fmt.Sprintf("10.0.%d.%d", i%4, (i/4)%250), fmt.Sprintf("198.51.%d.%d", (i/1000)%256, i%250),
			exT0.Add(time.Duration(i)*time.Second), int64(1000+i), 500, false)
	}
	e := NewExfil(ExfilConfig{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Observe(cs[i%len(cs)])
	}
}
