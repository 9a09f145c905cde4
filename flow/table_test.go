package flow

import (
	"bytes"
	"net/netip"
	"regexp"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"
)

var (
	hostA = netip.MustParseAddr("10.0.0.1")
	hostB = netip.MustParseAddr("192.0.2.7")
	t0    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

// seg builds a TCP packet; dir 'o' is A:40000 -> B:50000, 'r' the reverse
// (ports chosen so that no likely-server-port flip applies).
type tp struct {
	dir      byte
	at       time.Duration
	flags    uint8
	seq, ack uint32
	data     string
}

const (
	S  = pcap.FlagSYN
	SA = pcap.FlagSYN | pcap.FlagACK
	A  = pcap.FlagACK
	PA = pcap.FlagPSH | pcap.FlagACK
	FA = pcap.FlagFIN | pcap.FlagACK
	R  = pcap.FlagRST
	RA = pcap.FlagRST | pcap.FlagACK
)

func tcpPkt(x tp, sport, dport uint16) *pcap.Packet {
	p := &pcap.Packet{TS: t0.Add(x.at), Proto: 6, TCPFlags: x.flags, Seq: x.seq, Ack: x.ack,
		Payload: []byte(x.data), PayloadLen: len(x.data), IPLen: 40 + len(x.data)}
	if x.dir == 'o' {
		p.Src, p.Dst, p.SrcPort, p.DstPort = hostA, hostB, sport, dport
	} else {
		p.Src, p.Dst, p.SrcPort, p.DstPort = hostB, hostA, dport, sport
	}
	return p
}

func run(cfg Config, pkts []*pcap.Packet) ([]*cw.Conn, Stats) {
	var out []*cw.Conn
	t := NewTable(cfg, func(c *cw.Conn) { out = append(out, c) })
	for _, p := range pkts {
		t.Add(p)
	}
	t.Flush()
	return out, t.Stats()
}

func tcpSeq(ps ...tp) []*pcap.Packet {
	out := make([]*pcap.Packet, len(ps))
	for i, x := range ps {
		out[i] = tcpPkt(x, 40000, 50000)
	}
	return out
}

// A connection with ISNs 1000 (orig) and 5000 (resp).
var handshake = []tp{
	{'o', 0, S, 1000, 0, ""},
	{'r', 10 * time.Millisecond, SA, 5000, 1001, ""},
	{'o', 20 * time.Millisecond, A, 1001, 5001, ""},
}

func with(base []tp, more ...tp) []tp { return append(append([]tp{}, base...), more...) }

func TestTCPStates(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		pkts      []tp
		state     string
		history   string
		ob, rb    int64
		open      bool
		origIsA   bool
		nConns    int
		opkt, rpk int64
	}{
		{"SF", with(handshake,
			tp{'o', 30 * ms, PA, 1001, 5001, "GET / HTTP/1.0\r\n\r\n"},
			tp{'r', 40 * ms, PA, 5001, 1019, "HTTP/1.0 200 OK\r\n\r\nhello"},
			tp{'o', 50 * ms, FA, 1019, 5025, ""},
			tp{'r', 60 * ms, FA, 5025, 1020, ""},
			tp{'o', 70 * ms, A, 1020, 5026, ""}),
			"SF", "ShADdFf", 18, 24, false, true, 1, 5, 3},
		{"S0", []tp{{'o', 0, S, 1000, 0, ""}}, "S0", "S", 0, 0, true, true, 1, 1, 0},
		{"S0 retransmitted", []tp{{'o', 0, S, 1000, 0, ""}, {'o', time.Second, S, 1000, 0, ""}}, "S0", "S", 0, 0, true, true, 1, 2, 0},
		{"REJ", []tp{{'o', 0, S, 1000, 0, ""}, {'r', ms, RA, 0, 1001, ""}}, "REJ", "Sr", 0, 0, false, true, 1, 1, 1},
		{"RSTOS0", []tp{{'o', 0, S, 1000, 0, ""}, {'o', ms, R, 1001, 0, ""}}, "RSTOS0", "SR", 0, 0, false, true, 1, 2, 0},
		{"SH", []tp{{'o', 0, S, 1000, 0, ""}, {'o', ms, FA, 1001, 0, ""}}, "SH", "SF", 0, 0, false, true, 1, 2, 0},
		{"S1 open", with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "abc"}), "S1", "ShAD", 3, 0, true, true, 1, 3, 1},
		{"S2", with(handshake, tp{'o', 30 * ms, FA, 1001, 5001, ""}), "S2", "ShAF", 0, 0, true, true, 1, 3, 1},
		{"S3", with(handshake, tp{'r', 30 * ms, FA, 5001, 1001, ""}), "S3", "ShAf", 0, 0, true, true, 1, 2, 2},
		{"RSTO", with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "abcd"}, tp{'o', 40 * ms, RA, 1005, 5001, ""}),
			"RSTO", "ShADR", 4, 0, false, true, 1, 4, 1},
		{"RSTR", with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "abcd"}, tp{'r', 40 * ms, RA, 5001, 1005, ""}),
			"RSTR", "ShADr", 4, 0, false, true, 1, 3, 2},
		{"RSTRH", []tp{{'r', 0, SA, 5000, 1001, ""}, {'r', ms, R, 5001, 0, ""}}, "RSTRH", "^hr", 0, 0, false, true, 1, 0, 2},
		{"SHR", []tp{{'r', 0, SA, 5000, 1001, ""}, {'r', ms, FA, 5001, 1001, ""}}, "SHR", "^hf", 0, 0, false, true, 1, 0, 2},
		{"OTH midstream", []tp{{'o', 0, PA, 777, 9999, "data"}, {'r', ms, A, 9999, 781, ""}}, "OTH", "Da", 4, 0, true, true, 1, 1, 1},
		{"SYN-ACK first flips", []tp{
			{'r', 0, SA, 5000, 1001, ""},
			{'o', ms, A, 1001, 5001, ""},
			{'o', 2 * ms, PA, 1001, 5001, "hi"},
			{'o', 3 * ms, FA, 1003, 5001, ""},
			{'r', 4 * ms, FA, 5001, 1004, ""}},
			"SF", "^hADFf", 2, 0, false, true, 1, 3, 2},
		{"port reuse", with(handshake,
			tp{'o', 50 * ms, FA, 1001, 5001, ""},
			tp{'r', 60 * ms, FA, 5001, 1002, ""},
			tp{'o', 70 * ms, A, 1002, 5002, ""},
			tp{'o', time.Second, S, 90000, 0, ""}),
			"S0", "S", 0, 0, true, true, 2, 1, 0},
		{"attempt timeout splits", []tp{
			{'o', 0, S, 1000, 0, ""}, {'o', 3 * time.Second, S, 1000, 0, ""}, {'o', 9 * time.Second, S, 1000, 0, ""},
			{'r', 9*time.Second + ms, SA, 5000, 1001, ""}, {'o', 9*time.Second + 2*ms, A, 1001, 5001, ""}},
			"S1", "ShA", 0, 0, true, true, 2, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conns, st := run(Config{}, tcpSeq(tc.pkts...))
			if len(conns) != tc.nConns {
				t.Fatalf("got %d conns, want %d: %+v", len(conns), tc.nConns, conns)
			}
			c := conns[len(conns)-1]
			if c.State != tc.state || c.History != tc.history {
				t.Errorf("state/history = %s/%q, want %s/%q", c.State, c.History, tc.state, tc.history)
			}
			if c.OrigBytes != tc.ob || c.RespBytes != tc.rb {
				t.Errorf("bytes = %d/%d, want %d/%d", c.OrigBytes, c.RespBytes, tc.ob, tc.rb)
			}
			if c.Open != tc.open {
				t.Errorf("open = %v, want %v", c.Open, tc.open)
			}
			if (c.Orig.Addr == hostA) != tc.origIsA {
				t.Errorf("orig = %v, want A=%v", c.Orig.Addr, tc.origIsA)
			}
			if c.OrigPkts != tc.opkt || c.RespPkts != tc.rpk {
				t.Errorf("pkts = %d/%d, want %d/%d", c.OrigPkts, c.RespPkts, tc.opkt, tc.rpk)
			}
			if st.FlowsCreated != int64(tc.nConns) || st.FlowsEmitted != int64(tc.nConns) {
				t.Errorf("stats created/emitted = %d/%d", st.FlowsCreated, st.FlowsEmitted)
			}
		})
	}
}

func TestSFDurationAndIPBytes(t *testing.T) {
	ms := time.Millisecond
	conns, _ := run(Config{}, tcpSeq(with(handshake,
		tp{'o', 30 * ms, FA, 1001, 5001, ""},
		tp{'r', 40 * ms, FA, 5001, 1002, ""},
		// The final ACK is in the history and counts but does not extend
		// the duration, as in Zeek.
		tp{'o', 900 * ms, A, 1002, 5002, ""})...))
	c := conns[0]
	if c.Duration != 40*ms {
		t.Errorf("duration %v, want 40ms", c.Duration)
	}
	if c.OrigIPBytes != 4*40 || c.RespIPBytes != 2*40 {
		t.Errorf("ip bytes %d/%d", c.OrigIPBytes, c.RespIPBytes)
	}
}

func TestMissedBytes(t *testing.T) {
	ms := time.Millisecond
	a100 := string(bytes.Repeat([]byte("a"), 100))
	conns, _ := run(Config{}, tcpSeq(with(handshake,
		tp{'o', 30 * ms, PA, 1001, 5001, a100},
		// 1101..1200 never seen
		tp{'o', 40 * ms, PA, 1201, 5001, a100},
		tp{'r', 50 * ms, A, 5001, 1301, ""})...))
	c := conns[0]
	if c.MissedBytes != 100 {
		t.Errorf("missed %d, want 100", c.MissedBytes)
	}
	if c.OrigBytes != 300 {
		t.Errorf("orig bytes %d, want 300 (sequence space)", c.OrigBytes)
	}
	if c.History != "ShADaG" {
		t.Errorf("history %q", c.History)
	}
}

func TestMidstreamFromServerPortFlips(t *testing.T) {
	p := tcpPkt(tp{'o', 0, PA, 100, 200, "HTTP/1.1 200 OK\r\n\r\n"}, 80, 40000)
	conns, _ := run(Config{}, []*pcap.Packet{p})
	c := conns[0]
	if c.Orig.Addr != hostB || c.Resp.Port != 80 || c.History != "^d" || c.State != "OTH" {
		t.Errorf("got %v:%d -> %v:%d %s %q", c.Orig.Addr, c.Orig.Port, c.Resp.Addr, c.Resp.Port, c.State, c.History)
	}
}

func udpPkt(src, dst netip.Addr, sp, dp uint16, at time.Duration, payload string) *pcap.Packet {
	return &pcap.Packet{TS: t0.Add(at), Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Proto: 17,
		Payload: []byte(payload), PayloadLen: len(payload), IPLen: 28 + len(payload)}
}

func TestUDP(t *testing.T) {
	tests := []struct {
		name   string
		pkts   []*pcap.Packet
		states []string
		hist   []string
	}{
		{"both ways", []*pcap.Packet{
			udpPkt(hostA, hostB, 40000, 50000, 0, "ping"),
			udpPkt(hostB, hostA, 50000, 40000, time.Second, "pong!")},
			[]string{"SF"}, []string{"Dd"}},
		{"one way", []*pcap.Packet{udpPkt(hostA, hostB, 40000, 50000, 0, "x")}, []string{"S0"}, []string{"D"}},
		{"timeout splits", []*pcap.Packet{
			udpPkt(hostA, hostB, 40000, 50000, 0, "a"),
			udpPkt(hostA, hostB, 40000, 50000, 30*time.Second, "b"),
			udpPkt(hostA, hostB, 40000, 50000, 200*time.Second, "c")},
			[]string{"S0", "S0"}, []string{"D", "D"}},
		{"from server port flips", []*pcap.Packet{udpPkt(hostB, hostA, 53, 40000, 0, "x")}, []string{"SHR"}, []string{"^d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conns, st := run(Config{}, tc.pkts)
			if len(conns) != len(tc.states) {
				t.Fatalf("%d conns, want %d", len(conns), len(tc.states))
			}
			for i, c := range conns {
				if c.State != tc.states[i] || c.History != tc.hist[i] || c.Proto != "udp" {
					t.Errorf("conn %d: %s %s %q", i, c.Proto, c.State, c.History)
				}
			}
			if len(conns) == 2 {
				if st.TimedOut != 1 || conns[0].OrigBytes != 2 || conns[0].OrigPkts != 2 || conns[0].Open {
					t.Errorf("timeout: stats %+v first %+v", st, conns[0])
				}
				if !conns[1].Open {
					t.Error("flushed conn not open")
				}
			}
		})
	}
	conns, _ := run(Config{}, []*pcap.Packet{
		udpPkt(hostA, hostB, 40000, 50000, 0, "ping"),
		udpPkt(hostB, hostA, 50000, 40000, time.Second, "pong!")})
	if c := conns[0]; c.OrigBytes != 4 || c.RespBytes != 5 || c.Duration != time.Second {
		t.Errorf("udp sizes %d/%d dur %v", c.OrigBytes, c.RespBytes, c.Duration)
	}
}

func TestICMPEchoPairs(t *testing.T) {
	req := &pcap.Packet{TS: t0, Src: hostA, Dst: hostB, SrcPort: 8, DstPort: 0, Proto: 1, PayloadLen: 56, IPLen: 84}
	rep := &pcap.Packet{TS: t0.Add(time.Millisecond), Src: hostB, Dst: hostA, SrcPort: 0, DstPort: 0, Proto: 1, PayloadLen: 56, IPLen: 84}
	conns, _ := run(Config{}, []*pcap.Packet{req, rep})
	if len(conns) != 1 {
		t.Fatalf("%d conns", len(conns))
	}
	c := conns[0]
	if c.Proto != "icmp" || c.Orig.Port != 8 || c.Resp.Port != 0 || c.OrigPkts != 1 || c.RespPkts != 1 || c.State != "OTH" {
		t.Errorf("%+v", c)
	}
}

func TestEvictionAtMaxFlows(t *testing.T) {
	var pkts []*pcap.Packet
	for i := range 5 {
		pkts = append(pkts, udpPkt(hostA, hostB, uint16(40000+i), 50000, time.Duration(i)*time.Millisecond, "x"))
	}
	conns, st := run(Config{MaxFlows: 3}, pkts)
	if st.Evicted != 2 || st.PeakActive != 3 || len(conns) != 5 {
		t.Fatalf("evicted %d peak %d conns %d", st.Evicted, st.PeakActive, len(conns))
	}
	// The least recently active go first.
	if conns[0].Orig.Port != 40000 || conns[1].Orig.Port != 40001 {
		t.Errorf("evicted %d, %d", conns[0].Orig.Port, conns[1].Orig.Port)
	}
}

func TestSweepByCaptureTime(t *testing.T) {
	var got []*cw.Conn
	tb := NewTable(Config{}, func(c *cw.Conn) { got = append(got, c) })
	tb.Add(udpPkt(hostA, hostB, 40000, 50000, 0, "a"))
	tb.Add(udpPkt(hostA, hostB, 40001, 50000, 2*time.Minute, "b"))
	if len(got) != 1 || got[0].Orig.Port != 40000 || got[0].Open {
		t.Fatalf("sweep emitted %d", len(got))
	}
	if st := tb.Stats(); st.Active != 1 || st.TimedOut != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUIDDeterministic(t *testing.T) {
	pk := func() []*pcap.Packet { return tcpSeq(handshake...) }
	a, _ := run(Config{}, pk())
	b, _ := run(Config{}, pk())
	re := regexp.MustCompile(`^C[0-9A-Za-z]{17}$`)
	if a[0].UID != b[0].UID || !re.MatchString(a[0].UID) {
		t.Errorf("uids %q %q", a[0].UID, b[0].UID)
	}
	c, _ := run(Config{}, tcpSeq(with(handshake,
		tp{'o', 50 * time.Millisecond, RA, 1001, 5001, ""},
		tp{'o', time.Second, S, 7000, 0, ""})...))
	if len(c) != 2 || c[0].UID == c[1].UID {
		t.Errorf("reused port got uids %v", c)
	}
}

// collector is a real StreamSink that keeps what it is given.
type collector struct {
	bytes  [2]bytes.Buffer
	closed bool
}

func (c *collector) Write(fromOrig bool, b []byte) { c.bytes[dirIdx(fromOrig)].Write(b) }
func (c *collector) Close(*cw.Conn)                { c.closed = true }

type collectInspector struct{ sinks []*collector }

func (i *collectInspector) Open(*cw.Conn) StreamSink {
	c := &collector{}
	i.sinks = append(i.sinks, c)
	return c
}

func TestReassemblyOutOfOrder(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		pkts     []tp
		wantOrig string
		wantResp string
		maxOOO   int
		inspect  int64
	}{
		{"in order", with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "hello "}, tp{'o', 31 * ms, PA, 1007, 5001, "world"}),
			"hello world", "", 0, 0},
		{"swapped", with(handshake, tp{'o', 30 * ms, PA, 1007, 5001, "world"}, tp{'o', 31 * ms, PA, 1001, 5001, "hello "}),
			"hello world", "", 0, 0},
		{"overlap and retransmit", with(handshake,
			tp{'o', 30 * ms, PA, 1004, 5001, "lo wor"},
			tp{'o', 31 * ms, PA, 1001, 5001, "hel"},
			tp{'o', 32 * ms, PA, 1001, 5001, "hel"},
			tp{'o', 33 * ms, PA, 1008, 5001, "orld"},
			tp{'r', 34 * ms, PA, 5001, 1012, "ok"}),
			"hello world", "ok", 0, 0},
		{"gap skipped on ack", with(handshake,
			tp{'o', 30 * ms, PA, 1001, 5001, "aaaa"},
			tp{'o', 31 * ms, PA, 1009, 5001, "cccc"},
			tp{'r', 32 * ms, A, 5001, 1013, ""}),
			"aaaacccc", "", 0, 0},
		{"ooo cap drops", with(handshake,
			tp{'o', 30 * ms, PA, 1003, 5001, "c"},
			tp{'o', 31 * ms, PA, 1004, 5001, "d"},
			tp{'o', 32 * ms, PA, 1001, 5001, "ab"}),
			"abc", "", 1, 0},
		{"inspect cap", with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "0123456789"}), "0123", "", 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins := &collectInspector{}
			conns, st := run(Config{Inspector: ins, MaxOutOfOrder: tc.maxOOO, InspectBytes: tc.inspect}, tcpSeq(tc.pkts...))
			if len(ins.sinks) != 1 || !ins.sinks[0].closed {
				t.Fatalf("sinks %d", len(ins.sinks))
			}
			s := ins.sinks[0]
			if got := s.bytes[0].String(); got != tc.wantOrig {
				t.Errorf("orig stream %q, want %q", got, tc.wantOrig)
			}
			if got := s.bytes[1].String(); got != tc.wantResp {
				t.Errorf("resp stream %q, want %q", got, tc.wantResp)
			}
			if st.BufferedBytes != 0 {
				t.Errorf("%d bytes still accounted after flush", st.BufferedBytes)
			}
			if tc.maxOOO == 1 && st.OutOfOrderDropped != 1 {
				t.Errorf("ooo dropped %d", st.OutOfOrderDropped)
			}
			_ = conns
		})
	}
}

func TestUDPToInspector(t *testing.T) {
	ins := &collectInspector{}
	run(Config{Inspector: ins}, []*pcap.Packet{
		udpPkt(hostA, hostB, 40000, 50000, 0, "MSKU"),
		udpPkt(hostB, hostA, 50000, 40000, time.Millisecond, "ok"),
		udpPkt(hostA, hostB, 40000, 50000, 2*time.Millisecond, "9070323")})
	if len(ins.sinks) != 1 || ins.sinks[0].bytes[0].String() != "MSKU9070323" || ins.sinks[0].bytes[1].String() != "ok" {
		t.Errorf("udp inspection: %d sinks", len(ins.sinks))
	}
}

func TestBufferCap(t *testing.T) {
	ms := time.Millisecond
	big := string(bytes.Repeat([]byte("x"), 3000))
	_, st := run(Config{MaxBufferBytes: 1000}, tcpSeq(with(handshake,
		tp{'o', 30 * ms, PA, 1001, 5001, big})...))
	if st.BufferCapHits == 0 || st.BufferedBytes != 0 {
		t.Errorf("cap hits %d buffered %d", st.BufferCapHits, st.BufferedBytes)
	}
}

func BenchmarkTable(b *testing.B) {
	// 1000 concurrent connections, each handshake + 4 data segments +
	// close, interleaved so the table holds many flows.
	var pkts []*pcap.Packet
	payload := string(bytes.Repeat([]byte("p"), 512))
	for i := range 1000 {
		sp := uint16(20000 + i)
		at := time.Duration(i) * time.Microsecond
		seq := []tp{{'o', at, S, 1000, 0, ""}, {'r', at, SA, 5000, 1001, ""}, {'o', at, A, 1001, 5001, ""}}
		for j := range 4 {
			seq = append(seq, tp{'o', at, PA, 1001 + uint32(j*512), 5001, payload}, tp{'r', at, A, 5001, 1001 + uint32((j+1)*512), ""})
		}
		seq = append(seq, tp{'o', at, FA, 1001 + 4*512, 5001, ""}, tp{'r', at, FA, 5001, 1002 + 4*512, ""})
		for _, x := range seq {
			pkts = append(pkts, tcpPkt(x, sp, 50000))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t := NewTable(Config{}, func(*cw.Conn) {})
		for _, p := range pkts {
			t.Add(p)
		}
		t.Flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/pkt")
}
