package detect

import (
	"math"
	"net/netip"
	"slices"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// Per-pair bookkeeping shared by the beacon and strobe analysis: a compact
// series of connection start times and sizes per (local host, remote) pair,
// bounded per pair and in total.

// obs is one retained connection: 12 bytes instead of a Conn's ~700.
type obs struct {
	t   uint32 // start, offset from series.base in units of 2^series.shift ms
	out uint32 // originator payload bytes, saturated at 4 GiB
	in  uint32 // responder payload bytes, saturated
}

// slackMs is how far before its first connection a series' base is put,
// so that Conns arriving out of order (flows are emitted when they end,
// not when they start) rarely force a rebase.
const slackMs = 3600 * 1000

// series is the retained history of one pair within the window.
type series struct {
	// Fields every Conn touches come first, so that they share cache
	// lines; the endpoints (~300 bytes) are read when reporting.
	base   int64 // unix ms that offset 0 stands for
	shift  uint8 // offsets are in units of 2^shift ms (coarsened when a span outgrows uint32 ms, ~49 days)
	maxOff uint32
	obs    []obs

	// over counts connections that were not retained (per-pair or total
	// cap reached), per expiry bucket, so that counts and bytes stay
	// right and age out with the window. Nil until the first overflow.
	over map[int64]*overCount

	first, last int64 // unix ms of the retained and overflowed connections

	ips       []netip.Addr // remote addresses (name series), capped at maxSampleIPs
	names     []string     // names seen (address series), capped at maxSeriesNames
	manyNames bool         // names overflowed: never folded into a name finding
	unnamed   int64        // address series: connections without a name
	uids      []string     // sample, first seen
	// Ports and services are held inline: a separate small array would
	// be one more cache miss per Conn.
	ports    [maxSeriesPorts]uint16 // responder ports, the first nports
	services [maxSeriesSvcs]string  // services seen, the first nsvcs
	nports   uint8
	nsvcs    uint8
	expected int64 // connections of an expected-periodic service (NTP)

	// lastName and lastNameS cache, in an address series, the name series
	// its latest named connection went to.
	lastName  string
	lastNameS *series

	local, remote cw.Endpoint
}

type overCount struct{ n, out, in int64 }

const (
	maxSeriesNames = 8
	maxSeriesUIDs  = 8
	maxSeriesPorts = 8
	maxSeriesSvcs  = 4
)

func (s *series) when(o obs) int64 { return s.base + int64(o.t)<<s.shift }

// put retains one connection at unix ms, or reports false when cap is
// reached (the caller then counts it as overflow).
func (s *series) put(ms int64, out, in int64, limit int) bool {
	if len(s.obs) >= limit {
		return false
	}
	if len(s.obs) == 0 {
		s.base, s.shift, s.maxOff = ms-slackMs, 0, 0
	}
	for ms < s.base {
		s.rebase(ms - slackMs)
	}
	d := (ms - s.base) >> s.shift
	for d > math.MaxUint32 {
		s.coarsen()
		d = (ms - s.base) >> s.shift
	}
	s.obs = append(s.obs, obs{t: uint32(d), out: sat32(out), in: sat32(in)})
	s.maxOff = max(s.maxOff, uint32(d))
	return true
}

// rebase moves the base back to at most nb, coarsening when the retained
// offsets would no longer fit.
func (s *series) rebase(nb int64) {
	for {
		delta := (s.base - nb + (1 << s.shift) - 1) >> s.shift
		if uint64(s.maxOff)+uint64(delta) <= math.MaxUint32 {
			for i := range s.obs {
				s.obs[i].t += uint32(delta)
			}
			s.maxOff += uint32(delta)
			s.base -= delta << s.shift
			return
		}
		s.coarsen()
	}
}

func (s *series) coarsen() {
	s.shift++
	for i := range s.obs {
		s.obs[i].t >>= 1
	}
	s.maxOff >>= 1
}

func (s *series) addOver(bucket, out, in int64) {
	if s.over == nil {
		s.over = map[int64]*overCount{}
	}
	oc := s.over[bucket]
	if oc == nil {
		if len(s.over) >= maxOverBuckets {
			// Fold into the latest bucket rather than grow: counts
			// stay right, only their ageing gets coarser.
			for k, v := range s.over {
				if oc == nil || k > bucket {
					oc = v
				}
			}
		} else {
			oc = &overCount{}
			s.over[bucket] = oc
		}
	}
	oc.n++
	oc.out = satAdd(oc.out, out)
	oc.in = satAdd(oc.in, in)
}

// maxOverBuckets bounds the overflow map of one series (a month of hourly
// buckets).
const maxOverBuckets = 744

// totals returns connections, bytes out and bytes in over what is
// retained and what overflowed.
func (s *series) totals() (n, out, in int64) {
	n = int64(len(s.obs))
	for _, o := range s.obs {
		out += int64(o.out)
		in += int64(o.in)
	}
	for _, oc := range s.over {
		n += oc.n
		out = satAdd(out, oc.out)
		in = satAdd(in, oc.in)
	}
	return n, out, in
}

func (s *series) overflowed() int64 {
	var n int64
	for _, oc := range s.over {
		n += oc.n
	}
	return n
}

// sortObs orders the retained connections by start time.
func (s *series) sortObs() {
	slices.SortFunc(s.obs, func(a, b obs) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
}

// expire drops what started before cut (unix ms) and the overflow buckets
// that ended before it, and reports how many retained observations went.
func (s *series) expire(cut, bucketMs int64) int {
	s.sortObs()
	i, _ := slices.BinarySearchFunc(s.obs, cut, func(o obs, c int64) int {
		if s.when(o) < c {
			return -1
		}
		return 1
	})
	gone := i
	if i > 0 {
		s.obs = append(s.obs[:0], s.obs[i:]...)
		// Give back memory of pairs that went quiet.
		if cap(s.obs) > 64 && cap(s.obs) > 4*len(s.obs) {
			s.obs = slices.Clone(s.obs)
		}
	}
	for k := range s.over {
		if (k+1)*bucketMs <= cut {
			delete(s.over, k)
		}
	}
	s.maxOff = 0
	for _, o := range s.obs {
		s.maxOff = max(s.maxOff, o.t)
	}
	if len(s.obs) > 0 {
		s.first = max(s.first, s.when(s.obs[0]))
	} else {
		s.first = max(s.first, cut)
	}
	return gone
}

// portList and serviceList are the evidence's copies (nil when none).
func (s *series) portList() []uint16 {
	if s.nports == 0 {
		return nil
	}
	return slices.Clone(s.ports[:s.nports])
}

func (s *series) serviceList() []string {
	if s.nsvcs == 0 {
		return nil
	}
	return slices.Clone(s.services[:s.nsvcs])
}

func (s *series) empty() bool { return len(s.obs) == 0 && len(s.over) == 0 }

// note records the sample fields of one connection.
func (s *series) note(c *cw.Conn, name string, byName bool) {
	if byName {
		if len(s.ips) < maxSampleIPs && !slices.Contains(s.ips, c.Resp.Addr) {
			s.ips = append(s.ips, c.Resp.Addr)
		}
	} else if name == "" {
		s.unnamed++
	} else if name != s.lastName && !slices.Contains(s.names, name) {
		// (lastName, the previous Conn's, is in names or overflowed them)
		if len(s.names) < maxSeriesNames {
			s.names = append(s.names, name)
		} else {
			s.manyNames = true
		}
	}
	if c.UID != "" && len(s.uids) < maxSeriesUIDs {
		s.uids = append(s.uids, c.UID)
	}
	if s.nports < maxSeriesPorts && !slices.Contains(s.ports[:s.nports], c.Resp.Port) {
		s.ports[s.nports] = c.Resp.Port
		s.nports++
	}
	if c.Service != "" && s.nsvcs < maxSeriesSvcs && !slices.Contains(s.services[:s.nsvcs], c.Service) {
		s.services[s.nsvcs] = c.Service
		s.nsvcs++
	}
	if c.Orig.Asset != nil && s.local.Asset == nil {
		s.local = c.Orig
	}
}

// Pair keys hold addresses as 16 bytes: no pointers, so the maps hash and
// compare plain memory and the garbage collector skips them (an IPv4
// address and its IPv4-mapped IPv6 form are one host here).
type ipKey struct{ local, remote [16]byte }

type nameKey struct {
	local [16]byte
	name  string
}

func mkIPKey(local, remote netip.Addr) ipKey { return ipKey{local.As16(), remote.As16()} }

// normName is the form names are grouped by: lower case, no trailing dot,
// at most a DNS name's length.
func normName(n string) string {
	n = strings.TrimSuffix(n, ".")
	if len(n) > maxNameLen {
		n = n[:maxNameLen]
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}

func sat32(v int64) uint32 {
	if v <= 0 {
		return 0
	}
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// Robust statistics on sorted samples.

// quantile is the linear-interpolation quantile (type 7) of sorted x.
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	p := q * float64(len(x)-1)
	i := int(p)
	if i >= len(x)-1 {
		return x[len(x)-1]
	}
	f := p - float64(i)
	return x[i] + f*(x[i+1]-x[i])
}

// mad is the median absolute deviation of sorted x from its median m;
// scratch is reused to avoid allocating.
func mad(x []float64, m float64, scratch []float64) (float64, []float64) {
	scratch = scratch[:0]
	for _, v := range x {
		scratch = append(scratch, math.Abs(v-m))
	}
	slices.Sort(scratch)
	return quantile(scratch, 0.5), scratch
}

// bowley is the quartile skew (Q1+Q3-2·Q2)/(Q3-Q1) of sorted x, 0 when the
// interquartile range is under minIQR: with near-identical values the
// quartiles are noise and the skew says nothing (RITA's "unreliable when
// Q2 equals a quartile" case, decided by size instead of equality).
func bowley(x []float64, minIQR float64) float64 {
	q1, q2, q3 := quantile(x, 0.25), quantile(x, 0.5), quantile(x, 0.75)
	iqr := q3 - q1
	if iqr <= minIQR || iqr <= 0 {
		return 0
	}
	return (q1 + q3 - 2*q2) / iqr
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(0, math.Min(1, v))
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
