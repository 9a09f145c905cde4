package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/sim"
)

// runAssets runs the assets subcommand in-process (through run when it is
// registered, else directly) and fails on any stack trace.
func runAssets(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = cmdAssets(args, strings.NewReader(""), &o, &e)
	if strings.Contains(e.String(), "panic") || strings.Contains(e.String(), "goroutine ") {
		t.Fatalf("stack trace on stderr: %s", e.String())
	}
	return code, o.String(), e.String()
}

type hostLine struct {
	IP        string   `json:"ip"`
	MAC       string   `json:"mac"`
	Vendor    string   `json:"vendor"`
	Names     []string `json:"names"`
	Roles     []string `json:"roles"`
	Protocols []string `json:"protocols"`
	Zone      string   `json:"zone"`
	Known     bool     `json:"known"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
	Peers     []string `json:"peers"`
	AssetRole string   `json:"asset_role"`
	Local     bool     `json:"local"`
	OTEgress  int      `json:"ot_egress"`
	New       bool     `json:"new"`
}

func hostLines(t *testing.T, out string) map[string]hostLine {
	t.Helper()
	m := map[string]hostLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var h hostLine
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, h.FirstSeen); h.FirstSeen != "" && err != nil {
			t.Errorf("%s first_seen %q: %v", h.IP, h.FirstSeen, err)
		}
		m[h.IP] = h
	}
	return m
}

// zeekRoles reads a Zeek protocol log (modbus.log, dnp3.log) and returns
// the servers (id.resp_h) and the clients (id.orig_h) it names.
func zeekRoles(t *testing.T, path string) (servers, clients map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	servers, clients = map[string]bool{}, map[string]bool{}
	var fields []string
	for _, ln := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(ln, "#fields") {
			fields = strings.Split(ln, "\t")[1:]
			continue
		}
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		vals := strings.Split(ln, "\t")
		for i, f := range fields {
			if i >= len(vals) {
				break
			}
			switch f {
			case "id.orig_h":
				clients[vals[i]] = true
			case "id.resp_h":
				servers[vals[i]] = true
			}
		}
	}
	if len(servers) == 0 || len(clients) == 0 {
		t.Fatalf("%s: no hosts read", path)
	}
	return servers, clients
}

// PLC vs HMI on real captures: the server of Modbus/DNP3 is the PLC
// (outstation), the poller the HMI (master), as Zeek's own protocol logs
// of the same captures say.
func TestAssetsICSRoles(t *testing.T) {
	root := corpus.Path(t)
	for _, tc := range []struct {
		capture, zeekLog, proto string
	}{
		{"iti-modbus_test_data_part2.pcap", "automayt-modbus_test_data_part2.zeek-modbus.log", "modbus"},
		{"iti-dnp3_test_data_part1.pcap", "automayt-dnp3_test_data_part1.zeek-dnp3.log", "dnp3"},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			code, out, errOut := runAssets(t, "--no-db", "--format", "jsonl", filepath.Join(root, "pcap", "ics", tc.capture))
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			hosts := hostLines(t, out)
			servers, clients := zeekRoles(t, filepath.Join(root, "pcap", "ics", tc.zeekLog))
			for ip := range servers {
				h, ok := hosts[ip]
				if !ok || !slices.Contains(h.Roles, "plc") || !slices.Contains(h.Protocols, tc.proto) {
					t.Errorf("server %s (Zeek id.resp_h): %+v, want role plc and protocol %s", ip, h, tc.proto)
				}
				if slices.Contains(h.Roles, "hmi") {
					t.Errorf("server %s also called hmi", ip)
				}
			}
			for ip := range clients {
				h, ok := hosts[ip]
				if !ok || !slices.Contains(h.Roles, "hmi") || !slices.Contains(h.Protocols, tc.proto) {
					t.Errorf("client %s (Zeek id.orig_h): %+v, want role hmi and protocol %s", ip, h, tc.proto)
				}
				if slices.Contains(h.Roles, "plc") {
					t.Errorf("client %s also called plc", ip)
				}
			}
		})
	}
}

func TestAssetsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "assets.csv")
	os.WriteFile(bad, []byte("name,address,role,zone,zone_allow\nplc,10.0.0.1,plc,ot-cell,it\nhmi,10.0.0.300,hmi,ot-cell,\n"), 0o644)
	typo := filepath.Join(dir, "typo.csv")
	os.WriteFile(typo, []byte("name,address,role,zone,zone_allow\nplc,10.0.0.1,plc,ot-cell,it-servers\nwms,10.0.1.1,wms,it-server,\n"), 0o644)
	capture := filepath.Join(dir, "x.pcap")
	os.WriteFile(capture, []byte("not a capture"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-db", "--assets", bad, capture}, "assets.csv:3: address \"10.0.0.300\""},
		{[]string{"--no-db", "--assets", typo, capture}, "typo.csv:2: zone_allow \"it-servers\""},
		{[]string{"--no-db"}, "no input"},
		{[]string{"--no-db", "--format", "xml", capture}, "--format"},
		{[]string{"--no-db", capture}, "x.pcap"},
	} {
		code, _, errOut := runAssets(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("assets %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// The demo: the inventory lists the simulated devices with their roles,
// the OT hosts that reach abroad produce ot_egress (the crane PLC's at
// critical), nothing the truth calls normal does, and the map files are
// valid.
func TestAssetsDemo(t *testing.T) {
	dir := t.TempDir()
	capture, truth, err := sim.WriteDir(dir, sim.Config{Seed: 1, Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	assets := filepath.Join(dir, "assets.csv")
	mapJSON, mapDOT := filepath.Join(dir, "map.json"), filepath.Join(dir, "map.dot")
	code, out, errOut := runAssets(t, "--no-db", "--format", "jsonl", "--assets", assets, "--map-json", mapJSON, "--map-dot", mapDOT, capture)
	if code != exitOK {
		t.Fatalf("assets exit %d: %s", code, errOut)
	}
	hosts := hostLines(t, out)
	for _, dev := range truth.Devices {
		h, ok := hosts[dev.IP]
		if !ok {
			t.Errorf("device %s (%s) not in the inventory", dev.Name, dev.IP)
			continue
		}
		if !h.Known || h.Zone != dev.Zone || !slices.Contains(h.Roles, dev.Role) || !slices.Contains(h.Names, dev.Name) {
			t.Errorf("device %s: %+v", dev.Name, h)
		}
		// Hosts behind the core router show up with its MAC, which
		// names none of them; where a MAC is given it must be the
		// device's own, and the OT devices sit on the captured segment.
		if h.MAC != "" && !strings.EqualFold(h.MAC, dev.MAC) {
			t.Errorf("device %s: mac %q, want %s", dev.Name, h.MAC, dev.MAC)
		}
		if strings.HasPrefix(dev.Zone, "ot-") && (h.MAC == "" || h.Vendor == "") {
			t.Errorf("OT device %s: mac %q vendor %q", dev.Name, h.MAC, h.Vendor)
		}
		switch dev.Role {
		case "crane-plc":
			if !slices.Contains(h.Roles, "plc") {
				t.Errorf("%s: roles %v, want plc discovered from its traffic", dev.Name, h.Roles)
			}
		case "crane-hmi":
			if !slices.Contains(h.Roles, "hmi") {
				t.Errorf("%s: roles %v, want hmi discovered from its traffic", dev.Name, h.Roles)
			}
		}
	}

	// The same inputs through analyze: ot_egress as the truth expects.
	code, out, errOut = runCmd(t, "analyze", "--no-db", "--format", "jsonl", "--assets", assets, capture)
	if code != exitOK {
		t.Fatalf("analyze exit %d: %s", code, errOut)
	}
	fs := findings(t, out)
	egress := map[[2]string]finding{}
	for _, f := range fs {
		if f.Kind == "ot_egress" {
			egress[[2]string{f.SrcIP, f.DstIP}] = f
		}
	}
	plcAbroad := false
	for _, e := range truth.Expect {
		switch e.Kind {
		case "ot_egress":
			f, ok := egress[[2]string{e.Src, e.Dst}]
			if !ok {
				t.Errorf("missing ot_egress %s→%s (%s)", e.Src, e.Dst, e.Note)
				continue
			}
			if f.Severity != "critical" {
				t.Errorf("ot_egress %s→%s at %s, want critical (the peer is abroad): %s", e.Src, e.Dst, f.Severity, f.Summary)
			}
			for _, d := range truth.Devices {
				if d.IP == e.Src && d.Role == "crane-plc" {
					plcAbroad = true
				}
			}
		case sim.KindNone:
			for k := range egress {
				if (k[0] == e.Src && k[1] == e.Dst) || (k[0] == e.Dst && k[1] == e.Src) {
					t.Errorf("ot_egress %s→%s for traffic the truth calls normal (%s)", k[0], k[1], e.Note)
				}
			}
		}
	}
	if !plcAbroad {
		t.Error("the truth names no crane PLC reaching abroad")
	}
	for k, f := range egress {
		expected := false
		for _, e := range truth.Expect {
			expected = expected || (e.Kind == "ot_egress" && e.Src == k[0] && e.Dst == k[1])
		}
		if !expected {
			t.Errorf("ot_egress the truth does not expect: %s", f.Summary)
		}
	}

	data, err := os.ReadFile(mapJSON)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Nodes []struct {
			ID    string   `json:"id"`
			Roles []string `json:"roles"`
			Zone  string   `json:"zone"`
		} `json:"nodes"`
		Edges []struct {
			Src, Dst, Protocol string
			Bytes              int64
			FirstSeen          time.Time `json:"first_seen"`
			LastSeen           time.Time `json:"last_seen"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("map JSON: %v", err)
	}
	if len(m.Nodes) < len(truth.Devices) || len(m.Edges) == 0 {
		t.Errorf("map: %d nodes, %d edges", len(m.Nodes), len(m.Edges))
	}
	polls := 0
	for _, e := range m.Edges {
		if e.FirstSeen.IsZero() || e.LastSeen.Before(e.FirstSeen) || e.Src == "" || e.Dst == "" || e.Protocol == "" {
			t.Errorf("edge %+v", e)
		}
		if e.Dst == "10.20.32.13" && e.Src == "10.20.32.21" && e.Protocol == "modbus" && e.Bytes > 0 {
			polls++
		}
	}
	if polls != 1 {
		t.Errorf("no modbus edge from crane-hmi-01 to crane-plc-03 in the map")
	}
	if dot, err := exec.LookPath("dot"); err == nil {
		if out, err := exec.Command(dot, "-Tsvg", "-o", filepath.Join(dir, "map.svg"), mapDOT).CombinedOutput(); err != nil {
			t.Errorf("dot rejects the map: %v %s", err, out)
		}
	}
}

func TestAssetsTable(t *testing.T) {
	root := corpus.Path(t)
	code, out, errOut := runAssets(t, "--no-db", filepath.Join(root, "pcap", "ics", "iti-modbus_test_data_part2.pcap"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "IP ") || !strings.Contains(out, "192.168.66.235") || !strings.Contains(out, "hosts from") {
		t.Errorf("table:\n%s", out)
	}
}

// new_asset through the store: the first capture (2004) starts the
// history; a capture of other hosts ten years later brings new devices;
// the first capture again brings none (its hosts are the baseline), and
// neither does the later one again (its devices are reported once, when
// they first appear: re-analysing the same input reports them again,
// since their first sighting is in it).
func TestAssetsNewAsset(t *testing.T) {
	root := corpus.Path(t)
	db := filepath.Join(t.TempDir(), "cw.db")
	old := filepath.Join(root, "pcap", "ics", "iti-dnp3_test_data_part1.pcap")
	later := filepath.Join(root, "pcap", "ics", "ndpi-s7comm.pcap")
	news := func(capture string) []string {
		t.Helper()
		code, out, errOut := runAssets(t, "--db", db, "--format", "jsonl", capture)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var ips []string
		for ip, h := range hostLines(t, out) {
			if h.New {
				ips = append(ips, ip)
			}
		}
		slices.Sort(ips)
		return ips
	}
	if got := news(old); len(got) != 0 {
		t.Errorf("first capture into an empty store: new %v", got)
	}
	if got := news(later); !slices.Equal(got, []string{"192.168.1.10", "192.168.1.40"}) {
		t.Errorf("later capture: new %v, want both of its hosts", got)
	}
	if got := news(old); len(got) != 0 {
		t.Errorf("first capture again: new %v", got)
	}
	// analyze reports the same as findings, with the history kept.
	code, out, errOut := runCmd(t, "analyze", "--db", db, "--format", "jsonl", later)
	if code != exitOK {
		t.Fatalf("analyze exit %d: %s", code, errOut)
	}
	n := 0
	for _, f := range findings(t, out) {
		if f.Kind == "new_asset" {
			n++
			if f.Severity != "high" || f.Evidence["known"] != false {
				t.Errorf("new_asset %s at %s (an unlisted device speaking S7: high): %v", f.SrcIP, f.Severity, f.Evidence)
			}
		}
	}
	if n != 2 {
		t.Errorf("analyze: %d new_asset findings, want 2", n)
	}
}

// Names learnt through the flow table on real traffic: the iPad's mDNS
// announcement in the radiotap capture.
func TestAssetsNames(t *testing.T) {
	root := corpus.Path(t)
	code, out, errOut := runAssets(t, "--no-db", "--format", "jsonl", filepath.Join(root, "pcap", "edge", "zeek-radiotap.pcap"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	h := hostLines(t, out)["fe80::a667:6ff:fef7:ec54"]
	if !slices.Contains(h.Names, "Art-Teachers-iPad.local") {
		t.Errorf("iPad: %+v", h)
	}
}
