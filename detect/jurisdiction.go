package detect

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
	"github.com/cargowatch/cargowatch/policy"
)

// Caps of the jurisdiction detector. Samples keep the first values seen, so
// evidence points at the earliest flows, which are the ones to look up.
const (
	DefaultMaxPairs = 100_000 // local host × remote organisation aggregates
	maxSampleIPs    = 16
	maxSampleNames  = 16
	maxSampleUIDs   = 16
	maxNameLen      = 253 // longest DNS name
	maxTotalRows    = 10_000
	maxTotalHosts   = 4096 // per Totals row; Hosts stops counting there
)

// Jurisdiction aggregates the conversations of local hosts with the
// Internet per local host × remote organisation × server country ×
// controlling jurisdiction, and reports those the policy does not allow.
// Country and jurisdiction are part of the key because one organisation
// (a cloud) serves from allowed and not-allowed places, and merging them
// would either hide the one or blame the other.
type Jurisdiction struct {
	p *policy.Policy
	// MaxPairs caps the aggregates; conversations of new pairs beyond it
	// are counted in Dropped and otherwise ignored.
	MaxPairs int

	pairs   map[pairKey]*pair
	totals  map[totalKey]*total
	dropped int64
	// totalsDropped counts conversations whose (jurisdiction, country) row
	// could not be added to Totals.
	totalsDropped int64
}

type pairKey struct {
	local   netip.Addr
	org     string // Endpoint.Org, else the remote address
	country string
	juris   string
}

type pair struct {
	local, remote cargowatch.Endpoint
	d             policy.Decision
	watchCode     string // the watched code named by the rule, "" if none
	bytesOut      int64
	bytesIn       int64
	conns         int64
	inbound       int64 // conns the remote side opened: our host served it
	first, last   time.Time
	ips           []string
	names         []string
	uids          []string
}

type totalKey struct{ juris, country string }

type total struct {
	JurisdictionTotal
	hosts map[netip.Addr]struct{}
}

// JurisdictionTotal is one row of the "where our data goes" table: all
// Internet traffic of local hosts, allowed or not, by controlling
// jurisdiction and server country.
type JurisdictionTotal struct {
	Jurisdiction string
	Country      string
	BytesOut     int64
	BytesIn      int64
	Conns        int64
	Hosts        int64 // distinct local hosts, exact up to 4096
}

// NewJurisdiction returns the detector for policy p (policy.Default() when
// p is nil).
func NewJurisdiction(p *policy.Policy) *Jurisdiction {
	if p == nil {
		p = policy.Default()
	}
	return &Jurisdiction{
		p:        p,
		MaxPairs: DefaultMaxPairs,
		pairs:    map[pairKey]*pair{},
		totals:   map[totalKey]*total{},
	}
}

// Name implements cargowatch.Detector.
func (j *Jurisdiction) Name() string { return cargowatch.KindJurisdiction }

// Dropped reports how many conversations were not aggregated because
// MaxPairs was reached.
func (j *Jurisdiction) Dropped() int64 { return j.dropped }

// Observe implements cargowatch.Detector.
func (j *Jurisdiction) Observe(c *cargowatch.Conn) {
	var loc, rem cargowatch.Endpoint
	var out, in int64
	outbound := true
	switch {
	case c.Orig.Local && !c.Resp.Local:
		loc, rem, out, in = c.Orig, c.Resp, c.OrigBytes, c.RespBytes
	case c.Resp.Local && !c.Orig.Local:
		loc, rem, out, in = c.Resp, c.Orig, c.RespBytes, c.OrigBytes
		outbound = false
	default:
		return // local-to-local or nothing local: not ours to judge
	}
	// A remote side without an address is a layer-2 exchange (PROFINET
	// DCP): it never left the link, so no jurisdiction holds it.
	if !geo.IsInternet(rem.Addr) {
		return
	}
	out, in = max(out, 0), max(in, 0)
	rem = j.p.Resolve(rem)
	country := strings.ToUpper(rem.Country)
	juris := strings.ToUpper(rem.Jurisdiction)
	if juris == "" {
		juris = country
	}
	j.addTotal(totalKey{juris, country}, loc.Addr, out, in)

	d := j.p.Evaluate(loc, rem)
	if d.Allowed {
		return
	}
	// Inbound conversations in which our host sent nothing are the
	// Internet's background scanning, not our data going anywhere.
	if !outbound && out == 0 {
		return
	}

	org := rem.Org
	if org == "" {
		org = rem.Addr.String()
	}
	k := pairKey{local: loc.Addr, org: org, country: country, juris: juris}
	p := j.pairs[k]
	if p == nil {
		if len(j.pairs) >= j.MaxPairs {
			j.dropped++
			return
		}
		rem.Country, rem.Jurisdiction = country, juris
		p = &pair{local: loc, remote: rem, d: d, first: c.TS, last: c.TS}
		p.watchCode = j.watchCode(d, juris, country)
		j.pairs[k] = p
	}
	// A later Conn may know more of the local host (an asset learned
	// mid-run) and so draw a stricter rule; keep the strictest.
	if d.Severity > p.d.Severity {
		p.d = d
		p.watchCode = j.watchCode(d, juris, country)
	}
	if p.local.Asset == nil && loc.Asset != nil {
		p.local = loc
	}
	p.conns++
	if !outbound {
		p.inbound++
	}
	p.bytesOut = satAdd(p.bytesOut, out)
	p.bytesIn = satAdd(p.bytesIn, in)
	if !c.TS.IsZero() && (p.first.IsZero() || c.TS.Before(p.first)) {
		p.first = c.TS
	}
	if end := c.TS.Add(max(c.Duration, 0)); end.After(p.last) {
		p.last = end
	}
	if len(p.ips) < maxSampleIPs { // Addr.String allocates: skip once full
		p.ips = addSample(p.ips, rem.Addr.String(), maxSampleIPs)
	}
	if c.UID != "" {
		p.uids = addSample(p.uids, c.UID, maxSampleUIDs)
	}
	if c.TLS != nil {
		p.names = addSample(p.names, c.TLS.SNI, maxSampleNames)
	}
	for _, h := range c.HTTP {
		p.names = addSample(p.names, hostOnly(h.Host), maxSampleNames)
	}
	p.names = addSample(p.names, rem.Name, maxSampleNames)
}

func (j *Jurisdiction) watchCode(d policy.Decision, juris, country string) string {
	if !d.Watched {
		return ""
	}
	if _, ok := j.p.Watch[juris]; ok {
		return juris
	}
	return country
}

func (j *Jurisdiction) addTotal(k totalKey, host netip.Addr, out, in int64) {
	t := j.totals[k]
	if t == nil {
		if len(j.totals) >= maxTotalRows {
			j.totalsDropped++
			return
		}
		t = &total{JurisdictionTotal: JurisdictionTotal{Jurisdiction: k.juris, Country: k.country}, hosts: map[netip.Addr]struct{}{}}
		j.totals[k] = t
	}
	t.Conns++
	t.BytesOut = satAdd(t.BytesOut, out)
	t.BytesIn = satAdd(t.BytesIn, in)
	if len(t.hosts) < maxTotalHosts {
		t.hosts[host] = struct{}{}
	}
}

// Totals returns where the data of local hosts went, allowed or not, by
// controlling jurisdiction and server country, most bytes out first.
func (j *Jurisdiction) Totals() []JurisdictionTotal {
	out := make([]JurisdictionTotal, 0, len(j.totals))
	for _, t := range j.totals {
		r := t.JurisdictionTotal
		r.Hosts = int64(len(t.hosts))
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].BytesOut != out[b].BytesOut {
			return out[a].BytesOut > out[b].BytesOut
		}
		if out[a].Jurisdiction != out[b].Jurisdiction {
			return out[a].Jurisdiction < out[b].Jurisdiction
		}
		return out[a].Country < out[b].Country
	})
	return out
}

// Findings implements cargowatch.Detector: one finding per aggregate the
// policy does not allow, most severe first.
func (j *Jurisdiction) Findings() []cargowatch.Finding {
	fs := make([]cargowatch.Finding, 0, len(j.pairs))
	for _, p := range j.pairs {
		sev := j.p.Raise(p.d.Severity, p.bytesOut)
		dst := p.remote
		if dst.Name == "" && len(p.names) > 0 {
			dst.Name = p.names[0]
		}
		fs = append(fs, cargowatch.Finding{
			Kind:      cargowatch.KindJurisdiction,
			Severity:  sev,
			Score:     JurisdictionScore(sev, p.bytesOut),
			Src:       p.local,
			Dst:       dst,
			FirstSeen: p.first,
			LastSeen:  p.last,
			Count:     p.conns,
			BytesOut:  p.bytesOut,
			BytesIn:   p.bytesIn,
			Summary:   p.summary(),
			Evidence: map[string]any{
				"rule":                p.d.Rule,
				"legal_basis":         p.d.LegalBasis,
				"base_severity":       p.d.Severity.String(),
				"server_country":      p.remote.Country,
				"jurisdiction":        p.remote.Jurisdiction,
				"jurisdiction_source": p.remote.JurisdictionSource,
				"remote_ips":          append([]string(nil), p.ips...),
				"names":               append([]string{}, p.names...),
				"uids":                append([]string{}, p.uids...),
				"bytes_out":           p.bytesOut,
				"bytes_in":            p.bytesIn,
				"connections":         p.conns,
				"inbound_connections": p.inbound,
			},
		})
	}
	sort.Slice(fs, func(a, b int) bool {
		x, y := &fs[a], &fs[b]
		if x.Severity != y.Severity {
			return x.Severity > y.Severity
		}
		if x.BytesOut != y.BytesOut {
			return x.BytesOut > y.BytesOut
		}
		if c := x.Src.Addr.Compare(y.Src.Addr); c != 0 {
			return c < 0
		}
		return x.Summary < y.Summary
	})
	return fs
}

// JurisdictionScore is 0.8 × severity/4 + 0.2 × min(1, log2(1+bytesOut)/30):
// the rule's weight (raised by volume) dominates, and volume orders
// findings of one severity, reaching its full share at 1 GiB.
func JurisdictionScore(sev cargowatch.Severity, bytesOut int64) float64 {
	s := float64(min(max(sev, cargowatch.Info), cargowatch.Critical)) / 4
	b := math.Min(1, math.Log2(1+float64(max(bytesOut, 0)))/30)
	return math.Round((0.8*s+0.2*b)*1000) / 1000
}

// summary reads like "wms-01 (10.1.2.3) sent 4.2 MiB to Alibaba Cloud
// (8.209.72.15, server in DE, controlled from CN) — watched jurisdiction CN".
func (p *pair) summary() string {
	var b strings.Builder
	ip := p.local.Addr.String()
	switch {
	case p.local.Asset != nil && p.local.Asset.Name != "":
		fmt.Fprintf(&b, "%s (%s)", p.local.Asset.Name, ip)
	case p.local.Name != "":
		fmt.Fprintf(&b, "%s (%s)", p.local.Name, ip)
	default:
		b.WriteString(ip)
	}
	// When the remote side opened most conversations our host is the
	// server: it answered a client there, it did not call a server there.
	served := 2*p.inbound > p.conns
	switch {
	case served:
		fmt.Fprintf(&b, " served %s to a client at ", HumanBytes(p.bytesOut))
	case p.bytesOut > 0:
		fmt.Fprintf(&b, " sent %s to ", HumanBytes(p.bytesOut))
	default:
		b.WriteString(" contacted ")
	}
	first := p.remote.Addr.String()
	if len(p.ips) > 0 {
		first = p.ips[0]
	}
	if p.remote.Org != "" {
		b.WriteString(p.remote.Org + " (" + first)
	} else if len(p.names) > 0 {
		b.WriteString(p.names[0] + " (" + first)
	} else {
		b.WriteString(first + " (")
		first = ""
	}
	if len(p.ips) > 1 {
		fmt.Fprintf(&b, " +%d more", len(p.ips)-1)
	}
	sep := ", "
	if first == "" && len(p.ips) <= 1 {
		sep = ""
	}
	country, juris := p.remote.Country, p.remote.Jurisdiction
	where := "server"
	if served {
		where = "client"
	}
	if country == "" {
		b.WriteString(sep + where + " country unknown")
	} else {
		b.WriteString(sep + where + " in " + country)
	}
	if juris != "" && juris != country {
		b.WriteString(", controlled from " + juris)
	}
	b.WriteString(") — ")
	switch {
	case strings.HasPrefix(p.d.Rule, "watch "):
		if p.watchCode == juris {
			b.WriteString("watched jurisdiction " + p.watchCode)
		} else {
			b.WriteString("watched server country " + p.watchCode)
		}
	case p.d.Rule == policy.RuleNotAllowed:
		b.WriteString(country + " not in allow list")
	case p.d.Rule == policy.RuleUnknown:
		b.WriteString("server country unknown")
	default:
		b.WriteString(p.d.Rule)
		if p.d.Watched {
			b.WriteString("; watched jurisdiction " + p.watchCode)
		}
	}
	return b.String()
}

// HumanBytes formats n in IEC units with one decimal: 512 B, 4.2 MiB.
func HumanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		if v < 1024 || u == "PiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// addSample appends v unless present, empty or the sample is full.
func addSample(s []string, v string, limit int) []string {
	if v == "" || len(s) >= limit {
		return s
	}
	if len(v) > maxNameLen {
		v = v[:maxNameLen]
	}
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// hostOnly strips a port from an HTTP Host header.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		return h[:i]
	}
	return h
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
