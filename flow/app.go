package flow

import (
	"encoding/binary"
	"errors"
	"slices"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/dissect"
	"github.com/cargowatch/cargowatch/ot"
)

// appState is what a flow carries once payload arrives: reassembly
// leftovers, dissection buffers and parsed application metadata. Flows
// without payload never allocate one.
type appState struct {
	dir      [2]dirState // 0 orig, 1 resp
	analyzed bool
	service  string

	dnsState uint8 // dnsUnknown, dnsYes, dnsNo
	dns      []cw.DNS
	dnsDrop  int

	tlsState  [2]uint8 // tlsPending, tlsDone, tlsFailed
	tls       *cw.TLS
	serverVer string

	http  []cw.HTTP
	names []cw.HostName
	sink  StreamSink

	// OT and remote-access protocol parsing: identified from the
	// dissection buffers, then fed every in-order byte or datagram.
	otState uint8 // otPending, otYes, otNo
	otTries uint8 // UDP datagrams tried while pending
	ot      *ot.Session
}

const (
	otPending uint8 = iota
	otYes
	otNo
)

// otUDPTries is how many datagrams of a UDP flow may fail identification
// before the flow is taken as not OT: the rules judge one datagram each.
const otUDPTries = 4

const (
	dnsUnknown uint8 = iota
	dnsYes
	dnsNo
)

const (
	tlsPending uint8 = iota
	tlsDone
	tlsFailed
)

type seg struct {
	start, end int64
	data       []byte // nil when the bytes were not kept
}

type dirState struct {
	segs      []seg // out-of-order segments, sorted by start
	buf       []byte
	bufDone   bool // buf takes no more bytes (full, gap, released)
	gapped    bool
	inspected int64
	dns       dnsFramer
	// delivered counts in-order bytes handed to deliver, so that an OT
	// parser started late knows whether bytes past buf were missed.
	delivered int64
}

type dnsFramer struct {
	hdr  [2]byte
	nh   int
	need int
	msg  []byte
	skip bool // current message is not kept (over the buffer cap)
	dead bool // lost framing after a gap
}

func dirIdx(isOrig bool) int {
	if isOrig {
		return 0
	}
	return 1
}

func (t *Table) appOf(f *flow) *appState {
	if f.app != nil {
		return f.app
	}
	a := &appState{}
	f.app = a
	if t.cfg.Inspector != nil && (f.proto == 6 || f.proto == 17) {
		a.sink = t.cfg.Inspector.Open(t.conn(f))
	}
	return a
}

// reserve accounts n payload bytes against MaxBufferBytes.
func (t *Table) reserve(n int) bool {
	if t.stats.BufferedBytes+int64(n) > t.cfg.MaxBufferBytes {
		t.stats.BufferCapHits++
		return false
	}
	t.stats.BufferedBytes += int64(n)
	return true
}

func (t *Table) release(n int) { t.stats.BufferedBytes -= int64(n) }

// wants reports whether any consumer still needs this direction's bytes;
// when none does, out-of-order segments are tracked as ranges only.
func (t *Table) wants(f *flow, a *appState, i int) bool {
	d := &a.dir[i]
	return !d.bufDone || a.dnsState != dnsNo && !d.dns.dead ||
		a.sink != nil && d.inspected < t.cfg.InspectBytes && a.tls == nil ||
		a.ot != nil && a.ot.Wants(i == 0)
}

// dataSent is the reassembler: in-order bytes go straight to the
// consumers, out-of-order ones wait (bounded) for the hole to fill.
func (c *tcpConn) dataSent(t *Table, f *flow, ep *tcpEnd, isOrig bool, seq int64, length int, payload []byte) {
	end := seq + int64(length)
	if end <= ep.contig {
		return // all old: a retransmission
	}
	a := t.appOf(f)
	i := dirIdx(isOrig)
	d := &a.dir[i]
	if len(payload) > length {
		payload = payload[:length] // Ethernet padding
	}
	if seq <= ep.contig {
		t.deliverSpan(f, a, isOrig, ep, seq, end, payload)
		t.drain(f, a, isOrig, ep)
		return
	}
	if len(d.segs) >= t.cfg.MaxOutOfOrder {
		t.stats.OutOfOrderDropped++
		return
	}
	s := seg{start: seq, end: end}
	if len(payload) > 0 && t.wants(f, a, i) && t.reserve(len(payload)) {
		s.data = slices.Clone(payload)
	}
	at, _ := slices.BinarySearchFunc(d.segs, seq, func(s seg, v int64) int {
		switch {
		case s.start < v:
			return -1
		case s.start > v:
			return 1
		}
		return 0
	})
	d.segs = slices.Insert(d.segs, at, s)
}

// deliverSpan hands the part of [seq,end) past ep.contig to the consumers.
func (t *Table) deliverSpan(f *flow, a *appState, isOrig bool, ep *tcpEnd, seq, end int64, data []byte) {
	off := ep.contig - seq
	if off < int64(len(data)) {
		t.deliver(f, a, isOrig, data[off:])
	}
	if int64(len(data)) < end-seq {
		// The capture cut the packet (snap length): a hole for parsers.
		t.markGap(f, a, isOrig)
	}
	ep.contig = end
}

func (t *Table) drain(f *flow, a *appState, isOrig bool, ep *tcpEnd) {
	d := &a.dir[dirIdx(isOrig)]
	for len(d.segs) > 0 && d.segs[0].start <= ep.contig {
		s := d.segs[0]
		d.segs = d.segs[1:]
		t.release(len(s.data))
		if s.end <= ep.contig {
			continue
		}
		if s.data == nil {
			t.markGap(f, a, isOrig)
			ep.contig = s.end
			continue
		}
		t.deliverSpan(f, a, isOrig, ep, s.start, s.end, s.data)
	}
	if len(d.segs) == 0 {
		d.segs = nil
	}
}

// ackReceived: the peer acknowledged this side's data up to relAck. Bytes
// acked but never seen are a content gap (Zeek's TCP_Reassembler::
// AckReceived), counted in missed_bytes while both sides are established.
func (c *tcpConn) ackReceived(t *Table, f *flow, ep *tcpEnd, isOrig bool, relAck int64) {
	if ep.finCnt > 0 && relAck >= ep.finSeq {
		relAck = ep.finSeq - 1
	}
	if relAck <= ep.contig {
		return
	}
	var segs []seg
	if f.app != nil {
		segs = f.app.dir[dirIdx(isOrig)].segs
	}
	missing, cur := int64(0), ep.contig
	for _, s := range segs {
		if s.start >= relAck {
			break
		}
		if s.start > cur {
			missing += s.start - cur
		}
		cur = max(cur, s.end)
	}
	if relAck > cur {
		missing += relAck - cur
	}
	if f.app != nil {
		a := f.app
		d := &a.dir[dirIdx(isOrig)]
		for len(d.segs) > 0 && d.segs[0].start < relAck {
			s := d.segs[0]
			d.segs = d.segs[1:]
			t.release(len(s.data))
			if s.end <= ep.contig {
				continue
			}
			if s.start > ep.contig || s.data == nil {
				t.markGap(f, a, isOrig)
				ep.contig = max(ep.contig, s.start)
			}
			if s.data != nil {
				t.deliverSpan(f, a, isOrig, ep, s.start, s.end, s.data)
			} else {
				ep.contig = s.end
			}
		}
		if relAck > ep.contig {
			t.markGap(f, a, isOrig)
		}
	}
	ep.contig = max(ep.contig, relAck)
	if f.app != nil {
		t.drain(f, f.app, isOrig, ep)
	}
	if missing > 0 && c.orig.state == stEstablished && c.resp.state == stEstablished {
		c.missed += missing
		ep.gaps++
		c.scaled(f, isOrig, 'G', &ep.gaps, &ep.gapThresh)
	}
}

func (t *Table) markGap(f *flow, a *appState, isOrig bool) {
	d := &a.dir[dirIdx(isOrig)]
	d.gapped = true
	if !d.bufDone {
		d.bufDone = true
		t.stats.ReassemblyGaps++
		t.tryTLS(a, isOrig)
	}
	if a.ot != nil {
		a.ot.Gap(isOrig)
	}
	if d.dns.nh > 0 || d.dns.need > 0 {
		d.dns.dead = true
		t.release(cap(d.dns.msg))
		d.dns.msg = nil
	}
	t.maybeAnalyze(f, a)
}

// deliver feeds in-order bytes to the dissection buffer, the DNS framer
// and the inspector.
func (t *Table) deliver(f *flow, a *appState, isOrig bool, b []byte) {
	i := dirIdx(isOrig)
	d := &a.dir[i]
	d.delivered += int64(len(b))
	grew := false
	if !d.bufDone {
		n := min(t.cfg.DissectBytes-len(d.buf), len(b))
		if n > 0 && len(d.buf)+n > cap(d.buf) {
			// Grow by doubling, within DissectBytes, reserving first so
			// the accounting always equals the capacity held.
			nc := min(max(2*cap(d.buf), len(d.buf)+n, 512), t.cfg.DissectBytes)
			if t.reserve(nc - cap(d.buf)) {
				// The reservation is the growth only: the old capacity
				// was accounted when it was taken.
				nb := make([]byte, len(d.buf), nc)
				copy(nb, d.buf)
				d.buf = nb
			} else {
				n = 0
				d.bufDone = true
			}
		}
		if n > 0 {
			d.buf = append(d.buf, b[:n]...)
			grew = true
		}
		if len(d.buf) >= t.cfg.DissectBytes {
			d.bufDone = true
		}
		t.tryTLS(a, isOrig)
	}
	switch a.otState {
	case otYes:
		a.ot.Stream(isOrig, b)
	case otPending:
		if grew {
			t.identifyOT(f, a, false)
		}
	}
	if f.proto == 6 && a.dnsState != dnsNo && !d.dns.dead {
		t.feedDNS(f, a, isOrig, b)
	}
	t.inspect(a, i, isOrig, b)
	t.maybeAnalyze(f, a)
}

func (t *Table) inspect(a *appState, i int, isOrig bool, b []byte) {
	d := &a.dir[i]
	if a.sink == nil || a.tls != nil || d.inspected >= t.cfg.InspectBytes {
		return
	}
	n := min(int64(len(b)), t.cfg.InspectBytes-d.inspected)
	a.sink.Write(isOrig, b[:n])
	d.inspected += n
}

// datagram handles one UDP payload: the first of each direction feeds
// service detection, each is tried as DNS, all go to the inspector.
func (t *Table) datagram(f *flow, isOrig bool, b []byte) {
	a := t.appOf(f)
	i := dirIdx(isOrig)
	d := &a.dir[i]
	if !d.bufDone {
		n := min(len(b), t.cfg.DissectBytes)
		if t.reserve(n) {
			// Exact capacity: the accounting releases cap(d.buf).
			d.buf = make([]byte, n)
			copy(d.buf, b)
		}
		d.bufDone = true
	}
	t.datagramOT(f, a, isOrig, b)
	if a.dnsState != dnsNo {
		ok := t.dnsMessage(a, b)
		switch {
		case ok:
			a.dnsState = dnsYes
		case a.dnsState == dnsUnknown && !dnsPort(f.origPort) && !dnsPort(f.respPort):
			a.dnsState = dnsNo
		}
	}
	t.inspect(a, i, isOrig, b)
	t.maybeAnalyze(f, a)
}

// identifyOT names the flow's OT or remote-access protocol from the
// dissection buffers (TCP) and, once named, starts its parser with those
// buffers: bytes a direction delivered past its buffer before that are a
// gap for the parser. final says no more bytes will reach the buffers.
func (t *Table) identifyOT(f *flow, a *appState, final bool) {
	if f.proto != 6 {
		return
	}
	name, done := ot.Identify("tcp", a.dir[0].buf, a.dir[1].buf, f.origPort, f.respPort, final)
	if !done {
		return
	}
	if name == "" {
		a.otState = otNo
		return
	}
	a.ot = ot.NewSession(name, otBudget{t})
	a.otState = otYes
	for i := range a.dir {
		d := &a.dir[i]
		a.ot.Stream(i == 0, d.buf)
		if d.gapped || d.delivered > int64(len(d.buf)) {
			a.ot.Gap(i == 0)
		}
	}
}

// datagramOT: UDP rules judge one datagram each, so every datagram is
// tried until one is named or otUDPTries have failed; from then on each
// goes to the parser.
func (t *Table) datagramOT(f *flow, a *appState, isOrig bool, b []byte) {
	switch a.otState {
	case otYes:
		a.ot.Datagram(isOrig, b)
	case otPending:
		o, r := b, []byte(nil)
		if !isOrig {
			o, r = nil, b
		}
		name, _ := ot.Identify("udp", o, r, f.origPort, f.respPort, true)
		if name == "" {
			if a.otTries++; a.otTries >= otUDPTries {
				a.otState = otNo
			}
			return
		}
		a.ot = ot.NewSession(name, otBudget{t})
		a.otState = otYes
		a.ot.Datagram(isOrig, b)
	}
}

// otBudget lets OT parsers' frame buffers count against MaxBufferBytes.
type otBudget struct{ t *Table }

func (b otBudget) Reserve(n int) bool { return b.t.reserve(n) }
func (b otBudget) Release(n int)      { b.t.release(n) }

func dnsPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 || p == 137 }

// dnsMessage parses one DNS message and files it on the flow: a query is
// appended (up to MaxDNSPerFlow), a response completes the latest
// unanswered query with the same transaction id.
func (t *Table) dnsMessage(a *appState, b []byte) bool {
	msg, isResp, err := dissect.DNSMessage(b)
	if err != nil {
		return false
	}
	t.stats.DNSMessages++
	if isResp {
		for i := len(a.dns) - 1; i >= 0; i-- {
			q := &a.dns[i]
			if q.TransID == msg.TransID && q.RespLen == 0 {
				q.RCode, q.Answers, q.TTLs, q.RespLen = msg.RCode, msg.Answers, msg.TTLs, len(b)
				if q.Query == "" {
					q.Query, q.QType, q.QClass = msg.Query, msg.QType, msg.QClass
				}
				return true
			}
		}
		msg.QueryLen, msg.RespLen = 0, len(b)
	} else {
		msg.QueryLen, msg.RespLen, msg.RCode = len(b), 0, -1
	}
	if len(a.dns) >= t.cfg.MaxDNSPerFlow {
		a.dnsDrop++
		t.stats.DNSDropped++
		return true
	}
	a.dns = append(a.dns, msg)
	return true
}

// feedDNS splits a TCP stream into 2-byte-length-framed DNS messages. The
// first complete message decides whether the flow is DNS at all; until
// then only lengths a DNS message could have are accepted, so a non-DNS
// stream is rejected without buffering much.
func (t *Table) feedDNS(f *flow, a *appState, isOrig bool, b []byte) {
	fr := &a.dir[dirIdx(isOrig)].dns
	for len(b) > 0 && a.dnsState != dnsNo && !fr.dead {
		if fr.need == 0 {
			fr.hdr[fr.nh] = b[0]
			fr.nh++
			b = b[1:]
			if fr.nh < 2 {
				continue
			}
			l := int(binary.BigEndian.Uint16(fr.hdr[:]))
			fr.nh = 0
			if a.dnsState == dnsUnknown && (l < 12 || l > t.cfg.DissectBytes) {
				a.dnsState = dnsNo
				return
			}
			if l == 0 {
				continue
			}
			fr.need = l
			fr.skip = !t.reserve(l)
			if !fr.skip {
				fr.msg = make([]byte, 0, l)
			}
			continue
		}
		n := min(fr.need, len(b))
		if !fr.skip {
			fr.msg = append(fr.msg, b[:n]...)
		}
		fr.need -= n
		b = b[n:]
		if fr.need > 0 {
			continue
		}
		if fr.skip {
			a.dnsDrop++
			t.stats.DNSDropped++
		} else {
			ok := t.dnsMessage(a, fr.msg)
			t.release(cap(fr.msg))
			fr.msg = nil
			if a.dnsState == dnsUnknown {
				a.dnsState = dnsNo
				if ok {
					a.dnsState = dnsYes
				}
			}
		}
	}
}

// tryTLS parses the ClientHello (orig) or ServerHello (resp) once the
// buffer starts with a TLS handshake record, retrying while the parser
// says the message is cut and more bytes may come.
func (t *Table) tryTLS(a *appState, isOrig bool) {
	i := dirIdx(isOrig)
	d := &a.dir[i]
	if a.tlsState[i] != tlsPending || len(d.buf) == 0 {
		return
	}
	if d.buf[0] != 0x16 {
		a.tlsState[i] = tlsFailed
		return
	}
	var err error
	if isOrig {
		var h *cw.TLS
		if h, err = dissect.ClientHello(d.buf); err == nil && h != nil {
			a.tls = h
		}
	} else {
		a.serverVer, err = dissect.ServerHelloVersion(d.buf)
	}
	switch {
	case err == nil:
		a.tlsState[i] = tlsDone
	case errors.Is(err, dissect.ErrShort) && !d.bufDone:
	default:
		a.tlsState[i] = tlsFailed
	}
}

func (t *Table) maybeAnalyze(f *flow, a *appState) {
	if !a.analyzed && a.dir[0].bufDone && a.dir[1].bufDone {
		t.analyze(f, a)
	}
}

// analyze names the service and parses HTTP requests from the dissection
// buffers, then releases them.
func (t *Table) analyze(f *flow, a *appState) {
	if a.analyzed {
		return
	}
	a.analyzed = true
	if a.otState == otPending && f.proto == 6 {
		t.identifyOT(f, a, true)
	}
	o, r := a.dir[0].buf, a.dir[1].buf
	if f.proto == 6 && len(o) > 0 && o[0] >= 'A' && o[0] <= 'Z' {
		if reqs, err := dissect.HTTPRequests(o, t.cfg.MaxHTTPPerFlow); err == nil || len(reqs) > 0 {
			// Status and response body sizes matter for exfiltration:
			// an upload answered with a tiny 200 is the typical shape.
			if len(r) > 0 {
				_, _ = dissect.FillResponses(reqs, r)
			}
			a.http = reqs
		}
	}
	svc := dissect.Service(cw.ProtoName(f.proto), o, r)
	if svc == "" {
		switch {
		case a.dnsState == dnsYes:
			svc = "dns"
		case a.tls != nil || a.serverVer != "":
			svc = "ssl"
		case len(a.http) > 0:
			svc = "http"
		}
	}
	a.service = svc
	a.names = dissect.HostNames(cw.ProtoName(f.proto), o, r)
	for i := range a.dir {
		d := &a.dir[i]
		t.release(cap(d.buf))
		d.buf = nil
		d.bufDone = true
	}
}

// finishApp completes the Conn with what the payload told and releases
// every buffer the flow held.
func (t *Table) finishApp(f *flow, c *cw.Conn) {
	a := f.app
	if a == nil {
		return
	}
	t.analyze(f, a)
	c.Service = a.service
	if a.ot != nil {
		o := a.ot.OT()
		a.ot.Close()
		a.ot = nil
		// dissect's rules and ours must agree, except that a protocol
		// riding on TLS (AnyDesk) is more specific than "ssl".
		if c.Service == "" || c.Service == "ssl" || c.Service == o.Protocol {
			c.Service = o.Protocol
			c.OT = o
		}
	}
	c.DNS, c.DNSDropped, c.HTTP, c.HostNames = a.dns, a.dnsDrop, a.http, a.names
	switch {
	case a.tls != nil:
		c.TLS = a.tls
		if a.serverVer != "" {
			c.TLS.Version = a.serverVer
		}
	case a.serverVer != "":
		c.TLS = &cw.TLS{Version: a.serverVer}
	}
	for i := range a.dir {
		d := &a.dir[i]
		for _, s := range d.segs {
			t.release(len(s.data))
		}
		d.segs = nil
		t.release(cap(d.dns.msg))
		d.dns.msg = nil
	}
	if a.sink != nil {
		a.sink.Close(c)
	}
	f.app = nil
}
