package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/netflow/nftest"
	"github.com/cargowatch/cargowatch/sqlite"
)

// lockedBuffer is a bytes.Buffer safe to read while collect writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getStatus reads the --status endpoint, nil while it is not up.
func getStatus(addr string) *collectStatus {
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st collectStatus
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// waitStatus polls the status endpoint until ok accepts it.
func waitStatus(t *testing.T, addr string, what string, ok func(*collectStatus) bool) *collectStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last *collectStatus
	for time.Now().Before(deadline) {
		if st := getStatus(addr); st != nil {
			last = st
			if ok(st) {
				return st
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("collect: waiting for %s; last status: %s", what, last.line())
	}
	t.Fatalf("collect: waiting for %s; status endpoint %s never answered", what, addr)
	return nil
}

func storedConns(t *testing.T, db string) []*cw.Conn {
	t.Helper()
	s, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []*cw.Conn
	if err := s.Conns(context.Background(), cw.ConnQuery{}, func(c *cw.Conn) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCollectFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--no-db"}, "nothing to collect"},
		{[]string{"--no-db", "--listen", "tcp://127.0.0.1:2055"}, `"tcp://127.0.0.1:2055"`},
		{[]string{"--no-db", "--listen", "udp://127.0.0.1:1", "--every", "0s"}, "must be positive"},
		{[]string{"--no-db", "--listen", "udp://127.0.0.1:0", "extra"}, `unexpected argument "extra"`},
		{[]string{"--no-db", "--listen", "udp://127.0.0.1:0", "--status", "127.0.0.1:notaport"}, "--status"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := cmdCollect(tt.args, nil, &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("collect %v: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

// TestCollectFindsBeaconFromSoftflowd: the beacon of a corpus capture
// (147.32.80.37 calling 141.193.213.20:443) is found from the NetFlow
// softflowd exports from that capture, through the collector, the same
// pipeline as analyze, and the store.
func TestCollectFindsBeaconFromSoftflowd(t *testing.T) {
	capture := corpus.Path(t, "pcap", "c2", "slips-test-cc-capture-2.pcap")
	dgs := nftest.Softflowd(t, capture, "9")
	port := nftest.FreeUDPPort(t)
	status := freeTCP(t)
	db := filepath.Join(t.TempDir(), "cw.db")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	args := []string{"--db", db, "--format", "jsonl", "--listen", fmt.Sprintf("udp://127.0.0.1:%d", port), "--status", status}
	co, _, done0 := collectFlags(args, &stdout, &stderr)
	if done0 {
		t.Fatalf("flags: %s", stderr.String())
	}
	done := make(chan int, 1)
	go func() { done <- collect(ctx, co, &stdout, &stderr) }()
	waitStatus(t, status, "the listener", func(*collectStatus) bool { return true })
	nftest.Send(t, port, dgs)
	st := waitStatus(t, status, "every record analysed", func(s *collectStatus) bool {
		return s.NetFlow != nil && s.NetFlow.Received == uint64(len(dgs)) && s.NetFlow.Queued == 0
	})
	records := int64(st.NetFlow.Decoder.Records)
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("collect exit %d: %s", code, stderr.String())
	}
	if records == 0 {
		t.Fatal("no records decoded")
	}
	var beacon bool
	for _, f := range findings(t, stdout.String()) {
		if f.Kind == cw.KindBeacon && f.SrcIP == "147.32.80.37" && f.DstIP == "141.193.213.20" {
			beacon = true
		}
	}
	if !beacon {
		t.Errorf("no beacon 147.32.80.37 → 141.193.213.20 from %d records; findings:\n%s\nstderr:\n%s", records, stdout.String(), stderr.String())
	}
	if n := len(storedConns(t, db)); int64(n) != records {
		t.Errorf("store holds %d conns, the exports %d records", n, records)
	}
	s, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stored bool
	_ = s.Findings(context.Background(), cw.FindingQuery{Kind: cw.KindBeacon}, func(f *cw.Finding) error {
		stored = stored || f.Dst.Addr.String() == "141.193.213.20"
		return nil
	})
	if !stored {
		t.Error("the beacon finding is not in the store")
	}
}

// TestCollectChild is not a test: it is the collect process of
// TestCollectSignals, run from the test binary so that signals reach a
// real process with collect's own handling.
func TestCollectChild(t *testing.T) {
	if os.Getenv("CARGOWATCH_COLLECT_CHILD") != "1" {
		t.Skip("helper process for TestCollectSignals")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("CARGOWATCH_COLLECT_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(cmdCollect(args, os.Stdin, os.Stdout, os.Stderr))
}

// TestCollectSignals runs collect as a process: garbage and template-less
// datagrams are counted and skipped, SIGUSR1 prints the counters, and
// SIGINT flushes every Conn to the store before a clean exit.
func TestCollectSignals(t *testing.T) {
	port := nftest.FreeUDPPort(t)
	status := freeTCP(t)
	db := filepath.Join(t.TempDir(), "cw.db")
	args, _ := json.Marshal([]string{"--db", db, "--listen", fmt.Sprintf("udp://127.0.0.1:%d", port),
		"--status", status, "--every", "1h", "--local", "10.0.0.0/8"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestCollectChild$")
	cmd.Env = append(os.Environ(), "CARGOWATCH_COLLECT_CHILD=1", "CARGOWATCH_COLLECT_ARGS="+string(args))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	waitStatus(t, status, "the listener", func(*collectStatus) bool { return true })

	export := time.Now()
	const records, per = 1234, 20
	feed := nftest.V9Feed(records, per, export)
	garbage := [][]byte{
		nftest.DataDatagram(export, 0, 3), // before the template: counted, lost
		[]byte("\x00\x09garbage"),
		bytes.Repeat([]byte{0xff}, 300),
	}
	nftest.Send(t, port, append(garbage, feed...))
	want := uint64(len(garbage) + len(feed))
	st := waitStatus(t, status, "every datagram", func(s *collectStatus) bool {
		return s.NetFlow != nil && s.NetFlow.Received == want && s.NetFlow.Queued == 0 && s.NetFlow.Decoder.Datagrams == want
	})
	d := st.NetFlow.Decoder
	if d.Records != records || d.Malformed != 2 || d.TemplatesMissing != 1 || st.NetFlow.QueueDropped != 0 {
		t.Errorf("decoder %+v", d)
	}

	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), fmt.Sprintf("%d records", records)) {
		if time.Now().After(deadline) {
			t.Fatalf("no status line after SIGUSR1: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Nothing is in the store yet (the window is an hour): SIGINT must
	// write it all.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("collect after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("collect did not stop after SIGINT: %s", stderr.String())
	}
	conns := storedConns(t, db)
	var bytes int64
	for _, c := range conns {
		bytes += c.OrigIPBytes
	}
	if len(conns) != records || bytes != nftest.FeedBytes(records) {
		t.Errorf("store holds %d conns with %d IP bytes, want %d with %d", len(conns), bytes, records, nftest.FeedBytes(records))
	}
	if !strings.Contains(stderr.String(), "stopped:") {
		t.Errorf("no final status line: %s", stderr.String())
	}
}

// TestCollectZeekDir: --zeek-dir adds the Zeek log follower as a source;
// every conn.log line reaches the store when collect stops.
func TestCollectZeekDir(t *testing.T) {
	src := corpus.Path(t, "zeek", "slips-test10-mixed")
	dir := t.TempDir()
	var lines int64
	for _, name := range []string{"conn.log", "dns.log", "ssl.log"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if name == "conn.log" {
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if !strings.HasPrefix(strings.TrimSpace(l), "#") { // this log's first header line begins with a tab
					lines++
				}
			}
		}
	}
	status := freeTCP(t)
	db := filepath.Join(t.TempDir(), "cw.db")
	var stdout, stderr lockedBuffer
	co, _, done0 := collectFlags([]string{"--db", db, "--zeek-dir", dir, "--status", status}, &stdout, &stderr)
	if done0 {
		t.Fatalf("flags: %s", stderr.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- collect(ctx, co, &stdout, &stderr) }()
	waitStatus(t, status, "every conn.log line", func(s *collectStatus) bool {
		// Conns analysed lag: public addresses wait for the inference of
		// the monitored network, which a window close or the stop decides.
		return s.Zeek != nil && s.Zeek.Records == lines
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("collect exit %d: %s", code, stderr.String())
	}
	if n := len(storedConns(t, db)); int64(n) != lines {
		t.Errorf("store holds %d conns, conn.log has %d lines", n, lines)
	}
	if _, err := os.Stat(db + ".zeek-follow.json"); err != nil {
		t.Errorf("no follower state beside the store: %v", err)
	}
}
