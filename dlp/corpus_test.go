package dlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

// The message types follow ../shared/corpus/SOURCES.md; a -negative file
// must not hold a cargo message.
func TestCorpusMessages(t *testing.T) {
	dir := corpus.Path(t, "messages")
	want := map[string][]string{
		"edifact/php-edifact-D95BBAPLIE.edi":                {"EDIFACT/BAPLIE"},
		"edifact/php-edifact-D95BCOARRI.edi":                {"EDIFACT/COARRI", "EDIFACT/COARRI"},
		"edifact/php-edifact-D96ADESADV.edi":                {"EDIFACT/DESADV"},
		"edifact/php-edifact-example_release_character.edi": {"EDIFACT/PAORES"},
		"edifact/apimeister-d04b_baplie.edi":                {"EDIFACT/BAPLIE"},
		"x12/apimeister-004060_856.edi":                     {"X12/856"},
		"x12/apimeister-004010_310.edi":                     {"X12/310"},
		"x12/apimeister-004010_850-negative.edi":            {"X12/850"},
		"cargoimp/fwb_test.txt":                             {"CARGO-IMP/FWB"},
		"cargoimp/ffm_test.txt":                             {"CARGO-IMP/FFM"},
		"cargoimp/mvt_test-negative.txt":                    nil,
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(files) < len(want) {
		t.Fatalf("found %d corpus message files, want at least %d", len(files), len(want))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, msgs := Scan(b)
		var got []string
		for _, m := range msgs {
			got = append(got, m.Type)
			if strings.Contains(rel, "-negative") && m.Cargo {
				t.Errorf("%s: %s called a cargo message", rel, m.Type)
			}
			if !strings.Contains(rel, "-negative") && !m.Cargo && m.Type != "EDIFACT/PAORES" {
				t.Errorf("%s: %s not called a cargo message", rel, m.Type)
			}
		}
		w, ok := want[rel]
		if !ok {
			t.Errorf("%s: no expectation in this test; add it from SOURCES.md", rel)
			continue
		}
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s: message types %q, want %q", rel, got, w)
		}
	}
}

// Every EQD+CN container of the bay plan is found, with its check-digit
// status; the expectation is read from the EDIFACT segments themselves.
func TestCorpusBayPlanContainers(t *testing.T) {
	for _, name := range []string{"php-edifact-D95BBAPLIE.edi", "php-edifact-D95BCOARRI.edi"} {
		b, err := os.ReadFile(filepath.Join(corpus.Path(t, "messages/edifact"), name))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, seg := range strings.Split(string(b), "'") {
			el := strings.Split(strings.TrimSpace(seg), "+")
			if len(el) > 2 && el[0] == "EQD" && el[1] == "CN" && len(el[2]) == 11 {
				st := CheckInvalid
				if iso6346OK(el[2]) {
					st = CheckValid
				}
				want[el[2]] = st
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: no EQD+CN segments", name)
		}
		hits, _ := Scan(b)
		got := map[string]string{}
		for _, h := range hits {
			if h.Type == TypeContainer {
				got[h.Value] = h.CheckDigit
				if !strings.HasPrefix(h.MessageType, "EDIFACT/") {
					t.Errorf("%s: %s outside its message (%q)", name, h.Value, h.MessageType)
				}
				if h.CheckDigit == CheckValid && h.Confidence != High {
					t.Errorf("%s: %s valid but %s", name, h.Value, h.Confidence)
				}
			}
		}
		for v, st := range want {
			if got[v] != st {
				t.Errorf("%s: container %s: got %q, want check digit %s", name, v, got[v], st)
			}
		}
	}
}

func TestCorpusCargoIMPAWBs(t *testing.T) {
	re := regexp.MustCompile(`(?m)(?:^|[/])(\d{3}-\d{8})`)
	for _, name := range []string{"fwb_test.txt", "ffm_test.txt"} {
		b, err := os.ReadFile(filepath.Join(corpus.Path(t, "messages/cargoimp"), name))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, m := range re.FindAllSubmatch(b, -1) {
			want[string(m[1])] = true
		}
		hits, _ := Scan(b)
		got := map[string]bool{}
		for _, h := range hits {
			if h.Type == TypeAWB && h.Confidence == High && strings.HasPrefix(h.MessageType, "CARGO-IMP/") {
				got[h.Value] = true
			}
		}
		for v := range want {
			if !got[v] {
				t.Errorf("%s: AWB %s not found at high confidence in its message", name, v)
			}
		}
		if name == "fwb_test.txt" && !got["933-34099074"] {
			t.Errorf("fwb_test.txt: the AWB that runs into BKKORD was missed")
		}
	}
}

// False positives: ordinary text and code must give no high-confidence
// hit. The medium and low rates are logged for the project's notes.
func TestFalsePositives(t *testing.T) {
	roots := []string{filepath.Join(goroot(), "src"), "/usr/share/doc"}
	budget := 20 * time.Second
	if testing.Short() {
		budget = 3 * time.Second
	}
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			t.Logf("skipping %s: %v", root, err)
			continue
		}
		var n int64
		count := map[string]int{}
		var highs []string
		s := NewScanner(Options{OnHit: func(h cw.Hit) {
			count[h.Confidence+" "+h.Type]++
			count[h.Confidence]++
			if h.Confidence == High && len(highs) < 20 {
				highs = append(highs, h.Type+" "+Mask(h.Type, h.Value))
			}
		}})
		start := time.Now()
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || time.Since(start) > budget {
				return filepath.SkipAll
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			var r io.Reader = bufio.NewReader(f)
			if strings.HasSuffix(p, ".gz") {
				zr, err := gzip.NewReader(r)
				if err != nil {
					return nil
				}
				r = io.LimitReader(zr, 64<<20)
			}
			head := make([]byte, 8<<10)
			k, _ := io.ReadFull(r, head)
			if bytes.IndexByte(head[:k], 0) >= 0 {
				return nil // binary
			}
			s.Write(head[:k])
			m, _ := io.Copy(s, r)
			s.Close()
			n += int64(k) + m
			return nil
		})
		mb := float64(n) / 1e6
		if mb < 1 {
			t.Logf("%s: only %.1f MB read", root, mb)
			continue
		}
		t.Logf("%s: %.1f MB in %v: %.3f medium and %.3f low hits per MB; by type: %v",
			root, mb, time.Since(start).Round(time.Millisecond), float64(count[Medium])/mb, float64(count[Low])/mb, count)
		if count[High] > 0 {
			t.Errorf("%s: %d high-confidence hits in ordinary text, e.g. %q", root, count[High], highs)
		}
	}
}

// goroot asks the go command, as runtime.GOROOT is deprecated: the tests
// scan the standard library's sources as ordinary text.
func goroot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
