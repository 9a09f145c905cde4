package suricata

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

// BenchmarkSource reads the corpus EVE file repeated with fresh flow ids
// (so every copy joins like the original) through the whole Source, or
// the file named by $CARGOWATCH_EVE_BENCH, to time it beside jq and wc
// on the same file.
// bench: go test -run=^$ -bench=Source -benchtime=5x ./suricata/
func BenchmarkSource(b *testing.B) {
	path := os.Getenv("CARGOWATCH_EVE_BENCH")
	if path == "" {
		src, err := os.ReadFile(corpus.Path(b, "suricata", "slips-test6-malicious.eve.json"))
		if err != nil {
			b.Fatal(err)
		}
		const copies = 20
		var buf bytes.Buffer
		for i := range copies {
			// Shift every flow id so that copies do not collide.
			for _, line := range bytes.Split(bytes.TrimSpace(src), []byte("\n")) {
				buf.Write(shiftFlowID(line, uint64(i)<<52))
				buf.WriteByte('\n')
			}
		}
		path = filepath.Join(b.TempDir(), "eve.json")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.SetBytes(fi.Size())
	b.ResetTimer()
	var st Stats
	for range b.N {
		s := NewSource([]string{path}, Options{Log: log})
		n := 0
		if err := s.Run(context.Background(), func(*cw.Conn) { n++ }); err != nil {
			b.Fatal(err)
		}
		st = s.Stats()
	}
	b.ReportMetric(float64(st.Lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkParseFlow decodes one flow line.
func BenchmarkParseFlow(b *testing.B) {
	line := []byte(flow7)
	b.SetBytes(int64(len(line)))
	for range b.N {
		if _, err := parseEvent(line); err != nil {
			b.Fatal(err)
		}
	}
}

func shiftFlowID(line []byte, add uint64) []byte {
	const key = `"flow_id":`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return line
	}
	j := i + len(key)
	k := j
	for k < len(line) && line[k] >= '0' && line[k] <= '9' {
		k++
	}
	v, err := strconv.ParseUint(string(line[j:k]), 10, 64)
	if err != nil {
		return line
	}
	out := append([]byte{}, line[:j]...)
	out = strconv.AppendUint(out, v+add, 10)
	return append(out, line[k:]...)
}
