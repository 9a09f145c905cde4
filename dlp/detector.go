package dlp

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// DetectorConfig tunes the cargo_data detector.
type DetectorConfig struct {
	// Watched lists jurisdictions (ISO 3166 alpha-2) whose reach raises
	// severity by one step; the policy package normally supplies it.
	Watched []string
	// MaxPairs caps the (local host, destination) pairs tracked (default
	// 10000); conns beyond it are counted in Dropped.
	MaxPairs int
	// Samples is how many masked sample identifiers a finding keeps
	// (default 10).
	Samples int
	// Allowed, when set, tells whether policy allows the local host to
	// send data to the destination (home country, allow list): cargo data
	// there is the hub's business and the finding stays low.
	Allowed func(local, remote cw.Endpoint) bool
}

// Detector turns the Content that a Stream left on Conns into one
// cargo_data finding per (local host, destination). It implements
// cargowatch.Detector and is not safe for concurrent use.
type Detector struct {
	cfg     DetectorConfig
	pairs   map[pairKey]*pair
	order   []pairKey
	Dropped int
	// Inspected and Uninspected total the payload bytes of every observed
	// Conn with a local side that was (not) looked into: encrypted, over
	// the per-flow cap, or not given to a Stream at all.
	Inspected, Uninspected int64
}

type pairKey struct {
	src, dst string
}

type pair struct {
	src, dst              cw.Endpoint
	first, last           time.Time
	conns                 int64
	out, in               int64
	counts, msgs          map[string]int
	outIDs, outMsgs       int // sent by the local side (upload)
	allowed               bool
	samples               []string
	uids                  []string
	inspected, uninspects int64
}

// NewDetector returns a cargo_data detector.
func NewDetector(cfg DetectorConfig) *Detector {
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = 10000
	}
	if cfg.Samples <= 0 {
		cfg.Samples = 10
	}
	return &Detector{cfg: cfg, pairs: map[pairKey]*pair{}}
}

// Name implements cargowatch.Detector.
func (d *Detector) Name() string { return "cargo_data" }

// Observe takes a Conn whose Content was set by a Stream (or a source that
// inspected payload); Conns without cargo hits are ignored.
func (d *Detector) Observe(c *cw.Conn) {
	// Cargo data moving between our own hosts (scanners to the WMS) is the
	// hub's work; findings are about data leaving, so one side must be ours
	// and the other not.
	if c.Orig.Local == c.Resp.Local {
		return
	}
	if c.Content == nil {
		d.Uninspected += c.OrigBytes + c.RespBytes
		return
	}
	d.Inspected += c.Content.Inspected
	d.Uninspected += c.Content.Uninspected
	if len(c.Content.Counts) == 0 && len(c.Content.MessageTypes) == 0 {
		return
	}
	// The local side is the source: findings are about our hosts.
	src, dst := c.Orig, c.Resp
	out, in := c.OrigBytes, c.RespBytes
	localIsOrig := true
	if !c.Orig.Local && c.Resp.Local {
		src, dst = c.Resp, c.Orig
		out, in = in, out
		localIsOrig = false
	}
	k := pairKey{src.Addr.String(), dst.Addr.String()}
	p := d.pairs[k]
	if p == nil {
		if len(d.pairs) >= d.cfg.MaxPairs {
			d.Dropped++
			return
		}
		p = &pair{src: src, dst: dst, first: c.TS, counts: map[string]int{}, msgs: map[string]int{}}
		d.pairs[k] = p
		d.order = append(d.order, k)
	}
	if c.TS.Before(p.first) {
		p.first = c.TS
	}
	if end := c.TS.Add(c.Duration); end.After(p.last) {
		p.last = end
	}
	if dst.Name != "" || dst.Jurisdiction != "" {
		p.dst = dst // the latest enrichment is the best known
	}
	p.conns++
	p.out += out
	p.in += in
	p.inspected += c.Content.Inspected
	p.uninspects += c.Content.Uninspected
	for t, n := range c.Content.Counts {
		p.counts[t] += n
		if o := c.Content.OrigCounts[t]; localIsOrig {
			p.outIDs += o
		} else {
			p.outIDs += n - o
		}
	}
	for t, n := range c.Content.MessageTypes {
		if o := c.Content.OrigMessageTypes[t]; localIsOrig {
			p.outMsgs += o
		} else {
			p.outMsgs += n - o
		}
	}
	if d.cfg.Allowed != nil && p.conns == 1 {
		p.allowed = d.cfg.Allowed(src, dst)
	}
	for t, n := range c.Content.MessageTypes {
		if len(p.msgs) < 64 || p.msgs[t] > 0 {
			p.msgs[t] += n
		}
	}
	for _, h := range c.Content.Hits {
		if len(p.samples) >= d.cfg.Samples {
			break
		}
		// Stream masks already; mask again so that a source that did not
		// cannot leak through here.
		v := h.Value
		if !strings.Contains(v, "*") {
			v = Mask(h.Type, v)
		}
		p.samples = append(p.samples, h.Type+" "+v)
	}
	if len(p.uids) < 10 && c.UID != "" {
		p.uids = append(p.uids, c.UID)
	}
}

// Severity rules (docs/DETECTIONS.md), on what the local host sent: any
// identifier low; 10 or more, or one cargo message, medium; 100 or more,
// or 5 messages, high; one step up when the destination's jurisdiction is
// watched. Nothing sent (a download) is info; a destination the policy
// allows (home, allow list) stays at most low.
func (d *Detector) severity(p *pair, watched bool) cw.Severity {
	if p.outIDs == 0 && p.outMsgs == 0 {
		return cw.Info
	}
	s := cw.Low
	switch {
	case p.outIDs >= 100 || p.outMsgs >= 5:
		s = cw.High
	case p.outIDs >= 10 || p.outMsgs >= 1:
		s = cw.Medium
	}
	if watched {
		s = min(s+1, cw.Critical)
	}
	if p.allowed && !watched {
		s = min(s, cw.Low)
	}
	return s
}

// Findings implements cargowatch.Detector: one finding per pair, in the
// order pairs were first seen.
func (d *Detector) Findings() []cw.Finding {
	var fs []cw.Finding
	for _, k := range d.order {
		p := d.pairs[k]
		juris := p.dst.Jurisdiction
		if juris == "" {
			juris = p.dst.Country
		}
		watched := juris != "" && slices.Contains(d.cfg.Watched, juris)
		sev := d.severity(p, watched)
		score := 0.1 // received only
		if p.outIDs > 0 || p.outMsgs > 0 {
			score = math.Min(1, 0.2+math.Log10(1+float64(p.outIDs))/3+0.1*float64(p.outMsgs))
		}
		fs = append(fs, cw.Finding{
			Kind: cw.KindCargoData, Severity: sev, Score: math.Round(score*100) / 100,
			Src: p.src, Dst: p.dst, FirstSeen: p.first, LastSeen: p.last,
			Count: p.conns, BytesOut: p.out, BytesIn: p.in,
			Summary: summary(p, juris),
			Evidence: map[string]any{
				"identifiers":          p.counts,
				"message_types":        p.msgs,
				"samples":              p.samples,
				"flows":                p.uids,
				"inspected_bytes":      p.inspected,
				"uninspected_bytes":    p.uninspects,
				"identifiers_sent":     p.outIDs,
				"messages_sent":        p.outMsgs,
				"rule":                 "cargo identifiers or messages in payload between a local host and this destination",
				"watched_jurisdiction": watched,
				"allowed_by_policy":    p.allowed,
			},
		})
	}
	return fs
}

func summary(p *pair, juris string) string {
	var parts []string
	for _, t := range sortedKeys(p.counts) {
		parts = append(parts, fmt.Sprintf("%d %s", p.counts[t], t))
	}
	for _, t := range sortedKeys(p.msgs) {
		parts = append(parts, fmt.Sprintf("%d %s", p.msgs[t], t))
	}
	where := p.dst.Addr.String()
	if p.dst.Name != "" {
		where = p.dst.Name + " (" + where + ")"
	}
	loc := ""
	switch {
	case p.dst.Country != "" && juris != "" && juris != p.dst.Country:
		loc = fmt.Sprintf(" in %s, controlled from %s", p.dst.Country, juris)
	case p.dst.Country != "":
		loc = " in " + p.dst.Country
	}
	verb := "cargo data sent to"
	switch {
	case p.outIDs == 0 && p.outMsgs == 0:
		verb = "cargo data received from"
	case p.outIDs+p.outMsgs < sum(p.counts)+sum(p.msgs):
		verb = "cargo data exchanged with"
	}
	return fmt.Sprintf("%s %s%s: %s", verb, where, loc, strings.Join(parts, ", "))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
