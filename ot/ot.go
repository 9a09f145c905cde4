// Package ot identifies industrial (OT) and remote-access protocols from
// the payload of a flow and follows each identified flow with a streaming
// parser that counts the operations it carries: Modbus/TCP (with
// Schneider's UMAS), S7comm and S7comm-plus, EtherNet/IP with CIP (and CIP
// I/O over UDP), DNP3, BACnet/IP, IEC 60870-5-104, OPC UA binary, MQTT,
// and RDP, VNC, SSH, TeamViewer and AnyDesk. PROFINET DCP, a layer-2
// protocol, has its own frame parser (ParseDCP).
//
// # Identification
//
// Identify looks at the first bytes of each direction, as
// dissect.Service does, never at ports alone: every rule asks for more
// than one coincidence (a magic or version, a length field that frames
// the bytes exactly, a function code the protocol defines, a second PDU
// that frames as well, a checksum). A well-known port is only ever a
// supporting fact, used when a flow carried a single PDU that passed
// every structural check.
//
// # Streaming
//
// A Session follows one identified flow: TCP bytes arrive in order
// through Stream (a content gap stops that direction, since framing is
// lost), UDP payloads through Datagram. PDUs are framed from their length
// fields and parsed in place when a segment holds them whole; a PDU split
// across segments is collected in a per-direction frame buffer of at most
// FrameCap bytes (longer PDUs are parsed on their first FrameCap bytes and
// the rest skipped, so framing is never lost). The buffer is taken from a
// Budget (the flow table's byte accounting) and released by Close.
//
// # Bounds
//
// Per flow: at most MaxPDUs PDUs and MaxBytes payload bytes are parsed
// (then the Session stops looking), at most MaxFunctions distinct
// operation names are kept (further ones are counted under "other",
// except that up to 16 more names of writes and program transfers are
// kept so that a function-code scan cannot hide them), one
// frame buffer of FrameCap bytes per direction, a 24-byte header buffer
// per direction, and a Device string of at most 128 bytes.
package ot

import (
	"strconv"
	"strings"
	"unicode/utf8"

	cw "github.com/cargowatch/cargowatch"
)

// Bounds of one Session; see the package comment.
const (
	MaxPDUs      = 1 << 16
	MaxBytes     = 16 << 20
	MaxFunctions = 32
	// maxExtraFunctions more names are kept for writes and program
	// transfers once MaxFunctions is reached.
	maxExtraFunctions = 16
	FrameCap          = 1024
	maxDevice         = 128
	// identFrames is how many PDUs per direction identification walks.
	identFrames = 8
)

// Protocol names, as in cw.OT.Protocol and cw.Conn.Service.
const (
	Modbus     = "modbus"
	S7comm     = "s7comm"
	S7commPlus = "s7comm-plus"
	ENIP       = "enip"
	CIP        = "cip"
	DNP3       = "dnp3"
	BACnet     = "bacnet"
	IEC104     = "iec104"
	OPCUA      = "opcua"
	DCP        = "profinet-dcp"
	MQTT       = "mqtt"
	RDP        = "rdp"
	VNC        = "vnc"
	SSH        = "ssh"
	TeamViewer = "teamviewer"
	AnyDesk    = "anydesk"
)

// IsOT reports whether name is an industrial protocol (as opposed to a
// remote-access one, or anything else).
func IsOT(name string) bool {
	switch name {
	case Modbus, S7comm, S7commPlus, ENIP, CIP, DNP3, BACnet, IEC104, OPCUA, DCP, MQTT:
		return true
	}
	return false
}

// Budget accounts the bytes a Session holds (the flow table's
// reserve/release). Reserve returns false when the bytes may not be held.
type Budget interface {
	Reserve(n int) bool
	Release(n int)
}

// verdict of one identification rule.
type verdict uint8

const (
	vNo verdict = iota
	vMaybe
	vYes
)

// proto is one protocol's parser. TCP protocols with length-framed PDUs
// give frameLen; the others see each segment or datagram whole.
type proto struct {
	name string
	// hdr is how many bytes frameLen needs before it can answer.
	hdr int
	// frameLen returns the length of the PDU that starts b (len(b) >=
	// hdr), 0 when more header bytes are needed, -1 when b cannot start
	// one.
	frameLen func(b []byte) int
	// pdu parses one PDU (cut when the frame buffer held only its first
	// FrameCap bytes); it returns false when the bytes are not a valid
	// PDU of the protocol.
	pdu func(s *Session, fromOrig bool, b []byte, cut bool) bool
	// raw parsers take the bytes as they come (no framing).
	raw bool
}

var protos = map[string]*proto{}

func register(p *proto) *proto { protos[p.name] = p; return p }

// Session follows one flow of an identified protocol. It is not safe for
// concurrent use.
type Session struct {
	p      *proto
	budget Budget
	dir    [2]dirState
	pdus   int
	bytes  int64

	fn           map[string]int
	extra        int // names kept past MaxFunctions for writes and programs
	writes, prog int
	device       string
	// vendor and model, when a protocol reports them apart (BACnet
	// properties), make the Device when nothing said it whole.
	vendor, model  string
	reqFrom        [2]int    // requests seen from orig (0) and resp (1)
	serverHint     [2]int    // PDUs only a server sends (announcements, exceptions)
	state          [2]uint32 // per-direction parser state (first message seen, chunking)
	done           bool
	truncatedPDUs  int
	unbufferedPDUs int
}

type dirState struct {
	hdr  [24]byte // a split header; the longest is EtherNet/IP's
	nh   int
	buf  []byte // partial PDU; cap FrameCap once reserved
	want int    // length of the PDU being collected
	skip int    // bytes of the current PDU still to pass over
	dead bool
	// held: the frame buffer is reserved from the budget.
	held bool
}

// NewSession starts following a flow of protocol name (one of the
// constants); nil when the name is not one this package parses.
func NewSession(name string, b Budget) *Session {
	p := protos[name]
	if p == nil {
		return nil
	}
	return &Session{p: p, budget: b}
}

// Protocol is the protocol the Session follows.
func (s *Session) Protocol() string { return s.p.name }

func dirIdx(fromOrig bool) int {
	if fromOrig {
		return 0
	}
	return 1
}

func (s *Session) stopped(n int) bool {
	if s.done {
		return true
	}
	s.bytes += int64(n)
	if s.pdus >= MaxPDUs || s.bytes > MaxBytes {
		s.done = true
		s.Close()
	}
	return s.done
}

// Stream feeds in-order TCP payload of one direction.
func (s *Session) Stream(fromOrig bool, b []byte) {
	d := &s.dir[dirIdx(fromOrig)]
	if d.dead || len(b) == 0 || s.stopped(len(b)) {
		return
	}
	if s.p.raw {
		if !s.p.pdu(s, fromOrig, b, false) {
			d.dead = true
		}
		return
	}
	for len(b) > 0 && !d.dead && !s.done {
		if d.skip > 0 {
			n := min(d.skip, len(b))
			d.skip -= n
			b = b[n:]
			continue
		}
		if d.want > 0 {
			// Collecting a split PDU in the frame buffer.
			n := min(len(b), min(d.want, FrameCap)-len(d.buf))
			d.buf = append(d.buf, b[:n]...)
			b = b[n:]
			if len(d.buf) == min(d.want, FrameCap) {
				s.frame(d, fromOrig, d.buf, d.want)
				d.skip = d.want - len(d.buf)
				d.buf = d.buf[:0]
				d.want = 0
			}
			continue
		}
		if d.nh > 0 {
			// Completing a split header.
			n := min(len(b), len(d.hdr)-d.nh)
			if d.nh < s.p.hdr {
				n = min(n, s.p.hdr-d.nh)
			} else {
				n = min(n, 1)
			}
			copy(d.hdr[d.nh:], b[:n])
			d.nh += n
			b = b[n:]
			if d.nh < s.p.hdr {
				continue
			}
			w := s.p.frameLen(d.hdr[:d.nh])
			switch {
			case w < 0 || w == 0 && d.nh == len(d.hdr):
				d.dead = true
			case w > 0:
				got := d.nh
				d.nh = 0
				if w <= got {
					// Cannot happen with sane frameLen; the header is the PDU.
					s.frame(d, fromOrig, d.hdr[:w], w)
					continue
				}
				if s.hold(d) {
					d.buf = append(d.buf[:0], d.hdr[:got]...)
					d.want = w
				} else {
					s.unbufferedPDUs++
					d.skip = w - got
				}
			}
			continue
		}
		if len(b) < s.p.hdr {
			d.nh = copy(d.hdr[:], b)
			return
		}
		w := s.p.frameLen(b)
		switch {
		case w < 0:
			d.dead = true
			return
		case w == 0:
			if len(b) >= len(d.hdr) {
				d.dead = true
				return
			}
			d.nh = copy(d.hdr[:], b)
			return
		case w <= len(b):
			s.frame(d, fromOrig, b[:w], w)
			b = b[w:]
		case len(b) >= FrameCap:
			// Longer than the frame buffer anyway: parse what is here.
			s.frame(d, fromOrig, b[:FrameCap], w)
			d.skip = w - len(b)
			b = nil
		case s.hold(d):
			d.buf = append(d.buf[:0], b...)
			d.want = w
			b = nil
		default:
			s.unbufferedPDUs++
			d.skip = w - len(b)
			b = nil
		}
	}
}

// hold makes sure the direction has its frame buffer.
func (s *Session) hold(d *dirState) bool {
	if d.held {
		return true
	}
	if s.budget != nil && !s.budget.Reserve(FrameCap) {
		return false
	}
	d.held = true
	d.buf = make([]byte, 0, FrameCap)
	return true
}

func (s *Session) frame(d *dirState, fromOrig bool, b []byte, full int) {
	cut := full > len(b)
	if cut {
		s.truncatedPDUs++
	}
	s.pdus++
	if !s.p.pdu(s, fromOrig, b, cut) {
		// A PDU that does not parse means the framing is wrong: stop
		// rather than count garbage.
		d.dead = true
	}
}

// Wants reports whether the Session still parses this direction, so
// that the caller need not keep bytes for it otherwise.
func (s *Session) Wants(fromOrig bool) bool {
	return !s.done && !s.dir[dirIdx(fromOrig)].dead
}

// Gap tells the Session that bytes of one direction were lost: its
// framing is gone, so that direction is no longer parsed.
func (s *Session) Gap(fromOrig bool) {
	d := &s.dir[dirIdx(fromOrig)]
	d.dead = true
}

// Datagram feeds one UDP payload.
func (s *Session) Datagram(fromOrig bool, b []byte) {
	if len(b) == 0 || s.stopped(len(b)) {
		return
	}
	if s.p.raw || s.p.frameLen == nil {
		s.pdus++
		s.p.pdu(s, fromOrig, b, false)
		return
	}
	// Framed protocols may carry several PDUs per datagram.
	for len(b) >= s.p.hdr {
		w := s.p.frameLen(b)
		if w <= 0 {
			return
		}
		n := min(w, len(b))
		s.pdus++
		if !s.p.pdu(s, fromOrig, b[:n], n < w) {
			return
		}
		b = b[n:]
	}
}

// Close releases the frame buffers; the Session keeps its counts.
func (s *Session) Close() {
	for i := range s.dir {
		d := &s.dir[i]
		if d.held {
			if s.budget != nil {
				s.budget.Release(FrameCap)
			}
			d.held = false
		}
		d.buf = nil
		d.want = 0
	}
}

// Held is the bytes the Session holds in frame buffers.
func (s *Session) Held() int {
	n := 0
	for i := range s.dir {
		if s.dir[i].held {
			n += FrameCap
		}
	}
	return n
}

// OT returns what the Session found. It may be called more than once.
func (s *Session) OT() *cw.OT {
	if s.device == "" && (s.vendor != "" || s.model != "") {
		s.setDevice(s.vendor, s.model)
	}
	o := &cw.OT{Protocol: s.p.name, Writes: s.writes, Program: s.prog, Device: s.device}
	if len(s.fn) > 0 {
		o.Functions = make(map[string]int, len(s.fn))
		for k, v := range s.fn {
			o.Functions[k] = v
		}
	}
	// The side that sends requests is the client; announcements and
	// exception replies come from the server.
	origServer := s.reqFrom[1] + s.serverHint[0]
	respServer := s.reqFrom[0] + s.serverHint[1]
	o.ServerIsOrig = origServer > respServer
	return o
}

// op counts one operation by name; write and program say whether it
// changes state or transfers a program.
func (s *Session) op(name string, write, program bool) {
	if s.fn == nil {
		s.fn = make(map[string]int, 8)
	}
	if _, ok := s.fn[name]; !ok && len(s.fn) >= MaxFunctions+s.extra {
		// A scan of every function code must not hide a write or a
		// program transfer under "other": those get extra room.
		if (write || program) && s.extra < maxExtraFunctions {
			s.extra++
		} else {
			name = "other"
		}
	}
	s.fn[name]++
	if write {
		s.writes++
	}
	if program {
		s.prog++
	}
}

// request records which side asked.
func (s *Session) request(fromOrig bool) { s.reqFrom[dirIdx(fromOrig)]++ }

// serverSide records a PDU only a server (device) sends.
func (s *Session) serverSide(fromOrig bool) { s.serverHint[dirIdx(fromOrig)]++ }

// setDevice keeps the first identification string seen, cleaned to
// printable text and bounded.
func (s *Session) setDevice(parts ...string) {
	if s.device != "" {
		return
	}
	var b strings.Builder
	for _, p := range parts {
		p = printable(p)
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	d := b.String()
	if len(d) > maxDevice {
		d = d[:maxDevice]
		for !utf8.ValidString(d) {
			d = d[:len(d)-1]
		}
	}
	s.device = d
}

// printable keeps the printable ASCII of s, trimmed, with runs of spaces
// folded: device strings come from untrusted bytes.
func printable(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = ' '
		}
		if c == ' ' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unknown(n int) string { return "unknown-" + strconv.Itoa(n) }

// Identify names the protocol of a flow from the first bytes of each
// direction (transport "tcp" or "udp"; for UDP, the first datagram of
// each). done is false while more bytes could still decide; final says no
// more will come. Ports only support a verdict that the payload already
// makes likely.
func Identify(transport string, orig, resp []byte, origPort, respPort uint16, final bool) (name string, done bool) {
	pending := false
	for _, r := range rules {
		if r.transport != transport {
			continue
		}
		switch r.check(orig, resp, origPort, respPort, final) {
		case vYes:
			return r.name, true
		case vMaybe:
			pending = true
		}
	}
	if pending && !final {
		return "", false
	}
	return "", true
}

type rule struct {
	name      string
	transport string
	check     func(orig, resp []byte, op, rp uint16, final bool) verdict
}

// rules are tried in order; the first yes wins. Remote-access rules come
// after the OT ones because RDP and S7 share TPKT/COTP.
var rules []rule

func addRule(name, transport string, check func(orig, resp []byte, op, rp uint16, final bool) verdict) {
	rules = append(rules, rule{name, transport, check})
}

// framedCheck is the identification rule shared by length-framed TCP
// protocols: every PDU in the first bytes of each direction must frame
// and validate; two valid PDUs (or one that fills a final one-PDU flow on
// a well-known port) identify the protocol.
func framedCheck(p *proto, valid func(b []byte, fromOrig bool) bool, ports ...uint16) func(orig, resp []byte, op, rp uint16, final bool) verdict {
	return func(orig, resp []byte, op, rp uint16, final bool) verdict {
		total, incomplete := 0, false
		for i, b := range [2][]byte{orig, resp} {
			n, ok, more := walk(p, valid, b, i == 0)
			if !ok {
				return vNo
			}
			total += n
			incomplete = incomplete || more
		}
		switch {
		case total >= 2:
			return vYes
		case total == 1 && final && !incomplete && portIn(op, rp, ports):
			return vYes
		case final:
			return vNo
		}
		return vMaybe
	}
}

// walk frames b: n valid PDUs, ok false when one did not frame or
// validate, more when b ends inside a PDU.
func walk(p *proto, valid func(b []byte, fromOrig bool) bool, b []byte, fromOrig bool) (n int, ok, more bool) {
	for len(b) > 0 && n < identFrames {
		if len(b) < p.hdr {
			return n, true, true
		}
		w := p.frameLen(b)
		switch {
		case w < 0:
			return n, false, false
		case w == 0:
			if len(b) >= 16 {
				return n, false, false
			}
			return n, true, true
		case w > len(b):
			// Validate what is there when it holds a whole header.
			if !valid(b, fromOrig) {
				return n, false, false
			}
			return n, true, true
		}
		if !valid(b[:w], fromOrig) {
			return n, false, false
		}
		n++
		b = b[w:]
	}
	return n, true, false
}

func portIn(op, rp uint16, ports []uint16) bool {
	for _, p := range ports {
		if op == p || rp == p {
			return true
		}
	}
	return false
}

func le16(b []byte) int { return int(b[0]) | int(b[1])<<8 }
func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
