package asset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// ep makes an endpoint; private addresses are local, as geo would say.
func ep(addr string, port uint16) cw.Endpoint {
	a := netip.MustParseAddr(addr)
	return cw.Endpoint{Addr: a, Port: port, Local: a.IsPrivate() || a.IsLinkLocalUnicast()}
}

type connOpt func(*cw.Conn)

func conn(orig, resp cw.Endpoint, opts ...connOpt) *cw.Conn {
	c := &cw.Conn{TS: t0, UID: "C" + orig.Addr.String() + resp.Addr.String(), Orig: orig, Resp: resp, Proto: "tcp",
		Duration: time.Second, OrigBytes: 100, RespBytes: 200, State: "SF"}
	for _, o := range opts {
		o(c)
	}
	return c
}

func withOT(proto string, serverIsOrig bool, writes, program int, funcs ...string) connOpt {
	return func(c *cw.Conn) {
		c.Service = proto
		c.OT = &cw.OT{Protocol: proto, ServerIsOrig: serverIsOrig, Writes: writes, Program: program, Functions: map[string]int{}}
		for _, f := range funcs {
			c.OT.Functions[f]++
		}
	}
}

func withService(s string) connOpt { return func(c *cw.Conn) { c.Service = s } }
func at(d time.Duration) connOpt   { return func(c *cw.Conn) { c.TS = t0.Add(d) } }
func mac(orig, resp string) connOpt {
	return func(c *cw.Conn) { c.Orig.MAC, c.Resp.MAC = orig, resp }
}
func remote(country, juris, org string) connOpt {
	return func(c *cw.Conn) {
		c.Resp.Country, c.Resp.Jurisdiction, c.Resp.Org = country, juris, org
	}
}

func observe(d *Discovery, cs ...*cw.Conn) {
	for _, c := range cs {
		d.Observe(c)
	}
}

func hostOf(t *testing.T, d *Discovery, addr string) Host {
	t.Helper()
	for _, h := range d.Hosts() {
		if h.Addr.String() == addr {
			return h
		}
	}
	t.Fatalf("no host %s in the inventory", addr)
	return Host{}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns []*cw.Conn
		host  string
		want  []string
	}{
		{"modbus server is the plc", []*cw.Conn{conn(ep("10.0.0.8", 2582), ep("10.0.0.3", 502), withOT("modbus", false, 0, 0, "read_holding_registers"))},
			"10.0.0.3", []string{RolePLC}},
		{"modbus client is the hmi", []*cw.Conn{conn(ep("10.0.0.8", 2582), ep("10.0.0.3", 502), withOT("modbus", false, 0, 0))},
			"10.0.0.8", []string{RoleHMI}},
		{"a device that serves from the originating side (BACnet announce)", []*cw.Conn{conn(ep("10.0.0.40", 47808), ep("10.0.0.255", 47808), withOT("bacnet", true, 0, 0))},
			"10.0.0.40", []string{RolePLC}},
		{"program download makes an engineering workstation", []*cw.Conn{conn(ep("10.0.0.9", 49152), ep("10.0.0.3", 102), withOT("s7comm", false, 2, 1, "download_block"))},
			"10.0.0.9", []string{RoleEngineering, RoleHMI}},
		{"rdp server and client", []*cw.Conn{conn(ep("10.0.1.5", 50000), ep("10.0.0.21", 3389), withService("rdp"))},
			"10.0.0.21", []string{RoleRemoteAccessServer}},
		{"rdp client", []*cw.Conn{conn(ep("10.0.1.5", 50000), ep("10.0.0.21", 3389), withService("rdp"))},
			"10.0.1.5", []string{RoleRemoteAccessClient}},
		{"mqtt makes no controller", []*cw.Conn{conn(ep("10.0.0.8", 50000), ep("10.0.0.7", 1883), withOT("mqtt", false, 0, 0))},
			"10.0.0.7", nil},
		{"an Internet ssh server is no asset", []*cw.Conn{conn(ep("10.0.1.5", 50000), ep("140.82.121.4", 22), withService("ssh"))},
			"10.0.1.5", []string{RoleRemoteAccessClient}},
		{"web server has no role", []*cw.Conn{conn(ep("10.0.0.8", 50000), ep("10.0.0.7", 80), withService("http"))},
			"10.0.0.7", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDiscovery(Config{})
			observe(d, tc.conns...)
			h := hostOf(t, d, tc.host)
			if !slices.Equal(h.DiscoveredRoles, tc.want) {
				t.Errorf("roles %v, want %v", h.DiscoveredRoles, tc.want)
			}
		})
	}
}

func TestInventoryHost(t *testing.T) {
	file, err := Parse("a.csv", []byte("name,address,role,zone,owner\ncrane-plc-01,10.20.32.11,crane-plc,ot-crane,Crane\nyard,10.20.40.0/24,scanner,ot-scanner,Yard\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiscovery(Config{File: file})
	hmi, plc := ep("10.20.32.21", 50000), ep("10.20.32.11", 502)
	observe(d,
		conn(hmi, plc, withOT("modbus", false, 1, 0, "write_single_register"), mac("00:01:05:00:00:01", "00:1b:1b:00:00:02")),
		conn(hmi, plc, withOT("modbus", false, 0, 0, "read_holding_registers"), at(time.Hour)),
		conn(ep("10.20.40.101", 50000), ep("10.20.0.11", 8080), withService("http")),
		// A DHCP request: name with MAC and requested address.
		&cw.Conn{TS: t0, Orig: ep("0.0.0.0", 68), Resp: ep("255.255.255.255", 67), Proto: "udp",
			HostNames: []cw.HostName{{Addr: netip.MustParseAddr("10.20.32.21"), MAC: "00:01:05:00:00:01", Name: "CRANE-HMI-01", Source: "dhcp"}}},
	)
	h := hostOf(t, d, "10.20.32.11")
	if !h.Known || h.Zone != "ot-crane" || h.AssetName != "crane-plc-01" || !h.OT || !h.Seen {
		t.Errorf("plc: %+v", h)
	}
	if !slices.Equal(h.Roles, []string{"crane-plc", RolePLC}) || !slices.Equal(h.Protocols, []string{"modbus"}) {
		t.Errorf("plc roles %v protocols %v", h.Roles, h.Protocols)
	}
	if h.MAC != "00:1b:1b:00:00:02" || h.Vendor != "Siemens AG" {
		t.Errorf("plc mac %q vendor %q", h.MAC, h.Vendor)
	}
	if !h.FirstSeen.Equal(t0) || !h.LastSeen.Equal(t0.Add(time.Hour+time.Second)) || h.Conns != 2 {
		t.Errorf("plc seen %v..%v, %d conns", h.FirstSeen, h.LastSeen, h.Conns)
	}
	if h.OTFunctions["read_holding_registers"] != 1 || h.OTFunctions["write_single_register"] != 1 {
		t.Errorf("plc functions %v", h.OTFunctions)
	}
	hm := hostOf(t, d, "10.20.32.21")
	if hm.Known || hm.Zone != "" || !slices.Equal(hm.Names, []string{"CRANE-HMI-01"}) || hm.Vendor != "Beckhoff Automation GmbH" || hm.Writes != 1 {
		t.Errorf("hmi: %+v", hm)
	}
	sc := hostOf(t, d, "10.20.40.101")
	if sc.Known || sc.Zone != "ot-scanner" || !sc.OT || !slices.Equal(sc.Roles, []string{"scanner"}) {
		t.Errorf("scanner under a range row: %+v", sc)
	}
	wms := hostOf(t, d, "10.20.0.11")
	if !slices.Equal(wms.Offered, []string{"http"}) || !slices.Equal(wms.Protocols, []string{"http"}) {
		t.Errorf("wms offered %v", wms.Offered)
	}
	// Broadcast and unspecified addresses are no hosts; a subnet
	// broadcast shows as frames to the broadcast MAC.
	observe(d, conn(ep("10.20.32.21", 137), ep("10.20.32.255", 137), mac("00:01:05:00:00:01", "ff:ff:ff:ff:ff:ff")))
	for _, h := range d.Hosts() {
		if h.Addr.String() == "255.255.255.255" || h.Addr.String() == "0.0.0.0" || h.Addr.String() == "10.20.32.255" {
			t.Errorf("%s in the inventory", h.Addr)
		}
	}
	// The JSON line carries the contract's keys.
	r := h.Record()
	for _, k := range []string{"ip", "mac", "vendor", "names", "roles", "protocols", "zone", "known", "first_seen", "last_seen", "peers"} {
		if _, ok := r[k]; !ok {
			t.Errorf("record lacks %q", k)
		}
	}
	if r["peers"].([]string)[0] != "10.20.32.21" {
		t.Errorf("peers %v", r["peers"])
	}
}

func TestUnseenAssetsListed(t *testing.T) {
	file, _ := Parse("a.csv", []byte("name,address,role,zone\nspare-plc,10.0.0.99,plc,ot-cell\nrange,10.1.0.0/16,office,office\n"))
	d := NewDiscovery(Config{File: file})
	hs := d.Hosts()
	if len(hs) != 1 || hs[0].Seen || !hs[0].Known || hs[0].AssetName != "spare-plc" || !hs[0].OT {
		t.Fatalf("unseen rows: %+v", hs)
	}
}

func TestNames(t *testing.T) {
	d := NewDiscovery(Config{})
	pc, dns := ep("10.0.0.5", 50000), ep("10.0.0.53", 53)
	udp := func(c *cw.Conn) { c.Proto = "udp" }
	observe(d,
		conn(pc, dns, udp, func(c *cw.Conn) {
			c.DNS = []cw.DNS{
				{Query: "21.32.20.10.in-addr.arpa", QType: 12, Answers: []string{"crane-hmi-01.elbkai.local"}},
				{Query: "wms-01.elbkai.local", QType: 1, Answers: []string{"10.0.0.11"}},
				{Query: "www.example.com", QType: 1, Answers: []string{"93.184.216.34"}}, // an Internet name: not the inventory's
				{Query: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa", QType: 12, Answers: []string{"link.local"}},
			}
		}),
		// NetBIOS: the owner answering a broadcast query from its own port.
		conn(ep("10.0.0.21", 137), ep("10.0.0.5", 137), udp, func(c *cw.Conn) {
			c.DNS = []cw.DNS{{Query: "EDFCEBEOEFCNEIENEJCNDADBCACACAAA", QType: 32, RCode: 0, Answers: []string{"TYPE32"}, RespLen: 62}}
		}),
		// A NetBIOS query is not the querier's name.
		conn(ep("10.0.0.5", 137), ep("10.0.0.255", 137), udp, func(c *cw.Conn) {
			c.DNS = []cw.DNS{{Query: "EJFAFGDGCOEHEPEPEHEMEFCOEDEPENAA", QType: 32, RCode: -1, QueryLen: 50}}
		}),
		// mDNS: the sender's host name; service instances are not host names.
		conn(ep("10.0.0.30", 5353), ep("224.0.0.251", 5353), udp, func(c *cw.Conn) {
			c.DNS = []cw.DNS{{RCode: 0, RespLen: 300, Answers: []string{"Art-Teachers-iPad.local", "iPad._rdlink._tcp.local", "10.0.0.30"}}}
		}),
		conn(ep("10.0.0.11", 50000), dns),
		conn(ep("10.0.0.21", 50000), dns),
		conn(ep("10.0.0.30", 50000), dns),
		conn(ep("10.20.32.21", 50000), dns),
		conn(ep("fe80::1", 50000), ep("fe80::2", 22)),
	)
	for addr, want := range map[string][]string{
		"10.0.0.11":   {"wms-01.elbkai.local"},
		"10.20.32.21": {"crane-hmi-01.elbkai.local"},
		"10.0.0.21":   {"CRANE-HMI-01"},
		"10.0.0.30":   {"Art-Teachers-iPad.local"},
		"10.0.0.5":    nil,
		"fe80::1":     {"link.local"},
	} {
		if got := hostOf(t, d, addr).Names; !slices.Equal(got, want) {
			t.Errorf("%s names %v, want %v", addr, got, want)
		}
	}
}

// A MAC seen with many local addresses is the router's: it names none.
func TestGatewayMAC(t *testing.T) {
	d := NewDiscovery(Config{})
	for i := 1; i <= gatewayMinIPv4; i++ {
		observe(d, conn(ep(fmt.Sprintf("10.9.0.%d", i), 50000), ep("10.0.0.1", 443), mac("00:00:0c:00:00:01", "00:1b:1b:00:00:09")))
	}
	if h := hostOf(t, d, "10.9.0.1"); h.MAC != "" || h.Vendor != "" {
		t.Errorf("router MAC attributed: %q %q", h.MAC, h.Vendor)
	}
	if h := hostOf(t, d, "10.0.0.1"); h.MAC != "00:1b:1b:00:00:09" {
		t.Errorf("server MAC %q", h.MAC)
	}
	// A host with IPv4 and a few IPv6 addresses keeps its MAC.
	d = NewDiscovery(Config{})
	for _, a := range []string{"10.0.0.7", "fe80::7", "2001:db8::7", "2001:db8::8"} {
		observe(d, conn(ep(a, 50000), ep("10.0.0.1", 443), mac("00:1b:1b:00:00:07", "")))
	}
	if h := hostOf(t, d, "fe80::7"); h.MAC != "00:1b:1b:00:00:07" {
		t.Errorf("dual-stack host lost its MAC: %q", h.MAC)
	}
}

func TestVendor(t *testing.T) {
	for mac, want := range map[string]string{
		"00:1b:1b:12:34:56": "Siemens AG",
		"00:80:F4:00:00:01": "TELEMECANIQUE ELECTRIQUE",
		"00:01:05:aa:bb:cc": "Beckhoff Automation GmbH",
		"70:b3:d5:f2:f0:01": "TELEPLATFORMS", // a 36-bit MA-S block inside the IEEE's own 70:B3:D5
		"02:00:00:00:00:01": "",              // locally administered
		"01:00:5e:00:00:01": "",              // multicast
		"not a mac":         "",
	} {
		if got := Vendor(mac); got != want {
			t.Errorf("Vendor(%s) = %q, want %q", mac, got, want)
		}
	}
}

func TestCaps(t *testing.T) {
	d := NewDiscovery(Config{MaxHosts: 3, MaxPeers: 2, MaxPeerEntries: 4})
	for i := 1; i <= 5; i++ {
		observe(d, conn(ep("10.0.0.1", 50000), ep(fmt.Sprintf("10.0.1.%d", i), 80), withService("http")))
	}
	if n := len(d.Hosts()); n != 3 {
		t.Errorf("%d hosts, cap 3", n)
	}
	st := d.Stats()
	if st.HostsDropped != 3 || st.PeersDropped == 0 {
		t.Errorf("stats %+v", st)
	}
	if h := hostOf(t, d, "10.0.0.1"); len(h.Peers) != 2 || h.PeersDropped == 0 {
		t.Errorf("peers %v dropped %d", h.Peers, h.PeersDropped)
	}
	if d.peerN > 4 {
		t.Errorf("%d peer entries, cap 4", d.peerN)
	}
}

func findingsOf(fs []cw.Finding, kind string) []cw.Finding {
	var out []cw.Finding
	for _, f := range fs {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func TestOTEgress(t *testing.T) {
	const assets = `name,address,role,zone,owner,allow,zone_allow
crane-plc-03,10.20.32.13,crane-plc,ot-crane,Crane,,
crane-hmi-01,10.20.32.21,crane-hmi,ot-crane,Crane,,
scanner-07,10.20.40.107,scanner,ot-scanner,Yard,,
wms-01,10.20.0.11,wms,it-servers,IT,,
cell,10.30.0.0/24,plc,ot-cell,Ops,,internet;it-servers
office-pc,10.20.16.5,office,office,IT,,
`
	file, err := Parse("assets.csv", []byte(assets))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{File: file, Home: []string{"DE"}, Watch: map[string]string{"CN": "National Intelligence Law", "RU": "SORM"}}
	type want struct {
		src, dst string
		sev      cw.Severity
		rule     string
	}
	for _, tc := range []struct {
		name  string
		conns []*cw.Conn
		want  []want // nil: no ot_egress
	}{
		{"crane plc to China", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("180.101.49.11", 443), withService("ssl"), remote("CN", "CN", "China Telecom"))},
			[]want{{"10.20.32.13", "180.101.49.11", cw.Critical, RuleEgress}}},
		{"crane plc to a German cloud: high", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("80.158.1.1", 443), remote("DE", "DE", "Open Telekom Cloud"))},
			[]want{{"10.20.32.13", "80.158.1.1", cw.High, RuleEgress}}},
		{"in Frankfurt but controlled from China: critical", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("8.209.72.15", 443), remote("DE", "CN", "Alibaba"))},
			[]want{{"10.20.32.13", "8.209.72.15", cw.Critical, RuleEgress}}},
		{"in the Netherlands: abroad, critical", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("145.1.1.1", 443), remote("NL", "NL", ""))},
			[]want{{"10.20.32.13", "145.1.1.1", cw.Critical, RuleEgress}}},
		{"country unknown: high", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("203.0.113.5", 443))},
			[]want{{"10.20.32.13", "203.0.113.5", cw.High, RuleEgress}}},
		{"scanner in an OT zone querying an outside resolver", []*cw.Conn{conn(ep("10.20.40.107", 50000), ep("185.1.1.1", 53), withService("dns"), remote("RU", "RU", ""))},
			[]want{{"10.20.40.107", "185.1.1.1", cw.Critical, RuleEgress}}},
		{"polling inside the zone is fine", []*cw.Conn{conn(ep("10.20.32.21", 50000), ep("10.20.32.13", 502), withOT("modbus", false, 0, 0))}, nil},
		{"scanner to the WMS: no conduits declared, no finding", []*cw.Conn{conn(ep("10.20.40.107", 50000), ep("10.20.0.11", 8080), withService("http"))}, nil},
		{"office host to the internet is not OT", []*cw.Conn{conn(ep("10.20.16.5", 50000), ep("180.101.49.11", 443), remote("CN", "CN", ""))}, nil},
		{"zone with conduits: allowed zone", []*cw.Conn{conn(ep("10.30.0.5", 50000), ep("10.20.0.11", 443))}, nil},
		{"zone with conduits: other zone is a crossing", []*cw.Conn{conn(ep("10.30.0.5", 50000), ep("10.20.16.5", 445))},
			[]want{{"10.30.0.5", "10.20.16.5", cw.High, RuleZoneCrossing}}},
		{"zone with conduits: crossing seen from the other side", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("10.30.0.5", 502), withOT("modbus", false, 0, 0))},
			[]want{{"10.20.32.13", "10.30.0.5", cw.High, RuleZoneCrossing}, {"10.30.0.5", "10.20.32.13", cw.High, RuleZoneCrossing}}},
		{"zone_allow internet: home-country peer allowed", []*cw.Conn{conn(ep("10.30.0.5", 50000), ep("80.158.1.1", 443), remote("DE", "DE", ""))}, nil},
		{"zone_allow internet: abroad still critical", []*cw.Conn{conn(ep("10.30.0.5", 50000), ep("180.101.49.11", 443), remote("CN", "CN", ""))},
			[]want{{"10.30.0.5", "180.101.49.11", cw.Critical, RuleEgress}}},
		{"rdp into the hmi from the office", []*cw.Conn{conn(ep("10.20.16.5", 50000), ep("10.20.32.21", 3389), withService("rdp"))},
			[]want{{"10.20.32.21", "10.20.16.5", cw.High, RuleRemoteAccess}}},
		{"vnc into the hmi from the Internet", []*cw.Conn{func() *cw.Conn {
			c := conn(ep("198.51.100.7", 50000), ep("10.20.32.21", 5900), withOT("vnc", false, 0, 0))
			c.Orig.Country = "DE"
			return c
		}()},
			[]want{{"10.20.32.21", "198.51.100.7", cw.Critical, RuleRemoteAccess}}},
		{"ssh from the hmi to the plc: same zone", []*cw.Conn{conn(ep("10.20.32.21", 50000), ep("10.20.32.13", 22), withService("ssh"))}, nil},
		{"discovered hmi (no assets row) polling a PLC on the Internet", []*cw.Conn{conn(ep("192.168.66.235", 2582), ep("166.161.16.230", 502), withOT("modbus", false, 0, 0), remote("US", "US", "AT&T"))},
			[]want{{"192.168.66.235", "166.161.16.230", cw.Critical, RuleEgress}}},
		{"multicast is no place", []*cw.Conn{conn(ep("10.20.32.13", 50000), ep("224.0.0.251", 5353))}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDiscovery(cfg)
			observe(d, tc.conns...)
			fs := findingsOf(d.Findings(), cw.KindOTEgress)
			var got []want
			for _, f := range fs {
				got = append(got, want{f.Src.Addr.String(), f.Dst.Addr.String(), f.Severity, f.Evidence["rule"].(string)})
			}
			slices.SortFunc(got, func(a, b want) int { return strings.Compare(a.src, b.src) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("ot_egress %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOTEgressEvidence(t *testing.T) {
	file, _ := Parse("a.csv", []byte("name,address,role,zone\ncrane-plc-03,10.20.32.13,crane-plc,ot-crane\n"))
	d := NewDiscovery(Config{File: file, Home: []string{"DE"}, Watch: map[string]string{"CN": "National Intelligence Law"}})
	for i := range 3 {
		c := conn(ep("10.20.32.13", 50000), ep("180.101.49.11", 443), withService("ssl"), remote("CN", "CN", "China Telecom"), at(time.Duration(i)*time.Hour))
		c.UID = fmt.Sprintf("C%d", i)
		d.Observe(c)
	}
	fs := findingsOf(d.Findings(), cw.KindOTEgress)
	if len(fs) != 1 {
		t.Fatalf("%d findings", len(fs))
	}
	f := fs[0]
	if f.Count != 3 || f.BytesOut != 300 || f.BytesIn != 600 || !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(2*time.Hour+time.Second)) {
		t.Errorf("aggregate: %+v", f)
	}
	if f.Src.Asset == nil || f.Src.Asset.Name != "crane-plc-03" || f.Dst.Country != "CN" || f.Dst.Org != "China Telecom" {
		t.Errorf("endpoints: %+v / %+v", f.Src, f.Dst)
	}
	ev := f.Evidence
	if !slices.Equal(ev["uids"].([]string), []string{"C0", "C1", "C2"}) || !slices.Equal(ev["protocols"].([]string), []string{"ssl"}) ||
		ev["legal_basis"] != "National Intelligence Law" || ev["zone"] != "ot-crane" || ev["peer_zone"] != ZoneInternet {
		t.Errorf("evidence %v", ev)
	}
	if !strings.Contains(f.Summary, "crane-plc-03") || !strings.Contains(f.Summary, "CN") {
		t.Errorf("summary %q", f.Summary)
	}
}

// An OT host that talks to one Internet peer over several protocols, with
// more operation names than the caps keep, gives the same finding however
// Go orders its maps: uids and function names are merged in a fixed order.
func TestOTEgressRepeatable(t *testing.T) {
	file, _ := Parse("a.csv", []byte("name,address,role,zone\ncrane-plc-03,10.20.32.13,crane-plc,ot-crane\n"))
	run := func() map[string]any {
		d := NewDiscovery(Config{File: file, Home: []string{"DE"}})
		for i, port := range []uint16{443, 502, 8443, 4840, 2404, 102} {
			c := conn(ep("10.20.32.13", 50000+uint16(i)), ep("203.0.113.9", port), remote("CN", "CN", "Example"), at(time.Duration(i)*time.Minute))
			c.UID = fmt.Sprintf("C%d", i)
			c.OT = &cw.OT{Protocol: "modbus", Functions: map[string]int{}}
			for f := range 40 {
				c.OT.Functions[fmt.Sprintf("fn-%02d-%d", f, i)] = 1
			}
			d.Observe(c)
		}
		fs := findingsOf(d.Findings(), cw.KindOTEgress)
		if len(fs) != 1 {
			t.Fatalf("%d ot_egress findings, want 1", len(fs))
		}
		return fs[0].Evidence
	}
	want := run()
	for range 10 {
		if got := run(); !reflect.DeepEqual(got["uids"], want["uids"]) || !reflect.DeepEqual(got["functions"], want["functions"]) {
			t.Fatalf("evidence differs between runs:\n%v\n%v", got, want)
		}
	}
}

// fakeHistory is an in-memory History.
type fakeHistory struct {
	first map[netip.Addr]time.Time
	err   error
}

func (h *fakeHistory) RecordHosts(_ context.Context, seen []Sighting) (map[netip.Addr]time.Time, time.Time, error) {
	if h.err != nil {
		return nil, time.Time{}, h.err
	}
	out := map[netip.Addr]time.Time{}
	for _, s := range seen {
		if f, ok := h.first[s.Addr]; !ok || s.First.Before(f) {
			h.first[s.Addr] = s.First
		}
		out[s.Addr] = h.first[s.Addr]
	}
	var start time.Time
	for _, f := range h.first {
		if start.IsZero() || f.Before(start) {
			start = f
		}
	}
	return out, start, nil
}

func TestNewAsset(t *testing.T) {
	file, _ := Parse("a.csv", []byte("name,address,role,zone\nplc-9,10.20.32.19,crane-plc,ot-crane\ncrane,10.20.32.0/24,,ot-crane\n"))
	week := 7 * 24 * time.Hour
	old := map[netip.Addr]time.Time{netip.MustParseAddr("10.20.0.11"): t0.Add(-30 * 24 * time.Hour), netip.MustParseAddr("10.20.0.53"): t0.Add(-30 * 24 * time.Hour)}
	for _, tc := range []struct {
		name    string
		history map[netip.Addr]time.Time
		conns   []*cw.Conn
		want    map[string]cw.Severity
	}{
		{"fresh store: everything is baseline", map[netip.Addr]time.Time{},
			[]*cw.Conn{conn(ep("10.20.0.5", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{}},
		{"unknown device after the baseline", old,
			[]*cw.Conn{conn(ep("10.20.0.99", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{"10.20.0.99": cw.Medium}},
		{"unknown device in an OT zone", old,
			[]*cw.Conn{conn(ep("10.20.32.77", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{"10.20.32.77": cw.High}},
		{"listed device", old,
			[]*cw.Conn{conn(ep("10.20.32.19", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{"10.20.32.19": cw.Low}},
		{"seen before, in an earlier input: reported then, not now", map[netip.Addr]time.Time{
			netip.MustParseAddr("10.20.0.11"): t0.Add(-30 * 24 * time.Hour), netip.MustParseAddr("10.20.0.99"): t0.Add(-10 * 24 * time.Hour)},
			[]*cw.Conn{conn(ep("10.20.0.99", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{}},
		{"first seen inside the baseline", map[netip.Addr]time.Time{netip.MustParseAddr("10.20.0.11"): t0.Add(-week + time.Hour)},
			[]*cw.Conn{conn(ep("10.20.0.99", 50000), ep("10.20.0.11", 443))}, map[string]cw.Severity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hist := &fakeHistory{first: map[netip.Addr]time.Time{}}
			for k, v := range tc.history {
				hist.first[k] = v
			}
			d := NewDiscovery(Config{File: file, History: hist})
			observe(d, tc.conns...)
			got := map[string]cw.Severity{}
			for _, f := range findingsOf(d.Findings(), cw.KindNewAsset) {
				got[f.Src.Addr.String()] = f.Severity
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("new_asset %v, want %v", got, tc.want)
			}
		})
	}
	// No history: no new_asset; a failing one costs a warning, not the run.
	d := NewDiscovery(Config{})
	observe(d, conn(ep("10.20.0.99", 50000), ep("10.20.0.11", 443)))
	if fs := findingsOf(d.Findings(), cw.KindNewAsset); len(fs) != 0 {
		t.Errorf("new_asset without history: %v", fs)
	}
	d = NewDiscovery(Config{History: &fakeHistory{err: errors.New("disk full")}})
	observe(d, conn(ep("10.20.0.99", 50000), ep("10.20.0.11", 443)))
	if fs := findingsOf(d.Findings(), cw.KindNewAsset); len(fs) != 0 {
		t.Errorf("new_asset with a failing history: %v", fs)
	}
}

func TestMap(t *testing.T) {
	file, _ := Parse("a.csv", []byte("name,address,role,zone\n\"plc \"\"03\"\"\",10.20.32.13,crane-plc,ot-crane\nhmi,10.20.32.21,crane-hmi,ot-crane\n"))
	d := NewDiscovery(Config{File: file})
	observe(d,
		conn(ep("10.20.32.21", 50000), ep("10.20.32.13", 502), withOT("modbus", false, 0, 0)),
		conn(ep("10.20.32.21", 50001), ep("10.20.32.13", 502), withOT("modbus", false, 0, 0), at(time.Minute)),
		conn(ep("10.20.32.13", 50000), ep("180.101.49.11", 443), withService("ssl"), remote("CN", "CN", "China Telecom")),
	)
	m := d.Map()
	if len(m.Nodes) != 3 || len(m.Edges) != 2 {
		t.Fatalf("map: %+v", m)
	}
	e := m.Edges[1]
	if e.Src != "10.20.32.21" || e.Dst != "10.20.32.13" || e.Protocol != "modbus" || e.Conns != 2 || e.Bytes != 600 || e.Port != 502 ||
		!e.FirstSeen.Equal(t0) || !e.LastSeen.Equal(t0.Add(time.Minute+time.Second)) {
		t.Errorf("edge %+v", e)
	}
	var buf bytes.Buffer
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Map
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Edges) != 2 || back.Nodes[2].Country != "CN" {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	buf.Reset()
	if err := m.WriteDOT(&buf); err != nil {
		t.Fatal(err)
	}
	dot := buf.String()
	checkDOT(t, dot)
	for _, s := range []string{`"10.20.32.21" -> "10.20.32.13"`, `label="ot-crane"`, `plc \"03\"`, `shape="ellipse"`} {
		if !strings.Contains(dot, s) {
			t.Errorf("DOT lacks %s:\n%s", s, dot)
		}
	}
}

// checkDOT validates DOT with Graphviz when installed, and structurally in
// any case: balanced braces and brackets outside strings, every string
// closed, every statement line ending in ';', '{' or '}'.
func checkDOT(t *testing.T, dot string) {
	t.Helper()
	if path, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command(path, "-Tcanon")
		cmd.Stdin = strings.NewReader(dot)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("dot rejects the map: %v\n%s\n%s", err, out, dot)
		}
	}
	depth, brackets, inStr := 0, 0, false
	for i := 0; i < len(dot); i++ {
		c := dot[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr && c == '\n':
			t.Fatalf("raw newline inside a string at %d", i)
		case inStr:
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == '[':
			brackets++
		case c == ']':
			brackets--
		}
		if depth < 0 || brackets < 0 {
			t.Fatalf("unbalanced at %d:\n%s", i, dot)
		}
	}
	if depth != 0 || brackets != 0 || inStr {
		t.Fatalf("unbalanced DOT (depth %d, brackets %d, in string %v)", depth, brackets, inStr)
	}
	for _, ln := range strings.Split(strings.TrimSpace(dot), "\n") {
		ln = strings.TrimSpace(ln)
		if !strings.HasSuffix(ln, ";") && !strings.HasSuffix(ln, "{") && ln != "}" {
			t.Errorf("line not ending a statement: %q", ln)
		}
	}
	if !strings.HasPrefix(dot, "digraph ") {
		t.Error("not a digraph")
	}
}

func TestZoneAllowFile(t *testing.T) {
	for _, tc := range []struct {
		name, data, wantErr string
	}{
		{"csv ok", "name,address,zone,zone_allow\na,10.0.0.1,ot-cell,it;internet\nb,10.0.1.1,it,\n", ""},
		{"yaml list", "- {name: a, address: 10.0.0.1, zone: ot-cell, zone_allow: [it]}\n- {name: b, address: 10.0.1.1, zone: it}\n", ""},
		{"yaml string", "- {name: a, address: 10.0.0.1, zone: ot-cell, zone_allow: \"it;internet\"}\n- {name: b, address: 10.0.1.1, zone: it}\n", ""},
		{"typo in a zone", "name,address,zone,zone_allow\na,10.0.0.1,ot-cell,it\nb,10.0.1.1,itt,\n", "a.csv:2: zone_allow \"it\": no row has that zone"},
		{"no zone", "name,address,zone,zone_allow\na,10.0.0.1,,it\nb,10.0.1.1,it,\n", "a.csv:2: zone_allow without a zone"},
		{"yaml mapping", "- {name: a, address: 10.0.0.1, zone: ot, zone_allow: {x: 1}}\n", "a.csv:1: zone_allow: want a zone name or a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("a.csv", []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			zone := inv.Entries[0].Zone
			if d, a := inv.Conduits(zone, "it"); !d || !a {
				t.Errorf("Conduits(%s, it) = %v %v", zone, d, a)
			}
			if d, a := inv.Conduits(zone, "office"); !d || a {
				t.Errorf("Conduits(%s, office) = %v %v", zone, d, a)
			}
			if d, _ := inv.Conduits("it", "office"); d {
				t.Error("zone it declares nothing")
			}
		})
	}
}

func FuzzDecodeNetBIOS(f *testing.F) {
	f.Add("EJFAFGDGCOEHEPEPEHEMEFCOEDEPENAA")
	f.Add("FHEPFCELEHFCEPFFFACACACACACACAAA")
	f.Add("ABABABABABABABABABABABABABABABAB")
	f.Fuzz(func(t *testing.T, s string) {
		name, _, ok := DecodeNetBIOS(s)
		if ok && (name == "" || len(name) > 15 || strings.ContainsAny(name, " \x00\n")) {
			t.Fatalf("DecodeNetBIOS(%q) = %q", s, name)
		}
	})
}

func FuzzReverseAddr(f *testing.F) {
	f.Add("21.32.20.10.in-addr.arpa")
	f.Add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa")
	f.Fuzz(func(t *testing.T, s string) {
		if a, ok := reverseAddr(s); ok && !a.IsValid() {
			t.Fatalf("reverseAddr(%q) ok with an invalid address", s)
		}
	})
}

func TestRemoteHostsOnlyForOT(t *testing.T) {
	d := NewDiscovery(Config{})
	observe(d,
		conn(ep("10.0.1.5", 50000), ep("140.82.121.4", 22), withService("ssh")),
		conn(ep("10.0.1.5", 50001), ep("93.184.216.34", 443), withService("ssl")),
		conn(ep("192.168.66.235", 2582), ep("166.161.16.230", 502), withOT("modbus", false, 0, 0)),
	)
	var got []string
	for _, h := range d.Hosts() {
		got = append(got, h.Addr.String())
	}
	if !slices.Equal(got, []string{"10.0.1.5", "166.161.16.230", "192.168.66.235"}) {
		t.Errorf("hosts %v", got)
	}
	if h := hostOf(t, d, "166.161.16.230"); h.Local || !slices.Equal(h.Roles, []string{RolePLC}) {
		t.Errorf("remote PLC: %+v", h)
	}
}
