package geo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// JurisdictionEntry says that networks matched by ASN, prefix or AS
// organisation are operated under the law of Jurisdiction wherever the
// server sits. The yaml tags let the policy package read entries straight
// from its own file.
type JurisdictionEntry struct {
	Org          string   `yaml:"org"`
	Jurisdiction string   `yaml:"jurisdiction"` // ISO 3166-1 alpha-2; "" removes earlier matches (the server's country applies)
	ASNs         []uint32 `yaml:"asns,omitempty"`
	// Prefixes match addresses whatever their ASN; the most specific wins.
	Prefixes []netip.Prefix `yaml:"prefixes,omitempty"`
	// OrgContains are case-insensitive substrings of the AS organisation
	// an ASN database reports; a leading "^" anchors at its start.
	OrgContains []string `yaml:"org_contains,omitempty"`
	Reason      string   `yaml:"reason,omitempty"`
	Sources     []string `yaml:"sources,omitempty"`
}

// Limits on a loaded table, so a hostile policy file cannot grow memory
// without bound.
const (
	maxEntries        = 10000
	maxPerEntry       = 100000
	maxJurisdictionIn = 1 << 22 // bytes of YAML
)

// Validate checks one entry and normalises it: jurisdiction upper-cased,
// prefixes masked, org patterns lower-cased.
func (e *JurisdictionEntry) Validate() error {
	e.Org = strings.TrimSpace(e.Org)
	if e.Org == "" {
		return errors.New("entry has no org")
	}
	j := strings.ToUpper(strings.TrimSpace(e.Jurisdiction))
	if j != "" && !isAlpha2(j) {
		return fmt.Errorf("entry %q: jurisdiction %q is not an ISO 3166-1 alpha-2 code", e.Org, e.Jurisdiction)
	}
	e.Jurisdiction = j
	if len(e.ASNs) == 0 && len(e.Prefixes) == 0 && len(e.OrgContains) == 0 {
		return fmt.Errorf("entry %q: needs asns, prefixes or org_contains", e.Org)
	}
	if len(e.ASNs) > maxPerEntry || len(e.Prefixes) > maxPerEntry || len(e.OrgContains) > maxPerEntry {
		return fmt.Errorf("entry %q: more than %d asns, prefixes or org patterns", e.Org, maxPerEntry)
	}
	for _, a := range e.ASNs {
		if a == 0 {
			return fmt.Errorf("entry %q: ASN 0 is reserved", e.Org)
		}
	}
	for i, p := range e.Prefixes {
		if !p.IsValid() {
			return fmt.Errorf("entry %q: prefix %d is invalid", e.Org, i+1)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		e.Prefixes[i] = p
	}
	for i, s := range e.OrgContains {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || s == "^" {
			return fmt.Errorf("entry %q: empty org_contains pattern", e.Org)
		}
		e.OrgContains[i] = s
	}
	return nil
}

// Source is the one-line provenance put in Endpoint.JurisdictionSource.
func (e *JurisdictionEntry) Source() string {
	if len(e.Sources) > 0 {
		return e.Org + "; " + e.Sources[0]
	}
	return e.Org
}

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// ParseJurisdictions reads a YAML list of entries (the layout of
// jurisdictions.yaml) and validates each one. name is used in errors.
func ParseJurisdictions(name string, data []byte) ([]JurisdictionEntry, error) {
	if len(data) > maxJurisdictionIn {
		return nil, fmt.Errorf("jurisdictions: %s: %d bytes, more than the %d allowed", name, len(data), maxJurisdictionIn)
	}
	var es []JurisdictionEntry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&es); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("jurisdictions: %s: %w", name, err)
	}
	if len(es) > maxEntries {
		return nil, fmt.Errorf("jurisdictions: %s: %d entries, more than the %d allowed", name, len(es), maxEntries)
	}
	for i := range es {
		if err := es[i].Validate(); err != nil {
			return nil, fmt.Errorf("jurisdictions: %s: entry %d: %w", name, i+1, err)
		}
	}
	return es, nil
}

//go:embed jurisdictions.yaml
var builtinYAML []byte

// BuiltinJurisdictions returns a copy of the curated table shipped in the
// binary (jurisdictions.yaml).
func BuiltinJurisdictions() []JurisdictionEntry {
	es, err := ParseJurisdictions("jurisdictions.yaml", builtinYAML)
	if err != nil {
		// The file is part of the source tree and checked by the tests.
		panic(err)
	}
	return es
}

// table resolves an address (and the ASN and organisation known for it)
// to the entry that controls it. Precedence: prefix entries (most specific
// first), then ASN, then organisation pattern; among equals the entry added
// last wins, so policy overrides the shipped table.
type table struct {
	entries  []*JurisdictionEntry
	byASN    map[uint32]*JurisdictionEntry
	prefixes map[int]map[netip.Prefix]*JurisdictionEntry // by bits
	pbits    []int                                       // distinct prefix lengths, longest first
	orgs     []orgPattern                                // in reverse order of addition
}

type orgPattern struct {
	sub    string
	anchor bool
	e      *JurisdictionEntry
}

func newTable() *table {
	return &table{byASN: map[uint32]*JurisdictionEntry{}, prefixes: map[int]map[netip.Prefix]*JurisdictionEntry{}}
}

func (t *table) add(e JurisdictionEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if len(t.entries) >= maxEntries {
		return fmt.Errorf("entry %q: table already holds %d entries", e.Org, maxEntries)
	}
	p := &e
	t.entries = append(t.entries, p)
	for _, a := range e.ASNs {
		t.byASN[a] = p
	}
	for _, pf := range e.Prefixes {
		m := t.prefixes[pf.Bits()]
		if m == nil {
			m = map[netip.Prefix]*JurisdictionEntry{}
			t.prefixes[pf.Bits()] = m
			// IPv4 and IPv6 bit counts share keys; Addr.Prefix picks the right family.
			t.pbits = append(t.pbits, pf.Bits())
			slices.SortFunc(t.pbits, func(a, b int) int { return b - a })
		}
		m[pf] = p
	}
	var ps []orgPattern
	for _, s := range e.OrgContains {
		anchor := strings.HasPrefix(s, "^")
		ps = append(ps, orgPattern{sub: strings.TrimPrefix(s, "^"), anchor: anchor, e: p})
	}
	t.orgs = append(ps, t.orgs...)
	return nil
}

// match returns the entry for an address, or nil. org must be lower-case.
func (t *table) match(a netip.Addr, asn uint32, org string) *JurisdictionEntry {
	for _, bits := range t.pbits {
		if bits > a.BitLen() {
			continue
		}
		pf, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if e := t.prefixes[bits][pf]; e != nil {
			return e
		}
	}
	if asn != 0 {
		if e := t.byASN[asn]; e != nil {
			return e
		}
	}
	if org != "" {
		for _, p := range t.orgs {
			if p.anchor && strings.HasPrefix(org, p.sub) || !p.anchor && strings.Contains(org, p.sub) {
				return p.e
			}
		}
	}
	return nil
}

// asnOrg is the entry org for an ASN from the table, for display when no
// ASN database names it.
func (t *table) asnOrg(asn uint32) string {
	if e := t.byASN[asn]; e != nil {
		return e.Org
	}
	return ""
}
