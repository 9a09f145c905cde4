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
	in *interner
}

func newConverter() *converter { return &converter{in: newInterner(4096)} }

// conn builds a Conn from a conn.log record. Required: ts and both
// addresses; every number that is present must parse.
func (cv *converter) conn(r *record) (*cw.Conn, error) {
	ts, err := r.time(fTS)
	if err != nil {
		return nil, err
	}
	c := &cw.Conn{TS: ts}
	if c.Orig.Addr, err = r.addr(fOrigH); err != nil {
		return nil, err
	}
	if c.Resp.Addr, err = r.addr(fRespH); err != nil {
		return nil, err
	}
	if !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() {
		return nil, errNoAddr
	}
	if c.Orig.Port, err = r.port(fOrigP); err != nil {
		return nil, err
	}
	if c.Resp.Port, err = r.port(fRespP); err != nil {
		return nil, err
	}
	c.UID = r.str(fUID)
	c.Proto = cv.proto(r, c)
	c.Service = cv.service(r)
	if c.Duration, err = r.interval(fDuration); err != nil {
		return nil, err
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
			return nil, err
		}
	}
	c.State = r.strIn(fConnState, cv.in)
	c.History = r.strIn(fHistory, cv.in)
	c.Orig.MAC = r.strIn(fOrigL2, cv.in)
	c.Resp.MAC = r.strIn(fRespL2, cv.in)
	if r.has(fVLAN) {
		v, err := r.uint(fVLAN)
		if err != nil || v > 4095 {
			return nil, r.errf(fVLAN, "not a VLAN id")
		}
		c.VLAN = uint16(v)
	}
	return c, nil
}

// proto names the transport as the flow table does: ICMP over IPv6 is
// icmp6, and Zeek's unknown_transport becomes the IP protocol number
// when the log has ip_proto.
func (cv *converter) proto(r *record, c *cw.Conn) string {
	p := r.strIn(fProto, cv.in)
	switch p {
	case "icmp":
		if c.Orig.Addr.Is6() && !c.Orig.Addr.Is4In6() {
			return "icmp6"
		}
	case "unknown_transport", "":
		if n, err := r.uint(fIPProto); err == nil && r.has(fIPProto) && n < 256 {
			return strconv.Itoa(int(n))
		}
	}
	return p
}

// service keeps Zeek's value ("dns", "ssl,http") but drops the transport
// suffix Zeek puts on some analyzers (dnp3_tcp, dnp3_udp), so that names
// match what the flow table's payload identification says.
func (cv *converter) service(r *record) string {
	s := r.strIn(fService, cv.in)
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
