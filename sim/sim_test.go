package sim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phuslu/iploc"
)

// run generates a capture in memory and returns it with the generator's
// counters.
func run(t testing.TB, cfg Config) ([]byte, *Truth, stats) {
	t.Helper()
	var buf bytes.Buffer
	g, err := newGen(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), g.truth(), g.st
}

func decodeAll(t *testing.T, b []byte) []decoded {
	t.Helper()
	raw, err := readPcap(b)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]decoded, 0, len(raw))
	for i, p := range raw {
		d, err := decode(p)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		out = append(out, d)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Duration: 20 * time.Minute}
	a, ta, _ := run(t, cfg)
	b, tb, _ := run(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different captures (%d vs %d bytes)", len(a), len(b))
	}
	ja, _ := json.Marshal(ta)
	jb, _ := json.Marshal(tb)
	if !bytes.Equal(ja, jb) {
		t.Fatal("same seed, different truth")
	}
	c, _, _ := run(t, Config{Seed: 8, Duration: 20 * time.Minute})
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same capture")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero is the demo", Config{Duration: time.Minute}, true},
		{"negative duration", Config{Duration: -time.Second}, false},
		{"too long", Config{Duration: 400 * 24 * time.Hour}, false},
		{"negative scale", Config{Duration: time.Minute, Scale: -1}, false},
		{"NaN scale", Config{Duration: time.Minute, Scale: math.NaN()}, false},
		{"huge scale", Config{Duration: time.Minute, Scale: 1e9}, false},
		{"before 1970", Config{Duration: time.Minute, Start: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"after 2106", Config{Duration: time.Minute, Start: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"tiny scale", Config{Duration: time.Minute, Scale: 0.01}, true},
		{"too tiny scale", Config{Duration: time.Minute, Scale: 1e-300}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(io.Discard, tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	got, err := Config{}.withDefaults()
	if err != nil || !got.Start.Equal(DefaultStart) || got.Duration != 2*time.Hour || got.Scale != 1 {
		t.Fatalf("defaults = %+v, %v", got, err)
	}
}

// TestWellFormed checks every frame: lengths, IP and TCP/UDP checksums,
// time order, and that each TCP direction's sequence numbers advance by
// exactly the bytes sent while ACKs never cover unsent bytes.
func TestWellFormed(t *testing.T) {
	cfg := Config{Seed: 3, Duration: 30 * time.Minute}
	b, _, st := run(t, cfg)
	pkts := decodeAll(t, b)
	start := DefaultStart.UnixMicro()
	end := DefaultStart.Add(cfg.Duration + 5*time.Minute).UnixMicro()

	type dir struct {
		isn, next uint32
		fin       bool
	}
	dirs := map[tcpKey]*dir{}
	conns := 0
	var last int64
	for i := range pkts {
		d := &pkts[i]
		if !d.lenOK || !d.ipOK || !d.l4OK {
			t.Fatalf("packet %d: len %v ip checksum %v l4 checksum %v", i+1, d.lenOK, d.ipOK, d.l4OK)
		}
		if d.ts < last || d.ts < start || d.ts > end {
			t.Fatalf("packet %d: time %d out of order or range (last %d)", i+1, d.ts, last)
		}
		last = d.ts
		if d.proto != protoTCP {
			continue
		}
		k := tcpKey{d.src, d.dst, d.sport, d.dport}
		s := dirs[k]
		if d.flags&flSYN != 0 {
			if s != nil && s.isn == d.seq { // retransmitted SYN
				continue
			}
			if d.flags&flACK == 0 {
				conns++
			}
			dirs[k] = &dir{isn: d.seq, next: d.seq + 1}
			continue
		}
		if d.flags&flRST != 0 && s == nil { // refused connection
			continue
		}
		if s == nil {
			t.Fatalf("packet %d: %v:%d -> %v:%d without SYN", i+1, d.src, d.sport, d.dst, d.dport)
		}
		if d.seq != s.next {
			t.Fatalf("packet %d: seq %d, want %d (%v:%d -> %v:%d)", i+1, d.seq-s.isn, s.next-s.isn, d.src, d.sport, d.dst, d.dport)
		}
		if s.fin && len(d.payload) > 0 {
			t.Fatalf("packet %d: data after FIN", i+1)
		}
		s.next += uint32(len(d.payload))
		if d.flags&flFIN != 0 {
			s.next++
			s.fin = true
		}
		if p := dirs[k.rev()]; p != nil && d.flags&flACK != 0 {
			if d.ack-p.isn > p.next-p.isn {
				t.Fatalf("packet %d: acks %d but peer sent only up to %d", i+1, d.ack-p.isn, p.next-p.isn)
			}
		}
	}
	if conns != st.tcpFlows {
		t.Errorf("saw %d TCP connections, generator made %d", conns, st.tcpFlows)
	}
	if conns < 100 {
		t.Errorf("only %d TCP connections in 30 min", conns)
	}
}

// TestMACs checks that devices show their vendors' OUIs and that remote
// peers appear behind the router.
func TestMACs(t *testing.T) {
	b, tr, _ := run(t, Config{Seed: 4, Duration: 15 * time.Minute})
	pkts := decodeAll(t, b)
	want := map[string][3]byte{}
	for _, d := range tr.Devices {
		a := netip.MustParseAddr(d.IP).String()
		mac, err := parseMAC(d.MAC)
		if err != nil {
			t.Fatal(err)
		}
		want[a] = [3]byte(mac[:3])
	}
	vendor := map[string][3]byte{
		"10.20.32.11":  {0x00, 0x1b, 0x1b}, // Siemens S7
		"10.20.32.13":  {0x00, 0x80, 0xf4}, // Schneider Modbus
		"10.20.32.50":  {0x00, 0xa0, 0xd5}, // Sierra Wireless
		"10.20.40.107": {0x00, 0xa0, 0xf8}, // Zebra
	}
	for ip, oui := range vendor {
		if want[ip] != oui {
			t.Errorf("%s: truth OUI %x, want %x", ip, want[ip], oui)
		}
	}
	seen := map[string]bool{}
	for i := range pkts {
		d := &pkts[i]
		oui, ok := want[d.src.String()]
		if !ok {
			continue
		}
		if [3]byte(d.srcMAC[:3]) == oui {
			seen[d.src.String()] = true
		}
	}
	for ip := range vendor {
		if !seen[ip] {
			t.Errorf("%s never seen with its own MAC", ip)
		}
	}
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, strconv.ErrSyntax
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return m, err
		}
		m[i] = byte(v)
	}
	return m, nil
}

// checkDigit is an independent ISO 6346 implementation with the letter
// values written out, to cross-check the generator's.
func checkDigit(s string) int {
	const letters = "A10B12C13D14E15F16G17H18I19J20K21L23M24N25O26P27Q28R29S30T31U32V34W35X36Y37Z38"
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		var v int
		if i < 4 {
			j := strings.IndexByte(letters, c)
			if j < 0 {
				return -1
			}
			v, _ = strconv.Atoi(letters[j+1 : j+3])
		} else {
			v = int(c - '0')
		}
		sum += v * (1 << i)
	}
	return sum % 11 % 10
}

var eqd = regexp.MustCompile(`EQD\+CN\+([A-Z0-9]+)\+`)

// TestBayplans reassembles the WMS uploads from the capture and checks
// the HTTP framing, the EDIFACT structure and every container number.
func TestBayplans(t *testing.T) {
	b, tr, st := run(t, Config{Seed: 11})
	pkts := decodeAll(t, b)
	cloud := netip.MustParseAddr(siteBayplanCloud.ip)
	ups := streams(pkts, func(d *decoded) bool { return d.dst == cloud && d.dport == 80 })
	if len(ups) < 4 || len(ups) != st.bayplans {
		t.Fatalf("%d uploads on the wire, %d generated; want >= 4 in 2 h", len(ups), st.bayplans)
	}
	gz, boxes := 0, 0
	for k, s := range ups {
		req, err := readRequest(s.Bytes())
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		if req.ctype != "application/edifact" || req.method != "POST" {
			t.Errorf("%v: %s with Content-Type %q", k, req.method, req.ctype)
		}
		body := req.body
		if req.encoding == "gzip" {
			gz++
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		msg := string(body)
		if !strings.HasPrefix(msg, "UNA:+.? '") || !strings.Contains(msg, "UNH+") || !strings.Contains(msg, "+BAPLIE:D:95B:UN:SMDG20'") {
			t.Fatalf("%v: not a BAPLIE D95B SMDG20:\n%.200s", k, msg)
		}
		checkUNT(t, msg)
		ms := eqd.FindAllStringSubmatch(msg, -1)
		if len(ms) < 20 || len(ms) > 60 {
			t.Errorf("%v: %d containers, want 20-60", k, len(ms))
		}
		for _, m := range ms {
			c := m[1]
			if len(c) != 11 || checkDigit(c) != int(c[10]-'0') || !validContainer(c) {
				t.Errorf("container %s: bad check digit (want %d)", c, checkDigit(c))
			}
			boxes++
		}
	}
	if gz != 1 {
		t.Errorf("%d gzip-encoded uploads, want 1", gz)
	}
	if boxes != st.containers {
		t.Errorf("%d containers on the wire, %d generated", boxes, st.containers)
	}
	found := false
	for _, e := range tr.Expect {
		if e.Kind == "cargo_data" && e.Dst == siteBayplanCloud.ip && strings.Contains(e.Note, strconv.Itoa(boxes)+" container") {
			found = true
		}
	}
	if !found {
		t.Errorf("truth lacks the cargo_data expectation with %d containers: %+v", boxes, tr.Expect)
	}
}

// checkUNT verifies the segment count in UNT (UNH to UNT inclusive).
func checkUNT(t *testing.T, msg string) {
	t.Helper()
	segs := strings.Split(strings.ReplaceAll(msg, "\n", ""), "'")
	n, in := 0, false
	for _, s := range segs {
		switch {
		case strings.HasPrefix(s, "UNH+"):
			in, n = true, 1
		case strings.HasPrefix(s, "UNT+"):
			n++
			f := strings.Split(s, "+")
			if got, _ := strconv.Atoi(f[1]); got != n {
				t.Errorf("UNT says %d segments, counted %d", got, n)
			}
			return
		case in:
			n++
		}
	}
	t.Error("no UNT")
}

type httpReq struct {
	method, ctype, encoding string
	body                    []byte
}

func readRequest(b []byte) (httpReq, error) {
	var r httpReq
	br := bufio.NewReader(bytes.NewReader(b))
	line, err := br.ReadString('\n')
	if err != nil {
		return r, err
	}
	r.method, _, _ = strings.Cut(line, " ")
	clen := -1
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return r, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ": ")
		switch strings.ToLower(k) {
		case "content-type":
			r.ctype = v
		case "content-encoding":
			r.encoding = v
		case "content-length":
			clen, _ = strconv.Atoi(v)
		}
	}
	r.body, _ = io.ReadAll(br)
	if clen != len(r.body) {
		return r, &strconv.NumError{Func: "Content-Length", Num: strconv.Itoa(clen), Err: strconv.ErrRange}
	}
	return r, nil
}

// TestBeacon measures the modem's check-ins on the wire: period about
// 60 s, uniform ±30 % jitter, a few missed beats (double intervals).
func TestBeacon(t *testing.T) {
	b, tr, st := run(t, Config{Seed: 5})
	pkts := decodeAll(t, b)
	tel := netip.MustParseAddr(siteTelemetry.ip)
	var syns []int64
	for i := range pkts {
		d := &pkts[i]
		if d.dst == tel && d.flags == flSYN {
			syns = append(syns, d.ts)
		}
	}
	if len(syns) != len(st.beats) || len(syns) < 100 {
		t.Fatalf("%d SYNs on the wire, %d beats generated", len(syns), len(st.beats))
	}
	var sum, sq float64
	n, missed := 0, 0
	for i := 1; i < len(syns); i++ {
		iv := float64(syns[i]-syns[i-1]) / 1e6
		switch {
		case iv >= 41.5 && iv <= 78.5: // 60 s ±30 %, plus DNS lookups
			sum += iv
			sq += iv * iv
			n++
		case iv > 84 && iv <= 157:
			missed++
		default:
			t.Errorf("interval %d: %.2fs is neither one nor two beats", i, iv)
		}
	}
	mean := sum / float64(n)
	cv := math.Sqrt(sq/float64(n)-mean*mean) / mean
	t.Logf("%d beats, mean %.1fs, cv %.3f, %d missed", len(syns), mean, cv, missed)
	// Uniform ±30 % has a coefficient of variation of 0.3/sqrt(3) = 0.17.
	if mean < 57 || mean > 63 || cv < 0.13 || cv > 0.21 {
		t.Errorf("mean %.1fs cv %.3f, want ~60s and ~0.17", mean, cv)
	}
	if missed != st.missedBeats || missed < 2 || missed > 4 {
		t.Errorf("%d missed beats on the wire, %d generated, want 2-4", missed, st.missedBeats)
	}
	want := strconv.Itoa(missed) + " missed"
	for _, e := range tr.Expect {
		if e.Kind == "beacon" && !strings.Contains(e.Note, want) {
			t.Errorf("beacon note %q lacks %q", e.Note, want)
		}
	}
}

// dnsQName reads the question name of a DNS message (no compression in
// questions).
func dnsQName(m []byte) (string, uint16, bool) {
	if len(m) < 12 {
		return "", 0, false
	}
	i := 12
	var labels []string
	for i < len(m) && m[i] != 0 {
		l := int(m[i])
		if l > 63 || i+1+l > len(m) {
			return "", 0, false
		}
		labels = append(labels, string(m[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(m) {
		return "", 0, false
	}
	return strings.Join(labels, "."), uint16(m[i+1])<<8 | uint16(m[i+2]), true
}

func TestDNSTunnel(t *testing.T) {
	b, _, st := run(t, Config{Seed: 9})
	pkts := decodeAll(t, b)
	res := netip.MustParseAddr(siteTunnelResolver.ip)
	names := map[string]bool{}
	answers := 0
	for i := range pkts {
		d := &pkts[i]
		if d.proto != protoUDP {
			continue
		}
		if d.src == res && d.sport == 53 {
			if an := int(d.payload[6])<<8 | int(d.payload[7]); an == 1 {
				answers++
			}
			continue
		}
		if d.dst != res || d.dport != 53 {
			continue
		}
		if d.src.String() != "10.20.40.107" {
			t.Fatalf("tunnel query from %v", d.src)
		}
		name, qt, ok := dnsQName(d.payload)
		if !ok || qt != dnsTXT || !strings.HasSuffix(name, ".x.cargo-sync-cdn.net") || len(name) < 80 || len(name) > 253 {
			t.Fatalf("bad tunnel query %q type %d", name, qt)
		}
		if names[name] {
			t.Fatalf("repeated name %q", name)
		}
		names[name] = true
	}
	if len(names) != st.tunnelQueries || len(names) < 200 || answers != len(names) {
		t.Fatalf("%d unique queries, %d answers, %d generated", len(names), answers, st.tunnelQueries)
	}
}

// TestScale checks that the scale knob grows the capture about linearly:
// the increments from 1 to 2 to 4 to 8 double each time (the fixed
// scenario traffic is the intercept).
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	size := func(s float64) float64 {
		var cw countWriter
		if _, err := Generate(&cw, Config{Seed: 2, Duration: 30 * time.Minute, Scale: s}); err != nil {
			t.Fatal(err)
		}
		return float64(cw)
	}
	s1, s2, s4, s8 := size(1), size(2), size(4), size(8)
	t.Logf("30 min: scale 1 %.1f MB, 2 %.1f MB, 4 %.1f MB, 8 %.1f MB; 4/1 = %.2f", s1/1e6, s2/1e6, s4/1e6, s8/1e6, s4/s1)
	d1, d2, d3 := s2-s1, s4-s2, s8-s4
	if r := d2 / d1; r < 1.6 || r > 2.4 {
		t.Errorf("increment 2->4 is %.2f x the 1->2 one, want ~2", r)
	}
	if r := d3 / d2; r < 1.6 || r > 2.4 {
		t.Errorf("increment 4->8 is %.2f x the 2->4 one, want ~2", r)
	}
	if s4/s1 < 2 { // the fixed scenario (backup upload, beacon, tunnel) is ~4 MB per 30 min
		t.Errorf("scale 4 is only %.2f x scale 1", s4/s1)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// TestSites checks with iploc that every external address sits in the
// country the scenario says.
func TestSites(t *testing.T) {
	for _, s := range append(append([]site{}, browseSites...), specialSites...) {
		if got := iploc.IPCountry(netip.MustParseAddr(s.ip)); got != s.country {
			t.Errorf("%s %s: iploc says %q, want %q", s.name, s.ip, got, s.country)
		}
	}
	for _, s := range browseSites {
		if s.country == "CN" || s.country == "RU" {
			t.Errorf("browsing site %s in %s", s.name, s.country)
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	p, tr, err := WriteDir(filepath.Join(dir, "demo"), Config{Seed: 1, Duration: 10 * time.Minute, Scale: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() < 10000 {
		t.Fatalf("pcap %s: %v", p, err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "demo", "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Truth
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Home != "DE" || back.Network != "10.20.0.0/16" || len(back.Devices) != len(tr.Devices) || len(back.Expect) != len(tr.Expect) {
		t.Fatalf("truth.json round trip: %+v", back)
	}
	f, err := os.Open(filepath.Join(dir, "demo", "assets.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "name,address,role,zone,owner" || len(rows) != len(tr.Devices)+1 {
		t.Fatalf("assets.csv header %v, %d rows", rows[0], len(rows))
	}

	zones := map[string]netip.Prefix{}
	for _, z := range zoneNets {
		zones[z.zone] = netip.MustParsePrefix(z.cidr)
	}
	home := netip.MustParsePrefix(homeNetwork)
	ips := map[string]string{}
	for _, d := range tr.Devices {
		a := netip.MustParseAddr(d.IP)
		if !home.Contains(a) || !zones[d.Zone].Contains(a) {
			t.Errorf("%s %s outside zone %s", d.Name, d.IP, d.Zone)
		}
		if _, dup := ips[d.IP]; dup {
			t.Errorf("duplicate address %s", d.IP)
		}
		ips[d.IP] = d.Role
	}
	kinds := map[string]bool{"none": true, "jurisdiction": true, "beacon": true, "dns_tunnel": true, "cargo_data": true, "ot_egress": true}
	for _, e := range tr.Expect {
		if !kinds[e.Kind] || ips[e.Src] == "" || e.Note == "" {
			t.Errorf("bad expectation %+v", e)
		}
	}
	if _, _, err := WriteDir(filepath.Join(p, "sub"), Config{}); err == nil {
		t.Error("WriteDir under a file: want an error")
	}
}

// TestTshark lets Wireshark judge the capture: no malformed packets, and
// as many TCP conversations as the generator made.
func TestTshark(t *testing.T) {
	ts, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: ", err)
	}
	dir := t.TempDir()
	p, _, err := WriteDir(dir, Config{Seed: 6, Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ts, "-n", "-r", p, "-Y", "_ws.malformed || _ws.expert.severity >= warning && !tcp.flags.reset").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	if lines := nonEmpty(string(out)); len(lines) > 0 {
		t.Fatalf("tshark flags %d packets, first: %s", len(lines), lines[0])
	}
	out, err = exec.Command(ts, "-n", "-r", p, "-q", "-z", "conv,tcp").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	convs := strings.Count(string(out), "<->")
	var st stats
	{
		var cw countWriter
		g, _ := newGen(&cw, Config{Seed: 6, Duration: 30 * time.Minute})
		if err := g.run(); err != nil {
			t.Fatal(err)
		}
		st = g.st
	}
	if convs != st.tcpFlows {
		t.Errorf("tshark counts %d TCP conversations, generator made %d", convs, st.tcpFlows)
	}
	out, err = exec.Command(ts, "-n", "-r", p, "-Y", "s7comm || mbtcp", "-T", "fields", "-e", "frame.protocols").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	s7, mb := strings.Count(string(out), "s7comm"), strings.Count(string(out), "mbtcp")
	if s7 < 100 || mb < 100 {
		t.Errorf("tshark decodes %d S7comm and %d Modbus/TCP packets", s7, mb)
	}
}

func nonEmpty(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" && !strings.Contains(l, "Running as user") {
			out = append(out, l)
		}
	}
	return out
}

// BenchmarkGenerate measures generation speed at a scale where one
// iteration writes about 150 MB.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Seed: 1, Scale: 12}
	var cw countWriter
	var st stats
	for b.Loop() {
		cw = 0
		g, err := newGen(&cw, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.run(); err != nil {
			b.Fatal(err)
		}
		st = g.st
	}
	b.SetBytes(int64(cw))
	b.ReportMetric(float64(cw)/1e6, "MB/op")
	b.ReportMetric(float64(st.maxFlows), "max-open-flows")
}

// FuzzGenerate: any configuration either errors or yields a capture whose
// every packet decodes with good checksums.
func FuzzGenerate(f *testing.F) {
	f.Add(int64(1), int64(60), 1.0, int64(0))
	f.Add(int64(-5), int64(1), 0.01, int64(1))
	f.Add(int64(42), int64(600), 2.5, int64(-3600))
	f.Add(int64(0), int64(-1), -1.0, int64(1e12))
	f.Fuzz(func(t *testing.T, seed, durSec int64, scale float64, startOff int64) {
		if durSec > 600 || scale > 3 { // keep each run fast
			return
		}
		cfg := Config{Seed: seed, Duration: time.Duration(durSec) * time.Second, Scale: scale,
			Start: DefaultStart.Add(time.Duration(startOff) * time.Second)}
		var buf bytes.Buffer
		if _, err := Generate(&buf, cfg); err != nil {
			return
		}
		raw, err := readPcap(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range raw {
			d, err := decode(p)
			if err != nil || !d.ipOK || !d.l4OK || !d.lenOK {
				t.Fatalf("packet %d: %v %+v", i+1, err, d)
			}
		}
	})
}
