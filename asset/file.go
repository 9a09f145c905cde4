// Package asset knows the hub's devices: the assets file that names them
// (CSV or YAML), and the passive inventory (Discovery) that learns hosts,
// vendors, names, services, OT roles and peers from traffic and reports
// ot_egress and new_asset findings. See docs/ASSETS.md.
//
// Memory is bounded whatever the input: Discovery keeps at most MaxHosts
// hosts (DefaultMaxHosts, 65,536), MaxPeers peer entries per host
// (DefaultMaxPeers, 256) and MaxPeerEntries in all (DefaultMaxPeerEntries,
// 262,144): about 150 MB with every cap reached (BenchmarkDiscoveryFull).
// What does not fit is counted, not kept.
package asset

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	cw "github.com/cargowatch/cargowatch"
)

// Entry is one line of an assets file.
type Entry struct {
	Name   string
	Prefix netip.Prefix // a single address is a /32 or /128
	MAC    string       // lower-case colon form, "" when not given
	Role   string
	Zone   string
	Owner  string
	Allow  []string // allowed destinations (countries, groups or CIDRs), kept for policy
	// ZoneAllow lists the zones this entry's zone may talk to besides
	// itself ("internet" for home-country Internet peers). Rows of one
	// zone add up: the union is the zone's conduit list.
	ZoneAllow []string
	Line      int
}

// Inventory maps addresses to the assets file's entries.
type Inventory struct {
	byAddr   map[netip.Addr]*Entry
	prefixes []*Entry // CIDR entries, longest prefix first
	byMAC    map[string]*Entry
	Entries  []*Entry
	// conduits maps a zone to the zones it may reach, for zones whose rows
	// declare zone_allow; a zone absent here declares nothing.
	conduits map[string]map[string]bool
}

// ZoneInternet in zone_allow lets a zone's hosts talk to Internet peers in
// the policy's home jurisdictions without an ot_egress finding.
const ZoneInternet = "internet"

// maxFile bounds what LoadFile reads: about a million assets. Anything
// larger, or a device or pipe that never ends, is a wrong path.
const maxFile = 64 << 20

// LoadFile reads an assets file; the format is chosen by content (YAML
// starts with a list item or a "key:" line without commas), so the file's
// name does not matter.
func LoadFile(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("assets: %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("assets: %s: larger than %d bytes, not an assets file", path, maxFile)
	}
	return Parse(path, data)
}

// Parse reads assets from data; name is used in error messages.
func Parse(name string, data []byte) (*Inventory, error) {
	trimmed := bytes.TrimSpace(data)
	var entries []*Entry
	var err error
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	isYAML := bytes.HasPrefix(trimmed, []byte("-")) ||
		(bytes.IndexByte(first, ':') > 0 && bytes.IndexByte(first, ',') < 0)
	if isYAML {
		entries, err = parseYAML(name, data)
	} else {
		entries, err = parseCSV(name, data)
	}
	if err != nil {
		return nil, err
	}
	if err := checkZones(name, entries); err != nil {
		return nil, err
	}
	inv := &Inventory{byAddr: map[netip.Addr]*Entry{}, byMAC: map[string]*Entry{}, Entries: entries, conduits: map[string]map[string]bool{}}
	for _, e := range entries {
		if len(e.ZoneAllow) > 0 {
			m := inv.conduits[e.Zone]
			if m == nil {
				m = map[string]bool{}
				inv.conduits[e.Zone] = m
			}
			for _, z := range e.ZoneAllow {
				m[z] = true
			}
		}
		if e.Prefix.IsValid() {
			if e.Prefix.IsSingleIP() {
				inv.byAddr[e.Prefix.Addr()] = e
			} else {
				inv.prefixes = append(inv.prefixes, e)
			}
		}
		if e.MAC != "" {
			inv.byMAC[e.MAC] = e
		}
	}
	sort.SliceStable(inv.prefixes, func(i, j int) bool { return inv.prefixes[i].Prefix.Bits() > inv.prefixes[j].Prefix.Bits() })
	return inv, nil
}

var csvColumns = []string{"name", "address", "role", "zone", "owner", "allow", "zone_allow"}

func parseCSV(name string, data []byte) ([]*Entry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("assets: %s: %w", name, csvErr(err))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !contains(csvColumns, h) {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("assets: %s:%d: unknown column %q (want %s)", name, line, h, strings.Join(csvColumns, ","))
		}
		col[h] = i
	}
	if _, ok := col["address"]; !ok {
		return nil, fmt.Errorf("assets: %s:1: header lacks the \"address\" column", name)
	}
	var out []*Entry
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("assets: %s: %w", name, csvErr(err))
		}
		line, _ := r.FieldPos(0)
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		e := &Entry{Name: get("name"), Role: get("role"), Zone: get("zone"), Owner: get("owner"), Line: line}
		e.Allow = splitList(get("allow"))
		e.ZoneAllow = splitList(get("zone_allow"))
		if err := e.setAddress(get("address")); err != nil {
			return nil, fmt.Errorf("assets: %s:%d: %w", name, line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %w", pe.Line, pe.Err)
	}
	return err
}

type yamlEntry struct {
	Name    string   `yaml:"name"`
	Address string   `yaml:"address"`
	Role    string   `yaml:"role"`
	Zone    string   `yaml:"zone"`
	Owner   string   `yaml:"owner"`
	Allow   []string `yaml:"allow"`
	// ZoneAllow takes a list or one string ("a;b" like a CSV cell).
	ZoneAllow yaml.Node `yaml:"zone_allow"`
}

func parseYAML(name string, data []byte) ([]*Entry, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("assets: %s: %w", name, err)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	list := root.Content[0]
	if list.Kind == yaml.MappingNode {
		if len(list.Content) != 2 || list.Content[0].Value != "assets" {
			return nil, fmt.Errorf("assets: %s:%d: want a list of assets or a single key \"assets\"", name, list.Line)
		}
		list = list.Content[1]
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("assets: %s:%d: want a list of assets", name, list.Line)
	}
	var out []*Entry
	for _, n := range list.Content {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("assets: %s:%d: an asset must be a mapping", name, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !contains(csvColumns, k) {
				return nil, fmt.Errorf("assets: %s:%d: unknown key %q", name, n.Content[i].Line, k)
			}
		}
		var y yamlEntry
		if err := n.Decode(&y); err != nil {
			return nil, fmt.Errorf("assets: %s:%d: %w", name, n.Line, err)
		}
		e := &Entry{Name: y.Name, Role: y.Role, Zone: y.Zone, Owner: y.Owner, Allow: y.Allow, Line: n.Line}
		switch y.ZoneAllow.Kind {
		case 0:
		case yaml.ScalarNode:
			e.ZoneAllow = splitList(y.ZoneAllow.Value)
		case yaml.SequenceNode:
			for _, z := range y.ZoneAllow.Content {
				if z.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("assets: %s:%d: zone_allow: want zone names", name, z.Line)
				}
				e.ZoneAllow = append(e.ZoneAllow, splitList(z.Value)...)
			}
		default:
			return nil, fmt.Errorf("assets: %s:%d: zone_allow: want a zone name or a list of them", name, y.ZoneAllow.Line)
		}
		if err := e.setAddress(y.Address); err != nil {
			return nil, fmt.Errorf("assets: %s:%d: %w", name, n.Line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// checkZones rejects conduit lists that cannot mean what their author
// wanted: zone_allow on a row without a zone, or naming a zone that no row
// declares (a typo would otherwise silently allow nothing).
func checkZones(name string, entries []*Entry) error {
	zones := map[string]bool{}
	for _, e := range entries {
		if e.Zone != "" {
			zones[e.Zone] = true
		}
	}
	for _, e := range entries {
		if len(e.ZoneAllow) > 0 && e.Zone == "" {
			return fmt.Errorf("assets: %s:%d: zone_allow without a zone: say which zone it lets out", name, e.Line)
		}
		for _, z := range e.ZoneAllow {
			if z != ZoneInternet && !zones[z] {
				return fmt.Errorf("assets: %s:%d: zone_allow %q: no row has that zone (zones: %s, or %q)", name, e.Line, z, strings.Join(sortedKeys(zones), ", "), ZoneInternet)
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Conduits reports whether zone declares a conduit list (zone_allow) and,
// if so, whether it lets the zone talk to peerZone ("" for a host the
// assets file does not place, ZoneInternet for an Internet peer). A host's
// own zone is always allowed.
func (inv *Inventory) Conduits(zone, peerZone string) (declared, allowed bool) {
	if inv == nil {
		return false, false
	}
	m, ok := inv.conduits[zone]
	if !ok {
		return false, false
	}
	return true, peerZone == zone || m[peerZone]
}

// setAddress accepts an IP, a CIDR, a MAC, or "IP MAC" / "IP;MAC".
func (e *Entry) setAddress(s string) error {
	if s == "" {
		return errors.New("empty address")
	}
	for _, part := range splitList(s) {
		if p, err := netip.ParsePrefix(part); err == nil {
			e.Prefix = p.Masked()
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			e.Prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			continue
		}
		if hw, err := net.ParseMAC(part); err == nil && len(hw) == 6 {
			e.MAC = hw.String()
			continue
		}
		return fmt.Errorf("address %q: not an IP, CIDR or MAC", part)
	}
	return nil
}

// Lookup returns the entry for an address or MAC, nil when none matches.
func (inv *Inventory) Lookup(a netip.Addr, mac string) *Entry {
	if inv == nil {
		return nil
	}
	if e, ok := inv.byAddr[a.Unmap()]; ok {
		return e
	}
	if mac != "" {
		if e, ok := inv.byMAC[mac]; ok {
			return e
		}
	}
	for _, e := range inv.prefixes {
		if e.Prefix.Contains(a.Unmap()) {
			return e
		}
	}
	return nil
}

// Enrich names the local sides of c from the inventory. A named address is
// local even when it is not in a private range: the assets file is the
// analyst's word.
func (inv *Inventory) Enrich(c *cw.Conn) {
	for _, ep := range []*cw.Endpoint{&c.Orig, &c.Resp} {
		if e := inv.Lookup(ep.Addr, ep.MAC); e != nil {
			ep.Asset = &cw.Asset{Name: e.Name, Role: e.Role, Zone: e.Zone, Owner: e.Owner, Allow: e.Allow}
			if !ep.Local {
				ep.Local = true
				ep.Country, ep.ASN, ep.Org, ep.Jurisdiction, ep.JurisdictionSource = "", 0, "", "", ""
			}
		}
	}
}

// splitList splits the lists an assets file cell may hold ("a;b", "a b", "a|b").
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ';' || r == '|' })
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
