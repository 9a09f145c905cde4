package pcap

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

const t0 = int64(1_700_000_000_123_456_789)

func udpFrame(src, dst string, sport uint16, body string) []byte {
	return eth(0x0800, ipv4(src, dst, 17, udp(sport, 53, []byte(body))))
}

func TestFormats(t *testing.T) {
	f1 := udpFrame("10.0.0.1", "10.0.0.2", 1111, "one")
	f2 := udpFrame("10.0.0.1", "10.0.0.2", 2222, "two")
	raw6 := ipv6("2001:db8::1", "2001:db8::2", 17, udp(3333, 53, []byte("six")))
	usTS := t0 / 1000 * 1000
	tests := []struct {
		name    string
		file    []byte
		wantTS  []int64
		wantSrc []uint16
	}{
		{"pcap LE µs", pcapFile(binary.LittleEndian, false, 1, rec{ts: t0, data: f1}, rec{ts: t0 + 1e9, data: f2}), []int64{usTS, usTS + 1e9}, []uint16{1111, 2222}},
		{"pcap BE µs", pcapFile(binary.BigEndian, false, 1, rec{ts: t0, data: f1}, rec{ts: t0 + 1e9, data: f2}), []int64{usTS, usTS + 1e9}, []uint16{1111, 2222}},
		{"pcap LE ns", pcapFile(binary.LittleEndian, true, 1, rec{ts: t0, data: f1}), []int64{t0}, []uint16{1111}},
		{"pcap BE ns", pcapFile(binary.BigEndian, true, 1, rec{ts: t0, data: f1}), []int64{t0}, []uint16{1111}},
		{"pcap raw IPv6", pcapFile(binary.LittleEndian, true, 101, rec{ts: t0, data: raw6}), []int64{t0}, []uint16{3333}},
		{"gzip pcap", gz(pcapFile(binary.BigEndian, true, 1, rec{ts: t0, data: f1})), []int64{t0}, []uint16{1111}},
		{
			// Two interfaces of different link types and resolutions.
			"pcapng LE two interfaces",
			pcapngFile(binary.LittleEndian, []ngIface{{link: 1}, {link: 229, tsresol: 9}},
				rec{ts: t0, data: f1, ifc: 0}, rec{ts: t0 + 5, data: raw6, ifc: 1}),
			[]int64{usTS, t0 + 5}, []uint16{1111, 3333},
		},
		{
			"pcapng BE",
			pcapngFile(binary.BigEndian, []ngIface{{link: 1, tsresol: 3}}, rec{ts: t0, data: f2}),
			[]int64{t0 / 1e6 * 1e6}, []uint16{2222},
		},
		{"gzip pcapng", gz(pcapngFile(binary.LittleEndian, []ngIface{{link: 1}}, rec{ts: t0, data: f1})), []int64{usTS}, []uint16{1111}},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "f"+string(rune('a'+i)), tc.file)
			pkts, r := readAll(t, []string{path}, Options{})
			if errs := r.Errors(); len(errs) != 0 {
				t.Fatalf("errors: %v", errs)
			}
			if len(pkts) != len(tc.wantTS) {
				t.Fatalf("got %d packets, want %d", len(pkts), len(tc.wantTS))
			}
			for i, p := range pkts {
				if p.TS != tc.wantTS[i] {
					t.Errorf("packet %d: ts %d, want %d", i, p.TS, tc.wantTS[i])
				}
				if p.SrcPort != tc.wantSrc[i] {
					t.Errorf("packet %d: sport %d, want %d", i, p.SrcPort, tc.wantSrc[i])
				}
				if p.Input != path {
					t.Errorf("packet %d: input %q", i, p.Input)
				}
			}
			if s := r.Stats(); s.Files != 1 || s.Packets != int64(len(tc.wantTS)) || s.IP != int64(len(tc.wantTS)) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestMergeByTimestamp(t *testing.T) {
	dir := t.TempDir()
	var a, b []rec
	for i := range 5 {
		a = append(a, rec{ts: t0 + int64(2*i)*1e6, data: udpFrame("10.0.0.1", "10.0.0.9", uint16(100+2*i), "a")})
		b = append(b, rec{ts: t0 + int64(2*i+1)*1e6, data: udpFrame("10.0.0.2", "10.0.0.9", uint16(100+2*i+1), "b")})
	}
	pa := writeFile(t, dir, "a.pcap", pcapFile(binary.LittleEndian, true, 1, a...))
	pb := writeFile(t, dir, "sub/b.pcapng", pcapngFile(binary.BigEndian, []ngIface{{link: 1, tsresol: 9}}, b...))
	for _, inputs := range [][]string{{pa, pb}, {pb, pa}, {dir}} {
		pkts, r := readAll(t, inputs, Options{})
		if len(r.Errors()) != 0 {
			t.Fatalf("%v: errors %v", inputs, r.Errors())
		}
		if len(pkts) != 10 {
			t.Fatalf("%v: %d packets, want 10", inputs, len(pkts))
		}
		for i, p := range pkts {
			if p.SrcPort != uint16(100+i) {
				t.Errorf("%v: packet %d has sport %d: not in timestamp order", inputs, i, p.SrcPort)
			}
		}
		if r.Stats().Files != 2 {
			t.Errorf("%v: files %d", inputs, r.Stats().Files)
		}
	}
}

func TestInputErrors(t *testing.T) {
	dir := t.TempDir()
	good := pcapFile(binary.LittleEndian, false, 1,
		rec{ts: t0, data: udpFrame("10.0.0.1", "10.0.0.2", 1, "x")},
		rec{ts: t0 + 1, data: udpFrame("10.0.0.1", "10.0.0.2", 2, "y")})
	absurd := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(absurd[24+8:], 300<<10) // caplen of record 1
	rnd := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	rnd[0] = 0x17
	emptyDir := filepath.Join(dir, "emptydir")
	writeFile(t, emptyDir, "notes.txt", []byte("nothing here"))
	tests := []struct {
		name    string
		content []byte // nil: path does not exist (unless isDir)
		isDir   string
		wantErr string
		wantIP  int
	}{
		{name: "empty", content: []byte{}, wantErr: "empty file"},
		{name: "text", content: []byte("not a capture, just text\n"), wantErr: "not a capture: unknown magic 0x6e6f7420"},
		{name: "random", content: rnd, wantErr: "not a capture: unknown magic 0x17"},
		{name: "short", content: []byte{0xd4, 0xc3}, wantErr: "not a capture: too short (2 bytes)"},
		{name: "header cut", content: good[:20], wantErr: "truncated file header (20 of 24 bytes)"},
		{name: "cut mid packet", content: good[:len(good)-5], wantErr: "truncated after packet 1", wantIP: 1},
		{name: "cut mid record header", content: good[:24+(len(good)-24)/2+8], wantErr: "truncated after packet 1", wantIP: 1},
		{name: "absurd caplen", content: absurd, wantErr: "record 1: captured length 307200 exceeds 262144 bytes"},
		{name: "gzip cut", content: gz(good)[:30], wantErr: "truncated"},
		{name: "gzip of text", content: gz([]byte("hello there")), wantErr: "unknown magic 0x68656c6c"},
		{name: "missing", wantErr: "no such file or directory"},
		{name: "dir without captures", isDir: emptyDir, wantErr: "no capture files in directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			switch {
			case tc.isDir != "":
				path = tc.isDir
			case tc.content != nil:
				writeFile(t, dir, tc.name, tc.content)
			}
			pkts, r := readAll(t, []string{path}, Options{})
			errs := r.Errors()
			if len(errs) != 1 {
				t.Fatalf("got %d errors %v, want 1", len(errs), errs)
			}
			var ie *cargowatch.InputError
			if !errors.As(errs[0], &ie) || ie.Input != path {
				t.Fatalf("error %v is not an InputError naming %s", errs[0], path)
			}
			if !strings.Contains(errs[0].Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", errs[0], tc.wantErr)
			}
			if len(pkts) != tc.wantIP {
				t.Errorf("got %d packets, want %d", len(pkts), tc.wantIP)
			}
		})
	}
}

// A directory with a capture among other files reads the capture, skips
// the rest silently and still reports a damaged capture.
func TestDirectoryMixed(t *testing.T) {
	dir := t.TempDir()
	good := pcapFile(binary.LittleEndian, false, 1, rec{ts: t0, data: udpFrame("10.0.0.1", "10.0.0.2", 1, "x")})
	writeFile(t, dir, "a/x.pcap", good)
	writeFile(t, dir, "a/x.pcap.out", []byte("nDPI verdicts"))
	writeFile(t, dir, "b/empty", nil)
	bad := writeFile(t, dir, "b/cut.pcap", good[:len(good)-3])
	pkts, r := readAll(t, []string{dir}, Options{})
	if len(pkts) != 1 {
		t.Errorf("got %d packets, want 1", len(pkts))
	}
	errs := r.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), bad+": truncated after packet 0") {
		t.Errorf("errors %v, want one for %s", errs, bad)
	}
	if s := r.Stats(); s.Skipped != 2 || s.Files != 2 {
		t.Errorf("stats %+v: want 2 skipped, 2 files", s)
	}
}

func TestPcapngDamage(t *testing.T) {
	dir := t.TempDir()
	f := udpFrame("10.0.0.1", "10.0.0.2", 1, "x")
	// An EPB for interface 3 when only interface 0 exists.
	file := pcapngFile(binary.LittleEndian, []ngIface{{link: 1}}, rec{ts: t0, data: f}, rec{ts: t0 + 1000, data: f, ifc: 0})
	bad := pcapngFile(binary.LittleEndian, []ngIface{{link: 1}, {link: 1}}, rec{ts: t0, data: f, ifc: 1})
	// Splice the second section's EPB (interface 1) onto the first file.
	epb := bad[len(bad)-(32+len(f)+(4-len(f)%4)%4):]
	path := writeFile(t, dir, "dmg.pcapng", append(append([]byte{}, file...), epb...))
	pkts, r := readAll(t, []string{path}, Options{})
	if len(pkts) != 2 {
		t.Errorf("got %d packets, want 2", len(pkts))
	}
	if errs := r.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "interface 1 not described") {
		t.Errorf("errors %v", errs)
	}
	// A block length that is not a multiple of 4 ends the file.
	cut := append([]byte{}, file...)
	binary.LittleEndian.PutUint32(cut[len(cut)-len(epb)+4:], 13)
	path = writeFile(t, dir, "len.pcapng", cut)
	_, r = readAll(t, []string{path}, Options{})
	if errs := r.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad block length 13") {
		t.Errorf("errors %v", errs)
	}
}

func TestTimestampResolution(t *testing.T) {
	tests := []struct {
		ups   uint64
		units uint64
		off   int64
		want  int64
	}{
		{1e6, 1_500_000, 0, 1_500_000_000},
		{1e9, 1_500_000_001, 0, 1_500_000_001},
		{1 << 10, 1024 + 512, 0, 1_500_000_000},
		{1e12, 2_000_000_000_001, 0, 2_000_000_000},
		{1e6, 0, 100, 100e9},
		{1 << 63, 1 << 62, 0, 500_000_000},
	}
	for _, tc := range tests {
		i := iface{unitsPerSec: tc.ups, offset: tc.off}
		if got := i.nanos(tc.units); got != tc.want {
			t.Errorf("nanos(%d units at %d/s, offset %d) = %d, want %d", tc.units, tc.ups, tc.off, got, tc.want)
		}
	}
}

func TestNextAfterEOF(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "x.pcap", pcapFile(binary.LittleEndian, false, 1, rec{ts: t0, data: udpFrame("10.0.0.1", "10.0.0.2", 1, "x")}))
	r := NewReader([]string{path}, Options{FragmentTimeout: time.Second})
	defer r.Close()
	for range 3 {
		r.Next()
	}
	if p, err := r.Next(); p != nil || err == nil {
		t.Errorf("after EOF: %v, %v", p, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
