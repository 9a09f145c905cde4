package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/sim"
)

// Constructed series for the score tests: start times (s) and bytes out.
type seriesGen func(r *rand.Rand) (times, sizes []float64)

const bDay = 86400.0

func genPeriodic(period, jitter, missed float64, span float64) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		var ts, sz []float64
		for t := 1000.0; t < 1000+span; t += period * (1 - jitter + 2*jitter*r.Float64()) {
			if missed > 0 && r.Float64() < missed {
				continue
			}
			ts = append(ts, t)
			sz = append(sz, 800+float64(r.IntN(200)))
		}
		return ts, sz
	}
}

func genPoisson(mean, span float64) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		var ts, sz []float64
		for t := 1000.0; t < 1000+span; t += r.ExpFloat64() * mean {
			ts = append(ts, t)
			sz = append(sz, 200+float64(r.IntN(20000)))
		}
		return ts, sz
	}
}

func genMerge(gs ...seriesGen) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		type p struct{ t, s float64 }
		var all []p
		for _, g := range gs {
			ts, sz := g(r)
			for i := range ts {
				all = append(all, p{ts[i], sz[i]})
			}
		}
		slices.SortFunc(all, func(a, b p) int {
			if a.t < b.t {
				return -1
			}
			if a.t > b.t {
				return 1
			}
			return 0
		})
		var ts, sz []float64
		for _, x := range all {
			ts = append(ts, x.t)
			sz = append(sz, x.s)
		}
		return ts, sz
	}
}

// bursts: n bursts at random times over span, each of k connections
// spaced gap ±10 % apart.
func genBursts(n, k int, gap, span float64) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		var ts, sz []float64
		for range n {
			t := 1000 + r.Float64()*span
			for range k {
				ts = append(ts, t)
				sz = append(sz, 500+float64(r.IntN(50)))
				t += gap * (0.9 + 0.2*r.Float64())
			}
		}
		slices.Sort(ts)
		return ts, sz
	}
}

// burstSchedule: bursts of 3–6 connections 0.5–3 s apart, every period
// ±jitter (poisson: at Poisson times of that mean instead).
func genBurstSchedule(period, jitter float64, poisson bool, span float64) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		var ts, sz []float64
		for t := 1000.0; t < 1000+span; {
			u := t
			for range 3 + r.IntN(4) {
				ts = append(ts, u)
				sz = append(sz, 600+float64(r.IntN(100)))
				u += 0.5 + 2.5*r.Float64()
			}
			if poisson {
				t += r.ExpFloat64() * period
			} else {
				t += period * (1 - jitter + 2*jitter*r.Float64())
			}
		}
		return ts, sz
	}
}

// gap: a periodic series with the connections of [from, to) removed.
func genWithGap(g seriesGen, from, to float64) seriesGen {
	return func(r *rand.Rand) ([]float64, []float64) {
		ts, sz := g(r)
		var ot, os []float64
		for i, t := range ts {
			if t-1000 >= from && t-1000 < to {
				continue
			}
			ot, os = append(ot, t), append(os, sz[i])
		}
		return ot, os
	}
}

func seriesCases() map[string]seriesGen {
	return map[string]seriesGen{
		"perfect":     genPeriodic(60, 0, 0, bDay),
		"jitter30":    genPeriodic(60, 0.3, 0, bDay),
		"jitter50":    genPeriodic(60, 0.5, 0, bDay),
		"missed20":    genPeriodic(60, 0.3, 0.2, bDay),
		"poisson":     genPoisson(60, bDay),
		"poisson-few": genPoisson(300, 3*3600),
		"interleaved": genMerge(genPeriodic(60, 0.1, 0, bDay), genPeriodic(300, 0.1, 0, bDay)),
		"interl-j30":  genMerge(genPeriodic(60, 0.3, 0, bDay), genPeriodic(300, 0.3, 0, bDay)),
		"bursts":      genBursts(10, 20, 2, bDay),
		"bursts-many": genBursts(40, 20, 2, bDay),
		"long-gap":    genWithGap(genPeriodic(60, 0.1, 0, bDay), 8*3600, 12*3600),
		"slips-like":  genPeriodic(3.04, 0.25, 0, 64),
		"hourly":      genPeriodic(3600, 0.1, 0, bDay),
		"perfect-few": genPeriodic(60, 0, 0, 11*60),
		// Burst beacons: the burst view must find the hourly schedule;
		// bursts at random times must stay unreported.
		"hourly-bursts":  genBurstSchedule(3600, 0.1, false, bDay),
		"poisson-bursts": genBurstSchedule(3600, 0, true, bDay),
		"poisson-b30min": genBurstSchedule(1800, 0, true, bDay),
	}
}

// seriesScores scores a constructed series for several seeds and returns
// the median and the extremes, so that rankings hold for the family, not
// for one lucky draw.
func seriesScores(g seriesGen, seeds int) (lo, med, hi float64, sample beaconResult) {
	var sc scratch
	var all []float64
	for seed := range seeds {
		ts, sz := g(rand.New(rand.NewPCG(uint64(seed), 7)))
		r := scoreBeacon(ts, sz, ts[0], ts[len(ts)-1], DefaultBeaconMinConns, &sc)
		if seed == 0 {
			sample = r
		}
		all = append(all, r.Score)
	}
	lo, hi = all[0], all[0]
	for _, v := range all {
		lo, hi = min(lo, v), max(hi, v)
	}
	sortFloats(all)
	return lo, all[len(all)/2], hi, sample
}

func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

func TestBeaconScoreFamilies(t *testing.T) {
	cases := seriesCases()
	tests := []struct {
		name       string
		minLo      float64 // every seed scores at least this
		maxHi      float64 // every seed scores at most this
		period     float64 // seed 0's period, ±10 %
		wantSecond bool
	}{
		{"perfect", BeaconHigh, 1, 60, false},
		{"perfect-few", BeaconHigh, 1, 60, false},
		{"jitter30", BeaconHigh, 0.99, 60, false},
		{"missed20", BeaconMedium, 0.99, 60, false},
		{"interleaved", BeaconHigh, 1, 60, true},
		{"interl-j30", BeaconHigh, 1, 60, true},
		{"hourly", BeaconHigh, 1, 3600, false},
		{"slips-like", BeaconMedium, 1, 3.04, false},
		{"long-gap", BeaconMedium, BeaconHigh, 60, false},
		{"jitter50", 0.4, BeaconHigh, 0, false},
		{"poisson", 0, BeaconLow - 0.2, 0, false},
		{"poisson-few", 0, BeaconLow - 0.1, 0, false},
		{"bursts", 0, BeaconLow - 0.2, 0, false},
		{"bursts-many", 0, BeaconLow - 0.1, 0, false},
		{"hourly-bursts", BeaconMedium, 1, 3600, false},
		{"poisson-bursts", 0, BeaconLow - 0.1, 0, false},
		{"poisson-b30min", 0, BeaconLow - 0.1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, med, hi, r := seriesScores(cases[tt.name], 100)
			t.Logf("lo %.3f med %.3f hi %.3f; seed 0: %+v", lo, med, hi, r)
			if lo < tt.minLo || hi > tt.maxHi {
				t.Errorf("scores %.3f..%.3f, want within %.3f..%.3f", lo, hi, tt.minLo, tt.maxHi)
			}
			if tt.period > 0 && (r.Period < 0.9*tt.period || r.Period > 1.1*tt.period) {
				t.Errorf("period %.2f, want %.2f ±10 %%", r.Period, tt.period)
			}
			if tt.wantSecond != (r.Second != nil && r.Second.Interval >= 0.5) {
				t.Errorf("second schedule %+v, want one: %v", r.Second, tt.wantSecond)
			}
		})
	}
}

// TestBeaconRanking asserts the order the brief asks for on medians.
func TestBeaconRanking(t *testing.T) {
	cases := seriesCases()
	med := map[string]float64{}
	for name, g := range cases {
		_, m, _, _ := seriesScores(g, 50)
		med[name] = m
	}
	for _, o := range [][2]string{
		{"perfect", "jitter30"}, {"jitter30", "jitter50"}, {"jitter50", "poisson"},
		{"perfect", "long-gap"}, {"jitter30", "missed20"}, {"interleaved", "poisson"},
		{"long-gap", "bursts"}, {"jitter30", "bursts-many"},
		{"hourly-bursts", "poisson-bursts"}, {"hourly-bursts", "bursts-many"},
	} {
		if med[o[0]] <= med[o[1]] {
			t.Errorf("median score of %s (%.3f) not above %s (%.3f)", o[0], med[o[0]], o[1], med[o[1]])
		}
	}
}

func TestSubScores(t *testing.T) {
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"dispersion 0", dispersionScore(0), 1},
		{"dispersion 0.2", dispersionScore(0.2), 0.95},
		{"dispersion 0.35", dispersionScore(0.35), 0.475},
		{"dispersion poisson", dispersionScore(0.69), 0},
		{"skew within allowance", skewScore(0.3, 25), 1},
		{"skew lopsided, many", skewScore(1, 10000), 1 - 0.3*(1-0.015)},
		{"bowley symmetric", bowley([]float64{1, 2, 3, 4, 5}, 0), 0},
		{"bowley right tail", bowley([]float64{1, 1, 1, 2, 10}, 0), 1},
		{"bowley tiny IQR", bowley([]float64{60, 60, 60.001, 60.002, 61}, 1), 0},
		// The last beat sits on the span's end and joins the last bucket.
		{"coverage even", firstOf(coverage([]float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, 0, 90, 10)), 0.99116},
		{"persistence full", persistence([]float64{0, 50, 100}, 0, 100, 100, 10), 1},
		{"persistence a fifth", persistence([]float64{0, 10, 20}, 0, 100, 20, 10), (0.2 + 1.0/3) / 2},
	}
	for _, tt := range tests {
		if d := tt.got - tt.want; d > 1e-5 || d < -1e-5 {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// Coverage falls when beats bunch up.
	bunched := []float64{0, 1, 2, 3, 4, 5, 6, 7, 80}
	if c, _ := coverage(bunched, 0, 80, 1); c > 0.3 {
		t.Errorf("bunched coverage %v, want low", c)
	}
}

// TestBeaconBurstView checks which view scores each series: hourly
// bursts by their bursts, a plain beacon and Poisson arrivals beat by beat.
func TestBeaconBurstView(t *testing.T) {
	cases := seriesCases()
	tests := []struct {
		name       string
		wantChosen bool
		wantView   bool // a burst view was scored at all
	}{
		{"hourly-bursts", true, true},
		{"perfect", false, false},
		{"jitter30", false, false},
		{"interleaved", false, false},
		{"poisson", false, false},
		{"bursts", false, false}, // 10 bursts: fewer than 2 × MinConns
	}
	var sc scratch
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range 20 {
				ts, sz := cases[tt.name](rand.New(rand.NewPCG(uint64(seed), 7)))
				r := scoreBeacon(ts, sz, ts[0], ts[len(ts)-1], DefaultBeaconMinConns, &sc)
				if (r.Bursts != nil) != tt.wantView || (r.Bursts != nil && r.Bursts.Chosen != tt.wantChosen) {
					t.Fatalf("seed %d: burst view %+v, want scored %v chosen %v", seed, r.Bursts, tt.wantView, tt.wantChosen)
				}
				if b := r.Bursts; b != nil && b.Chosen && (b.Count < 20 || b.MeanSize < 3 || b.MeanSize > 6 || r.Score < b.BeatScore) {
					t.Fatalf("seed %d: burst view %+v, score %.3f", seed, *b, r.Score)
				}
			}
		})
	}
}

func firstOf(a float64, _ []int) float64 { return a }

func TestModePeriodInterleaved(t *testing.T) {
	// 60 s beats split once every 300 s by a second schedule.
	var iv []float64
	for range 50 {
		iv = append(iv, 60, 60, 60, 60, 17, 43)
	}
	sortFloats(iv)
	if p := modePeriod(iv); p != 60 {
		t.Errorf("period %v, want 60", p)
	}
}

// conn builds an outbound Conn from a local to a remote host.
func outConn(local, remote string, ts time.Time, name string, out int64) *cw.Conn {
	return &cw.Conn{
		TS: ts, UID: fmt.Sprintf("C%d", ts.UnixNano()), Proto: "tcp", Service: "ssl",
		Orig:      cw.Endpoint{Addr: netip.MustParseAddr(local), Port: 50000, Local: true},
		Resp:      cw.Endpoint{Addr: netip.MustParseAddr(remote), Port: 443, Name: name},
		OrigBytes: out, RespBytes: 300, Duration: time.Second, State: "SF",
	}
}

var bt0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

func TestBeaconRotatingAddressesReportedOnceByName(t *testing.T) {
	b := NewBeacon(BeaconConfig{})
	ips := []string{"47.96.1.1", "47.96.1.2", "47.96.1.3"}
	r := rand.New(rand.NewPCG(3, 4))
	at := bt0
	for i := range 120 {
		b.Observe(outConn("10.0.0.5", ips[i%3], at, "c2.example.cn", 900))
		at = at.Add(time.Duration(float64(time.Minute) * (0.8 + 0.4*r.Float64())))
	}
	fs := b.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Kind != cw.KindBeacon || f.Dst.Name != "c2.example.cn" || f.Count != 120 || f.Severity < cw.Medium {
		t.Errorf("finding %s %s %s count %d", f.Kind, f.Severity, f.Dst.Name, f.Count)
	}
	if got := f.Evidence["remote_ips"].([]string); len(got) != 3 {
		t.Errorf("remote_ips %v, want the 3 addresses", got)
	}
	if f.Evidence["grouped_by"] != "local host, remote name" {
		t.Errorf("grouped_by %v", f.Evidence["grouped_by"])
	}
}

func TestBeaconOneAddressReportedOnce(t *testing.T) {
	b := NewBeacon(BeaconConfig{})
	for i := range 60 {
		b.Observe(outConn("10.0.0.5", "47.96.1.1", bt0.Add(time.Duration(i)*time.Minute), "c2.example.cn", 900))
	}
	if fs := b.Findings(); len(fs) != 1 {
		t.Fatalf("%d findings for one series seen by address and by name, want 1", len(fs))
	}
}

func TestBeaconIgnores(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *cw.Conn)
	}{
		{"plant-internal", func(c *cw.Conn) { c.Resp.Local = true }},
		{"nothing local", func(c *cw.Conn) { c.Orig.Local = false }},
		{"inbound", func(c *cw.Conn) { c.Orig, c.Resp = c.Resp, c.Orig; c.Resp.Local = true }},
		{"multicast", func(c *cw.Conn) { c.Resp.Addr = netip.MustParseAddr("239.1.1.1") }},
		{"ntp", func(c *cw.Conn) { c.Service = "ntp" }},
		{"no time", func(c *cw.Conn) { c.TS = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBeacon(BeaconConfig{})
			for i := range 60 {
				c := outConn("10.0.0.5", "47.96.1.1", bt0.Add(time.Duration(i)*time.Minute), "", 900)
				tt.mod(c)
				b.Observe(c)
			}
			if fs := b.Findings(); len(fs) != 0 {
				t.Errorf("%d findings, want none: %s", len(fs), fs[0].Summary)
			}
		})
	}
	// With the expected-periodic list emptied, NTP is reported.
	b := NewBeacon(BeaconConfig{ExpectedPeriodic: []string{}})
	for i := range 60 {
		c := outConn("10.0.0.5", "192.53.103.104", bt0.Add(time.Duration(i)*time.Minute), "", 48)
		c.Service = "ntp"
		b.Observe(c)
	}
	if fs := b.Findings(); len(fs) != 1 {
		t.Errorf("ntp with an empty ExpectedPeriodic: %d findings, want 1", len(fs))
	}
}

func TestBeaconMinConns(t *testing.T) {
	for _, n := range []int{9, 10} {
		b := NewBeacon(BeaconConfig{})
		for i := range n {
			b.Observe(outConn("10.0.0.5", "47.96.1.1", bt0.Add(time.Duration(i)*time.Minute), "", 900))
		}
		if got, want := len(b.Findings()), map[int]int{9: 0, 10: 1}[n]; got != want {
			t.Errorf("%d beats: %d findings, want %d", n, got, want)
		}
	}
}

func TestBeaconCaps(t *testing.T) {
	b := NewBeacon(BeaconConfig{MaxPairs: 2, MaxPerPair: 20})
	for i := range 100 {
		for _, ip := range []string{"47.96.1.1", "47.96.1.2", "47.96.1.3"} {
			b.Observe(outConn("10.0.0.5", ip, bt0.Add(time.Duration(i)*time.Minute), "", 900))
		}
	}
	pairs, retained := b.Dropped()
	if pairs != 100 || retained != 2*80 {
		t.Errorf("dropped %d pairs' conns and %d unretained, want 100 and 160", pairs, retained)
	}
	fs := b.Findings()
	if len(fs) != 2 {
		t.Fatalf("%d findings, want 2", len(fs))
	}
	for _, f := range fs {
		if f.Count != 100 || f.Evidence["timestamps_dropped"].(int64) != 80 {
			t.Errorf("count %d dropped %v, want 100 and 80", f.Count, f.Evidence["timestamps_dropped"])
		}
	}
	// The total cap holds too.
	b = NewBeacon(BeaconConfig{MaxRetained: 50})
	for i := range 100 {
		b.Observe(outConn("10.0.0.5", "47.96.1.1", bt0.Add(time.Duration(i)*time.Minute), "", 900))
	}
	if b.retained != 50 {
		t.Errorf("retained %d, want 50", b.retained)
	}
}

func TestBeaconExpire(t *testing.T) {
	b := NewBeacon(BeaconConfig{Window: 2 * time.Hour})
	for i := range 6 * 60 {
		b.Observe(outConn("10.0.0.5", "47.96.1.1", bt0.Add(time.Duration(i)*time.Minute), "", 900))
	}
	b.Expire(bt0.Add(6 * time.Hour))
	fs := b.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	if fs[0].Count != 120 || fs[0].FirstSeen.Before(bt0.Add(4*time.Hour)) {
		t.Errorf("after expiry: count %d first %v, want 120 from %v", fs[0].Count, fs[0].FirstSeen, bt0.Add(4*time.Hour))
	}
	if b.retained != 120 {
		t.Errorf("retained %d, want 120", b.retained)
	}
	b.Expire(bt0.Add(9 * time.Hour))
	if b.pairCount() != 0 || b.retained != 0 || len(b.Findings()) != 0 {
		t.Errorf("after the window passed: %d pairs, %d retained", b.pairCount(), b.retained)
	}
}

func TestSeriesOffsets(t *testing.T) {
	var s series
	base := bt0.UnixMilli()
	// Out of order by more than the slack, then far ahead: rebase and coarsen.
	in := []int64{base, base - 5*3600*1000, base + 60*24*3600*1000, base + 1}
	for _, ms := range in {
		if !s.put(ms, 1, 1, 100) {
			t.Fatal("put refused")
		}
	}
	s.sortObs()
	res := int64(1) << s.shift
	want := []int64{base - 5*3600*1000, base, base + 1, base + 60*24*3600*1000}
	for i, o := range s.obs {
		if d := s.when(o) - want[i]; d > res || d < -res {
			t.Errorf("obs %d at %d, want %d (resolution %d ms)", i, s.when(o), want[i], res)
		}
	}
	if s.shift == 0 {
		t.Error("a 60-bDay span did not coarsen")
	}
}

func TestBeaconSlipsCapture(t *testing.T) {
	p := corpus.Path(t, "pcap", "c2", "slips-test-cc-capture-2.pcap")
	fs := runCaptures(t, []cw.Detector{NewBeacon(BeaconConfig{})}, p)
	var found *cw.Finding
	for i, f := range fs {
		if f.Kind == cw.KindBeacon && f.Src.Addr.String() == "147.32.80.37" &&
			strings.Contains(strings.Join(f.Evidence["remote_ips"].([]string), ","), "141.193.213.20") {
			found = &fs[i]
		}
	}
	if found == nil {
		t.Fatalf("no beacon 147.32.80.37 → 141.193.213.20 in %d findings", len(fs))
	}
	if found.Severity != cw.High || found.Count != 22 {
		t.Errorf("beacon %s %.3f count %d, want high with 22 connections: %s", found.Severity, found.Score, found.Count, found.Summary)
	}
	if p := found.Evidence["period_s"].(float64); p < 2.28 || p > 3.8 {
		t.Errorf("period %v s, want within the 2.28-3.80 s gaps", p)
	}
	if len(fs) != 1 {
		t.Errorf("%d findings, want only the beacon", len(fs))
	}
}

func TestBeaconICSCapturesQuiet(t *testing.T) {
	dir := filepath.Dir(corpus.Path(t, "pcap", "ics", "iti-ModbusTCP.pcap"))
	paths, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	n := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".out") {
			continue
		}
		n++
		t.Run(filepath.Base(p), func(t *testing.T) {
			fs := runCaptures(t, []cw.Detector{NewBeacon(BeaconConfig{}), NewLongConn(LongConnConfig{})}, p)
			for _, f := range fs {
				if f.Severity > cw.Low {
					t.Errorf("%s %s: %s", f.Kind, f.Severity, f.Summary)
				}
			}
		})
	}
	if n < 10 {
		t.Errorf("only %d ICS captures found", n)
	}
}

func TestBeaconSimCraneModem(t *testing.T) {
	dir := t.TempDir()
	pc, truth, err := sim.WriteDir(dir, sim.Config{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	fs := runCaptures(t, []cw.Detector{NewBeacon(BeaconConfig{}), NewLongConn(LongConnConfig{})}, pc)
	hit := func(kind, src, dst string) *cw.Finding {
		for i, f := range fs {
			if f.Kind != kind || f.Src.Addr.String() != src {
				continue
			}
			ips, _ := f.Evidence["remote_ips"].([]string)
			if f.Dst.Addr.String() == dst || strings.Contains(strings.Join(ips, ","), dst) {
				return &fs[i]
			}
		}
		return nil
	}
	beacons := 0
	for _, e := range truth.Expect {
		switch e.Kind {
		case cw.KindBeacon:
			beacons++
			f := hit(cw.KindBeacon, e.Src, e.Dst)
			if f == nil {
				t.Errorf("beacon %s → %s (%s) not found", e.Src, e.Dst, e.Note)
			} else if f.Severity < cw.Medium {
				t.Errorf("beacon %s → %s: %s %.3f, want at least medium", e.Src, e.Dst, f.Severity, f.Score)
			} else if p := f.Evidence["period_s"].(float64); p < 54 || p > 66 {
				t.Errorf("beacon period %v s, want 60 ±10 %%", p)
			}
		case sim.KindNone:
			for _, k := range []string{cw.KindBeacon, cw.KindStrobe, cw.KindLongConnection} {
				if f := hit(k, e.Src, e.Dst); f != nil {
					t.Errorf("%s on %s → %s, which the truth marks normal (%s): %s", k, e.Src, e.Dst, e.Note, f.Summary)
				}
			}
		}
	}
	if beacons == 0 {
		t.Fatal("truth lists no beacon")
	}
	for _, f := range fs {
		if f.Kind == cw.KindBeacon && f.Severity > cw.Low && hit(cw.KindBeacon, f.Src.Addr.String(), f.Dst.Addr.String()) != nil {
			found := false
			for _, e := range truth.Expect {
				if e.Kind == cw.KindBeacon && e.Src == f.Src.Addr.String() {
					found = true
				}
			}
			if !found {
				t.Errorf("unexpected beacon above low: %s", f.Summary)
			}
		}
	}
}

// FuzzBeaconSeries feeds arbitrary start times and sizes to the scorer: it
// must not panic and must keep every score within 0..1.
func FuzzBeaconSeries(f *testing.F) {
	f.Add([]byte{0, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60}, uint16(900))
	f.Add([]byte{1, 2, 3, 250, 1, 1, 1, 1, 1, 1, 1, 255, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, gaps []byte, size uint16) {
		var ts, sz []float64
		at := 0.0
		for i, g := range gaps {
			at += float64(g) * 1.7
			ts = append(ts, at)
			sz = append(sz, float64(int(size)*(i%3)))
		}
		if len(ts) == 0 {
			return
		}
		var sc scratch
		r := scoreBeacon(ts, sz, ts[0], ts[len(ts)-1], 4, &sc)
		for _, v := range []float64{r.Score, r.Interval, r.Size, r.Coverage, r.Persistence} {
			if v < 0 || v > 1 || v != v {
				t.Fatalf("score out of range: %+v", r)
			}
		}
	})
}

// BenchmarkBeacon observes 50 conns for each of 2,000 pairs (a third
// beacons, a third jittered, a third random) and concludes.
func BenchmarkBeacon(b *testing.B) {
	const pairs, per = 2000, 50
	r := rand.New(rand.NewPCG(1, 1))
	conns := make([]*cw.Conn, 0, pairs*per)
	for p := range pairs {
		remote := netip.AddrFrom4([4]byte{47, 96, byte(p >> 8), byte(p)}).String()
		at := bt0
		for range per {
			c := outConn("10.0.0.5", remote, at, "", 900)
			conns = append(conns, c)
			switch p % 3 {
			case 0:
				at = at.Add(time.Minute)
			case 1:
				at = at.Add(time.Duration(float64(time.Minute) * (0.7 + 0.6*r.Float64())))
			default:
				at = at.Add(time.Duration(r.ExpFloat64() * float64(time.Minute)))
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d := NewBeacon(BeaconConfig{})
		for _, c := range conns {
			d.Observe(c)
		}
		if fs := d.Findings(); len(fs) < pairs/3 {
			b.Fatalf("%d findings", len(fs))
		}
	}
	b.ReportMetric(float64(b.N*len(conns))/b.Elapsed().Seconds(), "conns/s")
}
