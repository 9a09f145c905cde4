package detect

import (
	"context"
	"math"
	"net/netip"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// History is what the store remembers of earlier runs, for detectors that
// judge "new" and "rare" against more than the input at hand. *sqlite.DB
// satisfies it. A nil History means there is no store: detectors then use
// the input alone and their documented absolute thresholds.
//
// The engine writes a run's Conns to the store before it asks detectors
// for findings, so History already includes the input being analysed:
// FirstSeen of a destination new in this input is a time inside it, and
// Prevalence counts this input's hosts too.
type History interface {
	// FirstSeen returns when any local host was first seen talking to
	// remote (ok false when never).
	FirstSeen(ctx context.Context, remote netip.Addr) (first time.Time, ok bool, err error)
	// Prevalence returns how many distinct local hosts were ever seen
	// talking to remote.
	Prevalence(ctx context.Context, remote netip.Addr) (int, error)
	// DailyBytesOut streams, for each local host and UTC day in [from, to),
	// the bytes the host sent to remote hosts that day (payload bytes, or IP
	// bytes for flow sources that count only those).
	DailyBytesOut(ctx context.Context, from, to time.Time, fn func(local netip.Addr, day time.Time, bytesOut int64) error) error
}

// dayWindow is how much these detectors remember over a continuous source by default.
const dayWindow = 24 * time.Hour

// Caps of Prevalence.
const (
	DefaultMaxRemotes = 200_000 // remote addresses (and as many names) tracked
	// prevalenceHosts is where counting distinct hosts per remote stops:
	// rarity reaches its floor long before (see RarityScore), so more
	// would cost memory and say nothing.
	prevalenceHosts = 32
)

// Prevalence counts, over the Conns it observes, how many distinct local
// hosts talk to each remote address and each remote name: a destination
// that one host of hundreds uses stands out. It is a cw.Detector that
// concludes nothing itself, so the engine can feed it beside the others;
// Annotate then adds what it counted (and what the store remembers) to any
// finding's evidence.
//
// Memory: at most MaxRemotes addresses and MaxRemotes names, each with up
// to 32 hosts (about 1 KiB worst case per entry, typically ~100 bytes);
// beyond the cap new remotes are not counted and Dropped says how many
// conversations that affected.
type Prevalence struct {
	MaxRemotes int
	// Window is how far back Expire keeps remotes (default 24 h).
	Window time.Duration
	// Pairs, when set before the first Observe, is the run's shared pair
	// index (see PairIndex): a Conn whose pair another detector already
	// indexed then finds its remote's entries in the pair's slot instead
	// of two map lookups and a registrable-domain split. Nil: the maps.
	Pairs *PairIndex

	ix      *PairIndex // Pairs once claimed
	ixDone  bool
	byAddr  map[netip.Addr]*hostSet
	byName  map[string]*hostSet
	dropped int64
}

type hostSet struct {
	hosts []netip.Addr // distinct, at most prevalenceHosts
	last  time.Time
	gone  bool // expired from its map: pair slots caching it must look again
}

func (s *hostSet) add(h netip.Addr, ts time.Time) {
	if ts.After(s.last) {
		s.last = ts
	}
	if len(s.hosts) >= prevalenceHosts {
		return
	}
	for _, x := range s.hosts {
		if x == h {
			return
		}
	}
	s.hosts = append(s.hosts, h)
}

// NewPrevalence returns an empty counter with the default cap.
func NewPrevalence() *Prevalence {
	return &Prevalence{MaxRemotes: DefaultMaxRemotes, Window: dayWindow, byAddr: map[netip.Addr]*hostSet{}, byName: map[string]*hostSet{}}
}

// Name implements cw.Detector.
func (p *Prevalence) Name() string { return "prevalence" }

// Findings implements cw.Detector: Prevalence concludes nothing alone.
func (p *Prevalence) Findings() []cw.Finding { return nil }

// Dropped reports conversations whose remote could not be counted because
// MaxRemotes was reached.
func (p *Prevalence) Dropped() int64 { return p.dropped }

// Observe implements cw.Detector: conversations with exactly one local side
// count that side as a host of the other side's address and name.
func (p *Prevalence) Observe(c *cw.Conn) {
	p.claimIndex()
	loc, rem, ok := p.ix.sides(c)
	if !ok {
		return
	}
	p.observe(loc.Addr, rem, c.TS)
}

func (p *Prevalence) observe(local netip.Addr, rem *cw.Endpoint, ts time.Time) {
	// The pair's slot caches the remote's host sets once this local host
	// is in them (or they are full), so that a Conn of a known pair only
	// notes its time there; pending times reach the sets in flush, before
	// Expire reads them and before the slot changes or is freed.
	var slot *pairSlot
	p.claimIndex()
	if p.ix != nil && plainAddr(local) && plainAddr(rem.Addr) {
		if id := p.ix.findAddrs(local, rem.Addr); id >= 0 {
			slot = &p.ix.slots[id]
			if slot.prevAddr != nil && !slot.prevAddr.gone &&
				(rem.Name == "" || slot.prevName != nil && !slot.prevName.gone && slot.prevNameS == rem.Name) {
				if u := ts.Unix(); !ts.IsZero() && u > -nanoSpan && u < nanoSpan {
					n := ts.UnixNano()
					slot.prevAddrLast = max(slot.prevAddrLast, n)
					if rem.Name != "" {
						slot.prevNameLast = max(slot.prevNameLast, n)
					}
					return
				}
				if ts.IsZero() {
					return // a zero time moves no last and the host is counted
				}
			}
			slot.flush()
		}
	}
	if rem.Addr.IsValid() {
		s := p.byAddr[rem.Addr]
		if s == nil {
			if len(p.byAddr) >= p.MaxRemotes {
				p.dropped++
				return
			}
			s = &hostSet{}
			p.byAddr[rem.Addr] = s
		}
		s.add(local, ts)
		if slot != nil {
			slot.prevAddr = s
		}
	}
	if slot != nil {
		slot.prevName, slot.prevNameS = nil, ""
	}
	if n := regDomainKey(rem.Name); n != "" {
		s := p.byName[n]
		if s == nil {
			if len(p.byName) >= p.MaxRemotes {
				return
			}
			s = &hostSet{}
			p.byName[n] = s
		}
		s.add(local, ts)
		if slot != nil {
			slot.prevName, slot.prevNameS = s, rem.Name
		}
	}
}

// nanoSpan bounds the unix seconds whose UnixNano is exact (±292 years).
const nanoSpan = 9_000_000_000

// flush moves the times noted in the slot to its cached host sets.
func (s *pairSlot) flush() {
	if s.prevAddrLast != 0 && s.prevAddr != nil {
		s.prevAddr.seen(s.prevAddrLast)
	}
	if s.prevNameLast != 0 && s.prevName != nil {
		s.prevName.seen(s.prevNameLast)
	}
	s.prevAddrLast, s.prevNameLast = 0, 0
}

func (s *hostSet) seen(unixNano int64) {
	if t := time.Unix(0, unixNano); t.After(s.last) {
		s.last = t
	}
}

// claimIndex takes up Pairs on first use.
func (p *Prevalence) claimIndex() {
	if !p.ixDone {
		p.ixDone = true
		if p.Pairs != nil && claim(&p.Pairs.prev, p) {
			p.ix = p.Pairs
		}
	}
}

// Expire implements cw.Expirer: remotes not seen in the Window that ends
// at now are forgotten.
func (p *Prevalence) Expire(now time.Time) {
	start := now.Add(-p.Window)
	if p.ix != nil {
		for i := range p.ix.slots {
			p.ix.slots[i].flush()
		}
	}
	for k, s := range p.byAddr {
		if s.last.Before(start) {
			s.gone = true
			delete(p.byAddr, k)
		}
	}
	for k, s := range p.byName {
		if s.last.Before(start) {
			s.gone = true
			delete(p.byName, k)
		}
	}
}

// Hosts returns how many distinct local hosts talked to remote, exact up
// to 32.
func (p *Prevalence) Hosts(remote netip.Addr) int {
	if s := p.byAddr[remote]; s != nil {
		return len(s.hosts)
	}
	return 0
}

// HostsByName returns how many distinct local hosts talked to a remote
// known by this name (its registrable domain), exact up to 32.
func (p *Prevalence) HostsByName(name string) int {
	if s := p.byName[regDomainKey(name)]; s != nil {
		return len(s.hosts)
	}
	return 0
}

// RarityScore is 1 for a destination one local host uses, falling by 0.2
// per doubling of the hosts that use it, 0 from 32 hosts on:
// clamp(1 − log2(hosts)/5). Zero or unknown hosts count as one.
func RarityScore(hosts int) float64 {
	if hosts <= 1 {
		return 1
	}
	return clampUnit(1 - math.Log2(float64(hosts))/5)
}

// Annotate adds evidence["prevalence"] to each finding: how many local
// hosts talked to its destination in this input (p, may be nil), how many
// ever did and when any was first seen (h, may be nil), and RarityScore of
// the larger host count. It changes no score or severity: how much rarity
// weighs is each detector's documented choice. Store errors stop the
// annotation and are returned; findings annotated so far keep it.
func Annotate(ctx context.Context, h History, p *Prevalence, fs []cw.Finding) error {
	for i := range fs {
		f := &fs[i]
		ev := map[string]any{}
		n := 0
		if p != nil {
			in := max(p.Hosts(f.Dst.Addr), p.HostsByName(f.Dst.Name))
			ev["hosts_in_input"] = in
			n = in
		}
		if h != nil && f.Dst.Addr.IsValid() && !f.Dst.Local {
			hist, err := h.Prevalence(ctx, f.Dst.Addr)
			if err != nil {
				return err
			}
			first, ok, err := h.FirstSeen(ctx, f.Dst.Addr)
			if err != nil {
				return err
			}
			ev["hosts_in_history"] = hist
			if ok {
				ev["first_seen"] = first.UTC().Format(time.RFC3339)
			}
			n = max(n, hist)
		}
		if len(ev) == 0 {
			continue
		}
		ev["rarity"] = roundScore(RarityScore(n))
		if f.Evidence == nil {
			f.Evidence = map[string]any{}
		}
		f.Evidence["prevalence"] = ev
	}
	return nil
}

// regDomainKey reduces a host name to its registrable domain, the unit in which
// names of one operator are compared ("" for no name).
func regDomainKey(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return ""
	}
	if d, _, ok := splitDomain(name); ok {
		return d
	}
	return name
}

func clampUnit(x float64) float64 {
	switch {
	case x < 0 || math.IsNaN(x):
		return 0
	case x > 1:
		return 1
	}
	return x
}

func roundScore(x float64) float64 { return math.Round(x*1000) / 1000 }
