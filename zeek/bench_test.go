package zeek

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

// A conn.log line as Zeek writes it, with the fields of a default install.
var benchTSVLine = []byte("1601998390.892400\tCYetmM3b29tLNkUk42\t147.32.83.156\t52592\t3.232.121.231\t443\ttcp\tssl\t0.054001\t980\t4312\tSF\t0\tShADadFf\t8\t1400\t9\t4800\t(empty)")

var benchJSONLine = []byte(`{"ts":1601998390.8924,"uid":"CYetmM3b29tLNkUk42","id.orig_h":"147.32.83.156","id.orig_p":52592,"id.resp_h":"3.232.121.231","id.resp_p":443,"proto":"tcp","service":"ssl","duration":0.054001,"orig_bytes":980,"resp_bytes":4312,"conn_state":"SF","local_orig":true,"local_resp":false,"missed_bytes":0,"history":"ShADadFf","orig_pkts":8,"orig_ip_bytes":1400,"resp_pkts":9,"resp_ip_bytes":4800}`)

func BenchmarkTSVLine(b *testing.B) {
	p := newParser("bench", nil)
	for _, l := range bytes.Split([]byte(tsvHead), []byte{'\n'}) {
		p.parse(l)
	}
	cv := newConverter()
	b.SetBytes(int64(len(benchTSVLine) + 1))
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.parse(benchTSVLine)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cv.conn(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTSVFastLine is BenchmarkTSVLine through the fast path, as
// Source reads conn.log lines.
func BenchmarkTSVFastLine(b *testing.B) {
	p := newParser("bench", nil)
	for _, l := range bytes.Split([]byte(tsvHead), []byte{'\n'}) {
		p.parse(l)
	}
	cv := newConverter()
	b.SetBytes(int64(len(benchTSVLine) + 1))
	b.ReportAllocs()
	for b.Loop() {
		c := cv.slab.next()
		if _, ok := p.hdr.fastConn(benchTSVLine, c, cv); !ok {
			b.Fatal("declined")
		}
	}
}

func BenchmarkJSONLine(b *testing.B) {
	p := newParser("bench", nil)
	cv := newConverter()
	b.SetBytes(int64(len(benchJSONLine) + 1))
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.parse(benchJSONLine)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cv.conn(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSource reads a 100,000-line conn.log through Source: file
// reading, parsing, the reorder window and emission.
func BenchmarkSource(b *testing.B) {
	for _, format := range []string{"tsv", "json"} {
		b.Run(format, func(b *testing.B) {
			dir := b.TempDir()
			var buf bytes.Buffer
			if format == "tsv" {
				buf.WriteString(tsvHead)
			}
			line := benchTSVLine
			if format == "json" {
				line = benchJSONLine
			}
			const n = 100000
			for range n {
				buf.Write(line)
				buf.WriteByte('\n')
			}
			writeFile(&testing.T{}, filepath.Join(dir, "conn.log"), buf.String())
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				s := NewSource([]string{dir}, Options{Logger: quiet})
				got := 0
				if err := s.Run(context.Background(), func(*cw.Conn) { got++ }); err != nil || got != n {
					b.Fatalf("%d records, %v", got, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
