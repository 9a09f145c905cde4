package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/sim"
)

// eveFlowEvents counts flow events with encoding/json alone.
func eveFlowEvents(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.EventType == "flow" {
			n++
		}
	}
	return n
}

func lines(out string) int { return strings.Count(out, "\n") }

func copyFile(t *testing.T, from, to string, gz bool) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
		data = b.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// EVE and Zeek inputs reach analyze and flows: one Conn per flow event
// or conn line, findings from them.
func TestInputsEVEAndZeek(t *testing.T) {
	eve := corpus.Path(t, "suricata", "slips-test6-malicious.eve.json")
	zeekDir := corpus.Path(t, "zeek", "slips-test10-mixed")
	want := eveFlowEvents(t, eve)

	code, out, errOut := runCmd(t, "flows", "--no-db", "--format", "jsonl", eve)
	if code != exitOK || lines(out) != want {
		t.Fatalf("flows on EVE: exit %d, %d conns, want %d: %s", code, lines(out), want, errOut)
	}
	var withAlert, withSNIorDNS int
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["alerts"] != nil {
			withAlert++
		}
		if m["dns_query"] != nil {
			withSNIorDNS++
		}
	}
	if withAlert == 0 || withSNIorDNS == 0 {
		t.Errorf("EVE conns: %d with alerts, %d with DNS", withAlert, withSNIorDNS)
	}
	code, out, errOut = runCmd(t, "analyze", "--no-db", "--format", "jsonl", eve)
	if code != exitOK || len(findings(t, out)) == 0 {
		t.Errorf("analyze on EVE: exit %d, %d findings: %s", code, len(findings(t, out)), errOut)
	}

	conns := 0
	if data, err := os.ReadFile(filepath.Join(zeekDir, "conn.log")); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				conns++
			}
		}
	}
	code, out, errOut = runCmd(t, "flows", "--no-db", "--format", "jsonl", zeekDir)
	if code != exitOK || lines(out) != conns || conns == 0 {
		t.Errorf("flows on a Zeek dir: exit %d, %d conns, want %d: %s", code, lines(out), conns, errOut)
	}
	// The RITA logs (Zeek JSON) talk to the outside; the Slips ones keep
	// to addresses without a local side.
	rita := corpus.Path(t, "zeek", "rita-json_with_all_fields")
	code, out, errOut = runCmd(t, "analyze", "--no-db", "--format", "jsonl", rita)
	if code != exitOK || len(findings(t, out)) == 0 {
		t.Errorf("analyze on a Zeek dir: exit %d, %d findings: %s", code, len(findings(t, out)), errOut)
	}
}

// One directory holding a capture, Zeek logs in a subdirectory, a
// gzip'd EVE file under a capture's name and notes: each file goes to
// its reader by content, the notes are passed over, and the result is
// the sum of the parts.
func TestInputsMixedDirectory(t *testing.T) {
	eve := corpus.Path(t, "suricata", "slips-test6-malicious.eve.json")
	zeekDir := corpus.Path(t, "zeek", "slips-test10-mixed")
	dir := t.TempDir()
	var capture bytes.Buffer
	if _, err := sim.Generate(&capture, sim.Config{Seed: 5, Duration: 300e9, Scale: 0.2}); err != nil {
		t.Fatal(err)
	}
	pcapPath := filepath.Join(dir, "hub.pcap")
	if err := os.WriteFile(pcapPath, capture.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(t, eve, filepath.Join(dir, "sensor", "misnamed.pcap"), true)
	for _, n := range []string{"conn.log", "dns.log", "ssl.log", "notice.log"} {
		copyFile(t, filepath.Join(zeekDir, n), filepath.Join(dir, "zeek", n), false)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("shift handover notes\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.log"), nil, 0o644)

	count := func(args ...string) int {
		code, out, errOut := runCmd(t, append([]string{"flows", "--no-db", "--format", "jsonl"}, args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return lines(out)
	}
	p, e, z := count(pcapPath), count(filepath.Join(dir, "sensor")), count(filepath.Join(dir, "zeek"))
	if p == 0 || e != eveFlowEvents(t, eve) || z == 0 {
		t.Fatalf("parts: pcap %d, eve %d, zeek %d", p, e, z)
	}
	if all := count(dir); all != p+e+z {
		t.Errorf("mixed directory: %d conns, want %d+%d+%d", all, p, e, z)
	}

	// The dispatcher's own view: every kind found, the notes skipped.
	pl, code := newPipeline(&options{format: "jsonl"}, "flows", &bytes.Buffer{})
	if code != exitOK {
		t.Fatal("pipeline")
	}
	defer pl.close()
	s := openSources([]string{dir}, pl)
	if s.capture == nil || s.zeek == nil || s.suricata == nil || s.skipped != 2 || len(s.all) != 3 {
		t.Errorf("sources: capture %v zeek %v suricata %v skipped %d all %d", s.capture != nil, s.zeek != nil, s.suricata != nil, s.skipped, len(s.all))
	}
	st := s.stats()
	for _, k := range []string{"pcap", "zeek", "suricata", "skipped_files"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lack %q: %v", k, st)
		}
	}
}

// A garbage file among good inputs: exit 2 naming it, the good ones
// still analysed in full.
func TestInputsGarbageAmongGood(t *testing.T) {
	eve := corpus.Path(t, "suricata", "slips-test6-malicious.eve.json")
	zeekDir := corpus.Path(t, "zeek", "slips-test10-mixed")
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("shift handover notes\n"), 0o644)
	badEVE := filepath.Join(dir, "eve.json")
	os.WriteFile(badEVE, []byte(`{"timestamp":"2024-03-01T10:00:00+0000","event_type":"flow"}`+"\n{not json\n"), 0o644)

	_, alone, _ := runCmd(t, "flows", "--no-db", "--format", "jsonl", eve, zeekDir)
	for _, bad := range []string{notes, badEVE} {
		code, mixed, errOut := runCmd(t, "flows", "--no-db", "--format", "jsonl", eve, bad, zeekDir)
		if code != exitUsage || !strings.Contains(errOut, bad) {
			t.Errorf("%s: exit %d, stderr %q", bad, code, errOut)
		}
		if n, m := lines(alone), lines(mixed); n == 0 || n != m {
			t.Errorf("%s: good inputs alone gave %d conns, beside a bad one %d", bad, n, m)
		}
	}
	code, out, errOut := runCmd(t, "analyze", "--no-db", "--format", "jsonl", notes, eve)
	if code != exitUsage || !strings.Contains(errOut, notes) || !strings.Contains(errOut, "not a capture") || len(findings(t, out)) == 0 {
		t.Errorf("analyze: exit %d, %d findings, stderr %q", code, len(findings(t, out)), errOut)
	}
}

func TestSniffFile(t *testing.T) {
	dir := t.TempDir()
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	pcapHdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}
	eveLine := []byte(`{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":1,"event_type":"flow","src_ip":"10.0.0.1"}` + "\n")
	for _, tc := range []struct {
		name string
		data []byte
		want kind
	}{
		{"pcap le", pcapHdr, kindCapture},
		{"pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a}, kindCapture},
		{"pcap gz", gz(pcapHdr), kindCapture},
		{"eve", eveLine, kindEVE},
		{"eve gz", gz(eveLine), kindEVE},
		{"zeek tsv", []byte("#separator \\x09\n#set_separator\t,\n#fields\tts\tuid\n"), kindZeek},
		{"zeek json", []byte(`{"ts":1700000000.1,"uid":"CAbc","id.orig_h":"10.0.0.1","id.orig_p":1}` + "\n"), kindZeek},
		{"text", []byte("shift notes\n"), kindOther},
		{"empty", nil, kindOther},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, kindCapture},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		os.WriteFile(p, tc.data, 0o644)
		if got := sniffFile(p); got != tc.want {
			t.Errorf("%s: kind %d, want %d", tc.name, got, tc.want)
		}
	}
}
