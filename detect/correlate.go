package detect

import (
	"net/netip"
	"sort"

	cw "github.com/cargowatch/cargowatch"
)

// ScoreSeverity maps a detector's score to a severity: ≥ 0.65 high,
// ≥ 0.45 medium, ≥ 0.25 low, else info. One behaviour alone never reaches
// critical; only Correlate raises a finding there, when several
// behaviours meet on one pair.
func ScoreSeverity(score float64) cw.Severity {
	switch {
	case score >= 0.65:
		return cw.High
	case score >= 0.45:
		return cw.Medium
	case score >= 0.25:
		return cw.Low
	}
	return cw.Info
}

// CorrelateRule is the rule Correlate applies, quoted in the evidence.
const CorrelateRule = "findings of different kinds about one local host and one remote (same address, or same registrable domain) " +
	"are a group; every finding in it gets score max(own, 1 − Π over kinds (1 − best score of the kind)) and severity " +
	"max(own, highest in the group, one step higher when at least two kinds are medium or above, at most critical)"

// Correlate raises findings that are about the same local host and the same
// remote — by address, or by registrable domain of the name — and of
// different kinds, so a pair suspicious in several ways ranks above any of
// its findings alone:
//
//	group    = findings linked by (Src.Addr, Dst.Addr) or by
//	           (Src.Addr, registrable domain of Dst.Name), transitively
//	combined = 1 − Π_k (1 − s_k), s_k the best score of kind k in the group
//	           (noisy-OR: each kind is independent evidence; two findings
//	           of one kind are not)
//	severity = the group's highest, one step up when ≥ 2 kinds reach
//	           medium, capped at critical
//	each finding: Score = max(own, combined), Severity = max(own, severity)
//
// Groups with a single kind are left as they are. Raised findings carry
// evidence["correlated"]: the rule, their own score and severity before,
// and the other kinds with their best severity, score and summary.
//
// It is monotonic: adding a finding can only join groups, add kinds or
// raise a kind's best score, and every quantity above only grows with
// those, so no score or severity goes down. It creates no kinds and drops
// no findings: the result has the input's findings in the input's order
// (copies; the input and its evidence maps are not modified).
func Correlate(fs []cw.Finding) []cw.Finding {
	out := make([]cw.Finding, len(fs))
	copy(out, fs)
	if len(fs) < 2 {
		return out
	}
	parent := make([]int, len(fs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	type key struct {
		src  netip.Addr
		addr netip.Addr
		name string
	}
	seen := map[key]int{}
	link := func(k key, i int) {
		if j, ok := seen[k]; ok {
			if a, b := find(i), find(j); a != b {
				parent[a] = b
			}
			return
		}
		seen[k] = i
	}
	for i := range fs {
		f := &fs[i]
		if !f.Src.Addr.IsValid() {
			continue
		}
		if f.Dst.Addr.IsValid() {
			link(key{src: f.Src.Addr, addr: f.Dst.Addr}, i)
		}
		if n := regDomainKey(f.Dst.Name); n != "" {
			link(key{src: f.Src.Addr, name: n}, i)
		}
	}

	type best struct {
		sev   cw.Severity
		score float64
		idx   int // the finding that holds the best score
	}
	groups := map[int]map[string]*best{}
	for i := range fs {
		if !fs[i].Src.Addr.IsValid() {
			continue
		}
		r := find(i)
		g := groups[r]
		if g == nil {
			g = map[string]*best{}
			groups[r] = g
		}
		b := g[fs[i].Kind]
		if b == nil {
			g[fs[i].Kind] = &best{fs[i].Severity, fs[i].Score, i}
			continue
		}
		b.sev = max(b.sev, fs[i].Severity)
		if fs[i].Score > b.score {
			b.score, b.idx = fs[i].Score, i
		}
	}
	for i := range fs {
		if !fs[i].Src.Addr.IsValid() {
			continue
		}
		g := groups[find(i)]
		if len(g) < 2 {
			continue
		}
		miss := 1.0
		sev := cw.Info
		medium := 0
		kinds := make([]string, 0, len(g))
		for k, b := range g {
			miss *= 1 - clampUnit(b.score)
			sev = max(sev, b.sev)
			if b.sev >= cw.Medium {
				medium++
			}
			kinds = append(kinds, k)
		}
		if medium >= 2 && sev < cw.Critical {
			sev++
		}
		combined := roundScore(1 - miss)
		sort.Strings(kinds)
		var with []map[string]any
		for _, k := range kinds {
			if k == fs[i].Kind {
				continue
			}
			b := g[k]
			with = append(with, map[string]any{
				"kind": k, "severity": b.sev.String(), "score": b.score, "summary": fs[b.idx].Summary,
			})
		}
		o := &out[i]
		ev := make(map[string]any, len(o.Evidence)+1)
		for k, v := range o.Evidence {
			ev[k] = v
		}
		ev["correlated"] = map[string]any{
			"rule":           CorrelateRule,
			"kinds":          kinds,
			"combined_score": combined,
			"severity":       sev.String(),
			"own_score":      o.Score,
			"own_severity":   o.Severity.String(),
			"with":           with,
		}
		o.Evidence = ev
		o.Score = max(o.Score, combined)
		o.Severity = max(o.Severity, sev)
	}
	return out
}
