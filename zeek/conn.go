package zeek

import (
	"errors"
	"strconv"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

var errNoAddr = errors.New("id.orig_h and id.resp_h are required")

// converter turns records into Conns; its interner makes the enum-like
// fields free after the first few lines.
type converter struct {
	in   *interner
	slab connSlab
}

func newConverter() *converter { return &converter{in: newInterner(4096)} }

// connSlabSize is how many Conns are allocated together (46 KB):
// allocated one by one they took an eighth of a TSV line's time, and
// the garbage collector sweeps one span instead of a dozen. A slab lives
// while any of its Conns does; Conns are taken in file order and
// downstream keeps them for a batch or two, so few slabs outlive their
// batch (the reorder window moves the Conns it holds long, see reorder).
const connSlabSize = 64

// connSlab hands out fresh Conns; a Conn is never handed out twice.
type connSlab struct {
	buf    []cw.Conn
	serial int64 // slabs allocated
}

// peek returns the Conn next() will hand out, zero, to be filled in place.
func (s *connSlab) peek() *cw.Conn {
	if len(s.buf) == 0 {
		s.buf = make([]cw.Conn, connSlabSize)
		s.serial++
	}
	return &s.buf[0]
}

func (s *connSlab) next() *cw.Conn {
	c := s.peek()
	s.buf = s.buf[1:]
	return c
}

// conn builds a Conn from a conn.log record. Required: ts and both
// addresses; every number that is present must parse.
func (cv *converter) conn(r *record) (*cw.Conn, error) {
	c := cv.slab.peek()
	if err := cv.fill(r, c); err != nil {
		*c = cw.Conn{}
		return nil, err
	}
	return cv.slab.next(), nil
}

// fill sets the conn.log fields of c, which must be zero, from r; on
// error c is left partly set.
func (cv *converter) fill(r *record, c *cw.Conn) error {
	ts, err := r.time(fTS)
	if err != nil {
		return err
	}
	c.TS = ts
	if c.Orig.Addr, err = r.addr(fOrigH); err != nil {
		return err
	}
	if c.Resp.Addr, err = r.addr(fRespH); err != nil {
		return err
	}
	if !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() {
		return errNoAddr
	}
	if c.Orig.Port, err = r.port(fOrigP); err != nil {
		return err
	}
	if c.Resp.Port, err = r.port(fRespP); err != nil {
		return err
	}
	c.UID = r.str(fUID)
	c.Proto = cv.proto(r, c)
	c.Service = cv.serviceOf(r.strIn(fService, cv.in))
	if c.Duration, err = r.interval(fDuration); err != nil {
		return err
	}
	nums := [...]struct {
		slot int
		dst  *int64
	}{
		{fOrigBytes, &c.OrigBytes}, {fRespBytes, &c.RespBytes},
		{fMissedBytes, &c.MissedBytes},
		{fOrigPkts, &c.OrigPkts}, {fOrigIPBytes, &c.OrigIPBytes},
		{fRespPkts, &c.RespPkts}, {fRespIPBytes, &c.RespIPBytes},
	}
	for _, n := range nums {
		if *n.dst, err = r.int64(n.slot); err != nil {
			return err
		}
	}
	c.State = r.strIn(fConnState, cv.in)
	c.History = r.strIn(fHistory, cv.in)
	c.Orig.MAC = r.strIn(fOrigL2, cv.in)
	c.Resp.MAC = r.strIn(fRespL2, cv.in)
	if r.has(fVLAN) {
		v, err := r.uint(fVLAN)
		if err != nil || v > 4095 {
			return r.errf(fVLAN, "not a VLAN id")
		}
		c.VLAN = uint16(v)
	}
	return nil
}

// proto names the transport as the flow table does: ICMP over IPv6 is
// icmp6, and Zeek's unknown_transport becomes the IP protocol number
// when the log has ip_proto.
func (cv *converter) proto(r *record, c *cw.Conn) string {
	p := r.strIn(fProto, cv.in)
	n, err := r.uint(fIPProto)
	return protoOf(p, c, n, err == nil && r.has(fIPProto))
}

// protoOf is proto for a value p already read; ipProto counts only when
// ipOK (the log has ip_proto and it reads as a number).
func protoOf(p string, c *cw.Conn, ipProto uint64, ipOK bool) string {
	switch p {
	case "icmp":
		if c.Orig.Addr.Is6() && !c.Orig.Addr.Is4In6() {
			return "icmp6"
		}
	case "unknown_transport", "":
		if ipOK && ipProto < 256 {
			return strconv.Itoa(int(ipProto))
		}
	}
	return p
}

// service keeps Zeek's value ("dns", "ssl,http") but drops the transport
// suffix Zeek puts on some analyzers (dnp3_tcp, dnp3_udp), so that names
// match what the flow table's payload identification says.
func (cv *converter) serviceOf(s string) string {
	if strings.HasSuffix(s, "_tcp") || strings.HasSuffix(s, "_udp") {
		return cv.in.get([]byte(s[:len(s)-4]))
	}
	return s
}

// tunnelParents returns the first parent uid of a tunnelled conn.
func tunnelParent(r *record) string {
	var first string
	r.each(fTunnelParents, func(b []byte) {
		if first == "" && len(b) > 0 {
			first = string(b)
		}
	})
	return first
}
