package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Strobes are pairs with so many connections in the window that their
// timing says nothing more: a host hammering one destination (a stuck
// retry loop, a scanner, a flood). The Beacon detector reports such a pair
// as kind strobe instead of scoring it as a beacon.
//
// Threshold: max(StrobeMin, StrobePerHour × window hours) connections
// (defaults 1000 and 3600: on average one a second, RITA's 86,400 a day,
// with a floor so that a capture of a few minutes does not call 60
// connections a strobe).
//
// Score: min(1, 0.6 + 0.1 × log2(connections / threshold)): low at the
// threshold, medium from 2×, high from about 6× (the severity mapping is the
// beacon's).

// strobeThreshold returns the connection count that makes a strobe in a
// window of the given length (seconds).
func (b *Beacon) strobeThreshold(windowS float64) int64 {
	t := b.cfg.StrobePerHour * math.Max(windowS, 0) / 3600
	return int64(math.Max(float64(b.cfg.StrobeMin), math.Ceil(t)))
}

// StrobeScore is min(1, 0.6 + 0.1 × log2(conns/threshold)).
func StrobeScore(conns, threshold int64) float64 {
	if threshold <= 0 || conns < threshold {
		return 0
	}
	return round3(math.Min(1, 0.6+0.1*math.Log2(float64(conns)/float64(threshold))))
}

func (b *Beacon) strobeFinding(s *series, byName bool, n, out, in, threshold int64, ws, we float64) cw.Finding {
	score := StrobeScore(n, threshold)
	dst := s.remote
	ips := remoteIPs(s, byName)
	if !byName && dst.Name == "" && len(s.names) == 1 {
		dst.Name = s.names[0]
	}
	dur := time.Duration(float64(s.last-s.first) * float64(time.Millisecond)).Round(time.Second)
	rate := float64(n) / math.Max(float64(s.last-s.first)/1000, 1)
	var sum strings.Builder
	sum.WriteString(endpointLabel(s.local))
	fmt.Fprintf(&sum, " opened %d connections to %s in %s (%.1f/s; strobe threshold %d for this window)",
		n, remoteName(dst, ips), dur, rate, threshold)
	ev := map[string]any{
		"connections":        n,
		"threshold":          threshold,
		"rate_per_s":         round3(rate),
		"remote_ips":         ips,
		"ports":              s.portList(),
		"services":           s.serviceList(),
		"uids":               slices.Clone(s.uids),
		"grouped_by":         groupedBy(byName),
		"window_start":       time.UnixMilli(int64(ws * 1000)).UTC().Format(time.RFC3339),
		"window_end":         time.UnixMilli(int64(we * 1000)).UTC().Format(time.RFC3339),
		"timestamps_dropped": s.overflowed(),
		"rule":               fmt.Sprintf("%d connections ≥ max(%d, %.0f/h × window)", n, b.cfg.StrobeMin, b.cfg.StrobePerHour),
	}
	if !byName {
		ev["names"] = slices.Clone(s.names)
	}
	return cw.Finding{
		Kind:      cw.KindStrobe,
		Severity:  BeaconSeverity(score),
		Score:     score,
		Src:       s.local,
		Dst:       dst,
		FirstSeen: time.UnixMilli(s.first).UTC(),
		LastSeen:  time.UnixMilli(s.last).UTC(),
		Count:     n,
		BytesOut:  out,
		BytesIn:   in,
		Summary:   sum.String(),
		Evidence:  ev,
	}
}
