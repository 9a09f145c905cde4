package asset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Host is one device of the inventory as the `assets` command shows it.
type Host struct {
	Addr   netip.Addr
	MAC    string // "" when unknown or when the MAC is a router's
	Vendor string // IEEE registry name of the MAC's block
	Names  []string
	// NameSources says where each of Names came from (dhcp, dns,
	// netbios, mdns, assets).
	NameSources []string
	// Roles are the assets file's role (first) and the behavioural roles.
	Roles           []string
	AssetRole       string
	DiscoveredRoles []string
	// Protocols are the named services the host offered or used.
	Protocols       []string
	Offered, Used   []string // services offered (as responder) and used
	OTServed        []string
	OTUsed          []string
	OTFunctions     map[string]int64
	Writes, Program int64 // as the client: device-changing operations and program transfers sent
	Devices         []string
	Zone, Owner     string
	AssetName       string
	Known           bool // named by the assets file (its own address or MAC, not only a range)
	Seen            bool // seen in traffic (an assets-file row never seen has Seen false)
	Local           bool
	OT              bool
	Country, Org    string // for remote hosts
	FirstSeen       time.Time
	LastSeen        time.Time
	Conns           int64
	BytesOut        int64
	BytesIn         int64
	Peers           []netip.Addr // sorted, at most MaxPeers
	PeersDropped    int64
}

func isKnown(e *Entry, h *host) bool {
	if e == nil {
		return false
	}
	return (e.Prefix.IsSingleIP() && e.Prefix.Addr() == h.addr) || (e.MAC != "" && contains(h.macs, e.MAC))
}

// hostMACs are h's MACs without those of routers (macUse.gateway).
func (d *Discovery) hostMACs(h *host) []string {
	var out []string
	for _, m := range h.macs {
		if u := d.macIPs[m]; u == nil || !u.gateway() {
			out = append(out, m)
		}
	}
	return out
}

func (d *Discovery) hostNames(h *host) []nameSrc {
	out := append([]nameSrc(nil), d.names[h.addr]...)
	for _, m := range d.hostMACs(h) {
		for _, n := range d.macNames[m] {
			if !hasName(out, n.name) {
				out = append(out, n)
			}
		}
	}
	return out
}

func hasName(ns []nameSrc, name string) bool {
	for _, n := range ns {
		if strings.EqualFold(n.name, name) {
			return true
		}
	}
	return false
}

func (d *Discovery) vendorOf(h *host) string {
	for _, m := range d.hostMACs(h) {
		if v := Vendor(m); v != "" {
			return v
		}
	}
	return ""
}

// Hosts returns the inventory sorted by address: every tracked host, and
// the assets file's single-address rows that traffic never showed.
func (d *Discovery) Hosts() []Host {
	out := make([]Host, 0, len(d.hosts))
	seen := map[netip.Addr]bool{}
	for _, h := range d.hosts {
		out = append(out, d.host(h))
		seen[h.addr] = true
	}
	if d.cfg.File != nil {
		for _, e := range d.cfg.File.Entries {
			if !e.Prefix.IsValid() || !e.Prefix.IsSingleIP() || seen[e.Prefix.Addr()] {
				continue
			}
			seen[e.Prefix.Addr()] = true
			hs := Host{Addr: e.Prefix.Addr(), MAC: e.MAC, Vendor: Vendor(e.MAC), AssetName: e.Name, AssetRole: e.Role,
				Zone: e.Zone, Owner: e.Owner, Known: true, Local: true, OT: IsOTRole(e.Role) || IsOTZone(e.Zone)}
			if e.Role != "" {
				hs.Roles = []string{e.Role}
			}
			if e.Name != "" {
				hs.Names, hs.NameSources = []string{e.Name}, []string{"assets"}
			}
			out = append(out, hs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

func (d *Discovery) host(h *host) Host {
	e := d.entryOf(h)
	hs := Host{Addr: h.addr, Local: h.local, Seen: true, FirstSeen: h.first, LastSeen: h.last, Conns: h.conns,
		BytesOut: h.bytesOut, BytesIn: h.bytesIn, PeersDropped: h.peersDrop, Known: isKnown(e, h), OT: h.isOT(e)}
	if macs := d.hostMACs(h); len(macs) > 0 {
		hs.MAC = macs[0]
	}
	hs.Vendor = d.vendorOf(h)
	switch {
	case e != nil:
		hs.AssetName, hs.AssetRole, hs.Zone, hs.Owner = e.Name, e.Role, e.Zone, e.Owner
	case h.asset != nil:
		hs.AssetName, hs.AssetRole, hs.Zone, hs.Owner = h.asset.Name, h.asset.Role, h.asset.Zone, h.asset.Owner
	}
	if hs.Known && hs.AssetName != "" {
		hs.Names, hs.NameSources = append(hs.Names, hs.AssetName), append(hs.NameSources, "assets")
	}
	for _, n := range d.hostNames(h) {
		if !containsFold(hs.Names, n.name) {
			hs.Names, hs.NameSources = append(hs.Names, n.name), append(hs.NameSources, n.source)
		}
	}
	hs.DiscoveredRoles = h.roles()
	if hs.AssetRole != "" {
		hs.Roles = append(hs.Roles, hs.AssetRole)
	}
	for _, r := range hs.DiscoveredRoles {
		if !contains(hs.Roles, r) {
			hs.Roles = append(hs.Roles, r)
		}
	}
	hs.Offered, hs.Used = sortedCounts(h.offered), sortedCounts(h.used)
	protos := map[string]bool{}
	for _, s := range append(append([]string(nil), hs.Offered...), hs.Used...) {
		if !strings.Contains(s, "/") { // "tcp/8080" is a port, not a protocol
			protos[s] = true
		}
	}
	if o := h.ot; o != nil {
		hs.OTServed, hs.OTUsed = sortedCounts(o.served), sortedCounts(o.used)
		for _, p := range append(append([]string(nil), hs.OTServed...), hs.OTUsed...) {
			protos[p] = true
		}
		if len(o.functions) > 0 {
			hs.OTFunctions = map[string]int64{}
			for k, v := range o.functions {
				hs.OTFunctions[k] = v
			}
		}
		hs.Writes, hs.Program, hs.Devices = o.writesSent, o.programSent, append([]string(nil), o.devices...)
	}
	hs.Protocols = sortedKeys(protos)
	ps := map[netip.Addr]bool{}
	for k := range h.peers {
		ps[k.addr] = true
	}
	for a := range ps {
		hs.Peers = append(hs.Peers, a)
	}
	sort.Slice(hs.Peers, func(i, j int) bool { return hs.Peers[i].Less(hs.Peers[j]) })
	if !h.local {
		if r := d.remotes[h.addr]; r != nil {
			hs.Country, hs.Org = r.Country, r.Org
		}
	}
	return hs
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Record is the JSON line of one host (`assets --format jsonl`).
func (h *Host) Record() map[string]any {
	peers := make([]string, len(h.Peers))
	for i, p := range h.Peers {
		peers[i] = p.String()
	}
	r := map[string]any{
		"ip": h.Addr.String(), "mac": h.MAC, "vendor": h.Vendor, "names": nonNil(h.Names), "name_sources": nonNil(h.NameSources),
		"roles": nonNil(h.Roles), "discovered_roles": nonNil(h.DiscoveredRoles), "asset_role": h.AssetRole, "asset_name": h.AssetName,
		"protocols": nonNil(h.Protocols), "services_offered": nonNil(h.Offered), "services_used": nonNil(h.Used),
		"zone": h.Zone, "owner": h.Owner, "known": h.Known, "seen": h.Seen, "local": h.Local, "ot": h.OT,
		"first_seen": rfc3339(h.FirstSeen), "last_seen": rfc3339(h.LastSeen),
		"conns": h.Conns, "bytes_out": h.BytesOut, "bytes_in": h.BytesIn,
		"peers": peers, "peer_count": len(peers), "peers_dropped": h.PeersDropped,
	}
	if len(h.OTServed) > 0 || len(h.OTUsed) > 0 {
		r["ot_served"], r["ot_used"] = nonNil(h.OTServed), nonNil(h.OTUsed)
	}
	if len(h.OTFunctions) > 0 {
		r["ot_functions"] = h.OTFunctions
	}
	if h.Writes > 0 {
		r["writes"] = h.Writes
	}
	if h.Program > 0 {
		r["program_transfers"] = h.Program
	}
	if len(h.Devices) > 0 {
		r["devices"] = h.Devices
	}
	if h.Country != "" {
		r["country"] = h.Country
	}
	if h.Org != "" {
		r["org"] = h.Org
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Map is the communication map: hosts and the peers they talked to, and
// one edge per client, server and protocol.
type Map struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one address of the map.
type Node struct {
	ID      string   `json:"id"` // the address
	Label   string   `json:"label"`
	Roles   []string `json:"roles"`
	Zone    string   `json:"zone,omitempty"`
	Known   bool     `json:"known"`
	Local   bool     `json:"local"`
	OT      bool     `json:"ot"`
	Vendor  string   `json:"vendor,omitempty"`
	Country string   `json:"country,omitempty"`
	Org     string   `json:"org,omitempty"`
}

// Edge is what a client exchanged with a server over one protocol.
type Edge struct {
	Src       string    `json:"src"` // client
	Dst       string    `json:"dst"` // server
	Protocol  string    `json:"protocol"`
	Port      uint16    `json:"port"`
	Conns     int64     `json:"conns"`
	Bytes     int64     `json:"bytes"`
	SrcBytes  int64     `json:"src_bytes"`
	DstBytes  int64     `json:"dst_bytes"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Map builds the communication map.
func (d *Discovery) Map() *Map {
	m := &Map{Nodes: []Node{}, Edges: []Edge{}}
	nodes := map[netip.Addr]bool{}
	type ek struct {
		src, dst netip.Addr
		proto    string
	}
	edges := map[ek]bool{}
	for _, hs := range d.Hosts() {
		if !hs.Seen {
			continue
		}
		nodes[hs.Addr] = true
		label := hs.Addr.String()
		if len(hs.Names) > 0 {
			label = hs.Names[0]
		}
		m.Nodes = append(m.Nodes, Node{ID: hs.Addr.String(), Label: label, Roles: nonNil(hs.Roles), Zone: hs.Zone, Known: hs.Known,
			Local: hs.Local, OT: hs.OT, Vendor: hs.Vendor, Country: hs.Country, Org: hs.Org})
	}
	var extra []netip.Addr
	for _, h := range d.hosts {
		for k, p := range h.peers {
			src, dst := h.addr, k.addr
			sb, db := p.bytesOut, p.bytesIn
			if !p.peerIsServer {
				src, dst, sb, db = dst, src, db, sb
			}
			key := ek{src, dst, k.proto}
			if edges[key] {
				continue // the other side's entry for the same conversations
			}
			edges[key] = true
			m.Edges = append(m.Edges, Edge{Src: src.String(), Dst: dst.String(), Protocol: k.proto, Port: p.port, Conns: p.conns,
				Bytes: sb + db, SrcBytes: sb, DstBytes: db, FirstSeen: p.first.UTC(), LastSeen: p.last.UTC()})
			if !nodes[k.addr] {
				nodes[k.addr] = true
				extra = append(extra, k.addr)
			}
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Less(extra[j]) })
	for _, a := range extra {
		n := Node{ID: a.String(), Label: a.String(), Roles: []string{}}
		if r := d.remotes[a]; r != nil {
			n.Country, n.Org = r.Country, r.Org
			if r.Name != "" {
				n.Label = r.Name
			}
		}
		if zone, e := d.zoneOf(a); e != nil || zone != "" {
			n.Zone, n.Local = zone, true
		}
		if ns := d.names[a]; len(ns) > 0 && n.Country == "" {
			n.Label = ns[0].name
		}
		m.Nodes = append(m.Nodes, n)
	}
	sort.Slice(m.Edges, func(i, j int) bool {
		a, b := &m.Edges[i], &m.Edges[j]
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		if a.Dst != b.Dst {
			return a.Dst < b.Dst
		}
		return a.Protocol < b.Protocol
	})
	return m
}

// WriteJSON writes the map as one JSON document.
func (m *Map) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(m)
}

// WriteDOT writes the map as a Graphviz digraph: one cluster per zone,
// OT hosts as boxes with a double border, Internet peers as dashed
// ellipses, edges from client to server labelled with protocol and bytes.
// Every identifier and label is a quoted string, so no address or name
// can break the syntax.
func (m *Map) WriteDOT(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "digraph cargowatch {")
	fmt.Fprintln(bw, `  graph [rankdir="LR", fontname="Helvetica", label="cargowatch communication map"];`)
	fmt.Fprintln(bw, `  node [fontname="Helvetica", fontsize="10"];`)
	fmt.Fprintln(bw, `  edge [fontname="Helvetica", fontsize="8"];`)
	byZone := map[string][]Node{}
	var zones []string
	for _, n := range m.Nodes {
		if _, ok := byZone[n.Zone]; !ok {
			zones = append(zones, n.Zone)
		}
		byZone[n.Zone] = append(byZone[n.Zone], n)
	}
	sort.Strings(zones)
	for i, z := range zones {
		indent := "  "
		if z != "" {
			fmt.Fprintf(bw, "  subgraph %s {\n    label=%s;\n    style=\"rounded\";\n", dotID(fmt.Sprintf("cluster_%d", i)), dotID(z))
			indent = "    "
		}
		for _, n := range byZone[z] {
			label := n.Label
			if n.Label != n.ID {
				label += "\n" + n.ID
			}
			if len(n.Roles) > 0 {
				label += "\n" + strings.Join(n.Roles, ", ")
			}
			if n.Country != "" {
				label += "\n" + n.Country
			}
			attrs := []string{"label=" + dotID(label)}
			switch {
			case n.OT:
				attrs = append(attrs, `shape="box"`, `peripheries="2"`)
			case n.Local:
				attrs = append(attrs, `shape="box"`)
			default:
				attrs = append(attrs, `shape="ellipse"`, `style="dashed"`)
			}
			fmt.Fprintf(bw, "%s%s [%s];\n", indent, dotID(n.ID), strings.Join(attrs, ", "))
		}
		if z != "" {
			fmt.Fprintln(bw, "  }")
		}
	}
	for _, e := range m.Edges {
		fmt.Fprintf(bw, "  %s -> %s [label=%s];\n", dotID(e.Src), dotID(e.Dst),
			dotID(fmt.Sprintf("%s\n%d conns, %s", e.Protocol, e.Conns, humanBytes(e.Bytes))))
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

// dotID quotes s as a DOT string: backslash and quote escaped, newlines
// as the \n escape Graphviz centres lines with.
func dotID(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			if r < 0x20 {
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

var _ cw.Detector = (*Discovery)(nil)
