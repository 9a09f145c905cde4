package sim

import (
	"fmt"
	"hash/fnv"
	"net/netip"
)

// The hub: a fictional container terminal in Hamburg, "Elbkai Container
// Terminal", on 10.20.0.0/16. Zones get their own subnets so that an
// analyst (and the asset package) can tell them apart by address alone.
const (
	homeCountry = "DE"
	homeNetwork = "10.20.0.0/16"
	localDomain = "elbkai.local"
)

// Zones and their subnets.
var zoneNets = []struct{ zone, cidr string }{
	{"it-servers", "10.20.0.0/24"},
	{"dmz", "10.20.1.0/24"},
	{"office", "10.20.16.0/20"},
	{"ot-crane", "10.20.32.0/24"},
	{"ot-scanner", "10.20.40.0/24"},
}

// Vendor OUIs (checked against Wireshark's manuf file).
var (
	ouiCisco     = [3]byte{0x00, 0x00, 0x0c}
	ouiDell      = [3]byte{0x00, 0x14, 0x22}
	ouiDellPC    = [3]byte{0xf8, 0xbc, 0x12}
	ouiHP        = [3]byte{0x3c, 0xd9, 0x2b}
	ouiSiemens   = [3]byte{0x00, 0x1b, 0x1b}
	ouiSchneider = [3]byte{0x00, 0x80, 0xf4} // Telemecanique, Schneider Electric's PLC line
	ouiBeckhoff  = [3]byte{0x00, 0x01, 0x05}
	ouiSierra    = [3]byte{0x00, 0xa0, 0xd5}
	ouiZebra     = [3]byte{0x00, 0xa0, 0xf8}
)

// host is one address on the wire, local or remote.
type host struct {
	name  string
	ip    [4]byte
	mac   [6]byte
	local bool
	zone  string
	role  string
	owner string
	ttl   uint8
	// dist is the one-way delay in µs between the capture point and the
	// host: a reply to a packet shows up 2*dist after it.
	dist int64
	ipid uint16
	port uint16 // next ephemeral port
}

func (h *host) nextIPID() uint16 { h.ipid++; return h.ipid }

// ephemeral hands out client ports in the IANA dynamic range, in order,
// like Windows and the BSDs do.
func (h *host) ephemeral() uint16 {
	p := h.port
	h.port++
	if h.port < 49152 {
		h.port = 49152
	}
	return p
}

func addr4(s string) [4]byte { return netip.MustParseAddr(s).As4() }

func ipString(a [4]byte) string { return netip.AddrFrom4(a).String() }

// stableMAC derives the NIC part from the device name so a device keeps its
// MAC whatever the seed, as real hardware does.
func stableMAC(oui [3]byte, name string) [6]byte {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	return [6]byte{oui[0], oui[1], oui[2], byte(v >> 16), byte(v >> 8), byte(v)}
}

// site is an external server the simulated hub talks to. country is what
// iploc must say for ip (the tests check it).
type site struct {
	name    string
	ip      string
	country string
	weight  int
}

// browseSites are the office users' web destinations: mostly German and EU
// hosting, some US. Names are real services; the addresses are in ranges
// that iploc places in the country given, not necessarily that service's.
var browseSites = []site{
	{"www.google.com", "142.250.185.78", "DE", 30},
	{"fonts.gstatic.com", "172.217.16.195", "DE", 20},
	{"www.heise.de", "193.99.144.80", "DE", 8},
	{"www.spiegel.de", "62.138.238.45", "DE", 8},
	{"www.ionos.de", "217.160.0.201", "DE", 3},
	{"www.strato.de", "81.169.145.94", "DE", 2},
	{"www.hetzner.com", "88.198.23.15", "DE", 2},
	{"web.de", "212.227.17.178", "DE", 6},
	{"www.dhl.de", "18.158.0.5", "DE", 6},
	{"api.hapag-lloyd.com", "3.120.0.10", "DE", 8},
	{"www.tum.de", "129.187.1.1", "DE", 1},
	{"tu-dresden.de", "141.30.1.1", "DE", 1},
	{"www.bahn.de", "99.86.4.12", "DE", 4},
	{"www.hafen-hamburg.de", "46.4.10.8", "DE", 5},
	{"www.zeit.de", "178.63.4.5", "DE", 4},
	{"www.mozilla.org", "195.50.140.2", "DE", 2},
	{"login.microsoftonline.com", "20.190.160.4", "NL", 15},
	{"outlook.office365.com", "13.107.42.14", "US", 25},
	{"github.com", "140.82.121.4", "US", 3},
	{"objects.githubusercontent.com", "185.199.108.153", "US", 2},
	{"www.reddit.com", "151.101.1.69", "US", 2},
	{"cdn.jsdelivr.net", "151.101.65.140", "US", 6},
	{"www.cloudflare.com", "104.16.132.229", "US", 2},
	{"www.linkedin.com", "23.215.0.136", "US", 4},
	{"www.facebook.com", "157.240.20.35", "US", 2},
	{"static.xx.fbcdn.net", "31.13.92.36", "IE", 2},
	{"www.whatsapp.com", "185.60.216.35", "IE", 1},
	{"www.ovhcloud.com", "145.239.12.4", "FR", 1},
	{"www.scaleway.com", "51.15.20.8", "NL", 1},
	{"www.wikipedia.org", "91.198.174.192", "NL", 4},
	{"upload.wikimedia.org", "185.15.59.224", "NL", 3},
	{"www.bbc.co.uk", "212.58.244.22", "GB", 2},
	{"twitter.com", "104.244.42.1", "US", 1},
	{"www.marinetraffic.com", "34.107.243.93", "US", 5},
}

// Special destinations of the scenario (verified with iploc in the tests).
var (
	// Alibaba Cloud eu-central-1 (Frankfurt), AS45102: sits in DE, its
	// operator answers to Chinese law.
	siteBayplanCloud = site{"edi.portlink-cloud.com", "8.209.72.15", "DE", 0}
	// The crane vendor's telemetry cloud: Alibaba Cloud Hangzhou.
	siteTelemetry = site{"telemetry.donghai-cranes.cn", "47.96.12.34", "CN", 0}
	// The crane vendor's remote-maintenance server: China Telecom Jiangsu.
	siteRemoteMaint = site{"rm.donghai-cranes.com.cn", "180.101.49.11", "CN", 0}
	// German customs (ATLAS) EDI endpoint, in a federal government range.
	siteCustoms = site{"edi.atlas.zoll.de", "77.87.228.70", "DE", 0}
	// Public resolver the scanner tunnels through, bypassing the hub's.
	siteTunnelResolver = site{"dns.google", "8.8.8.8", "US", 0}
	// Upstream the hub resolver forwards to (Deutsche Telekom).
	siteUpstreamDNS = site{"dns.telekom.de", "194.25.0.60", "DE", 0}
	// PTB time servers in Braunschweig.
	siteNTP1 = site{"ptbtime1.ptb.de", "192.53.103.108", "DE", 0}
	siteNTP2 = site{"ptbtime2.ptb.de", "192.53.103.104", "DE", 0}
	// Open Telekom Cloud object storage, Magdeburg/Biere.
	siteBackup = site{"obs.eu-de.otc.t-systems.com", "80.158.3.40", "DE", 0}
)

// specialSites lists the scenario destinations for tests.
var specialSites = []site{siteBayplanCloud, siteTelemetry, siteRemoteMaint, siteCustoms,
	siteTunnelResolver, siteUpstreamDNS, siteNTP1, siteNTP2, siteBackup}

// rttByCountry is a rough round-trip time from Hamburg in µs.
var rttByCountry = map[string]int64{
	"DE": 9000, "NL": 12000, "BE": 13000, "FR": 18000, "IE": 28000, "GB": 22000,
	"US": 95000, "CN": 210000,
}

// network holds the hub's hosts and the remote ones met so far.
type network struct {
	router  *host
	byName  map[string]*host
	remote  map[[4]byte]*host
	devices []*host // local, in order of creation
}

func newNetwork() *network {
	n := &network{byName: map[string]*host{}, remote: map[[4]byte]*host{}}
	n.router = n.add("core-rtr-01", "10.20.0.1", ouiCisco, "router", "it-servers", "IT Operations", 255)
	return n
}

func (n *network) add(name, ip string, oui [3]byte, role, zone, owner string, ttl uint8) *host {
	h := &host{
		name: name, ip: addr4(ip), mac: stableMAC(oui, name), local: true,
		zone: zone, role: role, owner: owner, ttl: ttl, dist: 60,
	}
	// Seed the ephemeral port and IP ID from the name so two hosts do not
	// march in step.
	m := stableMAC(oui, name)
	h.port = 49152 + (uint16(m[4])<<8|uint16(m[5]))%12000
	h.ipid = uint16(m[3])<<8 | uint16(m[5])
	n.byName[name] = h
	n.devices = append(n.devices, h)
	return h
}

// remoteHost returns the host for an external site, creating it once.
func (n *network) remoteHost(s site) *host {
	a := addr4(s.ip)
	if h, ok := n.remote[a]; ok {
		return h
	}
	rtt, ok := rttByCountry[s.country]
	if !ok {
		rtt = 60000
	}
	// Arriving TTLs: a Linux-like 64 or a Windows-like 128 minus the hops.
	hv := fnv.New32a()
	hv.Write(a[:])
	v := hv.Sum32()
	ttl := uint8(64 - 8 - v%12)
	if v&0x100 != 0 {
		ttl = uint8(128 - 8 - v%12)
	}
	h := &host{
		name: s.name, ip: a, mac: n.router.mac, ttl: ttl,
		dist: rtt/2 + int64(v%2000), ipid: uint16(v >> 16),
	}
	n.remote[a] = h
	return h
}

// macs returns the Ethernet addresses for a→b and b→a. The capture point
// sits on the originator's segment: a peer in another zone or outside is
// seen through the router's MAC.
func (n *network) macs(a, b *host) (ab, ba [12]byte) {
	bmac := n.router.mac
	if a.local && b.local && a.zone == b.zone {
		bmac = b.mac
	}
	amac := a.mac
	if !a.local {
		amac = n.router.mac
	}
	copy(ab[0:6], bmac[:])
	copy(ab[6:12], amac[:])
	copy(ba[0:6], amac[:])
	copy(ba[6:12], bmac[:])
	return ab, ba
}

// officeIP returns the address of the i-th office PC (0-based) in 10.20.16.0/20.
func officeIP(i int) string {
	v := 16*256 + 11 + i // skip .0-.10 of the first /24 (gateway, printers)
	return fmt.Sprintf("10.20.%d.%d", v/256, v%256)
}

const maxOffice = 4000 // fits 10.20.16.11 .. 10.20.31.x
