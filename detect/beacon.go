package detect

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
)

// Beacon finds local hosts that call the same outside destination on a
// schedule (beacons) or very often (strobes). It keeps, per (local host,
// remote address) and per (local host, remote name) pair, the start time
// and sizes of every connection the local host opened to the Internet,
// and scores each pair's series when asked. A beacon that rotates over a
// cloud's addresses is one series by name and is reported once, listing
// the addresses. See docs/DETECTIONS.md for every formula.
//
// Only connections the local host originated count: a remote party that
// calls our host on a schedule (an uptime monitor) tells nothing of what
// our host does. Plant-internal traffic (both sides local) is not a beacon
// to the outside and is ignored.
//
// Memory is bounded by BeaconConfig: MaxPairs series per table (address,
// name), MaxPerPair retained connections per series and MaxRetained in
// total, 12 bytes each (24 with slice growth at worst), plus about 600
// bytes per series. Connections beyond a cap are still counted (and their
// bytes summed) per expiry bucket, and reported in the evidence as
// timestamps_dropped; pairs beyond MaxPairs are counted in Dropped.
type Beacon struct {
	cfg BeaconConfig

	// Address series live in the slots of pairs (shared with the other
	// per-pair detectors of the run when BeaconConfig.Pairs is set);
	// nIP counts them.
	pairs  *PairIndex
	nIP    int
	byName map[nameKey]*series

	retained int   // observations held in all series
	dropped  int64 // connections of pairs beyond MaxPairs
	capped   int64 // connections not retained (per-pair or total cap)

	// first and last start (unix ms) of any connection observed: the
	// window for files. Expire moves first.
	first, last int64
	expired     bool
}

// BeaconConfig sets the beacon and strobe analysis. Zero fields take the
// defaults below.
type BeaconConfig struct {
	// Window is how far back a continuous source is analysed: Expire(now)
	// forgets what started before now-Window (default 24 h). For files
	// (Expire never called) the window is the whole input.
	Window time.Duration
	// MinConns is the fewest beats (connections, counting those that start
	// within one second of each other once) before a series is scored
	// (default 10: fewer intervals give quartiles that mean nothing).
	MinConns int
	// Report is the lowest score reported (default 0.55, severity low).
	Report float64
	// ExpectedPeriodic lists services (Conn.Service, identified from the
	// payload) that are periodic by design; a series made (90 % or more)
	// of them is not reported as a beacon. Default: ntp. Set to a
	// non-nil empty slice to report them.
	ExpectedPeriodic []string

	// StrobePerHour and StrobeMin set the strobe threshold: a pair with
	// at least max(StrobeMin, StrobePerHour × window hours) connections
	// in the window is a strobe (defaults 3600, i.e. one a second on
	// average as RITA's 86,400 a day, and 1000).
	StrobePerHour float64
	StrobeMin     int

	MaxPairs    int // series per table (address, name); default 100,000
	MaxPerPair  int // retained connections per series; default 8192
	MaxRetained int // retained connections in all series; default 32 Mi

	// Pairs, when set, is the run's pair index shared with LongConn,
	// Exfil and Prevalence (see PairIndex); nil: Beacon keeps its own.
	Pairs *PairIndex
}

// Defaults of BeaconConfig.
const (
	DefaultBeaconWindow   = 24 * time.Hour
	DefaultBeaconMinConns = 10
	DefaultBeaconReport   = 0.55
	DefaultStrobePerHour  = 3600
	DefaultStrobeMin      = 1000
	DefaultBeaconPairs    = 100_000
	DefaultBeaconPerPair  = 8192
	DefaultBeaconRetained = 32 << 20
)

// Severity thresholds of the beacon score.
const (
	BeaconHigh   = 0.85
	BeaconMedium = 0.70
	BeaconLow    = 0.55
)

// Shape of the interval analysis (docs/DETECTIONS.md explains each).
const (
	mergeGapS    = 1.0  // connections starting within 1 s are one beat
	modeRatio    = 1.5  // the period is the median of the densest [x, 1.5x] run of intervals
	beatTol      = 0.35 // an interval within ±35 % of k periods is k beats
	maxMultiple  = 5    // at most 4 missed beats in a row are folded
	maxEvidence  = 32   // intervals listed in evidence
	sizeFloor    = 32.0 // bytes: size MAD is relative to max(median, 32)
	maxHistBkts  = 24   // coverage and persistence histograms
	expectedFrac = 0.9
)

// NewBeacon returns the beacon and strobe detector.
func NewBeacon(cfg BeaconConfig) *Beacon {
	if cfg.Window <= 0 {
		cfg.Window = DefaultBeaconWindow
	}
	if cfg.MinConns <= 0 {
		cfg.MinConns = DefaultBeaconMinConns
	}
	cfg.MinConns = max(cfg.MinConns, 4) // three intervals at least
	if cfg.Report <= 0 {
		cfg.Report = DefaultBeaconReport
	}
	if cfg.ExpectedPeriodic == nil {
		cfg.ExpectedPeriodic = []string{"ntp"}
	}
	if cfg.StrobePerHour <= 0 {
		cfg.StrobePerHour = DefaultStrobePerHour
	}
	if cfg.StrobeMin <= 0 {
		cfg.StrobeMin = DefaultStrobeMin
	}
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = DefaultBeaconPairs
	}
	if cfg.MaxPerPair <= 0 {
		cfg.MaxPerPair = DefaultBeaconPerPair
	}
	if cfg.MaxRetained <= 0 {
		cfg.MaxRetained = DefaultBeaconRetained
	}
	b := &Beacon{cfg: cfg, byName: map[nameKey]*series{}}
	b.pairs = cfg.Pairs
	if b.pairs == nil || !claim(&b.pairs.beacon, b) {
		b.pairs = NewPairIndex()
		claim(&b.pairs.beacon, b)
	}
	return b
}

// pairCount reports the address series held.
func (b *Beacon) pairCount() int { return b.nIP }

// eachIP calls fn for every address series with its pair id.
func (b *Beacon) eachIP(fn func(id int32, s *series)) {
	for id := range b.pairs.slots {
		if s := b.pairs.slots[id].beacon; s != nil {
			fn(int32(id), s)
		}
	}
}

// Name implements cargowatch.Detector.
func (b *Beacon) Name() string { return cw.KindBeacon }

// Dropped reports connections of pairs not tracked because MaxPairs was
// reached, and connections tracked but not retained for scoring.
func (b *Beacon) Dropped() (pairs, retained int64) { return b.dropped, b.capped }

// bucketMs is the width of the expiry buckets of overflow counts.
func (b *Beacon) bucketMs() int64 { return max(b.cfg.Window.Milliseconds()/maxHistBkts, 1000) }

// Observe implements cargowatch.Detector.
func (b *Beacon) Observe(c *cw.Conn) {
	if c.TS.IsZero() {
		return
	}
	ms := c.TS.UnixMilli()
	if b.last == 0 && b.first == 0 {
		b.first, b.last = ms, ms
	}
	if !b.expired {
		b.first = min(b.first, ms)
	}
	b.last = max(b.last, ms)
	if !c.Orig.Local || c.Resp.Local || !geo.IsInternet(c.Resp.Addr) {
		return
	}
	out, in := max(c.OrigBytes, 0), max(c.RespBytes, 0)
	name := normName(c.Resp.Name)
	ik := mkIPKey(c.Orig.Addr, c.Resp.Addr)
	var s *series
	if id := b.pairs.find(ik); id >= 0 {
		s = b.pairs.slots[id].beacon
	}
	if s == nil {
		if b.nIP >= b.cfg.MaxPairs {
			b.dropped++
		} else {
			s = &series{local: c.Orig, remote: c.Resp}
			b.pairs.slots[b.pairs.add(ik)].beacon = s
			b.nIP++
		}
	}
	if s != nil {
		b.add(s, c, ms, out, in, name, false)
	}
	if name == "" {
		return
	}
	// Most connections of an address carry the name its previous one
	// did: remember that series and skip hashing the name.
	var ns *series
	if s != nil && s.lastName == name && s.lastNameS != nil {
		ns = s.lastNameS
	}
	if ns == nil {
		ns = b.byName[nameKey{ik.local, name}]
	}
	if ns == nil {
		if len(b.byName) >= b.cfg.MaxPairs {
			b.dropped++
			return
		}
		ns = &series{local: c.Orig, remote: c.Resp}
		ns.remote.Name = name
		b.byName[nameKey{ik.local, name}] = ns
	}
	if s != nil {
		s.lastName, s.lastNameS = name, ns
	}
	b.add(ns, c, ms, out, in, name, true)
}

func (b *Beacon) add(s *series, c *cw.Conn, ms, out, in int64, name string, byName bool) {
	if s.empty() {
		s.first, s.last = ms, ms
	}
	s.first, s.last = min(s.first, ms), max(s.last, ms)
	if b.retained < b.cfg.MaxRetained && s.put(ms, out, in, b.cfg.MaxPerPair) {
		b.retained++
	} else {
		b.capped++
		s.addOver(floorDiv(ms, b.bucketMs()), out, in)
	}
	s.note(c, name, byName)
	if c.Service != "" && slices.Contains(b.cfg.ExpectedPeriodic, c.Service) {
		s.expected++
	}
}

// Expire implements cargowatch.Expirer: it forgets connections that started
// before now-Window and pairs left empty.
func (b *Beacon) Expire(now time.Time) {
	cut := now.Add(-b.cfg.Window).UnixMilli()
	b.expired = true
	b.first = max(b.first, cut)
	bm := b.bucketMs()
	b.eachIP(func(id int32, s *series) {
		b.retained -= s.expire(cut, bm)
		if s.empty() {
			b.pairs.slots[id].beacon = nil
			b.nIP--
			b.pairs.release(id)
		}
	})
	for k, s := range b.byName {
		b.retained -= s.expire(cut, bm)
		if s.empty() {
			delete(b.byName, k)
		}
	}
	b.eachIP(func(_ int32, s *series) {
		s.lastName, s.lastNameS = "", nil // may point at a deleted name series
	})
}

// window returns the analysed window in unix seconds.
func (b *Beacon) window() (float64, float64) {
	return float64(b.first) / 1000, float64(b.last) / 1000
}

// Findings implements cargowatch.Detector: beacons and strobes, one per
// pair, a pair reported by name not again by address.
func (b *Beacon) Findings() []cw.Finding {
	ws, we := b.window()
	strobeAt := b.strobeThreshold(we - ws)
	reported := map[nameKey]string{} // kind reported for a name series

	nameKeys := make([]nameKey, 0, len(b.byName))
	named := make([]*series, 0, len(b.byName))
	for k, s := range b.byName {
		nameKeys = append(nameKeys, k)
		named = append(named, s)
	}
	fs, ok := b.judgeAll(named, true, ws, we, strobeAt)
	for i, k := range nameKeys {
		if ok[i] >= 0 {
			reported[k] = fs[ok[i]].Kind
		}
	}
	var addr []*series
	b.eachIP(func(id int32, s *series) {
		if !b.coveredByName(b.pairs.keys[id], s, reported) {
			addr = append(addr, s)
		}
	})
	more, _ := b.judgeAll(addr, false, ws, we, strobeAt)
	fs = append(fs, more...)
	sort.Slice(fs, func(i, j int) bool {
		x, y := &fs[i], &fs[j]
		if x.Score != y.Score {
			return x.Score > y.Score
		}
		if c := x.Src.Addr.Compare(y.Src.Addr); c != 0 {
			return c < 0
		}
		return x.Summary < y.Summary
	})
	return fs
}

// judgeAll judges every series in ss, in parallel when there are many:
// scoring sorts each series' intervals several times and is most of
// Findings' time on a large input. It returns the findings in the order
// of ss and, per series, the index of its finding or -1.
func (b *Beacon) judgeAll(ss []*series, byName bool, ws, we float64, strobeAt int64) ([]cw.Finding, []int) {
	workers := min(runtime.GOMAXPROCS(0), 8, max(len(ss)/judgeChunk, 1))
	type judged struct {
		i int
		f cw.Finding
	}
	// Only findings are kept (a Finding is ~400 bytes; most series have
	// none), per worker, then merged in the order of ss.
	per := make([][]judged, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each series is judged by one worker only (judge sorts its
			// observations in place); each worker has its own scratch.
			var sc scratch
			for i := w; i < len(ss); i += workers {
				if f, ok := b.judge(ss[i], byName, ws, we, strobeAt, &sc); ok {
					per[w] = append(per[w], judged{i, f})
				}
			}
		}()
	}
	wg.Wait()
	var all []judged
	for _, p := range per {
		all = append(all, p...)
	}
	slices.SortFunc(all, func(x, y judged) int { return x.i - y.i })
	fs := make([]cw.Finding, 0, len(all))
	at := make([]int, len(ss))
	for i := range at {
		at[i] = -1
	}
	for _, j := range all {
		at[j.i] = len(fs)
		fs = append(fs, j.f)
	}
	return fs, at
}

// judgeChunk is the fewest series per judging worker worth a goroutine.
const judgeChunk = 1024

// coveredByName reports whether an address series is the same activity as
// name series already reported: every connection carried a name and each
// of its names was reported.
func (b *Beacon) coveredByName(k ipKey, s *series, reported map[nameKey]string) bool {
	if s.manyNames || len(s.names) == 0 {
		return false
	}
	n, _, _ := s.totals()
	if s.unnamed*10 > n { // over 10 % unnamed: the address series says more
		return false
	}
	for _, nm := range s.names {
		if _, ok := reported[nameKey{k.local, nm}]; !ok {
			return false
		}
	}
	return true
}

// judge scores one series and returns its finding when it is a strobe or
// a beacon at or above the reporting score.
func (b *Beacon) judge(s *series, byName bool, ws, we float64, strobeAt int64, sc *scratch) (cw.Finding, bool) {
	n, out, in := s.totals()
	if n >= strobeAt {
		return b.strobeFinding(s, byName, n, out, in, strobeAt, ws, we), true
	}
	if len(s.obs) < b.cfg.MinConns {
		return cw.Finding{}, false
	}
	if float64(s.expected) >= expectedFrac*float64(n) {
		return cw.Finding{}, false
	}
	s.sortObs()
	sc.times = sc.times[:0]
	sc.sizes = sc.sizes[:0]
	for _, o := range s.obs {
		sc.times = append(sc.times, float64(s.when(o))/1000)
		sc.sizes = append(sc.sizes, float64(o.out))
	}
	r := scoreBeacon(sc.times, sc.sizes, ws, we, b.cfg.MinConns, sc)
	if r.Score < b.cfg.Report {
		return cw.Finding{}, false
	}
	return b.beaconFinding(s, byName, r, n, out, in, ws, we), true
}

// scratch holds buffers reused across series within one Findings call.
type scratch struct {
	times, sizes, ev, iv, fold, tmp, tmp2, extra []float64
	brk, bt, bs                                  []float64 // burst view
}

// beaconResult is the score of one series with everything the evidence
// shows.
type beaconResult struct {
	Score       float64
	Interval    float64 // regularity of the intervals, 0..1
	Size        float64 // regularity of bytes out per connection
	Coverage    float64 // how evenly beats spread over the pair's span
	Persistence float64 // how much of the window the pattern lasts

	Period    float64 // seconds
	Jitter    float64 // MAD/median of the folded intervals
	IQRJitter float64 // IQR/median of the folded intervals
	Skew      float64 // Bowley skew of the folded intervals
	Fit       float64 // share of intervals that are beats or folded missed beats
	OnBeat    float64 // share of intervals that are one period
	TimeFit   float64 // share of the span those intervals cover

	Events, Missed, Extras int
	Second                 *schedule // a second schedule made of the peeled extra beats

	SizeMedian, SizeJitter float64
	CoverageHist           []int
	Intervals              []float64 // first maxEvidence, seconds
	Hist                   []histBin

	// Bursts is the coarse view, when the series splits into bursts:
	// chosen or not, so the analyst sees both scores.
	Bursts *burstView
}

// burstView is the score of a series' burst start times.
type burstView struct {
	Count     int     // bursts
	MeanSize  float64 // connections per burst
	MeanBeats float64 // beats per burst
	Gap       float64 // seconds: closer connections are one burst
	Period    float64 // seconds between bursts
	Score     float64 // beacon score of the burst starts
	BeatScore float64 // beacon score beat by beat
	Chosen    bool    // Score is the series' score
}

type schedule struct {
	Period   float64
	Events   int
	Interval float64
}

type histBin struct {
	Label string
	Count int
}

// scoreBeacon scores sorted start times (unix seconds) and bytes out per
// connection over the window [ws, we]. It is the whole beacon formula;
// docs/DETECTIONS.md restates it.
//
// A series is scored twice when its intervals split into bursts (see
// burstGap): once beat by beat, once on the start times of its bursts,
// and the better view is the result; Bursts records the coarse view
// whenever it was scored.
func scoreBeacon(times, sizes []float64, ws, we float64, minEvents int, sc *scratch) beaconResult {
	r := scoreBeats(times, sizes, ws, we, minEvents, sc)
	if r.Events < max(minEvents, 4) {
		return r
	}
	span := sc.ev[len(sc.ev)-1] - sc.ev[0]
	gap, ok := burstGap(sc.iv, span, minEvents, sc)
	if !ok {
		return r
	}
	// Single linkage on connections: a connection less than gap after
	// the previous one continues its burst. Each burst's bytes are its
	// connections' sum, so the size sub-score compares bursts.
	bt, bs := sc.bt[:0], sc.bs[:0]
	prev := math.Inf(-1)
	for i, t := range times {
		if t-prev >= gap {
			bt, bs = append(bt, t), append(bs, 0)
		}
		bs[len(bs)-1] += sizes[i]
		prev = t
	}
	sc.bt, sc.bs = bt, bs
	// Choosing the better of two views doubles a random series' chances
	// of a lucky fit, and ten random burst times often look regular: the
	// burst view asks for twice the events and a schedule that keeps its
	// beat (see burstMinOnBeat).
	if len(bt) < burstMinEventsX*max(minEvents, 4) {
		return r
	}
	c := scoreBeats(bt, bs, ws, we, minEvents, sc)
	if c.OnBeat < burstMinOnBeat {
		c.Score = 0
	}
	view := &burstView{
		Count:     len(bt),
		MeanSize:  round3(float64(len(times)) / float64(len(bt))),
		MeanBeats: round3(float64(r.Events) / float64(len(bt))),
		Gap:       round3(gap),
		Period:    round3(c.Period),
		Score:     c.Score,
		BeatScore: r.Score,
	}
	if c.Score > r.Score {
		view.Chosen = true
		c.Bursts = view
		return c
	}
	r.Bursts = view
	return r
}

// Shape of the burst view (docs/DETECTIONS.md, "Bursts").
const (
	burstRatio   = 4.0 // the break: the next sorted interval is at least 4× the one below
	burstMinFrac = 3   // at least 1/3 of the intervals are inside bursts
	burstSpanDiv = 2   // the gap is at most span / (2 × MinConns)

	burstMinEventsX = 2   // the burst view needs 2 × MinConns bursts
	burstMinOnBeat  = 0.8 // and 80 % of its intervals one period (random bursts: ≤ 0.75 in 1000 seeds)
)

// burstGap finds where a series' intervals between beats split into
// "inside a burst" and "between bursts": the widest jump between
// consecutive sorted intervals, with at least a third of the intervals
// below it (bursts average 1.5 beats or more, else the beat view already
// says it all) and at least minEvents-1 above (enough bursts to score),
// the jump at least burstRatio and the gap (the geometric mean of the
// two intervals around it) at most span/(2·minEvents), small against the
// series' span. Regular and Poisson intervals have no such jump away
// from their smallest ones, so they get no burst view.
func burstGap(iv []float64, span float64, minEvents int, sc *scratch) (float64, bool) {
	n := len(iv)
	lo, hi := (n+burstMinFrac-1)/burstMinFrac-1, n-max(minEvents-1, 3)-1
	if lo < 0 || hi < lo {
		return 0, false
	}
	sorted := append(sc.brk[:0], iv...)
	slices.Sort(sorted)
	sc.brk = sorted
	best, at := 0.0, -1
	for i := lo; i <= hi; i++ {
		if x := sorted[i+1] / math.Max(sorted[i], mergeGapS); x > best {
			best, at = x, i
		}
	}
	if at < 0 || best < burstRatio {
		return 0, false
	}
	gap := math.Sqrt(math.Max(sorted[at], mergeGapS) * sorted[at+1])
	if gap > span/float64(burstSpanDiv*max(minEvents, 4)) {
		return 0, false
	}
	return gap, true
}

// scoreBeats is scoreBeacon's beat-by-beat view.
func scoreBeats(times, sizes []float64, ws, we float64, minEvents int, sc *scratch) beaconResult {
	var r beaconResult
	// Beats: connections starting within mergeGapS of a beat's first
	// connection belong to it (a beacon that opens two connections at
	// once beats once).
	ev := sc.ev[:0]
	for _, t := range times {
		if len(ev) == 0 || t-ev[len(ev)-1] >= mergeGapS {
			ev = append(ev, t)
		}
	}
	sc.ev = ev
	r.Events = len(ev)
	if len(ev) < max(minEvents, 4) {
		return r
	}
	iv := sc.iv[:0]
	for i := 1; i < len(ev); i++ {
		iv = append(iv, ev[i]-ev[i-1])
	}
	sc.iv = iv
	for i := 0; i < len(iv) && i < maxEvidence; i++ {
		r.Intervals = append(r.Intervals, round3(iv[i]))
	}

	ir := intervalScore(ev, iv, true, sc)
	r.Period, r.Jitter, r.IQRJitter, r.Skew = ir.period, ir.jitter, ir.iqrJitter, ir.skew
	r.Fit, r.OnBeat, r.TimeFit, r.Missed, r.Extras = ir.fit, ir.onBeat, ir.timeFit, ir.missed, ir.extras
	r.Interval = ir.score
	r.Second = ir.second
	r.Hist = intervalHist(iv, ir.period)

	// Data size regularity: the same robust dispersion on bytes out.
	sz := append(sc.tmp[:0], sizes...)
	slices.Sort(sz)
	med := quantile(sz, 0.5)
	m, tmp2 := mad(sz, med, sc.tmp2)
	sc.tmp, sc.tmp2 = sz, tmp2
	r.SizeMedian = med
	r.SizeJitter = m / math.Max(med, sizeFloor)
	r.Size = dispersionScore(r.SizeJitter) * skewScore(bowley(sz, 0.02*math.Max(med, sizeFloor)), len(sz))

	span := ev[len(ev)-1] - ev[0]
	r.Coverage, r.CoverageHist = coverage(ev, ev[0], span, ir.period)
	r.Persistence = persistence(ev, ws, we, span, ir.period)

	r.Score = round3(r.Interval * r.Coverage * (0.8 + 0.2*r.Size) * (0.7 + 0.3*r.Persistence))
	r.Interval, r.Size = round3(r.Interval), round3(r.Size)
	r.Coverage, r.Persistence = round3(r.Coverage), round3(r.Persistence)
	return r
}

type intervalResult struct {
	score, period, jitter, iqrJitter, skew, fit, onBeat, timeFit float64
	missed, extras                                               int
	second                                                       *schedule
}

// intervalScore is the regularity of the intervals iv between beats ev:
//
//	period P: the median of the densest run of sorted intervals whose
//	largest is at most 1.5× its smallest (a mode: robust to a second
//	schedule and to missed beats, which a plain median is not),
//	re-centred on the median of the intervals within ±35 % of it;
//	folding: an interval within ±0.35P of kP (2 ≤ k ≤ 5) is k beats,
//	k-1 of them missed, and counts as interval/k;
//	peeling: a run of intervals shorter than 0.65P whose sum is within
//	±0.35P of kP is one beat, and the beats inside it are extras (a
//	second schedule, or a second connection per beat). Peeling is kept
//	only when the extras are at most 10 % of the beats or form a regular
//	schedule of their own (their interval score ≥ 0.5): otherwise any
//	random series could be peeled into a regular one;
//	score = D(MAD/median) × S(Bowley skew) × G(on-beat share) × X × (0.4+0.6·timeFit)
//
// on the folded intervals, where the on-beat share is the share of
// intervals within ±0.35P of P (missed beats and stray connections lower
// it; Poisson arrivals have about 0.3), G(f) = clamp((f-0.4)/0.4), X =
// 1 - extras/beats × (1 - their schedule's score) and timeFit is the share
// of the span covered by beats and folded missed beats (bursts cover
// little).
func intervalScore(ev, iv []float64, peel bool, sc *scratch) intervalResult {
	if !peel {
		return analyseIntervals(ev, iv, false, sc)
	}
	r := analyseIntervals(ev, iv, true, sc)
	if r.extras == 0 {
		return r
	}
	ef := float64(r.extras) / float64(len(ev))
	second := 0.0
	if len(sc.extra) >= 4 {
		ex := slices.Clone(sc.extra)
		exIv := make([]float64, 0, len(ex)-1)
		for i := 1; i < len(ex); i++ {
			exIv = append(exIv, ex[i]-ex[i-1])
		}
		sub := analyseIntervals(ex, exIv, false, sc)
		second = sub.score
		r.second = &schedule{Period: round3(sub.period), Events: len(ex), Interval: round3(sub.score)}
	}
	if ef > 0.1 && second < 0.5 {
		return analyseIntervals(ev, iv, false, sc)
	}
	r.score *= 1 - ef*(1-second)
	return r
}

// analyseIntervals does one pass of intervalScore, with or without
// peeling; the peeled extras' times are left in sc.extra.
func analyseIntervals(ev, iv []float64, peel bool, sc *scratch) intervalResult {
	var r intervalResult
	sorted := append(sc.tmp[:0], iv...)
	slices.Sort(sorted)
	sc.tmp = sorted
	p := modePeriod(sorted)
	r.period = p
	tol := beatTol * p
	beats := func(d float64) int {
		k := int(math.Round(d / p))
		if k >= 1 && k <= maxMultiple && math.Abs(d-float64(k)*p) <= tol {
			return k
		}
		return 0
	}
	fold := sc.fold[:0]
	sc.extra = sc.extra[:0]
	explained, onBeat, total := 0, 0, 0
	var explainedTime, totalTime float64
	for i := 0; i < len(iv); {
		acc, j := iv[i], i
		if peel && acc < p-tol {
			for j+1 < len(iv) && acc < p-tol {
				j++
				acc += iv[j]
			}
			if acc >= p-tol && beats(acc) > 0 {
				sc.extra = append(sc.extra, ev[i+1:j+1]...)
				r.extras += j - i
			} else {
				acc, j = iv[i], i
			}
		}
		total++
		totalTime += acc
		if k := beats(acc); k > 0 {
			fold = append(fold, acc/float64(k))
			r.missed += k - 1
			explained++
			explainedTime += acc
			if k == 1 {
				onBeat++
			}
		} else {
			fold = append(fold, acc)
		}
		i = j + 1
	}
	sc.fold = fold
	slices.Sort(fold)
	med := quantile(fold, 0.5)
	m, tmp2 := mad(fold, med, sc.tmp2)
	sc.tmp2 = tmp2
	if med > 0 {
		r.jitter = m / med
		r.iqrJitter = (quantile(fold, 0.75) - quantile(fold, 0.25)) / med
	}
	r.skew = bowley(fold, 0.02*med)
	r.fit = float64(explained) / float64(max(total, 1))
	r.onBeat = float64(onBeat) / float64(max(total, 1))
	if totalTime > 0 {
		r.timeFit = explainedTime / totalTime
	}
	r.score = dispersionScore(r.jitter) * skewScore(r.skew, len(fold)) * clamp01((r.onBeat-0.4)/0.4) * (0.4 + 0.6*r.timeFit)
	r.jitter, r.iqrJitter, r.skew = round3(r.jitter), round3(r.iqrJitter), round3(r.skew)
	r.fit, r.onBeat, r.timeFit = round3(r.fit), round3(r.onBeat), round3(r.timeFit)
	return r
}

// modePeriod estimates the period from sorted intervals. Candidates are
// the median of the densest run whose largest is at most modeRatio × its
// smallest (a mode: robust to a second schedule and to missed beats) and
// the plain median (unbiased for symmetric jitter, where the densest run
// sits off centre); each is re-centred twice on the median of the
// intervals within ±beatTol of it, and the one with more intervals
// within that tolerance wins.
func modePeriod(sorted []float64) float64 {
	if len(sorted) == 0 {
		return mergeGapS
	}
	best, bi, bj := 0, 0, 0
	j := 0
	for i := range sorted {
		if j < i {
			j = i
		}
		for j+1 < len(sorted) && sorted[j+1] <= modeRatio*sorted[i] {
			j++
		}
		if n := j - i + 1; n > best {
			best, bi, bj = n, i, j
		}
	}
	window := func(p float64) (int, int) {
		lo, _ := slices.BinarySearch(sorted, p*(1-beatTol))
		hi, _ := slices.BinarySearch(sorted, math.Nextafter(p*(1+beatTol), math.Inf(1)))
		return lo, hi
	}
	refine := func(p float64) (float64, int) {
		for range 2 {
			if lo, hi := window(p); hi > lo {
				p = math.Max(quantile(sorted[lo:hi], 0.5), mergeGapS)
			}
		}
		lo, hi := window(p)
		return p, hi - lo
	}
	pm, nm := refine(math.Max(quantile(sorted[bi:bj+1], 0.5), mergeGapS))
	pd, nd := refine(math.Max(quantile(sorted, 0.5), mergeGapS))
	if nd > nm {
		return pd
	}
	return pm
}

// dispersionScore maps a relative dispersion (MAD/median) to 0..1:
// 1 at 0, 0.95 at 0.2 (uniform jitter of ±40 % has MAD/median 0.2), then
// linearly to 0 at 0.5 (exponential, i.e. Poisson, intervals have 0.69).
func dispersionScore(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r <= 0.2:
		return 1 - 0.25*r
	case r < 0.5:
		return 0.95 * (0.5 - r) / 0.3
	}
	return 0
}

// skewScore is 1 - 0.3 × max(0, |skew| - 1.5/√n): quartiles of a few
// dozen jittered intervals are noisy (the Bowley skew of 20 uniform
// samples often reaches ±0.5), so skew within that allowance costs
// nothing, and a fully lopsided distribution costs 30 %.
func skewScore(b float64, n int) float64 {
	return 1 - 0.3*math.Max(0, math.Abs(b)-1.5/math.Sqrt(float64(max(n, 1))))
}

// coverage is how evenly beats spread over the pair's own span: the span
// is cut into B = clamp(span/(3P), 1, 24) buckets (three periods each, so
// a jittered beacon with a missed beat fills every one) and the score is
// occupancy (share of buckets with a beat) × evenness (normalised entropy
// of the counts in occupied buckets).
func coverage(ev []float64, start, span, period float64) (float64, []int) {
	nb := histBuckets(span, period)
	if nb <= 1 {
		return 1, []int{len(ev)}
	}
	counts := make([]int, nb)
	w := span / float64(nb)
	for _, t := range ev {
		i := min(int((t-start)/w), nb-1)
		counts[max(i, 0)]++
	}
	occ, h := 0, 0.0
	for _, c := range counts {
		if c > 0 {
			occ++
			p := float64(c) / float64(len(ev))
			h -= p * math.Log(p)
		}
	}
	even := 1.0
	if occ > 1 {
		even = h / math.Log(float64(occ))
	}
	return clamp01(float64(occ) / float64(nb) * even), counts
}

// persistence is how much of the window the pattern lasts: the mean of
// the pair's span over the window's length and the share of the window's
// buckets (B = clamp(window/(3P), 1, 24)) with a beat.
func persistence(ev []float64, ws, we, span, period float64) float64 {
	wl := we - ws
	if wl <= 0 {
		return 1
	}
	nb := histBuckets(wl, period)
	seen := make([]bool, nb)
	w := wl / float64(nb)
	active := 0
	for _, t := range ev {
		i := min(max(int((t-ws)/w), 0), nb-1)
		if !seen[i] {
			seen[i] = true
			active++
		}
	}
	return (clamp01(span/wl) + float64(active)/float64(nb)) / 2
}

func histBuckets(span, period float64) int {
	if period <= 0 {
		return 1
	}
	return int(math.Max(1, math.Min(maxHistBkts, math.Floor(span/(3*period)))))
}

// intervalHist counts intervals by how they sit against the period.
func intervalHist(iv []float64, p float64) []histBin {
	bins := []histBin{{Label: "<0.65P"}, {Label: "0.65-0.9P"}, {Label: "0.9-1.1P"}, {Label: "1.1-1.35P"},
		{Label: "1.35-1.65P"}, {Label: "2P±0.35"}, {Label: "3P±0.35"}, {Label: "4-5P±0.35"}, {Label: "other"}}
	for _, d := range iv {
		x := d / p
		k := math.Round(x)
		switch {
		case x < 0.65:
			bins[0].Count++
		case x < 0.9:
			bins[1].Count++
		case x <= 1.1:
			bins[2].Count++
		case x <= 1.35:
			bins[3].Count++
		case x < 1.65:
			bins[4].Count++
		case math.Abs(x-k) <= beatTol && k == 2:
			bins[5].Count++
		case math.Abs(x-k) <= beatTol && k == 3:
			bins[6].Count++
		case math.Abs(x-k) <= beatTol && k <= maxMultiple:
			bins[7].Count++
		default:
			bins[8].Count++
		}
	}
	return bins
}

// BeaconSeverity maps a beacon score to a severity: high from 0.85,
// medium from 0.70, low from 0.55, info below.
func BeaconSeverity(score float64) cw.Severity {
	switch {
	case score >= BeaconHigh:
		return cw.High
	case score >= BeaconMedium:
		return cw.Medium
	case score >= BeaconLow:
		return cw.Low
	}
	return cw.Info
}

func (b *Beacon) beaconFinding(s *series, byName bool, r beaconResult, n, out, in int64, ws, we float64) cw.Finding {
	dst := s.remote
	ips := remoteIPs(s, byName)
	if !byName && dst.Name == "" && len(s.names) == 1 {
		dst.Name = s.names[0]
	}
	hist := make(map[string]int, len(r.Hist))
	for _, h := range r.Hist {
		if h.Count > 0 {
			hist[h.Label] = h.Count
		}
	}
	ev := map[string]any{
		"period_s":             round3(r.Period),
		"jitter":               r.Jitter,
		"jitter_iqr":           r.IQRJitter,
		"skew":                 r.Skew,
		"interval_score":       r.Interval,
		"size_score":           r.Size,
		"coverage_score":       r.Coverage,
		"persistence_score":    r.Persistence,
		"beat_fit":             r.Fit,
		"on_beat":              r.OnBeat,
		"time_fit":             r.TimeFit,
		"beats":                r.Events,
		"missed_beats":         r.Missed,
		"extra_beats":          r.Extras,
		"connections":          n,
		"intervals_s":          r.Intervals,
		"interval_histogram":   hist,
		"coverage_histogram":   r.CoverageHist,
		"bytes_out_median":     r.SizeMedian,
		"bytes_out_jitter":     round3(r.SizeJitter),
		"remote_ips":           ips,
		"ports":                s.portList(),
		"services":             s.serviceList(),
		"uids":                 slices.Clone(s.uids),
		"grouped_by":           groupedBy(byName),
		"window_start":         time.UnixMilli(int64(ws * 1000)).UTC().Format(time.RFC3339),
		"window_end":           time.UnixMilli(int64(we * 1000)).UTC().Format(time.RFC3339),
		"timestamps_dropped":   s.overflowed(),
		"rule":                 fmt.Sprintf("beacon score %.3f ≥ %.2f", r.Score, b.cfg.Report),
		"schedules":            schedules(r),
		"severity_from_scores": "high ≥ 0.85, medium ≥ 0.70, low ≥ 0.55",
	}
	if !byName {
		ev["names"] = slices.Clone(s.names)
	}
	ev["view"] = "beats"
	if bv := r.Bursts; bv != nil {
		if bv.Chosen {
			ev["view"] = "bursts"
		}
		ev["bursts"] = map[string]any{
			"count":      bv.Count,
			"mean_size":  bv.MeanSize,
			"mean_beats": bv.MeanBeats,
			"gap_s":      bv.Gap,
			"period_s":   bv.Period,
			"score":      bv.Score,
			"beat_score": bv.BeatScore,
		}
	}
	return cw.Finding{
		Kind:      cw.KindBeacon,
		Severity:  BeaconSeverity(r.Score),
		Score:     r.Score,
		Src:       s.local,
		Dst:       dst,
		FirstSeen: time.UnixMilli(s.first).UTC(),
		LastSeen:  time.UnixMilli(s.last).UTC(),
		Count:     n,
		BytesOut:  out,
		BytesIn:   in,
		Summary:   beaconSummary(s, dst, ips, r, n),
		Evidence:  ev,
	}
}

func schedules(r beaconResult) []map[string]any {
	out := []map[string]any{{"period_s": round3(r.Period), "beats": r.Events - r.Extras, "interval_score": r.Interval}}
	if r.Second != nil {
		out = append(out, map[string]any{"period_s": r.Second.Period, "beats": r.Second.Events, "interval_score": r.Second.Interval})
	}
	return out
}

func groupedBy(byName bool) string {
	if byName {
		return "local host, remote name"
	}
	return "local host, remote address"
}

func remoteIPs(s *series, byName bool) []string {
	if !byName {
		return []string{s.remote.Addr.String()}
	}
	out := make([]string, 0, len(s.ips))
	for _, a := range s.ips {
		out = append(out, a.String())
	}
	return out
}

// beaconSummary reads like "crane-modem-01 (10.20.1.5) calls
// telemetry.example.cn (47.1.2.3 +1 more) every 60 s ±15 % (118
// connections over 2h0m, 3 beats missed)".
func beaconSummary(s *series, dst cw.Endpoint, ips []string, r beaconResult, n int64) string {
	var b strings.Builder
	b.WriteString(endpointLabel(s.local))
	b.WriteString(" calls ")
	b.WriteString(remoteName(dst, ips))
	fmt.Fprintf(&b, " every %s ±%.0f %%", humanPeriod(r.Period), 100*r.Jitter)
	if r.Bursts != nil && r.Bursts.Chosen {
		fmt.Fprintf(&b, " in bursts of %.1f connections", r.Bursts.MeanSize)
	}
	if r.Second != nil && r.Second.Interval >= 0.5 {
		fmt.Fprintf(&b, " and every %s", humanPeriod(r.Second.Period))
	}
	fmt.Fprintf(&b, " (%d connections over %s", n, time.Duration(float64(s.last-s.first)*float64(time.Millisecond)).Round(time.Second))
	if r.Missed > 0 {
		fmt.Fprintf(&b, ", %d beats missed", r.Missed)
	}
	b.WriteString(")")
	return b.String()
}

func remoteName(dst cw.Endpoint, ips []string) string {
	first := dst.Addr.String()
	if len(ips) > 0 {
		first = ips[0]
	}
	more := ""
	if len(ips) > 1 {
		more = fmt.Sprintf(" +%d more", len(ips)-1)
	}
	if dst.Name != "" {
		return dst.Name + " (" + first + more + ")"
	}
	return first + more
}

func humanPeriod(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%.1f s", s)
	case s < 120:
		return fmt.Sprintf("%.0f s", s)
	case s < 7200:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
