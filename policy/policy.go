// Package policy holds the jurisdiction policy: which server countries our
// data may go to, which controlling jurisdictions are watched and why, what
// each asset role may reach, and how bytes raise severity. It loads and
// validates the YAML file (every error names file and line) and evaluates
// one conversation's endpoints to a Decision. It knows nothing of packets.
package policy

import (
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/geo"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the text of the built-in policy, for `policy show`
// and documentation.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the built-in policy for an EU hub (home DE, allow EEA and
// adequacy countries, watch CN RU IR KP, OT roles kept off the Internet).
func Default() *Policy {
	p, err := Parse("default.yaml", defaultYAML)
	if err != nil {
		// The embedded file is tested; reaching this is a build defect.
		panic(err)
	}
	return p
}

// maxFile bounds what Load reads: a policy is hand-written, so anything
// larger is a wrong path (a pcap, a log) rather than a policy.
const maxFile = 1 << 20

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("policy: %s: larger than %d bytes, not a policy file", path, maxFile)
	}
	return Parse(path, data)
}

// Policy is a validated jurisdiction policy. Build one with Parse, Load or
// Default; the zero value is not usable.
type Policy struct {
	Name  string   // file name it came from
	Home  []string // home jurisdictions, always allowed
	Allow []string // allow entries as written: country codes and groups

	// Watch maps a jurisdiction code to why and how hard it is watched.
	Watch map[string]Watch
	// Roles maps an asset role (lower case) to its rule.
	Roles map[string]Role
	// Jurisdictions are additions to the controlling-jurisdiction table.
	Jurisdictions []JurisdictionOverride

	Severity Thresholds
	// ReportUnknown is false when unknown_country: ignore.
	ReportUnknown bool

	home  map[string]bool
	allow map[string]string // country -> allow entry that admits it (first in order)

	assetAllows map[string]map[string]string // assets-file allow lists, expanded
}

// Watch is a watched controlling jurisdiction.
type Watch struct {
	Jurisdiction string
	Basis        string // legal basis, cited in findings
	Severity     cargowatch.Severity
	Line         int
}

// Internet modes of a role.
const (
	InternetDefault = ""      // the global allow list applies
	InternetAllow   = "allow" // any server country (watch still applies)
	InternetDeny    = "deny"  // no Internet destination at all
)

// Role is the rule for one asset role.
type Role struct {
	Name     string
	Internet string   // InternetDefault, InternetAllow or InternetDeny
	Allow    []string // when set, replaces home and the global allow list
	Severity cargowatch.Severity
	Line     int

	allow map[string]string
	asset bool // made from an assets file's allow list
}

// label names the rule in decisions: "role crane-plc" or "asset wms-01".
func (r *Role) label() string {
	if r.asset {
		return "asset " + r.Name
	}
	return "role " + r.Name
}

// JurisdictionOverride says that addresses matching ASN, Prefix or
// OrgContains (exactly one is set) are controlled from Jurisdiction.
type JurisdictionOverride struct {
	ASN          uint32
	Prefix       netip.Prefix
	OrgContains  string
	Jurisdiction string
	Source       string
}

// Thresholds are the severities of non-watch rules and the byte counts that
// raise severity.
type Thresholds struct {
	NotAllowed cargowatch.Severity // not in allow list
	Unknown    cargowatch.Severity // server country unknown
	Role       cargowatch.Severity // role denial without its own severity
	// Raise holds ascending bytes-out thresholds; each one reached raises
	// the severity by one step (capped at critical).
	Raise []int64
}

// Decision is the verdict on one local/remote pair.
type Decision struct {
	Allowed    bool
	Rule       string // "watch CN", "allow EEA", "role crane-plc: internet deny", "not in allow list", ...
	LegalBasis string
	Severity   cargowatch.Severity // base severity, before bytes raise it
	Watched    bool
}

// Rule names that do not carry a country.
const (
	RuleOutOfScope = "out of scope"
	RuleNotAllowed = "not in allow list"
	RuleUnknown    = "country unknown"
)

// Resolve returns remote with the policy's jurisdiction overrides applied:
// the most specific prefix first, then the ASN, then the first matching
// organisation substring. Geo enrichment may already have applied them;
// applying again changes nothing.
func (p *Policy) Resolve(remote cargowatch.Endpoint) cargowatch.Endpoint {
	if o, ok := p.override(remote); ok {
		if remote.Jurisdiction != o.Jurisdiction || remote.JurisdictionSource == "" {
			remote.Jurisdiction = o.Jurisdiction
			remote.JurisdictionSource = o.Source
		}
	}
	return remote
}

func (p *Policy) override(ep cargowatch.Endpoint) (JurisdictionOverride, bool) {
	best, bits := -1, -1
	addr := ep.Addr.Unmap()
	for i, o := range p.Jurisdictions {
		if o.Prefix.IsValid() && addr.IsValid() && o.Prefix.Contains(addr) && o.Prefix.Bits() > bits {
			best, bits = i, o.Prefix.Bits()
		}
	}
	if best >= 0 {
		return p.Jurisdictions[best], true
	}
	if ep.ASN != 0 {
		for _, o := range p.Jurisdictions {
			if o.ASN == ep.ASN {
				return o, true
			}
		}
	}
	if ep.Org != "" {
		org := strings.ToLower(ep.Org)
		for _, o := range p.Jurisdictions {
			if o.OrgContains != "" && strings.Contains(org, strings.ToLower(o.OrgContains)) {
				return o, true
			}
		}
	}
	return JurisdictionOverride{}, false
}

// Evaluate decides whether local may talk to remote. Rule order (see
// docs/POLICY.md): out of scope, role denials, watch, unknown country,
// allow (role's, else home + global), default deny at severity.not_allowed.
func (p *Policy) Evaluate(local, remote cargowatch.Endpoint) Decision {
	if remote.Local || (remote.Addr.IsValid() && !geo.IsInternet(remote.Addr)) {
		return Decision{Allowed: true, Rule: RuleOutOfScope}
	}
	remote = p.Resolve(remote)
	country := strings.ToUpper(remote.Country)
	juris := strings.ToUpper(remote.Jurisdiction)
	if juris == "" {
		juris = country
	}

	// The controlling jurisdiction is matched first; a server that sits in a
	// watched country is reachable by that country's law whoever runs it.
	w, watched := p.Watch[juris]
	watchRule := ""
	if watched {
		watchRule = "watch " + juris
	} else if w, watched = p.Watch[country]; watched {
		watchRule = "watch " + country + " (server country)"
	}

	var role *Role
	if local.Asset != nil && local.Asset.Role != "" {
		if r, ok := p.Roles[strings.ToLower(local.Asset.Role)]; ok {
			role = &r
		}
	}
	// An assets file's allow list for one device is the most specific word
	// there is: it stands in for the role's rule for that device.
	if local.Asset != nil && len(local.Asset.Allow) > 0 {
		sev := p.Severity.Role
		if role != nil {
			sev = role.Severity
		}
		role = &Role{Name: local.Asset.Name, Allow: local.Asset.Allow, allow: p.assetAllow(local.Asset.Allow), Severity: sev, asset: true}
	}
	if role != nil {
		var rule string
		switch {
		case role.Internet == InternetDeny:
			rule = role.label() + ": internet deny"
		case role.allow != nil && country == "":
			rule = role.label() + ": " + RuleUnknown
		case role.allow != nil && role.allow[country] == "":
			rule = role.label() + ": " + country + " not in its allow list"
		}
		if rule != "" {
			d := Decision{Rule: rule, Severity: role.Severity}
			if watched {
				d.Watched, d.LegalBasis = true, w.Basis
				d.Severity = max(d.Severity, w.Severity)
			}
			return d
		}
	}
	if watched {
		return Decision{Rule: watchRule, LegalBasis: w.Basis, Severity: w.Severity, Watched: true}
	}
	if country == "" {
		if !p.ReportUnknown {
			return Decision{Allowed: true, Rule: RuleUnknown + " (ignored)"}
		}
		return Decision{Rule: RuleUnknown, Severity: p.Severity.Unknown}
	}
	if role != nil {
		if role.Internet == InternetAllow {
			return Decision{Allowed: true, Rule: role.label() + ": internet allow"}
		}
		if role.allow != nil {
			return Decision{Allowed: true, Rule: role.label() + ": allow " + role.allow[country]}
		}
	}
	if p.home[country] {
		return Decision{Allowed: true, Rule: "home " + country}
	}
	if e := p.allow[country]; e != "" {
		return Decision{Allowed: true, Rule: "allow " + e}
	}
	return Decision{Rule: RuleNotAllowed, Severity: p.Severity.NotAllowed}
}

// Raise returns base raised by one step per bytes-out threshold reached,
// capped at critical.
func (p *Policy) Raise(base cargowatch.Severity, bytesOut int64) cargowatch.Severity {
	s := base
	for _, t := range p.Severity.Raise {
		if bytesOut >= t {
			s++
		}
	}
	return min(s, cargowatch.Critical)
}

// AllowedCountries returns the countries the global allow list and home
// admit, sorted; for display.
func (p *Policy) AllowedCountries() []string {
	set := map[string]bool{}
	for c := range p.allow {
		set[c] = true
	}
	for c := range p.home {
		set[c] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// assetAllow expands an asset's allow list, remembering the answer: the
// same few lists come with every conversation of the devices that have them.
func (p *Policy) assetAllow(entries []string) map[string]string {
	key := strings.Join(entries, ",")
	if m, ok := p.assetAllows[key]; ok {
		return m
	}
	m := expand(entries)
	if p.assetAllows == nil || len(p.assetAllows) > 10000 {
		p.assetAllows = map[string]map[string]string{}
	}
	p.assetAllows[key] = m
	return m
}

// ValidAllow reports whether an allow entry is a country code or a group
// name this policy knows, for checking assets files.
func ValidAllow(entry string) bool { return IsCountry(entry) || groups[entry] != nil }

// expand turns allow entries into country -> first entry admitting it.
func expand(entries []string) map[string]string {
	m := make(map[string]string)
	for _, e := range entries {
		members := groups[e]
		if members == nil {
			members = []string{e}
		}
		for _, c := range members {
			if _, ok := m[c]; !ok {
				m[c] = e
			}
		}
	}
	return m
}
