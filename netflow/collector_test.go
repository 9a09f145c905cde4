package netflow_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/netflow"
	"github.com/cargowatch/cargowatch/netflow/nftest"
)

// startCollector runs a Collector on a kernel-chosen port of 127.0.0.1
// and returns it, its port and a stop function that cancels Run and
// waits for it.
func startCollector(t *testing.T, cfg netflow.CollectorConfig, emit func(*cw.Conn)) (*netflow.Collector, int, func()) {
	t.Helper()
	cfg.Listen = []string{"udp://127.0.0.1:0"}
	col, err := netflow.NewCollector(netflow.NewDecoder(netflow.Config{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx, emit) }()
	return col, int(col.Addrs()[0].Port()), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// waitReceived waits until the collector has read n datagrams and
// decoded all it queued.
func waitReceived(t *testing.T, col *netflow.Collector, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := col.Stats()
		if s.Received >= n && s.Queued == 0 && s.Decoder.Datagrams+s.QueueDropped >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector read %d of %d datagrams (queued %d)", s.Received, n, s.Queued)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func within(a, b int64, frac float64) bool {
	return math.Abs(float64(a-b)) <= frac*math.Max(float64(b), 1)
}

// TestCollectorAgainstNfcapd sends what softflowd exported from a corpus
// capture — NetFlow v9, then IPFIX — to the collector and to nfcapd, and
// compares flow counts and bytes with nfdump's reading of nfcapd's files.
func TestCollectorAgainstNfcapd(t *testing.T) {
	capture := corpus.Path(t, "pcap", "c2", "slips-test-cc-capture-2.pcap")
	for _, version := range []string{"9", "10"} {
		t.Run("v"+version, func(t *testing.T) {
			dgs := nftest.Softflowd(t, capture, version)
			nfPort, stopNfcapd := nftest.Nfcapd(t)
			var conns, bytes int64
			col, port, stop := startCollector(t, netflow.CollectorConfig{}, func(c *cw.Conn) {
				conns++
				bytes += c.OrigIPBytes + c.RespIPBytes
			})
			nftest.Send(t, port, dgs)
			nftest.Send(t, nfPort, dgs)
			waitReceived(t, col, uint64(len(dgs)))
			stop()
			time.Sleep(500 * time.Millisecond) // let nfcapd read its socket before it is told to stop
			flows, nfBytes := stopNfcapd()
			t.Logf("softflowd v%s: %d datagrams; cargowatch %d flows %d bytes; nfdump %d flows %d bytes", version, len(dgs), conns, bytes, flows, nfBytes)
			if flows == 0 {
				t.Fatal("nfdump read no flows: the comparison would prove nothing")
			}
			if !within(conns, flows, 0.01) || !within(bytes, nfBytes, 0.01) {
				t.Errorf("cargowatch %d flows / %d bytes, nfdump %d / %d: more than 1 %% apart", conns, bytes, flows, nfBytes)
			}
			if s := col.Stats(); s.QueueDropped != 0 || s.Decoder.Malformed != 0 || s.Decoder.TemplatesMissing != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestCollectorNeverBlocks stalls the pipeline: the socket reader goes on
// reading, drops what does not fit in the queue and counts it; what was
// queued is decoded once the pipeline moves, and when the collector stops.
func TestCollectorNeverBlocks(t *testing.T) {
	const per = 10
	feed := nftest.V9Feed(60*per, per, time.Now())
	release := make(chan struct{})
	var mu sync.Mutex
	var records int
	col, port, stop := startCollector(t, netflow.CollectorConfig{QueueDatagrams: 8}, func(c *cw.Conn) {
		<-release
		mu.Lock()
		records++
		mu.Unlock()
	})
	nftest.Send(t, port, feed)
	deadline := time.Now().Add(5 * time.Second)
	for col.Stats().Received < uint64(len(feed)) {
		if time.Now().After(deadline) {
			t.Fatalf("reader stalled with the pipeline: received %d of %d", col.Stats().Received, len(feed))
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := col.Stats()
	if s.QueueDropped == 0 || s.Queued > 8 {
		t.Errorf("stalled pipeline: dropped %d, queued %d", s.QueueDropped, s.Queued)
	}
	close(release)
	waitReceived(t, col, uint64(len(feed)))
	stop()
	s = col.Stats()
	// The template went first and was kept; every other datagram kept
	// gave its records.
	if want := int(s.Decoder.Datagrams-1) * per; records != want || s.Received != s.QueueDropped+s.Decoder.Datagrams {
		t.Errorf("records %d, want %d; stats %+v", records, want, s)
	}
}

// TestCollectorGarbage: garbage and template-less data are counted and
// skipped; the good datagrams around them are read.
func TestCollectorGarbage(t *testing.T) {
	export := time.Now()
	var n int
	col, port, stop := startCollector(t, netflow.CollectorConfig{}, func(*cw.Conn) { n++ })
	dgs := [][]byte{
		nftest.DataDatagram(export, 0, 5), // before its template
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0, 9, 0, 1},
		nftest.TemplateDatagram(export),
		{0, 10, 0xff, 0xff, 1, 2, 3},
		nftest.DataDatagram(export, 5, 7),
	}
	nftest.Send(t, port, dgs)
	waitReceived(t, col, uint64(len(dgs)))
	stop()
	s := col.Stats()
	if n != 7 || s.Decoder.Malformed != 3 || s.Decoder.TemplatesMissing != 1 || s.Decoder.Records != 7 {
		t.Errorf("conns %d, stats %+v", n, s.Decoder)
	}
	if len(s.Exporters) != 1 || s.Exporters[0].Malformed != 3 || !strings.Contains(s.Exporters[0].LastError, "IPFIX") {
		t.Errorf("exporters %+v", s.Exporters)
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"udp://127.0.0.1:2055", "127.0.0.1:2055", ""},
		{"127.0.0.1:9995", "127.0.0.1:9995", ""},
		{"udp://[::1]:4739", "[::1]:4739", ""},
		{":6343", "0.0.0.0:6343", ""},
		{"tcp://127.0.0.1:2055", "", "only udp://"},
		{"udp://localhost", "", "want udp://ADDRESS:PORT"},
	}
	for _, tt := range tests {
		got, err := netflow.ParseListen(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("%s: err %v, want %q naming the input", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: %v %v, want %s", tt.in, got, err, tt.want)
		}
	}
}
