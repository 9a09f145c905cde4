package pcap

import (
	"encoding/binary"
	"io"
	"os"
	"testing"
)

// benchCapture writes a capture of n mixed frames (TCP, UDP, VLAN, IPv6,
// VXLAN) of typical sizes.
func benchCapture(tb testing.TB, n int) (string, int64) {
	payload := make([]byte, 1200)
	mix := [][]byte{
		eth(0x0800, ipv4("10.0.0.1", "203.0.113.5", 6, tcp(40000, 443, 1, 2, FlagACK|FlagPSH, payload))),
		eth(0x0800, ipv4("203.0.113.5", "10.0.0.1", 6, tcp(443, 40000, 2, 1, FlagACK, nil))),
		eth(0x8100, cat(vlanTag(20, 0x0800), ipv4("10.0.0.1", "10.0.0.53", 17, udp(5353, 53, payload[:60])))),
		eth(0x86dd, ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2, 3, 4, FlagACK, payload[:500]))),
		eth(0x0800, ipv4("10.9.9.9", "10.8.8.8", 17, udp(1, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, eth(0x0800, ipv4("192.0.2.1", "192.0.2.2", 6, tcp(5, 6, 7, 8, FlagACK, payload[:300]))))))),
	}
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = rec{ts: t0 + int64(i)*1000, data: mix[i%len(mix)]}
	}
	b := pcapFile(binary.LittleEndian, false, 1, recs...)
	path := writeFile(tb, tb.TempDir(), "bench.pcap", b)
	return path, int64(len(b))
}

func BenchmarkReader(b *testing.B) {
	path, size := benchCapture(b, 20000)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader([]string{path}, Options{})
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			}
		}
		r.Close()
	}
}

// TestWriteBenchCapture writes a large generated capture for comparing
// with other tools by hand: CARGOWATCH_BENCH_PCAP=/tmp/x.pcap go test -run WriteBench.
func TestWriteBenchCapture(t *testing.T) {
	out := os.Getenv("CARGOWATCH_BENCH_PCAP")
	if out == "" {
		t.Skip("set CARGOWATCH_BENCH_PCAP to write a benchmark capture")
	}
	path, _ := benchCapture(t, 300000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReaderFile reads a capture named by CARGOWATCH_BENCH_PCAP.
func BenchmarkReaderFile(b *testing.B) {
	path := os.Getenv("CARGOWATCH_BENCH_PCAP")
	if path == "" {
		b.Skip("set CARGOWATCH_BENCH_PCAP to a capture")
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		r := NewReader([]string{path}, Options{})
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			}
		}
		r.Close()
	}
}
