package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const plan = "UNB+UNOA:2+TERMINAL+CARRIER+240101:1200+1'\nUNH+1+BAPLIE:D:95B:UN:SMDG20'\n" +
	"LOC+9+NLRTM:139:6'\nEQD+CN+OOLU4293959+4500+++5'\nEQD+CN+OOLU4293958+4500+++5'\nUNT+5+1'\nUNZ+1+1'\n"

func runScan(t *testing.T, stdin string, args ...string) (code int, out, errOut string) {
	t.Helper()
	return runWith(t, stdin, append([]string{"scan"}, args...)...)
}

type row struct {
	Path        string         `json:"path"`
	Offset      int64          `json:"offset"`
	Type        string         `json:"type"`
	Value       string         `json:"value"`
	CheckDigit  string         `json:"check_digit"`
	Confidence  string         `json:"confidence"`
	MessageType string         `json:"message_type"`
	Cargo       bool           `json:"cargo"`
	Counts      map[string]int `json:"counts"`
}

func rows(t *testing.T, out string) []row {
	t.Helper()
	var rs []row
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r row
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// The check-contracts scan checks, on the corpus bay plan.
func TestScanContract(t *testing.T) {
	p := corpus.Path(t, "messages", "edifact", "php-edifact-D95BBAPLIE.edi")
	code, out, errOut := runScan(t, "", "--reveal", "--format", "jsonl", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	found := false
	for _, r := range rows(t, out) {
		if r.Value == "OOLU4293959" && r.CheckDigit == "valid" && strings.HasPrefix(r.MessageType, "EDIFACT/BAPLIE") {
			found = true
		}
	}
	if !found {
		t.Errorf("no valid OOLU4293959 in an EDIFACT/BAPLIE:\n%s", out)
	}
	_, out, _ = runScan(t, "", "--format", "jsonl", p)
	if strings.Contains(out, "OOLU4293959") || !strings.Contains(out, "OOLU****959") {
		t.Errorf("masked output wrong:\n%s", out)
	}
}

func writeGz(t *testing.T, name string, b []byte) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanInputs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plan.edi"), []byte(plan), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	writeGz(t, filepath.Join(dir, "sub", "plan.edi.gz"), []byte(plan))
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create("inner/plan.edi")
	f.Write([]byte(plan))
	f, _ = zw.Create("inner/notes.txt")
	f.Write([]byte("nothing here 12345\n"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "sub", "plans.zip"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "binary.bin"), append([]byte{0, 1, 2}, plan...), 0o644)

	code, out, errOut := runScan(t, "", "--format", "jsonl", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	perPath := map[string]int{}
	for _, r := range rows(t, out) {
		if r.Type == "container" {
			perPath[filepath.ToSlash(strings.TrimPrefix(r.Path, dir))]++
			if r.Value != "OOLU****959" && r.Value != "OOLU****958" {
				t.Errorf("value %q not masked as expected", r.Value)
			}
		}
		if r.Type == "message" && (r.MessageType != "EDIFACT/BAPLIE" || !r.Cargo || r.Counts["container"] != 2) {
			t.Errorf("message row %+v", r)
		}
	}
	want := map[string]int{"/plan.edi": 2, "/sub/plan.edi.gz": 2, "/sub/plans.zip!inner/plan.edi": 2}
	for p, n := range want {
		if perPath[p] != n {
			t.Errorf("%s: %d containers, want %d (all: %v)", p, perPath[p], n, perPath)
		}
	}
	if perPath["/binary.bin"] != 0 {
		t.Errorf("binary file scanned without --binary")
	}

	code, out, _ = runScan(t, plan, "--format", "jsonl", "--min-confidence", "high", "-")
	rs := rows(t, out)
	if code != 0 || len(rs) < 2 || rs[0].Path != "-" {
		t.Errorf("stdin: exit %d, rows %+v", code, rs)
	}
	for _, r := range rs {
		if r.Type != "message" && r.Confidence != "high" {
			t.Errorf("--min-confidence high let through %+v", r)
		}
	}
}

func TestScanTable(t *testing.T) {
	code, out, _ := runScan(t, plan, "-")
	if code != 0 || !strings.HasPrefix(out, "PATH") || !strings.Contains(out, "OOLU****959") ||
		strings.Contains(out, "OOLU4293959") || !strings.Contains(out, "EDIFACT/BAPLIE") {
		t.Errorf("exit %d, table:\n%s", code, out)
	}
}

// Bad inputs are named on stderr and skipped; the rest is scanned; exit 2.
func TestScanBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.edi")
	os.WriteFile(good, []byte(plan), 0o644)
	corrupt := filepath.Join(dir, "broken.gz")
	os.WriteFile(corrupt, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff}, 0o644)
	badZip := filepath.Join(dir, "broken.zip")
	os.WriteFile(badZip, []byte("PK\x03\x04 not really a zip"), 0o644)
	missing := filepath.Join(dir, "missing.edi")

	code, out, errOut := runScan(t, "", "--format", "jsonl", missing, corrupt, badZip, good)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, n := range []string{"missing.edi", "broken.gz", "broken.zip"} {
		if !strings.Contains(errOut, n) {
			t.Errorf("stderr does not name %s: %s", n, errOut)
		}
	}
	if !strings.Contains(out, "good.edi") {
		t.Errorf("good file not scanned after bad ones:\n%s", out)
	}

	for _, args := range [][]string{{"--format", "xml", good}, {"--min-confidence", "certain", good}, {"--nope", good}, {}} {
		if code, _, _ := runScan(t, "", args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := runScan(t, "", "-h"); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

// A gzip bomb stops at --max-decompressed and is reported.
func TestScanDecompressionCap(t *testing.T) {
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb.gz")
	writeGz(t, bomb, bytes.Repeat([]byte("A"), 8<<20))
	code, _, errOut := runScan(t, "", "--max-decompressed", "1048576", bomb)
	if code != 2 || !strings.Contains(errOut, "bomb.gz") || !strings.Contains(errOut, "max-decompressed") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// A zip entry is bounded the same way.
	zipBomb := filepath.Join(dir, "bomb.zip")
	f, err := os.Create(zipBomb)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("plan.txt")
	w.Write(bytes.Repeat([]byte("A"), 8<<20))
	zw.Close()
	f.Close()
	code, _, errOut = runScan(t, "", "--binary", "--max-decompressed", "1048576", zipBomb)
	if code != 2 || !strings.Contains(errOut, "bomb.zip!plan.txt") || !strings.Contains(errOut, "max-decompressed") {
		t.Errorf("zip entry: exit %d, stderr %q", code, errOut)
	}
}
