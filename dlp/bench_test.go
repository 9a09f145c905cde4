package dlp

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

// benchText builds about n bytes of ordinary text (Go sources of the
// toolchain) with a cargo message every 100 KiB, about 1 % of the bytes.
func benchText(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	msg := []byte("UNH+1907+BAPLIE:D:95B:UN:SMDG20'EQD+CN+OOLU4293959+4200+++4'LOC+9+USLGB:139:6'" +
		"EQD+CN+MOEU0710945+L5G1+++4'LOC+11+CNYTN:139:6'UNT+30+1907'\nFWB/17\n933-34099074BKKORD/T41K509MC4.69\n\n")
	next := 0
	filepath.WalkDir(filepath.Join(goroot(), "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || buf.Len() >= n {
			return filepath.SkipAll
		}
		if d.IsDir() || filepath.Ext(p) != ".go" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil {
			buf.Write(b)
		}
		for buf.Len() > next {
			buf.Write(msg)
			next += 100 << 10
		}
		return nil
	})
	if buf.Len() < n/2 {
		tb.Skipf("GOROOT sources not found: only %d bytes", buf.Len())
	}
	return buf.Bytes()
}

func BenchmarkScan(b *testing.B) {
	text := benchText(b, 32<<20)
	s := NewScanner(Options{OnHit: func(h cw.Hit) {}})
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for range b.N {
		s.Write(text)
		s.Close()
	}
}

func BenchmarkStream(b *testing.B) {
	text := benchText(b, 8<<20)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for range b.N {
		st := NewStream(StreamConfig{MaxBytes: 1 << 30})
		for p := text; len(p) > 0; {
			k := min(len(p), 1460)
			st.Write(true, p[:k])
			p = p[k:]
		}
		st.Close(nil)
	}
}
