package main

import (
	"context"
	"time"

	"bytes"
	"encoding/json"
	"fmt"
	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/sqlite"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/sim"
)

// runCmd runs the command in-process and fails on any stack trace.
func runCmd(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	return runWith(t, "", args...)
}

func runWith(t *testing.T, stdin string, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	if strings.Contains(e.String(), "panic") || strings.Contains(e.String(), "goroutine ") {
		t.Fatalf("stack trace on stderr: %s", e.String())
	}
	return code, o.String(), e.String()
}

type finding struct {
	Kind         string         `json:"kind"`
	Severity     string         `json:"severity"`
	SrcIP        string         `json:"src_ip"`
	DstIP        string         `json:"dst_ip"`
	DstCountry   string         `json:"dst_country"`
	Jurisdiction string         `json:"jurisdiction"`
	Summary      string         `json:"summary"`
	Evidence     map[string]any `json:"evidence"`
}

func findings(t *testing.T, out string) []finding {
	t.Helper()
	var fs []finding
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var f finding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		fs = append(fs, f)
	}
	return fs
}

// The demo's ground truth decides: what the issue names must be found,
// what truth marks "none" must not be.
func TestDemoAgainstTruth(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "demo", "--keep", dir, "--format", "jsonl", "--db", filepath.Join(dir, "t.db"))
	if code != exitOK {
		t.Fatalf("demo exit %d: %s", code, errOut)
	}
	var truth sim.Truth
	data, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &truth); err != nil {
		t.Fatal(err)
	}
	fs := findings(t, out)
	has := func(kind, src, dst string) *finding {
		for i := range fs {
			if fs[i].Kind == kind && fs[i].SrcIP == src && fs[i].DstIP == dst {
				return &fs[i]
			}
		}
		return nil
	}
	checked := 0
	for _, e := range truth.Expect {
		switch e.Kind {
		case sim.KindNone:
			for _, f := range fs {
				if (f.SrcIP == e.Src && f.DstIP == e.Dst) || (f.SrcIP == e.Dst && f.DstIP == e.Src) {
					t.Errorf("finding %s %s→%s for traffic the truth calls normal (%s)", f.Kind, f.SrcIP, f.DstIP, e.Note)
				}
			}
		case "jurisdiction", "cargo_data":
			checked++
			if has(e.Kind, e.Src, e.Dst) == nil {
				t.Errorf("missing %s finding %s→%s (%s)", e.Kind, e.Src, e.Dst, e.Note)
			}
		}
	}
	if checked < 4 {
		t.Fatalf("truth names only %d jurisdiction/cargo findings", checked)
	}
	// The example: the bay-plan upload to Alibaba Cloud in Frankfurt.
	f := has("jurisdiction", "10.20.0.11", "8.209.72.15")
	if f == nil {
		t.Fatal("no jurisdiction finding for the upload to 8.209.72.15")
	}
	if f.DstCountry != "DE" || f.Jurisdiction != "CN" || !strings.Contains(f.Evidence["legal_basis"].(string), "National Intelligence Law") {
		t.Errorf("upload finding: country %s, jurisdiction %s, evidence %v", f.DstCountry, f.Jurisdiction, f.Evidence)
	}
	c := has("cargo_data", "10.20.0.11", "8.209.72.15")
	if c == nil {
		t.Fatal("no cargo_data finding for the upload")
	}
	ids, _ := c.Evidence["identifiers"].(map[string]any)
	msgs, _ := c.Evidence["message_types"].(map[string]any)
	if ids["container"] == nil || msgs["EDIFACT/BAPLIE"] == nil {
		t.Errorf("cargo finding lacks container count or message type: %v", c.Evidence)
	}
	for _, e := range truth.Expect {
		n, _ := ids["container"].(float64)
		if e.Kind == "cargo_data" && !strings.Contains(e.Note, fmt.Sprintf(" %d container", int(n))) {
			t.Errorf("containers found %v, truth says %q", ids["container"], e.Note)
		}
	}
	if strings.Contains(out, "MSCU") && strings.Contains(out, "MSCU1") {
		t.Error("an unmasked container number in the output")
	}
}

// Bad input: exit 2, a message naming the input and the reason, and the
// good inputs of the same run still analysed.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rnd := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(rnd)
	// A real capture cut mid-packet, from the simulator.
	var capture bytes.Buffer
	if _, err := sim.Generate(&capture, sim.Config{Seed: 3, Duration: 600e9, Scale: 0.2}); err != nil {
		t.Fatal(err)
	}
	good := write("good.pcap", capture.Bytes())
	cut := write("cut.pcap", capture.Bytes()[:capture.Len()/2+7])
	empty := filepath.Join(dir, "emptydir")
	os.Mkdir(empty, 0o755)
	for _, tc := range []struct{ path, reason string }{
		{write("empty.pcap", nil), "empty"},
		{write("random.bin", rnd), "not a capture"},
		{write("notes.txt", []byte("shipping notes\n")), "not a capture"},
		{cut, "truncated"},
		{filepath.Join(dir, "missing.pcap"), "no such file"},
		{empty, "no capture files"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			code, _, errOut := runCmd(t, "analyze", "--no-db", "--format", "jsonl", tc.path)
			if code != exitUsage || !strings.Contains(errOut, tc.path) || !strings.Contains(errOut, tc.reason) {
				t.Errorf("exit %d, stderr %q; want 2 naming %s and %q", code, errOut, tc.path, tc.reason)
			}
		})
	}
	// One bad input among good ones: the good one is still reported.
	_, alone, _ := runCmd(t, "flows", "--no-db", "--format", "jsonl", good)
	code, mixed, errOut := runCmd(t, "flows", "--no-db", "--format", "jsonl", good, filepath.Join(dir, "notes.txt"))
	if code != exitUsage || !strings.Contains(errOut, "notes.txt") {
		t.Errorf("mixed run: exit %d, stderr %q", code, errOut)
	}
	if n, m := strings.Count(alone, "\n"), strings.Count(mixed, "\n"); n == 0 || n != m {
		t.Errorf("good input alone gave %d conns, beside a bad one %d", n, m)
	}
	if code, _, _ := runCmd(t, "analyze", "--format", "xml", good); code != exitUsage {
		t.Errorf("bad --format: exit %d", code)
	}
}

// Every corpus capture is read without a panic; exit 0, or 2 where a
// capture is damaged on purpose.
func TestCorpusCaptures(t *testing.T) {
	c := corpus.Path(t)
	dirs := []string{filepath.Join(c, "pcap", "edge"), filepath.Join(c, "pcap", "ics"), filepath.Join(c, "pcap", "c2"), filepath.Join(c, "pcap", "dns"), filepath.Join(c, "netflow")}
	for _, d := range dirs {
		code, out, errOut := runCmd(t, "flows", "--no-db", "--format", "jsonl", d)
		if code != exitOK && code != exitUsage {
			t.Fatalf("%s: exit %d: %s", d, code, errOut)
		}
		if n := strings.Count(out, "\n"); n == 0 {
			t.Errorf("%s: no conns", d)
		}
	}
}

// The same content analysed twice — in two runs, or twice in one run under
// another name — is stored once: its conns and its findings.
func TestStoreKeepsInputOnce(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "cw.db")
	var capture bytes.Buffer
	if _, err := sim.Generate(&capture, sim.Config{Seed: 2, Duration: 20 * time.Minute, Scale: 0.2}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "hub.pcap")
	copyOf := filepath.Join(dir, "copy.pcap")
	for _, p := range []string{in, copyOf} {
		if err := os.WriteFile(p, capture.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	countFindings := func() int {
		s, err := sqlite.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		n := 0
		if err := s.Findings(context.Background(), cw.FindingQuery{}, func(*cw.Finding) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if code, _, errOut := runCmd(t, "analyze", "--db", db, in, copyOf); code != exitOK {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	first := countFindings()
	if first == 0 {
		t.Fatal("the simulated hub raised no findings to store")
	}
	if code, _, errOut := runCmd(t, "analyze", "--db", db, copyOf); code != exitOK || !strings.Contains(errOut, "already in the store") {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	if n := countFindings(); n != first {
		t.Errorf("findings stored: %d after the first run, %d after the second", first, n)
	}
	_, direct, _ := runCmd(t, "flows", "--no-db", "--format", "jsonl", in)
	code, stored, errOut := runCmd(t, "flows", "--db", db, "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("flows --db: exit %d: %s", code, errOut)
	}
	if n, m := strings.Count(direct, "\n"), strings.Count(stored, "\n"); n == 0 || n != m {
		t.Errorf("capture has %d conns, store holds %d", n, m)
	}
	if code, _, errOut := runCmd(t, "flows", "--db", filepath.Join(dir, "typo.db")); code != exitUsage || !strings.Contains(errOut, "no store at") {
		t.Errorf("flows on a missing store: exit %d: %s", code, errOut)
	}
}

func TestHelpAndUnknown(t *testing.T) {
	for _, name := range []string{"analyze", "flows", "scan", "demo", "version"} {
		code, out, _ := runCmd(t, name, "-h")
		lower := strings.ToLower(out)
		if code != exitOK || !strings.Contains(lower, "usage: cargowatch "+name) || strings.Count(lower, "usage:") != 1 {
			t.Errorf("%s -h: exit %d, output %q", name, code, out)
		}
	}
	if code, out, _ := runCmd(t, "help"); code != exitOK || !strings.Contains(out, "analyze") {
		t.Errorf("help: exit %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, "frobnicate") {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "analyze"); code != exitUsage {
		t.Errorf("analyze with no input: exit %d", code)
	}
}
