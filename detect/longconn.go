package detect

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
)

// LongConn reports pairs (local host, remote address) that stay connected
// for long: the time covered by the union of their connections, so that
// parallel sessions are not counted twice, including connections still
// open when the input ended (Conn.Open: their duration runs to the end of
// the input). Both directions count: a remote party holding a session into
// our host (remote maintenance) matters as much as our host holding one
// out. Thresholds are absolute, as RITA's: 1 h to report (info), 4 h low,
// 8 h medium, 12 h high.
//
// Memory: MaxPairs pairs (default 100,000; about 400 bytes each) with at
// most 32 disjoint intervals per pair. When a 33rd would be needed the
// shortest is folded into a running total (the evidence's folded_s): the
// union stays exact for the long intervals and may over-count by at most
// folded_s if a later connection overlaps a folded one. Expire forgets
// folded time only when the pair goes quiet for a whole window.
type LongConn struct {
	cfg LongConnConfig
	// Pairs live in the slots of the pair index (shared with the run's
	// other per-pair detectors when LongConnConfig.Pairs is set); n
	// counts them.
	pairs   *PairIndex
	n       int
	dropped int64
}

// LongConnConfig sets the long connection analysis; zero fields take the
// defaults.
type LongConnConfig struct {
	Window   time.Duration // Expire forgets time before now-Window (default 24 h)
	Min      time.Duration // shortest connected time reported (default 1 h)
	MaxPairs int           // default 100,000
	// Pairs, when set, is the run's shared pair index (see PairIndex);
	// nil: LongConn keeps its own.
	Pairs *PairIndex
}

// Long connection thresholds (connected time).
const (
	LongConnInfo   = time.Hour
	LongConnLow    = 4 * time.Hour
	LongConnMedium = 8 * time.Hour
	LongConnHigh   = 12 * time.Hour

	maxLongIntervals = 32
)

type span struct {
	s, e int64   // unix ms
	sum  float64 // connection time merged into it, ms (parallel sessions add up)
}

type longPair struct {
	iv []span
	// short is the length of the shortest interval in iv, -1 when not
	// known: a pair at the interval cap compares every new connection
	// with it, and iv changes far less often than that.
	short       int64
	folded      int64   // ms of short intervals folded to stay within maxLongIntervals
	foldedSum   float64 // their connection time
	conns, open int64
	inbound     int64
	longest     int64 // ms, longest single connection
	out, in     int64
	uids        []string
	ports       []uint16
	services    []string
	names       []string
	// Last: the endpoints are read when reporting, the rest per Conn.
	local, remote cw.Endpoint
}

// NewLongConn returns the long connection detector.
func NewLongConn(cfg LongConnConfig) *LongConn {
	if cfg.Window <= 0 {
		cfg.Window = DefaultBeaconWindow
	}
	if cfg.Min <= 0 {
		cfg.Min = LongConnInfo
	}
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = DefaultBeaconPairs
	}
	l := &LongConn{cfg: cfg, pairs: cfg.Pairs}
	if l.pairs == nil || !claim(&l.pairs.long, l) {
		l.pairs = NewPairIndex()
		claim(&l.pairs.long, l)
	}
	return l
}

// pair returns the state of (local, remote), nil when none.
func (l *LongConn) pair(local, remote netip.Addr) *longPair {
	if id := l.pairs.findAddrs(local, remote); id >= 0 {
		return l.pairs.slots[id].long
	}
	return nil
}

// each calls fn for every pair with its id.
func (l *LongConn) each(fn func(id int32, p *longPair)) {
	for id := range l.pairs.slots {
		if p := l.pairs.slots[id].long; p != nil {
			fn(int32(id), p)
		}
	}
}

// Name implements cargowatch.Detector.
func (l *LongConn) Name() string { return cw.KindLongConnection }

// Dropped reports connections of pairs beyond MaxPairs.
func (l *LongConn) Dropped() int64 { return l.dropped }

// Observe implements cargowatch.Detector.
func (l *LongConn) Observe(c *cw.Conn) {
	if c.TS.IsZero() {
		return
	}
	var loc, rem *cw.Endpoint
	var out, in int64
	inbound := false
	switch {
	case c.Orig.Local && !c.Resp.Local:
		loc, rem, out, in = &c.Orig, &c.Resp, c.OrigBytes, c.RespBytes
	case c.Resp.Local && !c.Orig.Local:
		loc, rem, out, in = &c.Resp, &c.Orig, c.RespBytes, c.OrigBytes
		inbound = true
	default:
		return
	}
	if !geo.IsInternet(rem.Addr) {
		return
	}
	k := mkIPKey(loc.Addr, rem.Addr)
	var p *longPair
	if id := l.pairs.find(k); id >= 0 {
		p = l.pairs.slots[id].long
	}
	if p == nil {
		if l.n >= l.cfg.MaxPairs {
			l.dropped++
			return
		}
		p = &longPair{local: *loc, remote: *rem, short: -1}
		l.pairs.slots[l.pairs.add(k)].long = p
		l.n++
	}
	if loc.Asset != nil && p.local.Asset == nil {
		p.local = *loc
	}
	s := c.TS.UnixMilli()
	d := max(c.Duration.Milliseconds(), 0)
	p.add(span{s: s, e: s + d, sum: float64(d)})
	p.conns++
	if c.Open {
		p.open++
	}
	if inbound {
		p.inbound++
	}
	p.longest = max(p.longest, d)
	p.out = satAdd(p.out, max(out, 0))
	p.in = satAdd(p.in, max(in, 0))
	if c.UID != "" && len(p.uids) < maxSeriesUIDs {
		p.uids = append(p.uids, c.UID)
	}
	port := rem.Port
	if inbound {
		port = loc.Port
	}
	if len(p.ports) < maxSeriesPorts && !slices.Contains(p.ports, port) {
		p.ports = append(p.ports, port)
	}
	if c.Service != "" && len(p.services) < maxSeriesSvcs && !slices.Contains(p.services, c.Service) {
		p.services = append(p.services, c.Service)
	}
	if n := normName(rem.Name); n != "" && len(p.names) < maxSeriesNames && !slices.Contains(p.names, n) {
		p.names = append(p.names, n)
	}
}

// add merges x into the sorted disjoint intervals.
func (p *longPair) add(x span) {
	n := len(p.iv)
	if n == 0 || x.s > p.iv[n-1].e {
		// The common case: a connection after all the others.
		if n < maxLongIntervals {
			p.iv = append(p.iv, x)
			p.short = -1
			return
		}
		if x.e-x.s <= p.shortest() {
			p.folded += x.e - x.s
			p.foldedSum += x.sum
			return
		}
	}
	i := sort.Search(n, func(i int) bool { return p.iv[i].e >= x.s })
	j := i
	for j < len(p.iv) && p.iv[j].s <= x.e {
		x.s, x.e = min(x.s, p.iv[j].s), max(x.e, p.iv[j].e)
		x.sum += p.iv[j].sum
		j++
	}
	p.iv = slices.Replace(p.iv, i, j, x)
	p.short = -1
	if len(p.iv) > maxLongIntervals {
		// Keep the longest intervals exact; the shortest is folded into a
		// running total (it was disjoint from the others when folded).
		k := p.shortestAt()
		p.folded += p.iv[k].e - p.iv[k].s
		p.foldedSum += p.iv[k].sum
		p.iv = slices.Delete(p.iv, k, k+1)
	}
}

func (p *longPair) shortestAt() int {
	k := 0
	for i := range p.iv {
		if p.iv[i].e-p.iv[i].s < p.iv[k].e-p.iv[k].s {
			k = i
		}
	}
	return k
}

func (p *longPair) shortest() int64 {
	if p.short < 0 {
		x := p.iv[p.shortestAt()]
		p.short = x.e - x.s
	}
	return p.short
}

// connected returns the union of the pair's intervals and the sum of its
// connections' durations, in ms.
func (p *longPair) connected() (union int64, total float64) {
	union, total = p.folded, p.foldedSum
	for _, x := range p.iv {
		union += x.e - x.s
		total += x.sum
	}
	return union, total
}

// Expire implements cargowatch.Expirer: it forgets connection time before
// now-Window (clipping intervals that straddle it) and pairs left empty.
func (l *LongConn) Expire(now time.Time) {
	cut := now.Add(-l.cfg.Window).UnixMilli()
	l.each(func(id int32, p *longPair) {
		kept := p.iv[:0]
		for _, x := range p.iv {
			if x.e < cut {
				continue
			}
			if x.s < cut {
				// Connection time that parallel sessions added is
				// scaled with the part kept.
				if x.e > x.s {
					x.sum *= float64(x.e-cut) / float64(x.e-x.s)
				}
				x.s = cut
			}
			kept = append(kept, x)
		}
		p.iv = kept
		p.short = -1
		if len(p.iv) == 0 {
			l.pairs.slots[id].long = nil
			l.n--
			l.pairs.release(id)
		}
	})
}

// LongConnSeverity maps connected time to severity: high from 12 h,
// medium from 8 h, low from 4 h, info below.
func LongConnSeverity(d time.Duration) cw.Severity {
	switch {
	case d >= LongConnHigh:
		return cw.High
	case d >= LongConnMedium:
		return cw.Medium
	case d >= LongConnLow:
		return cw.Low
	}
	return cw.Info
}

// LongConnScore is min(1, connected / 24 h): a day connected is the most a
// default window can show.
func LongConnScore(d time.Duration) float64 {
	return round3(math.Min(1, d.Hours()/24))
}

// Findings implements cargowatch.Detector.
func (l *LongConn) Findings() []cw.Finding {
	var fs []cw.Finding
	l.each(func(_ int32, p *longPair) {
		u, total := p.connected()
		d := time.Duration(u) * time.Millisecond
		if d < l.cfg.Min || len(p.iv) == 0 {
			return
		}
		dst := p.remote
		if dst.Name == "" && len(p.names) > 0 {
			dst.Name = p.names[0]
		}
		first, last := p.iv[0].s, p.iv[len(p.iv)-1].e
		longest := time.Duration(p.longest) * time.Millisecond
		var b strings.Builder
		b.WriteString(endpointLabel(p.local))
		if 2*p.inbound > p.conns {
			b.WriteString(" was connected from ")
		} else {
			b.WriteString(" was connected to ")
		}
		b.WriteString(remoteName(dst, nil))
		fmt.Fprintf(&b, " for %s over %d connection(s), the longest %s", d.Round(time.Second), p.conns, longest.Round(time.Second))
		if p.open > 0 {
			fmt.Fprintf(&b, ", %d still open at the end", p.open)
		}
		fs = append(fs, cw.Finding{
			Kind:      cw.KindLongConnection,
			Severity:  LongConnSeverity(d),
			Score:     LongConnScore(d),
			Src:       p.local,
			Dst:       dst,
			FirstSeen: time.UnixMilli(first).UTC(),
			LastSeen:  time.UnixMilli(last).UTC(),
			Count:     p.conns,
			BytesOut:  p.out,
			BytesIn:   p.in,
			Summary:   b.String(),
			Evidence: map[string]any{
				"connected_s":         round3(float64(u) / 1000),
				"total_duration_s":    round3(total / 1000),
				"longest_s":           round3(float64(p.longest) / 1000),
				"connections":         p.conns,
				"open_connections":    p.open,
				"inbound_connections": p.inbound,
				"intervals":           len(p.iv),
				"folded_s":            round3(float64(p.folded) / 1000),
				"ports":               slices.Clone(p.ports),
				"services":            slices.Clone(p.services),
				"names":               slices.Clone(p.names),
				"uids":                slices.Clone(p.uids),
				"rule":                "connected ≥ 1 h: info; ≥ 4 h low; ≥ 8 h medium; ≥ 12 h high",
			},
		})
	})
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Score != fs[j].Score {
			return fs[i].Score > fs[j].Score
		}
		if c := fs[i].Src.Addr.Compare(fs[j].Src.Addr); c != 0 {
			return c < 0
		}
		return fs[i].Summary < fs[j].Summary
	})
	return fs
}
