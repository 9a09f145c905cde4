package flow

import (
	"net/netip"
	"slices"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"
)

// Stats counts what the table did; every cap that was hit shows up here.
type Stats struct {
	Packets        int64 // packets given to Add
	FlowsCreated   int64
	FlowsEmitted   int64
	Active         int   // flows in the table now
	PeakActive     int   // most flows held at once
	Evicted        int64 // emitted early because MaxFlows was reached
	TimedOut       int64 // emitted after their idle, linger or attempt timeout
	Flushed        int64 // emitted by Flush at the end of input
	PortReuse      int64 // a new SYN on a finished (or re-sequenced) connection started a new Conn
	AttemptExpired int64 // SYN-only attempts ended by TCPAttemptTimeout
	// OutOfOrderDropped counts out-of-order TCP segments not held because a
	// direction already held MaxOutOfOrder of them; their bytes become a
	// content gap for the parsers.
	OutOfOrderDropped int64
	// ReassemblyGaps counts directions whose parsers gave up on a hole in
	// the stream (lost or cut packets).
	ReassemblyGaps int64
	// BufferCapHits counts payload not kept because MaxBufferBytes was reached.
	BufferCapHits int64
	BufferedBytes int64 // payload bytes held now
	DNSMessages   int64 // DNS messages parsed
	DNSDropped    int64 // DNS messages beyond MaxDNSPerFlow
	HistoryCapped int64 // flows whose history string hit its length cap

	// DCP counts PROFINET frames and DCP exchanges (dcp.go), which the
	// IP flow counters above leave out.
	DCP DCPStats
}

// key identifies a conversation regardless of direction: (a, pa) is the
// smaller endpoint. VLAN and tunnel are not part of it, as in Zeek's
// default conn key.
type key struct {
	a, b   netip.Addr
	pa, pb uint16
	proto  uint8
}

func makeKey(src, dst netip.Addr, sp, dp uint16, proto uint8) (key, bool) {
	if c := src.Compare(dst); c < 0 || (c == 0 && sp <= dp) {
		return key{src, dst, sp, dp, proto}, false
	}
	return key{dst, src, dp, sp, proto}, true
}

// Timeout classes: each has its own list ordered by last activity, so a
// sweep only looks at list fronts.
const (
	clsTCP = iota
	clsUDP
	clsICMP
	clsLinger  // TCP closed or reset: TCPCloseLinger
	clsAttempt // TCP SYN sent, no reply: TCPAttemptTimeout from first SYN
	numClasses
)

type flow struct {
	k       key
	counter uint64
	input   string

	origAddr, respAddr netip.Addr
	origPort, respPort uint16
	proto              uint8
	flipped            bool

	first, last time.Time // last stops advancing once both TCP sides closed (Zeek duration)
	lastSeen    time.Time // any packet; drives idle timeouts and LRU order

	origMAC, respMAC [6]byte
	origHasMAC       bool
	respHasMAC       bool
	vlan             uint16
	tunnel           string

	origPkts, respPkts       int64
	origIPBytes, respIPBytes int64
	origSize, respSize       int64 // UDP/ICMP payload sums

	tcp     tcpConn
	history []byte
	histCap bool

	app *appState // nil until a packet with payload

	cls        uint8
	prev, next *flow
}

type list struct{ head, tail *flow }

func (l *list) pushBack(f *flow) {
	f.prev, f.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
}

func (l *list) remove(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

// Table turns packets into Conn records. It is not safe for concurrent use.
type Table struct {
	cfg       Config
	emit      func(*cw.Conn)
	flows     map[key]*flow
	lists     [numClasses]list
	now       time.Time
	lastSweep time.Time
	counter   uint64
	stats     Stats
	dcp       *dcpTable // PROFINET DCP exchanges (dcp.go), nil until the first frame
}

// NewTable returns an empty table that calls emit for each finished Conn.
func NewTable(cfg Config, emit func(*cw.Conn)) *Table {
	return &Table{cfg: cfg.withDefaults(), emit: emit, flows: make(map[key]*flow)}
}

// sweepEvery is how far capture time must advance between sweeps; finer
// timing is not needed because a packet for an expired flow is checked
// on arrival anyway.
const sweepEvery = time.Second

// Add accounts one packet. Time is the packets' time, never the wall clock.
func (t *Table) Add(p *pcap.Packet) {
	t.stats.Packets++
	if p.TS.After(t.now) {
		t.now = p.TS
	}
	if t.now.Sub(t.lastSweep) >= sweepEvery {
		t.sweep()
		t.sweepDCP()
		t.lastSweep = t.now
	}
	if p.EtherType != 0 {
		t.addL2(p) // no IP 5-tuple: PROFINET DCP (dcp.go)
		return
	}
	sp, dp := p.SrcPort, p.DstPort
	switch p.Proto {
	case 1, 58:
		dp = icmpCounterpart(p.Proto, uint8(sp), uint8(dp))
	case 6, 17:
	default:
		sp, dp = 0, 0
	}
	k, _ := makeKey(p.Src, p.Dst, sp, dp, p.Proto)
	f := t.flows[k]
	if f != nil {
		if t.expired(f) {
			if f.cls == clsAttempt {
				t.stats.AttemptExpired++
			}
			t.stats.TimedOut++
			t.finish(f, false)
			f = nil
		} else if p.Proto == 6 && f.tcp.isReuse(f, p) {
			t.stats.PortReuse++
			t.finish(f, false)
			f = nil
		}
	}
	if f == nil {
		if len(t.flows) >= t.cfg.MaxFlows {
			t.evictOne()
		}
		f = t.newFlow(k, p, sp, dp)
	}
	t.update(f, p, sp)
}

func (t *Table) newFlow(k key, p *pcap.Packet, sp, dp uint16) *flow {
	t.counter++
	f := &flow{k: k, counter: t.counter, input: p.Input, proto: p.Proto,
		origAddr: p.Src, respAddr: p.Dst, origPort: sp, respPort: dp,
		first: p.TS, last: p.TS, lastSeen: p.TS, vlan: p.VLAN, tunnel: p.Tunnel}
	if p.HasMAC {
		f.origMAC, f.respMAC, f.origHasMAC, f.respHasMAC = p.SrcMAC, p.DstMAC, true, true
	}
	if wantFlip(p, sp, dp) {
		f.flip()
	}
	t.flows[k] = f
	f.cls = t.classOf(f)
	t.lists[f.cls].pushBack(f)
	t.stats.FlowsCreated++
	if n := len(t.flows); n > t.stats.PeakActive {
		t.stats.PeakActive = n
	}
	return f
}

// flip swaps the roles at creation, before any state exists; '^' records
// it as Zeek does.
func (f *flow) flip() {
	f.origAddr, f.respAddr = f.respAddr, f.origAddr
	f.origPort, f.respPort = f.respPort, f.origPort
	f.origMAC, f.respMAC = f.respMAC, f.origMAC
	f.flipped = !f.flipped
	f.addHistory('^')
}

func (t *Table) update(f *flow, p *pcap.Packet, sp uint16) {
	// sp is the key port: for ICMP the type, so an echo reply (type 0)
	// from the responder is told apart from the request even when both
	// sides share an address.
	isOrig := p.Src == f.origAddr && sp == f.origPort
	if isOrig {
		f.origPkts++
		f.origIPBytes += int64(p.IPLen)
	} else {
		f.respPkts++
		f.respIPBytes += int64(p.IPLen)
		if p.HasMAC && !f.respHasMAC {
			f.respMAC, f.origMAC, f.respHasMAC, f.origHasMAC = p.SrcMAC, p.DstMAC, true, true
		}
	}
	f.lastSeen = p.TS
	switch p.Proto {
	case 6:
		f.tcp.process(t, f, p, isOrig)
	case 17:
		f.last = p.TS
		if isOrig {
			f.origSize += int64(p.PayloadLen)
			f.udpHistory(0x1, 'D')
		} else {
			f.respSize += int64(p.PayloadLen)
			f.udpHistory(0x2, 'd')
		}
		if isOrig {
			f.tcp.udpSeen |= 1
		} else {
			f.tcp.udpSeen |= 2
		}
		if len(p.Payload) > 0 {
			t.datagram(f, isOrig, p.Payload)
		}
		if t.cfg.UDPTap != nil && len(p.Payload) > 0 && len(p.Payload) == p.PayloadLen {
			t.cfg.UDPTap(p.TS, netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), p.Payload)
		}
	default:
		f.last = p.TS
		if isOrig {
			f.origSize += int64(p.PayloadLen)
		} else {
			f.respSize += int64(p.PayloadLen)
		}
	}
	if c := t.classOf(f); c != f.cls {
		t.lists[f.cls].remove(f)
		f.cls = c
		t.lists[c].pushBack(f)
	} else if t.lists[c].tail != f {
		t.lists[c].remove(f)
		t.lists[c].pushBack(f)
	}
}

func (f *flow) udpHistory(bit uint32, c byte) {
	if f.tcp.histSeen&bit == 0 {
		f.tcp.histSeen |= bit
		f.addHistory(c)
	}
}

// maxHistory bounds the history string: only S/H/F/R with new sequence
// numbers can repeat, which a hostile sender could do forever.
const maxHistory = 64

func (f *flow) addHistory(c byte) {
	if len(f.history) >= maxHistory {
		f.histCap = true
		return
	}
	f.history = append(f.history, c)
}

// finished: a TCP connection that closed or was reset; everything else
// is still open when flushed or evicted.
func (f *flow) finished() bool { return f.proto == 6 && f.tcp.lingering() }

func (t *Table) classOf(f *flow) uint8 {
	switch f.proto {
	case 6:
		switch {
		case f.tcp.lingering():
			return clsLinger
		case f.tcp.attempting():
			return clsAttempt
		}
		return clsTCP
	case 1, 58:
		return clsICMP
	}
	return clsUDP
}

func (t *Table) timeout(cls uint8) time.Duration {
	switch cls {
	case clsTCP:
		return t.cfg.TCPTimeout
	case clsICMP:
		return t.cfg.ICMPTimeout
	case clsLinger:
		return t.cfg.TCPCloseLinger
	case clsAttempt:
		return t.cfg.TCPAttemptTimeout
	}
	return t.cfg.UDPTimeout
}

func (t *Table) expired(f *flow) bool {
	if f.cls == clsAttempt {
		return t.now.Sub(f.first) > t.cfg.TCPAttemptTimeout
	}
	return t.now.Sub(f.lastSeen) > t.timeout(f.cls)
}

// sweep emits flows whose timeout passed. Lists are ordered by lastSeen,
// so each stops at its first live flow. (An attempt is timed from its
// first SYN; one that a retransmission moved back waits for a later sweep
// or its next packet.)
func (t *Table) sweep() {
	for c := range t.lists {
		l := &t.lists[c]
		for l.head != nil && t.expired(l.head) {
			f := l.head
			if f.cls == clsAttempt {
				t.stats.AttemptExpired++
			}
			t.stats.TimedOut++
			t.finish(f, false)
		}
		if c == clsAttempt {
			// Attempts can also sit behind a retransmitted SYN; they are
			// few, so a short scan past the front is cheap.
			for f, n := l.head, 0; f != nil && n < 64; n++ {
				next := f.next
				if t.expired(f) {
					t.stats.AttemptExpired++
					t.stats.TimedOut++
					t.finish(f, false)
				}
				f = next
			}
		}
	}
}

// evictOne emits the least recently active flow of all classes.
func (t *Table) evictOne() {
	var victim *flow
	for c := range t.lists {
		if h := t.lists[c].head; h != nil && (victim == nil || h.lastSeen.Before(victim.lastSeen)) {
			victim = h
		}
	}
	if victim != nil {
		t.stats.Evicted++
		t.finish(victim, !victim.finished())
	}
}

// Flush emits every flow left, oldest first, as at the end of the input.
// Flows that had not finished are marked Open.
func (t *Table) Flush() {
	all := make([]*flow, 0, len(t.flows))
	for _, f := range t.flows {
		all = append(all, f)
	}
	slices.SortFunc(all, func(a, b *flow) int {
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return int(a.counter - b.counter)
	})
	for _, f := range all {
		t.stats.Flushed++
		t.finish(f, !f.finished())
	}
	t.flushDCP()
	t.now, t.lastSweep = time.Time{}, time.Time{}
}

// Stats reports the counters so far.
func (t *Table) Stats() Stats {
	s := t.stats
	s.Active = len(t.flows)
	return s
}

func (t *Table) finish(f *flow, open bool) {
	t.lists[f.cls].remove(f)
	delete(t.flows, f.k)
	c := t.conn(f)
	c.Open = open
	t.finishApp(f, c)
	t.stats.FlowsEmitted++
	if f.histCap {
		t.stats.HistoryCapped++
	}
	if t.emit != nil {
		t.emit(c)
	}
}

// conn builds the record; app-layer fields are added by finishApp.
func (t *Table) conn(f *flow) *cw.Conn {
	c := &cw.Conn{
		TS:          f.first,
		UID:         makeUID(f.first.UnixNano(), &f.k, f.counter),
		Orig:        cw.Endpoint{Addr: f.origAddr, Port: f.origPort},
		Resp:        cw.Endpoint{Addr: f.respAddr, Port: f.respPort},
		Proto:       cw.ProtoName(f.proto),
		Duration:    f.last.Sub(f.first),
		OrigPkts:    f.origPkts,
		RespPkts:    f.respPkts,
		OrigIPBytes: f.origIPBytes,
		RespIPBytes: f.respIPBytes,
		History:     string(f.history),
		VLAN:        f.vlan,
		Tunnel:      f.tunnel,
		Source:      f.input,
	}
	if f.origHasMAC {
		c.Orig.MAC = macString(f.origMAC)
	}
	if f.respHasMAC {
		c.Resp.MAC = macString(f.respMAC)
	}
	switch f.proto {
	case 6:
		o, r := f.tcp.end(true), f.tcp.end(false)
		c.OrigBytes, c.RespBytes = o.size(r), r.size(o)
		c.MissedBytes = f.tcp.missed
		c.State = f.tcp.connState(f)
	case 17:
		c.OrigBytes, c.RespBytes = f.origSize, f.respSize
		switch f.tcp.udpSeen {
		case 3:
			c.State = "SF"
		case 1:
			c.State = "S0"
		case 2:
			c.State = "SHR"
		default:
			c.State = "OTH"
		}
	default:
		c.OrigBytes, c.RespBytes = f.origSize, f.respSize
		c.State = "OTH"
	}
	return c
}

func macString(m [6]byte) string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		b[i*3], b[i*3+1] = hex[v>>4], hex[v&15]
	}
	return string(b[:])
}

// icmpCounterpart gives the "responder port" of an ICMP packet the way
// Zeek does: the type of the matching reply (or request) for two-way
// messages, so that a request and its reply share a key; else the code.
func icmpCounterpart(proto, typ, code uint8) uint16 {
	if proto == 1 {
		switch typ {
		case 8:
			return 0
		case 0:
			return 8
		case 13:
			return 14
		case 14:
			return 13
		case 15:
			return 16
		case 16:
			return 15
		case 10:
			return 9
		case 9:
			return 10
		case 17:
			return 18
		case 18:
			return 17
		}
		return uint16(code)
	}
	switch typ {
	case 128:
		return 129
	case 129:
		return 128
	case 133:
		return 134
	case 134:
		return 133
	case 135:
		return 136
	case 136:
		return 135
	case 130:
		return 131
	case 131:
		return 130
	case 139:
		return 140
	case 140:
		return 139
	}
	return uint16(code)
}

// likelyServerPorts stands in for Zeek's likely_server_ports (the ports
// its loaded analyzers register): a partial TCP connection or a UDP flow
// whose first packet comes from one of these, to a port that is not, is
// taken to come from the responder.
var likelyServerPorts = map[uint16]bool{
	20: true, 21: true, 22: true, 23: true, 25: true, 53: true, 67: true, 69: true,
	80: true, 88: true, 102: true, 110: true, 111: true, 123: true, 135: true,
	137: true, 138: true, 139: true, 143: true, 161: true, 162: true, 389: true,
	443: true, 445: true, 465: true, 500: true, 502: true, 514: true, 587: true,
	636: true, 993: true, 995: true, 1080: true, 1194: true, 1433: true,
	1521: true, 1812: true, 1883: true, 2049: true, 2404: true, 3128: true,
	3306: true, 3389: true, 3478: true, 4840: true, 5060: true, 5222: true,
	5353: true, 5355: true, 5432: true, 5672: true, 5683: true, 6379: true,
	6667: true, 8000: true, 8080: true, 8443: true, 8883: true, 9200: true,
	20000: true, 44818: true, 47808: true,
}

// wantFlip decides at creation whether the first packet came from the
// responder: a SYN-ACK (its sender answered a SYN we missed), or, as in
// Zeek's WantConnection, midstream TCP or UDP from a likely server port.
func wantFlip(p *pcap.Packet, sp, dp uint16) bool {
	switch p.Proto {
	case 6:
		syn, ack := p.TCPFlags&pcap.FlagSYN != 0, p.TCPFlags&pcap.FlagACK != 0
		if syn && !ack {
			return false
		}
		if syn && ack {
			return true
		}
		if likelyServerPorts[sp] {
			if likelyServerPorts[dp] {
				return sp < dp
			}
			return true
		}
	case 17:
		return likelyServerPorts[sp] && !likelyServerPorts[dp]
	}
	return false
}
