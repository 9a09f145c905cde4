package asset

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Bounds of Discovery (docs/ASSETS.md, "Bounds"). Beyond them new hosts,
// peers and names are counted in Stats and otherwise ignored, so a scan
// of a /8 or a flood of forged DHCP names costs counters, not memory.
const (
	DefaultMaxHosts       = 65_536  // hosts (local, plus remote OT servers and clients)
	DefaultMaxPeers       = 256     // peer × protocol entries per host
	DefaultMaxPeerEntries = 262_144 // peer entries over all hosts
	DefaultBaseline       = 7 * 24 * time.Hour

	maxMACs      = 4  // MACs remembered per host
	maxNames     = 8  // names per host (and per MAC for DHCP discovers)
	maxServices  = 32 // services offered, and used, per host
	maxFunctions = 32 // OT function names per host and per peer entry
	maxDevices   = 4  // OT device strings per host
	maxUIDs      = 4  // flow uids kept per peer entry, for evidence
	maxRemotes   = 65_536
	// A MAC seen with two or more local IPv4 addresses (or four IPv6
	// ones: a host has a link-local and a few global ones) is a router's
	// or a proxy's: frames from hosts behind it all carry it.
	gatewayMinIPv4 = 2
	gatewayMinIPv6 = 4
	maxNameLen     = 253
	maxServiceName = 32
)

// History is the store's memory of hosts for new_asset: RecordHosts adds
// this run's sightings and returns each host's earliest first sighting it
// holds (these included) and when the history starts (its earliest
// sighting of any host). cmd/cargowatch adapts sqlite to it.
type History interface {
	RecordHosts(ctx context.Context, seen []Sighting) (first map[netip.Addr]time.Time, start time.Time, err error)
}

// Sighting is one host's span in this run.
type Sighting struct {
	Addr        netip.Addr
	MAC         string
	First, Last time.Time
}

// Config sets up Discovery. The zero value discovers with default bounds,
// no assets file, no home country (every located Internet peer of an OT
// host is then abroad) and no history (no new_asset findings).
type Config struct {
	File *Inventory // the assets file, nil when none
	// Home lists the policy's home jurisdictions (ISO country codes).
	Home []string
	// Watch maps watched jurisdictions (ISO codes) to their legal basis.
	Watch map[string]string
	// History enables new_asset; Baseline (DefaultBaseline when zero) is
	// how long after the history starts a first sighting counts as new.
	History  History
	Baseline time.Duration

	MaxHosts, MaxPeers, MaxPeerEntries int
	Log                                *slog.Logger
}

// Stats counts what the bounds dropped.
type Stats struct {
	HostsDropped int64 // conversations of hosts beyond MaxHosts
	PeersDropped int64 // conversations with peers beyond the per-host or total caps
	NamesDropped int64 // names beyond the caps
}

// Discovery is the passive inventory: a cw.Detector that learns hosts from
// every Conn it observes and concludes ot_egress and new_asset findings.
// It is not safe for concurrent use (no Detector is).
type Discovery struct {
	cfg   Config
	home  map[string]bool
	hosts map[netip.Addr]*host
	// names holds names learnt for an address (DNS answers, DHCP,
	// NetBIOS, mDNS) whether or not it is a host yet; attached when the
	// inventory is read.
	names    map[netip.Addr][]nameSrc
	macNames map[string][]nameSrc // DHCP names of clients with no address yet
	macIPs   map[string]*macUse
	remotes  map[netip.Addr]*cw.Endpoint
	peerN    int
	stats    Stats
}

type nameSrc struct{ name, source string }

type macUse struct {
	v4     [gatewayMinIPv4]netip.Addr
	v6     [gatewayMinIPv6]netip.Addr
	n4, n6 int
}

func (u *macUse) gateway() bool { return u.n4 >= gatewayMinIPv4 || u.n6 >= gatewayMinIPv6 }

type host struct {
	addr        netip.Addr
	local       bool
	macs        []string
	first, last time.Time
	conns       int64
	bytesOut    int64
	bytesIn     int64
	asset       *cw.Asset // from enrichment, when the assets file names it
	offered     map[string]int64
	used        map[string]int64
	ot          *otInfo
	peers       map[peerKey]*peer
	peersDrop   int64
}

// otInfo is what OT and remote-access parsers told of a host's flows.
type otInfo struct {
	served, used       map[string]int64 // protocol -> conns
	functions          map[string]int64
	writesSent         int64 // as the client: operations that change a device
	programSent        int64 // as the client: program or firmware transfers
	writesRecv, progRx int64 // as the server
	devices            []string
}

type peerKey struct {
	addr  netip.Addr
	proto string
}

// peer is what a host exchanged with one peer over one protocol.
type peer struct {
	peerIsServer bool
	port         uint16 // the server's port
	conns        int64
	bytesOut     int64 // from the host to the peer
	bytesIn      int64
	first, last  time.Time
	uids         []string
	// functions counts OT operations by name; a short slice rather than
	// a map because most peers have none and OT ones a handful.
	functions []fnCount
	writes    int64
	program   int64
}

// NewDiscovery returns an empty inventory.
func NewDiscovery(cfg Config) *Discovery {
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = DefaultMaxHosts
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxPeerEntries <= 0 {
		cfg.MaxPeerEntries = DefaultMaxPeerEntries
	}
	if cfg.Baseline <= 0 {
		cfg.Baseline = DefaultBaseline
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{cfg: cfg, home: map[string]bool{}, hosts: map[netip.Addr]*host{},
		names: map[netip.Addr][]nameSrc{}, macNames: map[string][]nameSrc{}, macIPs: map[string]*macUse{},
		remotes: map[netip.Addr]*cw.Endpoint{}}
	for _, h := range cfg.Home {
		d.home[h] = true
	}
	return d
}

// Name is the detector's name.
func (d *Discovery) Name() string { return "assets" }

// Stats returns what the bounds dropped so far.
func (d *Discovery) Stats() Stats { return d.stats }

// SetBaseline changes the new_asset baseline (DefaultBaseline when <= 0).
func (d *Discovery) SetBaseline(b time.Duration) {
	if b <= 0 {
		b = DefaultBaseline
	}
	d.cfg.Baseline = b
}

// Observe learns from one Conn.
func (d *Discovery) Observe(c *cw.Conn) {
	svc := serviceOf(c)
	serverIsOrig := c.OT != nil && c.OT.ServerIsOrig
	// Remote hosts enter the inventory only as OT servers or clients: an
	// office PC's ssh to a code host makes that host no asset of ours.
	otConn := otProtocols[svc]
	first, last := c.TS, c.TS.Add(max(c.Duration, 0))
	cli, srv := &c.Orig, &c.Resp
	cliBytes, srvBytes := connBytes(c)
	if serverIsOrig {
		cli, srv = srv, cli
		cliBytes, srvBytes = srvBytes, cliBytes
	}
	// A service counts as offered only when the server answered, so a
	// port scan does not fill the inventory with closed ports.
	answered := svc != "" || srvBytes > 0
	label := svc
	if label == "" && srv.Port != 0 {
		label = c.Proto + "/" + strconv.Itoa(int(srv.Port))
	}
	ch := d.track(cli, otConn, first, last)
	sh := d.track(srv, otConn, first, last)
	if ch != nil {
		ch.bytesOut += cliBytes
		ch.bytesIn += srvBytes
		if svc != "" {
			addCount(&ch.used, svc, maxServices)
		}
		d.addPeer(ch, srv, peerKey{srv.Addr.Unmap(), label}, true, srv.Port, c, cliBytes, srvBytes, first, last)
	}
	if sh != nil {
		sh.bytesOut += srvBytes
		sh.bytesIn += cliBytes
		if answered && label != "" {
			addCount(&sh.offered, label, maxServices)
		}
		d.addPeer(sh, cli, peerKey{cli.Addr.Unmap(), label}, false, srv.Port, c, srvBytes, cliBytes, first, last)
	}
	if c.OT != nil || otProtocols[svc] || remoteAccess[svc] {
		proto := svc
		if c.OT != nil && c.OT.Protocol != "" {
			proto = clip(c.OT.Protocol, maxServiceName)
		}
		if ch != nil {
			o := ch.otInfo()
			addCount(&o.used, proto, maxServices)
			if c.OT != nil {
				o.writesSent += int64(c.OT.Writes)
				o.programSent += int64(c.OT.Program)
				for _, f := range functionNames(c.OT.Functions) {
					addCountN(&o.functions, f, int64(c.OT.Functions[f]), maxFunctions)
				}
			}
		}
		if sh != nil {
			o := sh.otInfo()
			addCount(&o.served, proto, maxServices)
			if c.OT != nil {
				o.writesRecv += int64(c.OT.Writes)
				o.progRx += int64(c.OT.Program)
				for _, f := range functionNames(c.OT.Functions) {
					addCountN(&o.functions, f, int64(c.OT.Functions[f]), maxFunctions)
				}
				if dev := clip(c.OT.Device, 128); dev != "" && len(o.devices) < maxDevices && !contains(o.devices, dev) {
					o.devices = append(o.devices, dev)
				}
			}
		}
	}
	d.learnNames(c)
}

// track returns the host record of ep, creating it for a local address or,
// for OT conversations, a remote one (a PLC behind a cellular router is an
// asset too); nil for anything else or beyond the cap.
func (d *Discovery) track(ep *cw.Endpoint, otConn bool, first, last time.Time) *host {
	a := ep.Addr.Unmap()
	if !hostAddr(a) || (!ep.Local && !otConn) {
		return nil
	}
	// Frames to a group MAC go to a subnet broadcast (10.0.0.255) or
	// multicast address, which is no host either.
	if ep.MAC != "" && !unicastMAC(ep.MAC) {
		return nil
	}
	h := d.hosts[a]
	if h == nil {
		if len(d.hosts) >= d.cfg.MaxHosts {
			d.stats.HostsDropped++
			return nil
		}
		h = &host{addr: a, first: first, last: last, peers: map[peerKey]*peer{}}
		d.hosts[a] = h
	}
	h.local = h.local || ep.Local
	h.conns++
	if first.Before(h.first) || h.first.IsZero() {
		h.first = first
	}
	if last.After(h.last) {
		h.last = last
	}
	if ep.Asset != nil && h.asset == nil {
		as := *ep.Asset
		h.asset = &as
	}
	// A remote address's frames carry the router's MAC, not its own.
	if ep.Local && ep.MAC != "" && unicastMAC(ep.MAC) {
		// Only a new (address, MAC) pair can tell more of the MAC's use.
		if !contains(h.macs, ep.MAC) {
			if len(h.macs) < maxMACs {
				h.macs = append(h.macs, ep.MAC)
			}
			d.useMAC(ep.MAC, a)
		}
	}
	return h
}

func (d *Discovery) useMAC(mac string, a netip.Addr) {
	u := d.macIPs[mac]
	if u == nil {
		if len(d.macIPs) >= d.cfg.MaxHosts {
			return
		}
		u = &macUse{}
		d.macIPs[mac] = u
	}
	ips, n := u.v4[:], &u.n4
	if a.Is6() {
		ips, n = u.v6[:], &u.n6
	}
	if *n >= len(ips) || slices.Contains(ips[:*n], a) {
		return
	}
	ips[*n] = a
	*n++
}

func (d *Discovery) addPeer(h *host, ep *cw.Endpoint, k peerKey, peerIsServer bool, port uint16, c *cw.Conn, out, in int64, first, last time.Time) {
	if !k.addr.IsValid() {
		return
	}
	p := h.peers[k]
	if p == nil {
		if len(h.peers) >= d.cfg.MaxPeers || d.peerN >= d.cfg.MaxPeerEntries {
			h.peersDrop++
			d.stats.PeersDropped++
			return
		}
		p = &peer{peerIsServer: peerIsServer, port: port, first: first, last: last}
		h.peers[k] = p
		d.peerN++
	}
	p.conns++
	p.bytesOut += out
	p.bytesIn += in
	if first.Before(p.first) {
		p.first = first
	}
	if last.After(p.last) {
		p.last = last
	}
	if c.UID != "" && len(p.uids) < maxUIDs {
		p.uids = append(p.uids, clip(c.UID, 64))
	}
	if c.OT != nil {
		p.writes += int64(c.OT.Writes)
		p.program += int64(c.OT.Program)
		for _, f := range functionNames(c.OT.Functions) {
			p.addFunction(f, c.OT.Functions[f])
		}
	}
	if !ep.Local {
		a := ep.Addr.Unmap()
		if _, ok := d.remotes[a]; !ok && len(d.remotes) < maxRemotes {
			r := cw.Endpoint{Addr: a, Name: clip(ep.Name, maxNameLen), Country: ep.Country, ASN: ep.ASN, Org: ep.Org,
				Jurisdiction: ep.Jurisdiction, JurisdictionSource: ep.JurisdictionSource}
			d.remotes[a] = &r
		}
	}
}

// sortedPeers returns h's peer keys by address, then protocol.
func (h *host) sortedPeers() []peerKey {
	return slices.SortedFunc(maps.Keys(h.peers), func(a, b peerKey) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return strings.Compare(a.proto, b.proto)
	})
}

// functionNames returns m's names in order: the counts below are capped,
// and which names fit under a cap must not depend on map order, or two runs
// over one capture would disagree.
func functionNames(m map[string]int) []string {
	return slices.Sorted(maps.Keys(m))
}

type fnCount struct {
	name string
	n    int
}

// maxPeerFunctions bounds the operation names kept per peer entry.
const maxPeerFunctions = 8

func (p *peer) addFunction(f string, n int) {
	for i := range p.functions {
		if p.functions[i].name == f {
			p.functions[i].n += n
			return
		}
	}
	if len(p.functions) < maxPeerFunctions {
		p.functions = append(p.functions, fnCount{clip(f, 64), n})
	}
}

func (h *host) otInfo() *otInfo {
	if h.ot == nil {
		h.ot = &otInfo{}
	}
	return h.ot
}

// serviceOf names a Conn's protocol: the OT parser's word first, then the
// payload-detected service.
func serviceOf(c *cw.Conn) string {
	if c.OT != nil && c.OT.Protocol != "" {
		return clip(c.OT.Protocol, maxServiceName)
	}
	return clip(c.Service, maxServiceName)
}

// connBytes are the payload bytes each way, or the IP bytes for flow
// sources that count only those.
func connBytes(c *cw.Conn) (orig, resp int64) {
	if c.OrigBytes == 0 && c.RespBytes == 0 {
		return max(c.OrigIPBytes, 0), max(c.RespIPBytes, 0)
	}
	return max(c.OrigBytes, 0), max(c.RespBytes, 0)
}

// hostAddr rejects addresses that are no host: unspecified, multicast,
// the limited broadcast.
func hostAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsInterfaceLocalMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// unicastMAC rejects broadcast and multicast hardware addresses (the
// group bit of the first octet).
func unicastMAC(mac string) bool {
	if len(mac) < 2 {
		return false
	}
	v, err := strconv.ParseUint(mac[:2], 16, 8)
	return err == nil && v&1 == 0
}

func addCount(m *map[string]int64, k string, limit int) { addCountN(m, k, 1, limit) }

// addCountN counts into *m, making the map on first use: most hosts
// offer nothing and speak no OT, and 65,536 empty maps are megabytes.
func addCountN(m *map[string]int64, k string, n int64, limit int) {
	if *m == nil {
		*m = map[string]int64{}
	}
	if _, ok := (*m)[k]; ok || len(*m) < limit {
		(*m)[clip(k, 64)] += n
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
