package flow

import "github.com/cargowatch/cargowatch/pcap"

// TCP endpoint states, as in Zeek's TCP_Endpoint.
const (
	stInactive uint8 = iota
	stSynSent
	stSynAckSent
	stPartial
	stEstablished
	stClosed
	stReset
)

// tooLargeSeqDelta is Zeek's TOO_LARGE_SEQ_DELTA: SYN/RST sequence jumps
// beyond it are not trusted.
const tooLargeSeqDelta = 1 << 20

// tcpEnd is one direction of a TCP connection. Sequence numbers are kept
// both as the last 32-bit value seen and as a 64-bit offset from the
// initial sequence number, so connections past 4 GiB still count right.
type tcpEnd struct {
	state, prevState uint8
	didClose         bool
	finCnt           uint16

	start   uint32 // ISN (or first seq - 1 for a partial connection)
	last    uint32 // one past the highest sequence sent
	lastRel int64
	ack     uint32 // highest ack received from the peer for this side's data
	ackRel  int64
	finSeq  int64 // relative sequence one past the FIN

	histLastSYN, histLastFIN, histLastRST int64
	rxmit, rxmitThresh                    uint32
	gaps, gapThresh                       uint32

	// contig is the relative sequence up to which this side's data was
	// delivered or declared missing; content gaps are measured from it.
	contig int64
}

// tcpConn holds both ends plus connection-wide history bookkeeping; for
// UDP only histSeen and udpSeen are used.
type tcpConn struct {
	orig, resp tcpEnd
	histSeen   uint32
	udpSeen    uint8 // bit 0: orig sent, bit 1: resp sent (UDP)
	missed     int64
}

// History mask bits; the responder's are shifted left by 16.
const (
	histSYN    = 1 << 2
	histFIN    = 1 << 3
	histRST    = 1 << 4
	histACK    = 1 << 5
	histData   = 1 << 6
	histFinRst = 1 << 7
	histMulti  = 1 << 8
)

func (c *tcpConn) end(orig bool) *tcpEnd {
	if orig {
		return &c.orig
	}
	return &c.resp
}

func seqDelta(a, b uint32) int32 { return int32(a - b) }

func (e *tcpEnd) initStart(seq uint32) {
	e.start = seq
	e.contig = 1
}

func (e *tcpEnd) initLast(seq uint32) {
	e.last = seq
	e.lastRel = int64(seqDelta(seq, e.start))
}

func (e *tcpEnd) initAck(seq uint32) {
	e.ack = seq
	e.ackRel = int64(seqDelta(seq, e.start))
}

// rel maps a 32-bit sequence number to the 64-bit relative space, near
// the last one seen.
func (e *tcpEnd) rel(seq uint32) int64 { return e.lastRel + int64(seqDelta(seq, e.last)) }

func (e *tcpEnd) relAck(seq uint32) int64 { return e.ackRel + int64(seqDelta(seq, e.ack)) }

func (e *tcpEnd) setState(s uint8) {
	e.prevState = e.state
	e.state = s
}

// size is Zeek's TCP_Endpoint::Size: payload bytes in sequence space,
// taking the peer's acks into account for data we did not see.
func (e *tcpEnd) size(peer *tcpEnd) int64 {
	if e.prevState == stSynSent && e.state == stReset && peer.state == stInactive && !(e.ackRel == 0 || e.ackRel == 1) {
		// A half-open connection discovered and aborted: the RST's
		// sequence number says nothing about data.
		return 0
	}
	size := max(e.lastRel, e.ackRel)
	if size < 0 {
		return 0
	}
	if size > 0 {
		size--
	}
	if e.finCnt > 0 && size > 0 {
		size--
	}
	return size
}

// lingering: the connection is over (both closed, a reset, or one side
// closed while the other never spoke), as Zeek's close/expire timers see it.
func (c *tcpConn) lingering() bool {
	o, r := &c.orig, &c.resp
	return o.didClose && r.didClose || o.state == stReset || r.state == stReset ||
		(o.didClose || r.didClose) && (o.state == stInactive || r.state == stInactive)
}

// attempting: SYN sent, no reply yet (Zeek's connection_attempt).
func (c *tcpConn) attempting() bool {
	return (c.orig.state == stSynSent || c.orig.state == stSynAckSent) && c.resp.state == stInactive
}

// isReuse follows Zeek's TCPSessionAdapter::IsReuse: a SYN starts a new
// connection on a finished one, or when its sequence number differs from
// the originator's initial one.
func (c *tcpConn) isReuse(f *flow, p *pcap.Packet) bool {
	if p.TCPFlags&pcap.FlagSYN == 0 {
		return false
	}
	connOrig := &c.orig
	if p.TCPFlags&pcap.FlagACK != 0 {
		if c.orig.state != stInactive {
			return false
		}
		connOrig = &c.resp
	}
	if c.orig.didClose && c.resp.didClose || c.orig.state == stReset || c.resp.state == stReset {
		return true
	}
	// When the responder spoke first, its ACK set the originator's start
	// (init of the peer), so a late SYN with that ISN is not a reuse.
	return p.Seq != connOrig.start
}

// process runs one TCP packet through the endpoint state machine, in the
// order of Zeek's TCPSessionAdapter::Process.
func (c *tcpConn) process(t *Table, f *flow, p *pcap.Packet, isOrig bool) {
	ep, peer := &c.resp, &c.orig
	if isOrig {
		ep, peer = &c.orig, &c.resp
	}
	fl := p.TCPFlags
	syn, fin, rst, ack := fl&pcap.FlagSYN != 0, fl&pcap.FlagFIN != 0, fl&pcap.FlagRST != 0, fl&pcap.FlagACK != 0
	length := p.PayloadLen
	if length < 0 {
		length = 0
	}
	segLen := length
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= length
	}
	endSeq := p.Seq + uint32(segLen)

	c.initEndpoint(ep, syn, p.Seq, endSeq)
	relSeq := ep.rel(p.Seq)
	underflow := relSeq < 0
	c.updateHistory(f, ep, isOrig, syn, fin, rst, ack, relSeq, length)
	if !(c.orig.didClose && c.resp.didClose) {
		f.last = p.TS
	}
	if fin {
		if ep.finCnt < ^uint16(0) {
			ep.finCnt++
		}
		ep.finSeq = relSeq + int64(segLen)
	}
	var relAck int64
	if ack {
		if peer.state == stInactive {
			relAck = 1
			peer.initStart(p.Ack - 1)
			peer.initAck(p.Ack - 1)
			peer.initLast(p.Ack - 1)
		} else {
			relAck = peer.relAck(p.Ack)
			if relAck < 0 {
				relAck = 0
			} else if !rst {
				d := seqDelta(p.Ack, peer.ack)
				if !(p.Ack == 0 && d > tooLargeSeqDelta) && d > 0 {
					peer.ack = p.Ack
					peer.ackRel += int64(d)
				}
			}
		}
	}
	c.updateLastSeq(f, ep, isOrig, endSeq, syn, fin, rst, length)
	doClose := c.updateState(f, ep, peer, isOrig, p, syn, fin, rst, ack, length)
	if ack {
		c.ackReceived(t, f, peer, !isOrig, relAck)
	}
	if length > 0 && !rst && !underflow {
		relData := relSeq
		if syn {
			relData++
		}
		c.dataSent(t, f, ep, isOrig, relData, length, p.Payload)
	}
	if doClose {
		ep.didClose = true
	}
}

func (c *tcpConn) initEndpoint(ep *tcpEnd, syn bool, seq, endSeq uint32) {
	switch ep.state {
	case stInactive:
		if syn {
			ep.initStart(seq)
			ep.initAck(seq)
			ep.initLast(endSeq)
		} else {
			// Partial connection: number as though a SYN had been seen,
			// and make the first packet count as new.
			ep.initStart(seq - 1)
			ep.initAck(seq - 1)
			ep.initLast(seq)
		}
	case stSynSent, stSynAckSent:
		if syn && seq != ep.start {
			ep.initStart(seq)
			ep.initAck(seq)
			ep.initLast(endSeq)
		}
	case stEstablished, stPartial:
		if syn {
			ep.initStart(seq)
			ep.initAck(seq)
			ep.initLast(endSeq)
		}
	case stReset:
		if syn && ep.prevState == stInactive {
			ep.initStart(seq)
			ep.initAck(seq)
			ep.initLast(endSeq)
		}
	}
}

func (c *tcpConn) updateLastSeq(f *flow, ep *tcpEnd, isOrig bool, endSeq uint32, syn, fin, rst bool, length int) {
	d := seqDelta(endSeq, ep.last)
	switch {
	case (syn || rst) && (d > tooLargeSeqDelta || d < -tooLargeSeqDelta):
	case fin && ep.last == ep.start+1:
		// Only the SYN and now the FIN: trust the FIN even across 2 GiB.
		ep.lastRel += int64(endSeq - ep.last)
		ep.last = endSeq
	case ep.state == stReset:
	case d > 0:
		ep.lastRel += int64(d)
		ep.last = endSeq
	case length > 0:
		ep.rxmit++
		c.scaled(f, isOrig, 'T', &ep.rxmit, &ep.rxmitThresh)
	}
}

// scaled adds a letter at the 1st, 10th, 100th ... occurrence.
func (c *tcpConn) scaled(f *flow, isOrig bool, code byte, n, thresh *uint32) {
	if *thresh == 0 {
		*thresh = 1
	}
	if *n == *thresh {
		if !isOrig {
			code += 'a' - 'A'
		}
		f.addHistory(code)
		if *thresh < 1e9 {
			*thresh *= 10
		}
	}
}

// checkHistory adds code the first time mask is seen and reports whether
// it had been seen before (Zeek's Connection::CheckHistory).
func (c *tcpConn) checkHistory(f *flow, isOrig bool, mask uint32, code byte) bool {
	if !isOrig {
		mask <<= 16
		code += 'a' - 'A'
	}
	if c.histSeen&mask != 0 {
		return true
	}
	c.histSeen |= mask
	f.addHistory(code)
	return false
}

func (c *tcpConn) updateHistory(f *flow, ep *tcpEnd, isOrig, syn, fin, rst, ack bool, relSeq int64, length int) {
	bits := 0
	for _, b := range [...]bool{syn, fin, rst} {
		if b {
			bits++
		}
	}
	lower := func(b byte) byte {
		if isOrig {
			return b
		}
		return b + 'a' - 'A'
	}
	switch {
	case bits > 1:
		if fin && rst {
			c.checkHistory(f, isOrig, histFinRst, 'I')
		} else {
			c.checkHistory(f, isOrig, histMulti, 'Q')
		}
	case syn:
		code := byte('S')
		if ack {
			code = 'H'
		}
		if c.checkHistory(f, isOrig, histSYN, code) && relSeq != ep.histLastSYN {
			f.addHistory(lower(code))
		}
		ep.histLastSYN = relSeq
	case fin:
		if c.checkHistory(f, isOrig, histFIN, 'F') && relSeq+int64(length) != ep.histLastFIN {
			f.addHistory(lower('F'))
		}
		ep.histLastFIN = relSeq + int64(length)
	case rst:
		if c.checkHistory(f, isOrig, histRST, 'R') && relSeq != ep.histLastRST {
			f.addHistory(lower('R'))
		}
		ep.histLastRST = relSeq
	case length > 0:
		c.checkHistory(f, isOrig, histData, 'D')
	case ack:
		c.checkHistory(f, isOrig, histACK, 'A')
	}
}

// updateState is Zeek's UpdateStateMachine; it reports whether the
// packet closes this side.
func (c *tcpConn) updateState(f *flow, ep, peer *tcpEnd, isOrig bool, p *pcap.Packet, syn, fin, rst, ack bool, length int) bool {
	doClose := false
	switch ep.state {
	case stInactive:
		if syn {
			if isOrig {
				switch {
				case ack:
					ep.setState(stSynAckSent)
				case peer.state == stEstablished:
					// The SYN-ACK came first (we flipped on it): this
					// late SYN completes the handshake.
					ep.setState(stEstablished)
				default:
					ep.setState(stSynSent)
				}
			} else {
				if peer.state == stSynSent {
					peer.setState(stEstablished)
				}
				ep.setState(stEstablished)
			}
		}
		if fin {
			ep.setState(stClosed)
			doClose = true
		}
		if rst {
			ep.setState(stReset)
			doClose = true
		}
		if ep.state == stInactive {
			switch {
			case !isOrig && length == 0 && c.orig.state == stSynSent:
				// An ACK of the SYN before the SYN-ACK: not partial.
			case ack && peer.state == stEstablished:
				// Missed the SYN but saw the SYN-ACK: established.
				ep.setState(stEstablished)
			default:
				ep.setState(stPartial)
			}
		}
	case stSynSent, stSynAckSent:
		if fin {
			ep.setState(stClosed)
			doClose = true
		}
		if rst {
			ep.setState(stReset)
			doClose = true
		}
	case stEstablished, stPartial:
		if syn && ep.state == stPartial && peer.state == stInactive && !ack {
			ep.setState(stSynSent)
		}
		if fin && !rst {
			ep.setState(stClosed)
			if peer.state == stReset && peer.prevState == stClosed {
				// FIN then RST from the peer was a normal close.
				peer.setState(stClosed)
			}
			doClose = true
		}
		if rst {
			ep.setState(stReset)
			doClose = true
		}
	case stClosed:
		if rst && peer.state != stClosed {
			ep.setState(stReset)
			doClose = true
		}
	}
	return doClose
}

// connState is Zeek's conn_state() for TCP.
func (c *tcpConn) connState(f *flow) string {
	os, rs := c.orig.state, c.resp.state
	oInactive := os == stInactive || os == stPartial
	rInactive := rs == stInactive || rs == stPartial
	switch {
	case rs == stReset:
		if os == stSynSent || os == stSynAckSent ||
			os == stReset && c.orig.size(&c.resp) == 0 && c.resp.size(&c.orig) == 0 {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == stReset:
		if rInactive {
			if matchRSTOS0(f.history) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == stClosed && os == stClosed:
		return "SF"
	case os == stClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == stClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == stSynSent && rs == stInactive:
		return "S0"
	case os == stEstablished && rs == stEstablished:
		return "S1"
	}
	return "OTH"
}

// matchRSTOS0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ against the whole history.
func matchRSTOS0(h []byte) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for _, b := range h[1:] {
		switch b {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
