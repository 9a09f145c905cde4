package detect

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Bulk exfiltration: a local host that sends far more to one outside
// destination than it receives, more than it usually sends, to a place few
// hosts (or none before) talked to. Only conversations the local host
// opened count as uploads: a local server answering outside clients is
// serving (the jurisdiction detector reports that), not uploading.
//
// Per (local host, remote address), all sub-scores in [0, 1]:
//
//	absolute = clamp(log2(out / MinBytesOut) / log2(FullBytes / MinBytesOut))
//	           (1 MiB → 0, 1 GiB → 1 with the defaults)
//	baseline (when the store holds ≥ MinBaselineDays days of the host's
//	         daily bytes out in the BaselineDays before the input):
//	           thr = max(median + K·1.4826·MAD, 1.5·median, MinBytesOut)
//	           if the host's busiest day in the input > thr:
//	             volume = max(absolute, clamp(log2(1 + out/thr)/4))
//	           else (an ordinary day for this host):
//	             volume = 0.5·absolute
//	         without a baseline: volume = absolute
//	asym     = clamp(log10(out / max(in, 1)) / 2), 0 when out ≤ in (100:1 → 1)
//	new      = 1 when the store first saw the destination less than a day
//	           before this pair's first upload (or never), falling linearly
//	           to 0 at NewWithin (7 days); 0 without a store
//	rare     = RarityScore(max(hosts in input, hosts in the store's history))
//	score    = volume × (0.40 + 0.25·asym + 0.20·new + 0.15·rare)
//
// A pair is reported when it sent at least MinBytesOut and scores at
// least MinScore (0.25, low); severity from ScoreSeverity.
//
// Memory: MaxPairs (100,000) pair aggregates, measured at 750 bytes each
// with their host total and prevalence entry (75 MB at the cap; plus
// their share of the PairIndex); when
// full, the half that sent least is evicted (counted in Evicted): a pair
// that sent little is no exfiltration. MaxHosts (65,536) host totals, each
// with at most 64 days of daily bytes. History queries are made in
// Findings only, for reported candidates and for hosts with candidates.
type Exfil struct {
	cfg ExfilConfig

	// Pairs of plain addresses live in the slots of the pair index
	// (shared with the run's other per-pair detectors when
	// ExfilConfig.Pairs is set); IPv4-mapped and zoned ones, which the
	// index's canonical keys would merge with their plain forms, in odd.
	// npairs counts both.
	pairs   *PairIndex
	odd     map[exfilKey]*exfilPair
	npairs  int
	hosts   map[netip.Addr]*exfilHost
	prev    *Prevalence
	ownPrev bool // prev is Exfil's own, observed and expired here
	evicted int64
	noHost  int64
}

// ExfilConfig tunes the exfiltration detector; zero fields take defaults.
type ExfilConfig struct {
	// History is the store (nil: none; absolute thresholds only).
	History History
	// MinBytesOut is the least upload to one destination worth a finding,
	// and the floor of a learned threshold (default 1 MiB).
	MinBytesOut int64
	// FullBytes is the upload at which the absolute volume score is 1
	// (default 1 GiB).
	FullBytes int64
	// NewWithin: a destination first seen longer ago than this is not new
	// (default 7 days).
	NewWithin time.Duration
	// BaselineDays of history before the input make the baseline (default
	// 28); MinBaselineDays with traffic are needed to use it (default 7).
	BaselineDays, MinBaselineDays int
	// K is the number of scaled MADs above the median a day must exceed to
	// be unusual (default 3).
	K        float64
	MinScore float64 // default 0.25
	MaxPairs int     // default 100,000
	MaxHosts int     // default 65,536
	// Window is what Expire keeps over a continuous source (default 24 h).
	Window time.Duration
	// QueryTimeout bounds all History queries of one Findings call
	// (default 30 s); when it runs out the rest is scored without history.
	QueryTimeout time.Duration
	Log          *slog.Logger
	// Prevalence, when set, is a Prevalence the caller runs as a detector
	// of its own over the same Conns: Exfil reads it instead of keeping a
	// second one (each costs two map lookups per Conn).
	Prevalence *Prevalence
	// Pairs, when set, is the run's shared pair index (see PairIndex);
	// nil: Exfil keeps its own.
	Pairs *PairIndex
}

// Caps of the exfiltration detector.
const (
	DefaultMaxExfilPairs = 100_000
	DefaultMaxExfilHosts = 65_536
	exfilDays            = 64
	exfilUIDs            = 8
	exfilNames           = 4
	exfilPorts           = 8
)

type exfilKey struct{ local, remote netip.Addr }

type exfilPair struct {
	// host is the local host's aggregate, so that a Conn of a known pair
	// costs one map lookup, not two (lookups of large maps are what
	// Observe's time goes to).
	host        *exfilHost
	first, last time.Time
	conns       int64
	out, in     int64 // bytes of conns the local host opened
	servedOut   int64 // bytes sent in conns the remote opened (not scored)
	names       []string
	uids        []string
	ports       []uint16
	// Last: the endpoints are read when reporting, the rest per Conn.
	local, remote cw.Endpoint
}

type exfilHost struct {
	out, in int64
	days    map[int64]int64 // UTC day (Unix days) → bytes out, at most exfilDays
	// The current day's bytes are summed here and folded into days when
	// the day changes or days is read (settle): most Conns fall on the
	// day of the one before.
	curDay, curOut int64
	hasCur         bool
	dests          int
	gone           bool // expired from Exfil.hosts; pairs must look again
}

// settle folds the current day into days.
func (h *exfilHost) settle() {
	if !h.hasCur {
		return
	}
	h.hasCur = false
	if _, ok := h.days[h.curDay]; ok || len(h.days) < exfilDays {
		h.days[h.curDay] = satAdd(h.days[h.curDay], h.curOut)
	}
}

// NewExfil returns the detector with cfg's zero fields defaulted.
func NewExfil(cfg ExfilConfig) *Exfil {
	if cfg.MinBytesOut <= 0 {
		cfg.MinBytesOut = 1 << 20
	}
	if cfg.FullBytes <= cfg.MinBytesOut {
		cfg.FullBytes = max(1<<30, 2*cfg.MinBytesOut)
	}
	if cfg.NewWithin <= 0 {
		cfg.NewWithin = 7 * 24 * time.Hour
	}
	if cfg.BaselineDays <= 0 {
		cfg.BaselineDays = 28
	}
	if cfg.MinBaselineDays <= 0 {
		cfg.MinBaselineDays = 7
	}
	if cfg.K <= 0 {
		cfg.K = 3
	}
	if cfg.MinScore <= 0 {
		cfg.MinScore = 0.25
	}
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = DefaultMaxExfilPairs
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = DefaultMaxExfilHosts
	}
	if cfg.Window <= 0 {
		cfg.Window = dayWindow
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	e := &Exfil{cfg: cfg, pairs: cfg.Pairs, odd: map[exfilKey]*exfilPair{}, hosts: map[netip.Addr]*exfilHost{}, prev: cfg.Prevalence}
	if e.pairs == nil || !claim(&e.pairs.exfil, e) {
		e.pairs = NewPairIndex()
		claim(&e.pairs.exfil, e)
	}
	if e.prev == nil {
		e.prev = NewPrevalence()
		e.prev.Window = cfg.Window
		e.prev.Pairs = e.pairs
		e.ownPrev = true
	}
	return e
}

// each calls fn for every pair with its slot id (-1 for odd pairs) and key.
func (e *Exfil) each(fn func(id int32, k exfilKey, p *exfilPair)) {
	for id := range e.pairs.slots {
		if p := e.pairs.slots[id].exfil; p != nil {
			fn(int32(id), exfilKey{p.local.Addr, p.remote.Addr}, p)
		}
	}
	for k, p := range e.odd {
		fn(-1, k, p)
	}
}

// drop forgets one pair.
func (e *Exfil) drop(id int32, k exfilKey) {
	if id >= 0 {
		e.pairs.slots[id].exfil = nil
		e.pairs.release(id)
	} else {
		delete(e.odd, k)
	}
	e.npairs--
}

// Name implements cw.Detector.
func (e *Exfil) Name() string { return cw.KindExfiltration }

// Evicted reports pair aggregates dropped to stay within MaxPairs.
func (e *Exfil) Evicted() int64 { return e.evicted }

// Observe implements cw.Detector.
func (e *Exfil) Observe(c *cw.Conn) {
	loc, rem, ok := e.pairs.sides(c)
	if !ok {
		return
	}
	if e.ownPrev {
		e.prev.observe(loc.Addr, rem, c.TS)
	}
	opened := c.Orig.Local
	out, in := c.OrigBytes, c.RespBytes
	oip, iip := c.OrigIPBytes, c.RespIPBytes
	if !opened {
		out, in, oip, iip = in, out, iip, oip
	}
	// Flow sources may count only IP bytes.
	if out <= 0 && in <= 0 {
		out, in = oip, iip
	}
	out, in = max(out, 0), max(in, 0)

	k := exfilKey{loc.Addr, rem.Addr}
	plain := plainAddr(loc.Addr) && plainAddr(rem.Addr)
	var ik ipKey
	var p *exfilPair
	if plain {
		ik = mkIPKey(loc.Addr, rem.Addr)
		if id := e.pairs.find(ik); id >= 0 {
			p = e.pairs.slots[id].exfil
		}
	} else {
		p = e.odd[k]
	}
	var h *exfilHost
	if p != nil && !p.host.gone {
		h = p.host
	} else {
		h = e.hosts[loc.Addr]
		if h == nil {
			if len(e.hosts) >= e.cfg.MaxHosts {
				e.noHost++
				return
			}
			h = &exfilHost{days: map[int64]int64{}}
			e.hosts[loc.Addr] = h
		}
	}
	h.out = satAdd(h.out, out)
	h.in = satAdd(h.in, in)
	if !c.TS.IsZero() {
		day := unixDay(c.TS)
		if !h.hasCur || day != h.curDay {
			h.settle()
			h.curDay, h.curOut, h.hasCur = day, 0, true
		}
		h.curOut = satAdd(h.curOut, out)
	}

	if p == nil {
		if e.npairs >= e.cfg.MaxPairs {
			e.evict()
		}
		p = &exfilPair{local: *loc, remote: *rem, first: c.TS, last: c.TS}
		if plain {
			e.pairs.slots[e.pairs.add(ik)].exfil = p
		} else {
			e.odd[k] = p
		}
		e.npairs++
		h.dests++
	}
	p.host = h
	if loc.Asset != nil && p.local.Asset == nil {
		p.local = *loc
	}
	p.conns++
	if opened {
		p.out = satAdd(p.out, out)
		p.in = satAdd(p.in, in)
	} else {
		p.servedOut = satAdd(p.servedOut, out)
	}
	if !c.TS.IsZero() && (p.first.IsZero() || c.TS.Before(p.first)) {
		p.first = c.TS
	}
	if end := c.TS.Add(max(c.Duration, 0)); end.After(p.last) {
		p.last = end
	}
	if c.UID != "" && len(p.uids) < exfilUIDs {
		p.uids = addSample(p.uids, c.UID, exfilUIDs)
	}
	if rem.Name != "" && len(p.names) < exfilNames {
		p.names = addSample(p.names, rem.Name, exfilNames)
	}
	if len(p.ports) < exfilPorts && !slices.Contains(p.ports, rem.Port) {
		p.ports = append(p.ports, rem.Port)
	}
}

func unixDay(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// evict drops the half of the pairs that uploaded least.
func (e *Exfil) evict() {
	type ko struct {
		id  int32
		k   exfilKey
		out int64
	}
	all := make([]ko, 0, e.npairs)
	e.each(func(id int32, k exfilKey, p *exfilPair) {
		all = append(all, ko{id, k, p.out})
	})
	// Ties go by address, so that which pairs stay does not depend on
	// the order pairs are held in.
	slices.SortFunc(all, func(x, y ko) int {
		return cmp.Or(cmp.Compare(x.out, y.out), x.k.local.Compare(y.k.local), x.k.remote.Compare(y.k.remote))
	})
	for _, x := range all[:max(1, len(all)/2)] {
		e.drop(x.id, x.k)
		e.evicted++
	}
}

// Expire implements cw.Expirer: pairs and hosts silent for the window that
// ends at now are forgotten, and days before it leave the host totals.
func (e *Exfil) Expire(now time.Time) {
	start := now.Add(-e.cfg.Window)
	e.each(func(id int32, k exfilKey, p *exfilPair) {
		if p.last.Before(start) {
			e.drop(id, k)
		}
	})
	first := unixDay(start)
	for a, h := range e.hosts {
		h.settle()
		for d := range h.days {
			if d < first {
				delete(h.days, d)
			}
		}
		if len(h.days) == 0 {
			h.gone = true
			delete(e.hosts, a)
		}
	}
	if e.ownPrev {
		e.prev.Expire(now)
	}
}

type exfilBaseline struct {
	days           int
	median, mad    float64
	threshold      float64
	today          int64
	anomalous, has bool
}

// Findings implements cw.Detector.
func (e *Exfil) Findings() []cw.Finding {
	var cands []*exfilPair
	minDay := int64(math.MaxInt64)
	e.each(func(_ int32, _ exfilKey, p *exfilPair) {
		if p.out < e.cfg.MinBytesOut {
			return
		}
		cands = append(cands, p)
		if !p.first.IsZero() {
			minDay = min(minDay, unixDay(p.first))
		}
	})
	spreads := e.spreads()
	if len(cands) == 0 && len(spreads) == 0 {
		return nil
	}
	withBase := cands
	for _, sp := range spreads {
		withBase = append(withBase, sp.top[0])
		if !sp.first.IsZero() {
			minDay = min(minDay, unixDay(sp.first))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.QueryTimeout)
	defer cancel()
	bases := e.baselines(ctx, withBase, minDay)

	var fs []cw.Finding
	reported := map[netip.Addr]bool{}
	for _, p := range cands {
		f, ok := e.judge(ctx, p, bases[p.local.Addr])
		if ok {
			fs = append(fs, f)
			reported[p.local.Addr] = true
		}
	}
	for _, sp := range spreads {
		if reported[sp.top[0].local.Addr] {
			continue // the host's biggest upload is reported as a pair already
		}
		if f, ok := e.judgeSpread(sp, bases[sp.top[0].local.Addr]); ok {
			fs = append(fs, f)
		}
	}
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Score != fs[j].Score {
			return fs[i].Score > fs[j].Score
		}
		if fs[i].BytesOut != fs[j].BytesOut {
			return fs[i].BytesOut > fs[j].BytesOut
		}
		return fs[i].Src.Addr.Compare(fs[j].Src.Addr) < 0
	})
	return fs
}

// spread is one local host's uploads summed over its destinations, for
// a host that sends much in total but little to each.
type spread struct {
	out, in     int64
	conns       int64
	dests       int
	first, last time.Time
	top         []*exfilPair // biggest uploads first, at most spreadTop
}

const spreadTop = 8

// spreads sums each host's uploads (conversations it opened) over its
// destinations and returns the hosts with at least MinBytesOut in all and
// at least two destinations.
func (e *Exfil) spreads() []*spread {
	by := map[netip.Addr]*spread{}
	e.each(func(_ int32, _ exfilKey, p *exfilPair) {
		if p.out <= 0 {
			return
		}
		sp := by[p.local.Addr]
		if sp == nil {
			sp = &spread{first: p.first, last: p.last}
			by[p.local.Addr] = sp
		}
		sp.out = satAdd(sp.out, p.out)
		sp.in = satAdd(sp.in, p.in)
		sp.conns += p.conns
		sp.dests++
		if !p.first.IsZero() && (sp.first.IsZero() || p.first.Before(sp.first)) {
			sp.first = p.first
		}
		if p.last.After(sp.last) {
			sp.last = p.last
		}
		sp.top = append(sp.top, p)
		if len(sp.top) > 4*spreadTop {
			sp.top = topUploads(sp.top)
		}
	})
	var out []*spread
	for _, sp := range by {
		if sp.out >= e.cfg.MinBytesOut && sp.dests >= 2 {
			sp.top = topUploads(sp.top)
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].top[0].local.Addr.Less(out[j].top[0].local.Addr) })
	return out
}

// topUploads keeps the spreadTop biggest uploads, biggest first (ties by
// address, so the choice does not depend on map order).
func topUploads(ps []*exfilPair) []*exfilPair {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].out != ps[j].out {
			return ps[i].out > ps[j].out
		}
		return ps[i].remote.Addr.Less(ps[j].remote.Addr)
	})
	return ps[:min(len(ps), spreadTop)]
}

// judgeSpread scores a host's total upload by the same volume and
// asymmetry sub-scores as a pair, without the destination's age and
// rarity (there is no one destination): score = volume × (0.40 +
// 0.25·asym).
func (e *Exfil) judgeSpread(sp *spread, base *exfilBaseline) (cw.Finding, bool) {
	s := e.exfilScore(sp.out, sp.in, base, 0, false, 1)
	score := clampUnit(s.volume * (0.40 + 0.25*s.asym))
	if score < e.cfg.MinScore {
		return cw.Finding{}, false
	}
	top := sp.top[0]
	var dests []map[string]any
	for _, p := range sp.top {
		d := map[string]any{"ip": p.remote.Addr.String(), "bytes_out": p.out, "bytes_in": p.in, "connections": p.conns}
		if len(p.names) > 0 {
			d["name"] = p.names[0]
		}
		dests = append(dests, d)
	}
	ev := map[string]any{
		"scope":            "host",
		"bytes_out":        sp.out,
		"bytes_in":         sp.in,
		"connections":      sp.conns,
		"destinations":     sp.dests,
		"top_destinations": dests,
		"ratio_out_in":     roundScore(float64(sp.out) / float64(max(sp.in, 1))),
		"sub_scores":       map[string]any{"absolute": roundScore(s.absolute), "volume": roundScore(s.volume), "asym": roundScore(s.asym)},
		"rule":             "host total: score = volume × (0.40 + 0.25·asym), over all destinations the host uploaded to",
	}
	if base != nil && base.has {
		ev["baseline"] = map[string]any{"days": base.days, "median": int64(base.median), "threshold": int64(base.threshold), "unusual_day": base.anomalous}
	}
	dst := top.remote
	if dst.Name == "" && len(top.names) > 0 {
		dst.Name = top.names[0]
	}
	return cw.Finding{
		Kind:      cw.KindExfiltration,
		Severity:  ScoreSeverity(score),
		Score:     roundScore(score),
		Src:       top.local,
		Dst:       dst,
		FirstSeen: sp.first,
		LastSeen:  sp.last,
		Count:     sp.conns,
		BytesOut:  sp.out,
		BytesIn:   sp.in,
		Summary: fmt.Sprintf("%s uploaded %s to %d outside destinations (%s back), none enough alone; the most to %s",
			endpointLabel(top.local), HumanBytes(sp.out), sp.dests, HumanBytes(sp.in), endpointLabel(dst)),
		Evidence: ev,
	}, true
}

// baselines learns, for the hosts of the candidates, the daily bytes out
// over the BaselineDays before the input's first day (days of the input
// itself are in the store too, and must not vouch for themselves).
func (e *Exfil) baselines(ctx context.Context, cands []*exfilPair, minDay int64) map[netip.Addr]*exfilBaseline {
	out := map[netip.Addr]*exfilBaseline{}
	for _, p := range cands {
		if out[p.local.Addr] != nil {
			continue
		}
		b := &exfilBaseline{}
		if h := e.hosts[p.local.Addr]; h != nil {
			h.settle()
			for _, v := range h.days {
				b.today = max(b.today, v)
			}
		}
		out[p.local.Addr] = b
	}
	if e.cfg.History == nil || minDay == math.MaxInt64 {
		return out
	}
	to := time.Unix(minDay*86400, 0).UTC()
	from := to.AddDate(0, 0, -e.cfg.BaselineDays)
	series := map[netip.Addr][]float64{}
	err := e.cfg.History.DailyBytesOut(ctx, from, to, func(local netip.Addr, _ time.Time, n int64) error {
		if _, ok := out[local]; ok && len(series[local]) < e.cfg.BaselineDays {
			series[local] = append(series[local], float64(n))
		}
		return nil
	})
	if err != nil {
		e.cfg.Log.Warn("exfiltration: no baseline from the store; using absolute thresholds", "err", err)
		return out
	}
	for a, xs := range series {
		if len(xs) < e.cfg.MinBaselineDays {
			continue
		}
		b := out[a]
		b.has = true
		b.days = len(xs)
		b.median = medianOf(xs)
		dev := make([]float64, len(xs))
		for i, x := range xs {
			dev[i] = math.Abs(x - b.median)
		}
		b.mad = medianOf(dev)
		b.threshold = max(b.median+e.cfg.K*1.4826*b.mad, 1.5*b.median, float64(e.cfg.MinBytesOut))
		b.anomalous = float64(b.today) > b.threshold
	}
	return out
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// exfilScore holds the sub-scores of one pair.
type exfilScore struct {
	absolute, volume, asym, fresh, rare, score float64
}

// exfilScore computes the documented formula; base is nil without a
// baseline; known is false when there is no store to tell the
// destination's age; hosts is the larger of input and history prevalence.
func (e *Exfil) exfilScore(out, in int64, base *exfilBaseline, age time.Duration, known bool, hosts int) exfilScore {
	var s exfilScore
	lo, hi := float64(e.cfg.MinBytesOut), float64(e.cfg.FullBytes)
	if out > 0 {
		s.absolute = clampUnit(math.Log2(float64(out)/lo) / math.Log2(hi/lo))
	}
	s.volume = s.absolute
	if base != nil && base.has {
		if base.anomalous {
			s.volume = max(s.absolute, clampUnit(math.Log2(1+float64(out)/base.threshold)/4))
		} else {
			s.volume = 0.5 * s.absolute
		}
	}
	if out > in {
		s.asym = clampUnit(math.Log10(float64(out)/float64(max(in, 1))) / 2)
	}
	if known {
		day := 24 * time.Hour
		switch {
		case age <= day:
			s.fresh = 1
		case age < e.cfg.NewWithin:
			s.fresh = 1 - float64(age-day)/float64(e.cfg.NewWithin-day)
		}
	}
	s.rare = RarityScore(hosts)
	s.score = clampUnit(s.volume * (0.40 + 0.25*s.asym + 0.20*s.fresh + 0.15*s.rare))
	return s
}

func (e *Exfil) judge(ctx context.Context, p *exfilPair, base *exfilBaseline) (cw.Finding, bool) {
	hosts := e.prev.Hosts(p.remote.Addr)
	ev := map[string]any{}
	var age time.Duration
	known := false
	if e.cfg.History != nil && ctx.Err() == nil {
		first, ok, err := e.cfg.History.FirstSeen(ctx, p.remote.Addr)
		if err == nil {
			known = true
			if ok {
				age = max(0, p.first.Sub(first))
				ev["first_seen_in_store"] = first.UTC().Format(time.RFC3339)
			} else {
				ev["first_seen_in_store"] = "never"
			}
		}
		hist, err2 := e.cfg.History.Prevalence(ctx, p.remote.Addr)
		if err2 == nil {
			ev["hosts_in_history"] = hist
			hosts = max(hosts, hist)
		}
		if err != nil || err2 != nil {
			e.cfg.Log.Warn("exfiltration: store lookup failed; scoring without it", "remote", p.remote.Addr, "err", firstErr(err, err2))
			ev["history_error"] = firstErr(err, err2).Error()
		}
	}
	s := e.exfilScore(p.out, p.in, base, age, known, hosts)
	if s.score < e.cfg.MinScore {
		return cw.Finding{}, false
	}
	h := e.hosts[p.local.Addr]
	ev["bytes_out"] = p.out
	ev["bytes_in"] = p.in
	ev["served_bytes_out"] = p.servedOut
	ev["connections"] = p.conns
	ev["ratio_out_in"] = roundScore(float64(p.out) / float64(max(p.in, 1)))
	ev["hosts_in_input"] = e.prev.Hosts(p.remote.Addr)
	if h != nil {
		ev["host_bytes_out_total"] = h.out
		ev["host_bytes_in_total"] = h.in
		ev["host_destinations"] = h.dests
	}
	if base != nil {
		b := map[string]any{"busiest_day_bytes_out": base.today, "learned": base.has}
		if base.has {
			b["days"] = base.days
			b["median"] = int64(base.median)
			b["mad"] = int64(base.mad)
			b["threshold"] = int64(base.threshold)
			b["unusual_day"] = base.anomalous
		} else {
			b["note"] = "no baseline: absolute thresholds"
		}
		ev["baseline"] = b
	}
	ev["sub_scores"] = map[string]any{
		"absolute": roundScore(s.absolute), "volume": roundScore(s.volume), "asym": roundScore(s.asym),
		"new": roundScore(s.fresh), "rare": roundScore(s.rare),
	}
	ev["names"] = append([]string{}, p.names...)
	ev["uids"] = append([]string{}, p.uids...)
	ports := make([]int, len(p.ports))
	for i, x := range p.ports {
		ports[i] = int(x)
	}
	ev["ports"] = ports
	ev["rule"] = "score = volume × (0.40 + 0.25·asym + 0.20·new + 0.15·rare)"
	dst := p.remote
	if dst.Name == "" && len(p.names) > 0 {
		dst.Name = p.names[0]
	}
	return cw.Finding{
		Kind:      cw.KindExfiltration,
		Severity:  ScoreSeverity(s.score),
		Score:     roundScore(s.score),
		Src:       p.local,
		Dst:       dst,
		FirstSeen: p.first,
		LastSeen:  p.last,
		Count:     p.conns,
		BytesOut:  p.out,
		BytesIn:   p.in,
		Summary:   e.summary(p, s, base, known, age),
		Evidence:  ev,
	}, true
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// summary reads like "wms-01 (10.20.1.10) uploaded 812.4 MiB to
// 203.0.113.7 (backup.example, DE), 950:1 out/in, first seen today, 3× its
// usual daily upload".
func (e *Exfil) summary(p *exfilPair, s exfilScore, base *exfilBaseline, known bool, age time.Duration) string {
	var b strings.Builder
	b.WriteString(endpointLabel(p.local))
	fmt.Fprintf(&b, " uploaded %s to %s", HumanBytes(p.out), p.remote.Addr)
	var in []string
	if len(p.names) > 0 {
		in = append(in, p.names[0])
	} else if p.remote.Name != "" {
		in = append(in, p.remote.Name)
	}
	if p.remote.Org != "" {
		in = append(in, p.remote.Org)
	}
	if p.remote.Country != "" {
		in = append(in, p.remote.Country)
	}
	if len(in) > 0 {
		b.WriteString(" (" + strings.Join(in, ", ") + ")")
	}
	if p.in > 0 {
		fmt.Fprintf(&b, ", %.0f:1 out/in", float64(p.out)/float64(p.in))
	} else {
		b.WriteString(", nothing back")
	}
	if known {
		if s.fresh == 1 {
			b.WriteString(", destination new to the store")
		} else if s.fresh > 0 {
			fmt.Fprintf(&b, ", destination first seen %.0f days before", age.Hours()/24)
		}
	}
	if base != nil && base.has && base.anomalous {
		fmt.Fprintf(&b, ", host sent %.1f× its usual daily threshold", float64(base.today)/base.threshold)
	}
	return b.String()
}
