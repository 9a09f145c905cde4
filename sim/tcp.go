package sim

import (
	"math/rand/v2"
	"slices"
)

// step is one application message: who sends it, what, and how long the
// sender thinks before sending (on top of the time to receive the previous
// message).
type step struct {
	fromResp bool
	data     stream
	gap      int64
}

// script yields a conversation's steps lazily, so a two-hour polling
// session holds one step at a time.
type script func() (step, bool)

// steps turns a fixed list into a script.
func steps(list ...step) script {
	i := 0
	return func() (step, bool) {
		if i >= len(list) {
			return step{}, false
		}
		i++
		return list[i-1], true
	}
}

type connectMode int

const (
	connOK       connectMode = iota
	connNoAnswer             // SYN retransmitted, never answered (Zeek S0)
	connRefused              // answered with RST (Zeek REJ)
)

type closeMode int

const (
	closeOrigFIN closeMode = iota
	closeRespFIN
	closeOrigRST
	closeRespRST
)

const (
	phConnect = iota
	phData
	phClose
	phDone
)

// tcpConv models one TCP connection as seen from the capture point:
// handshake, data in flights that grow like slow start with delayed ACKs
// every second segment, and a FIN or RST close. Sequence and
// acknowledgement numbers follow the bytes actually sent.
type tcpConv struct {
	r        *rand.Rand
	f        *flow
	next     script
	peek     step
	havePeek bool
	connect  connectMode
	close    closeMode
	closeGap int64

	phase    int
	seq      [2]uint32 // next sequence number each side sends: 0 orig, 1 resp
	last     int64     // time of the latest packet emitted
	lastSide int
	cwnd     int

	cur    step
	off    int
	active bool
	flight int64 // start of the next flight of cur
}

// tcp schedules a TCP connection from a to b:bport starting at t.
func (g *gen) tcp(r *rand.Rand, a, b *host, bport uint16, t int64, sc script, cm connectMode, cl closeMode) {
	f := g.newFlow(protoTCP, a, b, a.ephemeral(), bport)
	c := &tcpConv{r: r, f: f, next: sc, connect: cm, close: cl, last: t, cwnd: 10}
	c.seq[0] = r.Uint32()
	c.seq[1] = r.Uint32()
	c.closeGap = jitter(r, 100*usec, 5*msec)
	f.more = c.more
	g.startFlow(f)
}

func (c *tcpConv) host(side int) *host {
	if side == 0 {
		return c.f.a
	}
	return c.f.b
}

// react is how long after the latest packet side can send: a reply needs
// the round trip between the capture point and that side.
func (c *tcpConv) react(side int) int64 {
	if c.lastSide != side {
		return 2*c.host(side).dist + jitter(c.r, 20, 250)
	}
	return jitter(c.r, 5, 60)
}

func (c *tcpConv) emit(ts int64, side int, flags uint8, data stream, off, n int) {
	win := uint16(502) // 64256 bytes with the window scale of 7
	if flags&flSYN != 0 {
		win = 64240
		if side == 1 {
			win = 65160
		}
	}
	c.f.push(pkt{ts: ts, rev: side == 1, flags: flags, win: win,
		seq: c.seq[side], ack: c.seq[1-side], data: data, off: off, n: n})
	if ts > c.last {
		c.last = ts
	}
}

func (c *tcpConv) take() (step, bool) {
	if c.havePeek {
		c.havePeek = false
		return c.peek, true
	}
	return c.next()
}

func (c *tcpConv) lookahead() (step, bool) {
	if !c.havePeek {
		s, ok := c.next()
		if !ok {
			return step{}, false
		}
		c.peek, c.havePeek = s, true
	}
	return c.peek, true
}

func (c *tcpConv) more(f *flow) bool {
	switch c.phase {
	case phConnect:
		c.handshake()
	case phData:
		for !c.active {
			st, ok := c.take()
			if !ok {
				c.phase = phClose
				return c.more(f)
			}
			if st.data == nil || st.data.size() == 0 {
				continue
			}
			c.cur, c.off, c.active = st, 0, true
			side := 0
			if st.fromResp {
				side = 1
			}
			c.flight = c.last + c.react(side) + st.gap
			c.cwnd = 10
		}
		c.sendFlight()
	case phClose:
		c.shutdown()
		c.phase = phDone
	default:
		return false
	}
	slices.SortStableFunc(f.pend, func(x, y pkt) int { return cmpI64(x.ts, y.ts) })
	return true
}

func (c *tcpConv) handshake() {
	a, b := c.f.a, c.f.b
	t := c.last
	c.emit(t, 0, flSYN, nil, 0, 0)
	switch c.connect {
	case connNoAnswer:
		// Retransmissions after the initial RTO of 1 s, doubling.
		c.emit(t+1*second+jitter(c.r, 0, 3*msec), 0, flSYN, nil, 0, 0)
		c.emit(t+3*second+jitter(c.r, 0, 3*msec), 0, flSYN, nil, 0, 0)
		c.phase = phDone
		return
	case connRefused:
		c.seq[0]++
		c.seq[1] = 0
		c.emit(t+2*b.dist+jitter(c.r, 20, 200), 1, flRST|flACK, nil, 0, 0)
		c.phase = phDone
		return
	}
	c.seq[0]++
	t += 2*b.dist + jitter(c.r, 20, 300)
	c.emit(t, 1, flSYN|flACK, nil, 0, 0)
	c.seq[1]++
	t += 2*a.dist + jitter(c.r, 10, 100)
	c.emit(t, 0, flACK, nil, 0, 0)
	c.lastSide = 0
	c.phase = phData
}

// sendFlight sends up to cwnd segments of the current step and the
// receiver's ACKs for them.
func (c *tcpConv) sendFlight() {
	side := 0
	if c.cur.fromResp {
		side = 1
	}
	recv := 1 - side
	rh := c.host(recv)
	total := c.cur.data.size()
	t := c.flight
	// Serialisation at about 100 Mbit/s end to end.
	pace := int64(mss*8/100) + jitter(c.r, 0, 30)

	// The receiver answers straight away (and so piggybacks its ACK) when
	// its next step follows without think time.
	piggy := false
	if nx, ok := c.lookahead(); ok && nx.fromResp == (recv == 1) && nx.gap < 20*msec {
		piggy = true
	}

	unacked := 0
	lastSeg := t
	for k := 0; k < c.cwnd && c.off < total; k++ {
		n := min(mss, total-c.off)
		fl := uint8(flACK)
		final := c.off+n == total
		if final || k == c.cwnd-1 {
			fl |= flPSH
		}
		c.emit(t, side, fl, c.cur.data, c.off, n)
		c.seq[side] += uint32(n)
		c.off += n
		unacked++
		lastSeg = t
		endOfFlight := final || k == c.cwnd-1
		if unacked == 2 || (endOfFlight && !(final && piggy)) {
			d := 2*rh.dist + jitter(c.r, 20, 200)
			if unacked == 1 && final {
				d += jitter(c.r, 1*msec, 40*msec) // delayed ACK timer
			}
			c.emitAck(t+d, recv)
			unacked = 0
		}
		t += pace
	}
	if c.off >= total {
		c.active = false
		if piggy {
			c.lastSide = side
			c.last = max(c.last, lastSeg)
		} else {
			c.lastSide = recv
		}
		return
	}
	c.lastSide = recv
	c.flight = c.last + 2*c.host(side).dist + jitter(c.r, 10, 100)
	c.cwnd = min(c.cwnd*2, 44)
}

// emitAck sends a pure ACK from side; its ack number covers everything the
// other side has sent so far, which holds because ACKs are emitted right
// after the segment they acknowledge.
func (c *tcpConv) emitAck(ts int64, side int) {
	c.f.push(pkt{ts: ts, rev: side == 1, flags: flACK, win: 502,
		seq: c.seq[side], ack: c.seq[1-side]})
	if ts > c.last {
		c.last = ts
	}
}

func (c *tcpConv) shutdown() {
	x := 0
	if c.close == closeRespFIN || c.close == closeRespRST {
		x = 1
	}
	y := 1 - x
	t := c.last + c.react(x) + c.closeGap
	switch c.close {
	case closeOrigRST, closeRespRST:
		c.emit(t, x, flRST|flACK, nil, 0, 0)
		return
	}
	c.emit(t, x, flFIN|flACK, nil, 0, 0)
	c.seq[x]++
	t += 2*c.host(y).dist + jitter(c.r, 20, 300)
	c.emit(t, y, flFIN|flACK, nil, 0, 0)
	c.seq[y]++
	t += 2*c.host(x).dist + jitter(c.r, 10, 100)
	c.emit(t, x, flACK, nil, 0, 0)
}
