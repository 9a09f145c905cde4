package asset

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
)

// Rules of ot_egress, named in each finding's evidence.
const (
	RuleEgress       = "ot host talks to the Internet"
	RuleZoneCrossing = "zone crossing not in zone_allow"
	RuleRemoteAccess = "remote access into an ot host from another zone"
)

// egress aggregates one OT host's conversations with one peer.
type egress struct {
	h         *host
	entry     *Entry
	peer      netip.Addr
	remote    bool
	peerEntry *Entry
	peerZone  string
	rule      string
	sev       cw.Severity
	why       string // the severity's reason
	inbound   bool   // the peer opened (remote access into the host)
	conns     int64
	out, in   int64
	first     time.Time
	last      time.Time
	protos    map[string]bool
	ports     map[uint16]bool
	funcs     map[string]int
	writes    int64
	program   int64
	uids      []string
}

// Findings concludes ot_egress for OT hosts and, with a history, new_asset
// for devices first seen after the baseline (see docs/ASSETS.md).
func (d *Discovery) Findings() []cw.Finding {
	var out []cw.Finding
	for _, e := range d.egresses() {
		out = append(out, d.egressFinding(e))
	}
	out = append(out, d.newAssets()...)
	return out
}

// entryOf is the assets-file row of h (exact address or MAC first, then
// the longest prefix), nil when the file does not place it.
func (d *Discovery) entryOf(h *host) *Entry {
	if d.cfg.File == nil {
		return nil
	}
	mac := ""
	if len(h.macs) > 0 {
		mac = h.macs[0]
	}
	return d.cfg.File.Lookup(h.addr, mac)
}

func (d *Discovery) zoneOf(a netip.Addr) (string, *Entry) {
	if h := d.hosts[a]; h != nil {
		e := d.entryOf(h)
		switch {
		case e != nil:
			return e.Zone, e
		case h.asset != nil:
			return h.asset.Zone, nil
		}
		return "", nil
	}
	if e := d.cfg.File.Lookup(a, ""); e != nil {
		return e.Zone, e
	}
	return "", nil
}

func (d *Discovery) egresses() []*egress {
	agg := map[[2]netip.Addr]*egress{}
	var keys [][2]netip.Addr
	// In address order, peers too: merged uids and capped function names
	// must not depend on map order, or two runs over one input disagree.
	for _, a := range slices.SortedFunc(maps.Keys(d.hosts), netip.Addr.Compare) {
		h := d.hosts[a]
		if !h.local {
			continue
		}
		entry := d.entryOf(h)
		if !h.isOT(entry) {
			continue
		}
		zone := ""
		if entry != nil {
			zone = entry.Zone
		} else if h.asset != nil {
			zone = h.asset.Zone
		}
		for _, k := range h.sortedPeers() {
			p := h.peers[k]
			e := d.judge(h, entry, zone, k, p)
			if e == nil {
				continue
			}
			key := [2]netip.Addr{h.addr, k.addr}
			g := agg[key]
			if g == nil {
				g = e
				g.protos, g.ports, g.funcs = map[string]bool{}, map[uint16]bool{}, map[string]int{}
				g.first, g.last = p.first, p.last
				agg[key] = g
				keys = append(keys, key)
			} else if e.sev > g.sev || (e.sev == g.sev && e.rule == RuleRemoteAccess) {
				g.rule, g.sev, g.why, g.inbound = e.rule, e.sev, e.why, e.inbound
			}
			g.conns += p.conns
			g.out += p.bytesOut
			g.in += p.bytesIn
			if p.first.Before(g.first) {
				g.first = p.first
			}
			if p.last.After(g.last) {
				g.last = p.last
			}
			g.protos[k.proto] = true
			if len(g.ports) < 16 {
				g.ports[p.port] = true
			}
			for _, f := range p.functions {
				if _, ok := g.funcs[f.name]; ok || len(g.funcs) < maxFunctions {
					g.funcs[f.name] += f.n
				}
			}
			g.writes += p.writes
			g.program += p.program
			for _, u := range p.uids {
				if len(g.uids) < 2*maxUIDs {
					g.uids = append(g.uids, u)
				}
			}
		}
	}
	out := make([]*egress, 0, len(keys))
	for _, k := range keys {
		out = append(out, agg[k])
	}
	return out
}

// judge decides whether one peer entry of OT host h crosses its zone and
// how badly; nil when it does not.
func (d *Discovery) judge(h *host, entry *Entry, zone string, k peerKey, p *peer) *egress {
	inbound := !p.peerIsServer && remoteAccess[k.proto]
	e := &egress{h: h, entry: entry, peer: k.addr, inbound: inbound}
	ph := d.hosts[k.addr]
	if ph == nil || !ph.local {
		if !geo.IsInternet(k.addr) {
			return nil // multicast, broadcast, link-local: not a place
		}
		e.remote = true
		e.peerZone = ZoneInternet
		r := d.remotes[k.addr]
		country, juris := "", ""
		if r != nil {
			country, juris = strings.ToUpper(r.Country), strings.ToUpper(r.Jurisdiction)
		}
		_, watchedJ := d.cfg.Watch[juris]
		_, watchedC := d.cfg.Watch[country]
		switch {
		case inbound:
			e.rule, e.sev, e.why = RuleRemoteAccess, cw.Critical, "remote access from the Internet"
		case watchedJ && juris != "":
			e.rule, e.sev, e.why = RuleEgress, cw.Critical, "watched jurisdiction "+juris
		case watchedC && country != "":
			e.rule, e.sev, e.why = RuleEgress, cw.Critical, "server in watched country "+country
		case country != "" && !d.home[country]:
			e.rule, e.sev, e.why = RuleEgress, cw.Critical, "outside the home country ("+country+")"
		case juris != "" && !d.home[juris]:
			e.rule, e.sev, e.why = RuleEgress, cw.Critical, "operator controlled from "+juris
		case country == "":
			e.rule, e.sev, e.why = RuleEgress, cw.High, "server country unknown"
		default:
			if declared, allowed := d.cfg.File.Conduits(zone, ZoneInternet); declared && allowed {
				return nil
			}
			e.rule, e.sev, e.why = RuleEgress, cw.High, "home country "+country
		}
		return e
	}
	pz, pe := d.zoneOf(k.addr)
	e.peerZone, e.peerEntry = pz, pe
	if pz == zone {
		return nil
	}
	d1, a1 := d.cfg.File.Conduits(zone, pz)
	d2, a2 := d.cfg.File.Conduits(pz, zone)
	if zone != "" && ((d1 && !a1) || (d2 && !a2)) {
		e.rule, e.sev, e.why = RuleZoneCrossing, cw.High, fmt.Sprintf("zone %s to %s", orUnknown(zone), orUnknown(pz))
		if inbound {
			e.rule = RuleRemoteAccess
		}
		return e
	}
	// Remote access from another zone is reported even where no conduits
	// are declared: it is how OT gets operated from outside, unless the
	// zone lets the peer's zone in explicitly.
	if inbound && zone != "" && !(d1 && a1) {
		e.rule, e.sev, e.why = RuleRemoteAccess, cw.High, fmt.Sprintf("%s session from zone %s", k.proto, orUnknown(pz))
		return e
	}
	return nil
}

func orUnknown(z string) string {
	if z == "" {
		return "(none)"
	}
	return z
}

var severityScore = map[cw.Severity]float64{cw.Critical: 0.95, cw.High: 0.8, cw.Medium: 0.6, cw.Low: 0.4, cw.Info: 0.2}

func (d *Discovery) egressFinding(e *egress) cw.Finding {
	src := d.endpoint(e.h, e.entry)
	var dst cw.Endpoint
	if e.remote {
		if r := d.remotes[e.peer]; r != nil {
			dst = *r
		} else {
			dst = cw.Endpoint{Addr: e.peer}
		}
	} else if ph := d.hosts[e.peer]; ph != nil {
		dst = d.endpoint(ph, e.peerEntry)
	}
	protos := sortedKeys(e.protos)
	var ports []int
	for p := range e.ports {
		ports = append(ports, int(p))
	}
	sort.Ints(ports)
	ev := map[string]any{
		"rule": e.rule, "severity_reason": e.why, "zone": orUnknown(zoneName(e.entry, e.h)), "peer_zone": orUnknown(e.peerZone),
		"protocols": protos, "server_ports": ports, "uids": e.uids, "conns": e.conns, "bytes": e.out + e.in,
		"ot_roles": e.h.roles(),
	}
	if e.inbound {
		ev["direction"] = "inbound"
	} else {
		ev["direction"] = "outbound"
	}
	if len(e.funcs) > 0 {
		ev["functions"] = e.funcs
	}
	if e.writes > 0 {
		ev["writes"] = e.writes
	}
	if e.program > 0 {
		ev["program_transfers"] = e.program
	}
	if e.remote {
		j := strings.ToUpper(dst.Jurisdiction)
		if b, ok := d.cfg.Watch[j]; ok && j != "" {
			ev["legal_basis"] = b
		} else if b, ok := d.cfg.Watch[strings.ToUpper(dst.Country)]; ok {
			ev["legal_basis"] = b
		}
	}
	srcLabel := src.Addr.String()
	if src.Asset != nil && src.Asset.Name != "" {
		srcLabel = src.Asset.Name + " (" + src.Addr.String() + ")"
	}
	where := dst.Addr.String()
	if e.remote {
		var parts []string
		for _, s := range []string{dst.Country, dst.Org} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			where += " (" + strings.Join(parts, ", ") + ")"
		}
	} else {
		where += " in zone " + orUnknown(e.peerZone)
	}
	verb := "talked to"
	if e.inbound {
		verb = "was reached over " + strings.Join(protos, ",") + " from"
	}
	sum := fmt.Sprintf("OT host %s in zone %s %s %s: %d conversations, %s; %s", srcLabel, orUnknown(zoneName(e.entry, e.h)), verb, where,
		e.conns, strings.Join(protos, ","), e.why)
	return cw.Finding{Kind: cw.KindOTEgress, Severity: e.sev, Score: severityScore[e.sev], Src: src, Dst: dst,
		FirstSeen: e.first, LastSeen: e.last, Count: e.conns, BytesOut: e.out, BytesIn: e.in, Summary: sum, Evidence: ev}
}

func zoneName(e *Entry, h *host) string {
	if e != nil {
		return e.Zone
	}
	if h != nil && h.asset != nil {
		return h.asset.Zone
	}
	return ""
}

// endpoint describes a tracked host as a finding's side.
func (d *Discovery) endpoint(h *host, e *Entry) cw.Endpoint {
	ep := cw.Endpoint{Addr: h.addr, Local: h.local}
	if macs := d.hostMACs(h); len(macs) > 0 {
		ep.MAC = macs[0]
	}
	switch {
	case e != nil:
		ep.Asset = &cw.Asset{Name: e.Name, Role: e.Role, Zone: e.Zone, Owner: e.Owner, Allow: e.Allow}
	case h.asset != nil:
		as := *h.asset
		ep.Asset = &as
	}
	if ns := d.hostNames(h); len(ns) > 0 {
		ep.Name = ns[0].name
	}
	if ep.Asset != nil && ep.Asset.Name != "" {
		ep.Name = ep.Asset.Name
	}
	if !h.local {
		if r := d.remotes[h.addr]; r != nil {
			ep.Country, ep.ASN, ep.Org, ep.Jurisdiction = r.Country, r.ASN, r.Org, r.Jurisdiction
		}
	}
	return ep
}

// newAssets records this run's local hosts in the history and reports
// those whose first sighting comes after the baseline and lies in this
// run (a host that first appeared in an earlier input was reported then).
func (d *Discovery) newAssets() []cw.Finding {
	if d.cfg.History == nil {
		return nil
	}
	var seen []Sighting
	for _, h := range d.hosts {
		if !h.local {
			continue
		}
		s := Sighting{Addr: h.addr, First: h.first, Last: h.last}
		if macs := d.hostMACs(h); len(macs) > 0 {
			s.MAC = macs[0]
		}
		seen = append(seen, s)
	}
	if len(seen) == 0 {
		return nil
	}
	sort.Slice(seen, func(i, j int) bool { return seen[i].Addr.Less(seen[j].Addr) })
	first, start, err := d.cfg.History.RecordHosts(context.Background(), seen)
	if err != nil {
		d.cfg.Log.Warn("assets: history of hosts unavailable: no new_asset findings this run", "err", err)
		return nil
	}
	if start.IsZero() {
		return nil
	}
	cutoff := start.Add(d.cfg.Baseline)
	var out []cw.Finding
	for _, s := range seen {
		f, ok := first[s.Addr]
		if !ok || !f.After(cutoff) || f.Before(s.First) {
			continue
		}
		h := d.hosts[s.Addr]
		e := d.entryOf(h)
		known := isKnown(e, h)
		sev, why := cw.Medium, "not in the assets file"
		switch {
		case known:
			sev, why = cw.Low, "listed in the assets file"
		case h.isOT(e):
			sev, why = cw.High, "not in the assets file, in an OT zone or behaving as OT"
		}
		ep := d.endpoint(h, e)
		ev := map[string]any{"first_seen_in_history": f, "history_start": start, "baseline": d.cfg.Baseline.String(),
			"known": known, "reason": why, "roles": h.roles(), "services_offered": sortedCounts(h.offered), "conns": h.conns}
		if vendor := d.vendorOf(h); vendor != "" {
			ev["vendor"] = vendor
		}
		if ep.MAC != "" {
			ev["mac"] = ep.MAC
		}
		out = append(out, cw.Finding{Kind: cw.KindNewAsset, Severity: sev, Score: severityScore[sev], Src: ep,
			FirstSeen: h.first, LastSeen: h.last, Count: h.conns, BytesOut: h.bytesOut, BytesIn: h.bytesIn,
			Summary: fmt.Sprintf("new device %s first seen %s, %s after the history began (baseline %s); %s",
				labelOf(ep), f.UTC().Format(time.RFC3339), f.Sub(start).Round(time.Hour), d.cfg.Baseline, why),
			Evidence: ev})
	}
	return out
}

func labelOf(ep cw.Endpoint) string {
	if ep.Name != "" {
		return ep.Name + " (" + ep.Addr.String() + ")"
	}
	return ep.Addr.String()
}

func sortedCounts[V int64 | int](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
