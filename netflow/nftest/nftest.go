// Package nftest helps tests of flow exports: it runs softflowd (a real
// exporter) over a capture and hands back the datagrams it sent, writes
// datagrams into a pcap as a capture of export traffic would hold them,
// and reads nfcapd/nfdump's view of the same exports.
package nftest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Softflowd runs softflowd over capture, exporting in version ("9", "10"
// for IPFIX, "5"), and returns the datagrams it sent, in order. It skips
// t when softflowd or softflowctl is not installed.
//
// softflowd 1.1.0 reading a file (-r) waits on its control socket before
// each pass of its loop, so the packets are read only once something
// talks to it: statistics are asked until the packet count stops
// changing, then "shutdown" expires every flow, exports and exits.
func Softflowd(t testing.TB, capture, version string, extra ...string) [][]byte {
	t.Helper()
	for _, tool := range []string{"softflowd", "softflowctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package softflowd): %v", tool, err)
		}
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetReadBuffer(8 << 20)
	dir := t.TempDir()
	ctl := filepath.Join(dir, "ctl")
	args := append([]string{"-d", "-r", capture, "-n", pc.LocalAddr().String(), "-v", version,
		"-p", filepath.Join(dir, "pid"), "-c", ctl}, extra...)
	cmd := exec.Command("softflowd", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("softflowd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	var mu sync.Mutex
	var got [][]byte
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, append([]byte(nil), buf[:n]...))
			mu.Unlock()
		}
	}()

	// Depending on how its poll loop wakes, softflowd either reads the
	// whole file and exits by itself or waits on its control socket.
	deadline := time.Now().Add(30 * time.Second)
	last, stable, shut := int64(-1), 0, false
	for exitedNow := false; !exitedNow; {
		select {
		case <-exited:
			exitedNow = true
			continue
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("softflowd still running after 30 s: %s", stderr.String())
		}
		if _, err := os.Stat(ctl); err != nil || shut {
			continue
		}
		out, err := exec.Command("softflowctl", "-c", ctl, "statistics").CombinedOutput()
		if err != nil {
			continue // it may have just exited; the select tells
		}
		if n := packetsProcessed(string(out)); n == last && n > 0 {
			stable++
		} else {
			stable, last = 0, n
		}
		if stable >= 3 {
			_ = exec.Command("softflowctl", "-c", ctl, "shutdown").Run()
			shut = true
		}
	}
	// Datagrams sent before exit are in the socket buffer: read until
	// quiet.
	for before := -1; count() != before; {
		before = count()
		time.Sleep(200 * time.Millisecond)
	}
	pc.Close()
	<-done
	if len(got) == 0 {
		t.Fatalf("softflowd exported nothing: %s", stderr.String())
	}
	return got
}

var processedRE = regexp.MustCompile(`Packets processed: (\d+)`)

func packetsProcessed(s string) int64 {
	m := processedRE.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// WritePcap writes datagrams as UDP/IPv4/Ethernet packets from src to
// dst, one millisecond apart from start, into a pcap file.
func WritePcap(path string, start time.Time, src, dst Endpoint, datagrams [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 262144)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	w.Write(hdr[:])
	for i, d := range datagrams {
		if len(d) > 65507 {
			return errors.New("nftest: datagram too large")
		}
		frame := make([]byte, 14+20+8+len(d))
		frame[12], frame[13] = 0x08, 0x00
		ip := frame[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(d)))
		ip[8], ip[9] = 64, 17
		copy(ip[12:16], src.IP[:])
		copy(ip[16:20], dst.IP[:])
		var sum uint32
		for j := 0; j < 20; j += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[j:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		udp := ip[20:]
		binary.BigEndian.PutUint16(udp[0:], src.Port)
		binary.BigEndian.PutUint16(udp[2:], dst.Port)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(d)))
		copy(udp[8:], d)
		ts := start.Add(time.Duration(i) * time.Millisecond)
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		w.Write(rec[:])
		w.Write(frame)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Endpoint is an IPv4 address and port for WritePcap.
type Endpoint struct {
	IP   [4]byte
	Port uint16
}

// Addr4 makes a WritePcap endpoint.
func Addr4(a, b, c, d byte, port uint16) Endpoint { return Endpoint{[4]byte{a, b, c, d}, port} }

// Nfcapd runs nfcapd on a free port of 127.0.0.1 and returns the port and
// a function that sends it SIGTERM (so it writes its file), waits, and
// returns nfdump's flow count and byte total over what it stored. It
// skips t when nfcapd or nfdump is not installed.
func Nfcapd(t testing.TB) (port int, stop func() (flows, bytes int64)) {
	t.Helper()
	for _, tool := range []string{"nfcapd", "nfdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package nfdump): %v", tool, err)
		}
	}
	port = FreeUDPPort(t)
	dir := t.TempDir()
	cmd := exec.Command("nfcapd", "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("nfcapd: %v", err)
	}
	// nfcapd is ready when its socket is bound: the port stops being free.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("nfcapd did not bind 127.0.0.1:%d: %s", port, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return port, func() (int64, int64) {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		return NfdumpTotals(t, dir)
	}
}

// NfdumpTotals reads every file nfcapd wrote under dir with nfdump and
// returns the number of flows and the bytes they carry.
func NfdumpTotals(t testing.TB, dir string) (flows, bytes int64) {
	t.Helper()
	out, err := exec.Command("nfdump", "-q", "-N", "-R", dir, "-o", "fmt:%byt").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("nfdump -R %s: %v: %s", dir, err, ee.Stderr)
		}
		t.Fatalf("nfdump -R %s: %v", dir, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n, err := parseNfdumpNumber(line)
		if err != nil {
			t.Fatalf("nfdump line %q: %v", line, err)
		}
		flows++
		bytes += n
	}
	return flows, bytes
}

// parseNfdumpNumber reads nfdump's scaled numbers ("1234", "1.2 M").
func parseNfdumpNumber(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, err
	}
	if len(f) > 1 {
		switch f[1] {
		case "K":
			v *= 1e3
		case "M":
			v *= 1e6
		case "G":
			v *= 1e9
		default:
			return 0, fmt.Errorf("unit %q", f[1])
		}
	}
	return int64(v), nil
}

// FreeUDPPort returns a UDP port of 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Send writes datagrams to 127.0.0.1:port, pausing every burst datagrams
// so that a receiver's socket buffer is never the limit being tested.
func Send(t testing.TB, port int, datagrams [][]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatalf("send to %d: %v", port, err)
		}
		if i%64 == 63 {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// V9Feed makes a NetFlow v9 export stream of records flow records,
// perDatagram to a datagram (at most 30 keeps datagrams under 1500
// bytes), the first datagram carrying the template (see DataDatagram for
// the records), exported at export. TemplateDatagram and DataDatagram build the parts.
func V9Feed(records, perDatagram int, export time.Time) [][]byte {
	out := [][]byte{TemplateDatagram(export)}
	for i := 0; i < records; i += perDatagram {
		out = append(out, DataDatagram(export, i, min(perDatagram, records-i)))
	}
	return out
}

// v9Template: src, dst, sport, dport, proto, octets, packets, first, last.
var v9Template = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 4}, {2, 4}, {22, 4}, {21, 4}}

const v9RecordLen = 4 + 4 + 2 + 2 + 1 + 4 + 4 + 4 + 4

func v9Header(export time.Time, count uint16, seq uint32) []byte {
	b := binary.BigEndian.AppendUint16(nil, 9)
	b = binary.BigEndian.AppendUint16(b, count)
	b = binary.BigEndian.AppendUint32(b, 3_600_000) // up an hour
	b = binary.BigEndian.AppendUint32(b, uint32(export.Unix()))
	b = binary.BigEndian.AppendUint32(b, seq)
	return binary.BigEndian.AppendUint32(b, 1) // source id
}

// TemplateDatagram is the v9 datagram announcing V9Feed's template 256.
func TemplateDatagram(export time.Time) []byte {
	b := v9Header(export, 1, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(4+4+4*len(v9Template)))
	b = binary.BigEndian.AppendUint16(b, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v9Template)))
	for _, f := range v9Template {
		b = binary.BigEndian.AppendUint16(b, f[0])
		b = binary.BigEndian.AppendUint16(b, f[1])
	}
	return b
}

// DataDatagram holds records first..first+n-1 of V9Feed, each 40·k
// bytes in k packets (k = 1 + record number mod 7), from 10.0.x.y (4096
// hosts) to 198.18.x.y:443 (1024 addresses).
func DataDatagram(export time.Time, first, n int) []byte {
	b := v9Header(export, uint16(n), uint32(first))
	body := n * v9RecordLen
	pad := (4 - body%4) % 4
	b = binary.BigEndian.AppendUint16(b, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(4+body+pad))
	for j := first; j < first+n; j++ {
		k := uint32(1 + j%7)
		// 4096 local hosts talking to 1024 outside addresses: a network's
		// shape, not one new pair per record.
		h, r := j%4096, (j*7)%1024
		b = append(b, 10, 0, byte(h>>8), byte(h))
		b = append(b, 198, 18, byte(r>>8), byte(r))
		b = binary.BigEndian.AppendUint16(b, uint16(1024+j%60000))
		b = binary.BigEndian.AppendUint16(b, 443)
		b = append(b, 6)
		b = binary.BigEndian.AppendUint32(b, 40*k)
		b = binary.BigEndian.AppendUint32(b, k)
		b = binary.BigEndian.AppendUint32(b, 3_000_000)
		b = binary.BigEndian.AppendUint32(b, 3_500_000)
	}
	return append(b, make([]byte, pad)...)
}

// FeedBytes is the IP bytes V9Feed's records carry in all.
func FeedBytes(records int) int64 {
	var n int64
	for j := 0; j < records; j++ {
		n += int64(40 * (1 + j%7))
	}
	return n
}
