package ot_test

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/ot"
	"github.com/cargowatch/cargowatch/pcap"
)

// conns runs a capture through the real pipeline.
func conns(t *testing.T, path string) []*cw.Conn {
	t.Helper()
	var out []*cw.Conn
	src := flow.NewCaptureSource([]string{path}, flow.Config{}, pcap.Options{})
	if err := src.Run(context.Background(), func(c *cw.Conn) { out = append(out, c) }); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

type tuple struct {
	a, b  netip.AddrPort
	proto string
}

// key is direction-free: nDPI prints the flow in its own orientation.
func key(proto string, x, y netip.AddrPort) tuple {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return tuple{x, y, proto}
}

func connKey(c *cw.Conn) tuple {
	return key(c.Proto, netip.AddrPortFrom(c.Orig.Addr, c.Orig.Port), netip.AddrPortFrom(c.Resp.Addr, c.Resp.Port))
}

// ndpiNames maps nDPI's protocol names to ours.
var ndpiNames = map[string]string{
	"Modbus": ot.Modbus, "DNP3": ot.DNP3, "IEC60870": ot.IEC104, "BACnet": ot.BACnet, "CIP": ot.CIP,
	"OPC-UA": ot.OPCUA, "S7Comm": ot.S7comm, "EtherNet-IP": ot.ENIP, "Mqtt": ot.MQTT, "MQTT": ot.MQTT,
	"SSH": ot.SSH, "RDP": ot.RDP, "VNC": ot.VNC, "TeamViewer": ot.TeamViewer, "AnyDesk": ot.AnyDesk,
}

var ndpiLine = regexp.MustCompile(`^\s+\d+\s+(TCP|UDP) (\S+) (?:<->|->) (\S+) \[proto: [\d.]+/([^\]]+)\]`)

// ndpiFlows reads a .pcap.out: each flow line with nDPI's protocol (the
// application part of "A.B" names).
func ndpiFlows(t *testing.T, path string) map[tuple]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[tuple]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := ndpiLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		a, err1 := netip.ParseAddrPort(m[2])
		b, err2 := netip.ParseAddrPort(m[3])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %q", path, sc.Text())
		}
		name := m[4]
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		out[key(strings.ToLower(m[1]), a, b)] = name
	}
	return out
}

// Every flow nDPI names with an OT protocol is found, on the same flow,
// with the same protocol; and we name no flow that nDPI left unnamed.
func TestCorpusNDPI(t *testing.T) {
	outs, _ := filepath.Glob(filepath.Join(corpus.Path(t, "pcap", "ics"), "ndpi-*.pcap.out"))
	if len(outs) < 7 {
		t.Fatalf("%d nDPI results", len(outs))
	}
	for _, out := range outs {
		want := ndpiFlows(t, out)
		if len(want) == 0 {
			t.Fatalf("%s: no flows read", out)
		}
		got := map[tuple]*cw.Conn{}
		for _, c := range conns(t, strings.TrimSuffix(out, ".out")) {
			got[connKey(c)] = c
		}
		for k, name := range want {
			ours, known := ndpiNames[name]
			if !known {
				t.Errorf("%s: nDPI protocol %q has no counterpart", filepath.Base(out), name)
				continue
			}
			c := got[k]
			switch {
			case c == nil:
				t.Errorf("%s: flow %v missing", filepath.Base(out), k)
			case c.OT == nil || c.OT.Protocol != ours || c.Service != ours:
				t.Errorf("%s: %v: got service %q OT %+v, nDPI says %s", filepath.Base(out), k, c.Service, c.OT, name)
			}
		}
		for k, c := range got {
			if _, ok := want[k]; !ok && c.OT != nil {
				t.Errorf("%s: %v named %s, nDPI did not", filepath.Base(out), k, c.OT.Protocol)
			}
		}
	}
}

// zeekLog reads a Zeek TSV log into rows of field name -> value.
func zeekLog(t *testing.T, path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []string
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ln := sc.Text()
		if strings.HasPrefix(ln, "#fields\t") {
			fields = strings.Split(ln, "\t")[1:]
			continue
		}
		if strings.HasPrefix(ln, "#") || ln == "" {
			continue
		}
		vals := strings.Split(ln, "\t")
		row := map[string]string{}
		for i, v := range vals {
			if i < len(fields) {
				row[fields[i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func zeekTuple(r map[string]string) (netip.AddrPort, netip.AddrPort) {
	op, _ := strconv.Atoi(r["id.orig_p"])
	rp, _ := strconv.Atoi(r["id.resp_p"])
	return netip.AddrPortFrom(netip.MustParseAddr(r["id.orig_h"]), uint16(op)),
		netip.AddrPortFrom(netip.MustParseAddr(r["id.resp_h"]), uint16(rp))
}

// ourConn finds the Conn with Zeek's 5-tuple in Zeek's orientation.
func ourConn(cs []*cw.Conn, o, r netip.AddrPort) *cw.Conn {
	for _, c := range cs {
		if c.Orig.Addr == o.Addr() && c.Orig.Port == o.Port() && c.Resp.Addr == r.Addr() && c.Resp.Port == r.Port() && c.OrigBytes+c.RespBytes > 0 {
			return c
		}
	}
	return nil
}

// Zeek's dnp3.log for the same capture: every connection it parsed is
// ours too, same orientation, and the requests it logged by function
// code are the ones we counted.
func TestCorpusZeekDNP3(t *testing.T) {
	dir := corpus.Path(t, "pcap", "ics")
	cs := conns(t, filepath.Join(dir, "iti-dnp3_test_data_part1.pcap"))
	rows := zeekLog(t, filepath.Join(dir, "automayt-dnp3_test_data_part1.zeek-dnp3.log"))
	byUID := map[string]map[string]int{}
	tuples := map[string][2]netip.AddrPort{}
	for _, r := range rows {
		uid := r["uid"]
		if byUID[uid] == nil {
			byUID[uid] = map[string]int{}
		}
		o, p := zeekTuple(r)
		tuples[uid] = [2]netip.AddrPort{o, p}
		if fc := r["fc_request"]; fc != "-" {
			byUID[uid][strings.ToLower(fc)]++
		}
		if r["fc_reply"] == "UNSOLICITED_RESPONSE" {
			byUID[uid]["unsolicited_response"]++
		}
	}
	if len(byUID) != 8 {
		t.Fatalf("%d connections in dnp3.log", len(byUID))
	}
	for uid, want := range byUID {
		tp := tuples[uid]
		c := ourConn(cs, tp[0], tp[1])
		if c == nil || c.OT == nil || c.OT.Protocol != ot.DNP3 || c.OT.ServerIsOrig {
			t.Errorf("%s %v: %+v", uid, tp, c)
			continue
		}
		// Zeek logs a request when its reply comes, so a repeated
		// request, or a confirm no unsolicited response followed, is
		// not in its log: ours may be more, never fewer, and only
		// confirms may be ours alone. (TestCorpusTshark checks exact
		// counts.)
		for fn, n := range want {
			if c.OT.Functions[fn] < n {
				t.Errorf("%s: %s: ours %d, zeek %d (ours %v)", uid, fn, c.OT.Functions[fn], n, c.OT.Functions)
			}
		}
		for fn := range c.OT.Functions {
			if _, ok := want[fn]; !ok && fn != "confirm" {
				t.Errorf("%s: we counted %s, zeek did not (%v)", uid, fn, want)
			}
		}
	}
}

// Zeek's modbus.log: the connection is the same, every function Zeek saw
// answered is one we saw asked (the capture is a function-code scan, so
// past MaxFunctions names the rest are under "other"), and the writes
// agree.
func TestCorpusZeekModbus(t *testing.T) {
	dir := corpus.Path(t, "pcap", "ics")
	cs := conns(t, filepath.Join(dir, "iti-modbus_test_data_part2.pcap"))
	rows := zeekLog(t, filepath.Join(dir, "automayt-modbus_test_data_part2.zeek-modbus.log"))
	if len(rows) == 0 {
		t.Fatal("empty modbus.log")
	}
	o, r := zeekTuple(rows[0])
	c := ourConn(cs, o, r)
	if c == nil || c.OT == nil || c.OT.Protocol != ot.Modbus || c.Service != "modbus" {
		t.Fatalf("conn %v: %+v", rows[0]["uid"], c)
	}
	zeek := map[string]bool{}
	for _, r := range rows {
		fn := strings.ToLower(strings.TrimSuffix(r["func"], "_EXCEPTION"))
		if n, ok := strings.CutPrefix(fn, "unknown-"); ok {
			// An exception reply to an unnamed function: base code.
			v, _ := strconv.Atoi(n)
			fn = "unknown-" + strconv.Itoa(v&0x7f)
		}
		zeek[fn] = true
	}
	// Every named function Zeek logged a reply to, we counted asked
	// (the names past MaxFunctions are under "other").
	named := len(c.OT.Functions) - 1
	if named < ot.MaxFunctions || named > ot.MaxFunctions+16 || c.OT.Functions["other"] == 0 {
		t.Errorf("%d names, other %d", named, c.OT.Functions["other"])
	}
	for fn := range zeek {
		if _, ok := c.OT.Functions[fn]; !ok && !strings.HasPrefix(fn, "unknown-") && c.OT.Functions["other"] == 0 {
			t.Errorf("zeek logged %s, we did not count it", fn)
		}
	}
	for _, fn := range []string{"read_coils", "read_discrete_inputs", "read_holding_registers", "diagnostics", "program_concept", "firmware_replacement"} {
		if !zeek[fn] || c.OT.Functions[fn] == 0 {
			t.Errorf("%s: zeek %v, ours %d", fn, zeek[fn], c.OT.Functions[fn])
		}
	}
	// Writes: write_single_coil answered normally, and the scan's writes
	// that drew exceptions (write_multiple_coils, write_multiple_registers,
	// write_single_register, write_file_record, mask_write_register,
	// read_write_multiple_registers).
	for _, fn := range []string{"write_single_coil", "write_multiple_coils", "write_multiple_registers", "write_single_register", "write_file_record", "mask_write_register", "read_write_multiple_registers"} {
		if !zeek[fn] || c.OT.Functions[fn] != 1 {
			t.Errorf("%s: zeek %v, ours %d", fn, zeek[fn], c.OT.Functions[fn])
		}
	}
	// The six program functions of the public table (484, 584/984,
	// 884, Concept, firmware replacement, 584/984-2) were all probed.
	if c.OT.Writes != 7 || c.OT.Program != 6 {
		t.Errorf("writes %d program %d", c.OT.Writes, c.OT.Program)
	}
}

// The ITI captures by their names: every flow that carried payload is
// named with the capture's protocol, except where the capture holds
// something else (said below, checked against tshark).
func TestCorpusITI(t *testing.T) {
	dir := corpus.Path(t, "pcap", "ics")
	tests := []struct {
		file   string
		proto  string
		flows  int
		device string
		check  func(t *testing.T, c *cw.Conn)
	}{
		{"iti-ModbusTCP.pcap", ot.Modbus, 14, "", func(t *testing.T, c *cw.Conn) {
			if c.OT.Writes == 0 || c.OT.Functions["read_coils"] == 0 {
				t.Errorf("%+v", c.OT)
			}
		}},
		{"iti-TestDissectIec104.pcap", ot.IEC104, 6, "", nil},
		{"iti-bacnet_test.pcap", ot.BACnet, 1, "JCI MS-NAE4510-2", nil},
		{"iti-dnp3_test_data_part1.pcap", ot.DNP3, 8, "", nil},
		{"iti-enip_test.pcap", ot.ENIP, 1, "1756-ENBT/A", nil},
		{"iti-modbus_test_data_part2.pcap", ot.Modbus, 1, "", nil},
		{"iti-opc-ua-ap-method.pcap", ot.OPCUA, 2, "opc.tcp://vm-xp-steven:12001/UA/StackTestServer", func(t *testing.T, c *cw.Conn) {
			// "ap-method": a method call, on a non-standard port.
			if c.OT.Functions["call"] != 1 || c.OT.Writes != 1 || c.Resp.Port != 12001 {
				t.Errorf("%+v", c.OT)
			}
		}},
		// Despite its name this capture holds DNP3 to port 20000 (a
		// read, which tshark decodes too) and an unknown protocol on
		// 5450 that is not EtherNet/IP.
		{"iti-openics-EIP-ViewDeviceStatus.pcap", ot.DNP3, 1, "", nil},
		{"iti-s7-1200-poll-5s-10s.pcapng", ot.S7commPlus, 2, "Siemens 6ES7 214-1HE30-0XB0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			named := 0
			for _, c := range conns(t, filepath.Join(dir, tt.file)) {
				if c.OT == nil {
					continue
				}
				if c.OT.Protocol != tt.proto || c.Service != tt.proto || c.OT.ServerIsOrig {
					t.Errorf("%s:%d -> %s:%d: %s %+v", c.Orig.Addr, c.Orig.Port, c.Resp.Addr, c.Resp.Port, c.Service, c.OT)
				}
				named++
				if tt.device != "" && c.OT.Device != tt.device {
					t.Errorf("device %q, want %q", c.OT.Device, tt.device)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
			}
			if named != tt.flows {
				t.Errorf("%d flows named %s, want %d", named, tt.proto, tt.flows)
			}
		})
	}
}

// Captures without OT traffic: nothing named OT; remote-access names,
// if any, must be right (the corpus has none, so none may appear).
func TestCorpusNoOT(t *testing.T) {
	root := corpus.Path(t, "pcap")
	var files []string
	for _, pat := range []string{"pcap/edge/*", "pcap/c2/*", "pcap/dns/*", "netflow/*"} {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(root), pat))
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".pcap" && ext != ".pcapng" {
			continue
		}
		n++
		var cs []*cw.Conn
		src := flow.NewCaptureSource([]string{f}, flow.Config{}, pcap.Options{})
		_ = src.Run(context.Background(), func(c *cw.Conn) { cs = append(cs, c) }) // edge cases may report input errors
		for _, c := range cs {
			if c.OT != nil {
				t.Errorf("%s: %s:%d -> %s:%d named %s", filepath.Base(f), c.Orig.Addr, c.Orig.Port, c.Resp.Addr, c.Resp.Port, c.OT.Protocol)
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d captures checked", n)
	}
}

// tsharkCounts runs tshark over a capture and counts field values per
// (source port, destination port); skips when tshark is not installed.
func tsharkCounts(t *testing.T, path, filter, field string) map[[2]string]map[string]int {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	out, err := exec.Command(bin, "-r", path, "-Y", filter, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", field).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	m := map[[2]string]map[string]int{}
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(ln, "\t")
		if len(f) != 3 {
			continue
		}
		k := [2]string{f[0], f[1]}
		if m[k] == nil {
			m[k] = map[string]int{}
		}
		for _, v := range strings.Split(f[2], ",") {
			m[k][v]++
		}
	}
	return m
}

// Exact counts against tshark's dissectors: DNP3 application function
// codes and Modbus request function codes on every flow.
func TestCorpusTshark(t *testing.T) {
	dir := corpus.Path(t, "pcap", "ics")
	t.Run("dnp3", func(t *testing.T) {
		// The ITI copy: nDPI's has every packet three times, which
		// tshark counts and reassembly rightly does not.
		path := filepath.Join(dir, "iti-dnp3_test_data_part1.pcap")
		ts := tsharkCounts(t, path, "dnp3.al.func && !tcp.analysis.retransmission", "dnp3.al.func")
		dnp3Names := []string{"confirm", "read", "write", "select", "operate", "direct_operate", "direct_operate_nr",
			"immed_freeze", "immed_freeze_nr", "freeze_clear", "freeze_clear_nr", "freeze_at_time", "freeze_at_time_nr",
			"cold_restart", "warm_restart", "initialize_data", "initialize_appl", "start_appl", "stop_appl",
			"save_config", "enable_unsolicited", "disable_unsolicited"}
		checked := 0
		for _, c := range conns(t, path) {
			if c.OT == nil {
				continue
			}
			want := map[string]int{}
			for fc, n := range ts[[2]string{strconv.Itoa(int(c.Orig.Port)), strconv.Itoa(int(c.Resp.Port))}] {
				v, _ := strconv.Atoi(fc)
				if v < len(dnp3Names) {
					want[dnp3Names[v]] += n
				}
			}
			want["unsolicited_response"] = ts[[2]string{strconv.Itoa(int(c.Resp.Port)), strconv.Itoa(int(c.Orig.Port))}]["130"]
			for fn, n := range want {
				if c.OT.Functions[fn] != n {
					t.Errorf("port %d: %s ours %d, tshark %d", c.Orig.Port, fn, c.OT.Functions[fn], n)
				}
			}
			checked++
		}
		if checked != 8 {
			t.Errorf("%d flows", checked)
		}
	})
	t.Run("modbus", func(t *testing.T) {
		path := filepath.Join(dir, "iti-ModbusTCP.pcap")
		ts := tsharkCounts(t, path, "modbus && tcp.dstport == 502", "modbus.func_code")
		names := map[string]string{"1": "read_coils", "2": "read_discrete_inputs", "3": "read_holding_registers",
			"4": "read_input_registers", "5": "write_single_coil", "6": "write_single_register",
			"15": "write_multiple_coils", "16": "write_multiple_registers"}
		checked, writes := 0, 0
		for _, c := range conns(t, path) {
			if c.OT == nil {
				continue
			}
			want := ts[[2]string{strconv.Itoa(int(c.Orig.Port)), "502"}]
			total := 0
			for fc, n := range want {
				if c.OT.Functions[names[fc]] != n {
					t.Errorf("port %d: fc %s (%s) ours %d, tshark %d", c.Orig.Port, fc, names[fc], c.OT.Functions[names[fc]], n)
				}
				total += n
			}
			if len(c.OT.Functions) != len(want) || total == 0 {
				t.Errorf("port %d: ours %v, tshark %v", c.Orig.Port, c.OT.Functions, want)
			}
			writes += c.OT.Writes
			checked++
		}
		if checked != 14 || writes == 0 {
			t.Errorf("%d flows, %d writes", checked, writes)
		}
	})
}
