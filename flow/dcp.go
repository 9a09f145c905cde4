package flow

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/ot"
	"github.com/cargowatch/cargowatch/pcap"
)

// PROFINET DCP has no IP layer, so its frames cannot share the 5-tuple
// flow table: they are grouped into exchanges keyed by (originator MAC,
// responder MAC, Xid), one Conn each, with Proto "profinet" and Service
// "profinet-dcp".
//
// Which side is which follows the protocol, not the first frame: the
// requester (an IO controller or engineering tool) is the originator and
// the device the responder. An Identify request goes to the multicast
// 01:0e:cf:00:00:00 and is a Conn of its own (responder MAC multicast, no
// address); each device's unicast response, sent to the requester, makes
// a Conn with the requester as originator and the device as responder,
// so every device is one Conn whatever the number that answered. Get and
// Set requests and their responses are unicast between the same two MACs
// and share a Conn. A Hello is a device announcing itself to
// 01:0e:cf:00:00:01: the device is the originator (OT.ServerIsOrig).
//
// The device's endpoint takes the IPv4 address from the IP block of its
// messages (0.0.0.0, an unconfigured device, counts as none); the
// requester's address is never in DCP, so it stays the invalid
// netip.Addr, as does the device's when no IP block was sent.

// maxDCPExchanges caps the exchanges held at once; past it the least
// recently active is emitted early (DCPStats.Evicted). An exchange costs
// about 850 bytes with its map entry, function counts, device string and
// name (measured): about 3.5 MB at the cap.
const maxDCPExchanges = 4096

// maxDCPNames bounds the host names one exchange reports; a device sends
// one name, so more means a forged flood.
const maxDCPNames = 4

// maxStationName is the longest NameOfStation IEC 61158-6-10 allows.
const maxStationName = 240

// DCPStats counts the PROFINET frames the table saw. DCP Conns are not
// counted in the IP flow counters (FlowsCreated, FlowsEmitted, ...).
type DCPStats struct {
	Frames    int64 // DCP frames accounted to an exchange
	Malformed int64 // DCP frames that did not parse (partly parsed ones are still accounted)
	Other     int64 // other PROFINET frames: cyclic real-time data, alarms (no Conn)
	Exchanges int64 // exchanges started
	Emitted   int64 // DCP Conns emitted
	Evicted   int64 // emitted early because maxDCPExchanges were held
	TimedOut  int64 // emitted after UDPTimeout idle
}

type dcpKey struct {
	orig, resp [6]byte
	xid        uint32
}

type dcpExchange struct {
	k       dcpKey
	counter uint64
	input   string
	hasMAC  bool
	vlan    uint16
	tunnel  string

	first, last time.Time

	origAddr, respAddr       netip.Addr
	origPkts, respPkts       int64
	origBytes, respBytes     int64 // DCP PDU bytes (FrameID to the end of the data)
	origIPBytes, respIPBytes int64 // frame payload after the EtherType, padding included

	functions    map[string]int
	requested    uint8 // dcpServiceBit of the requests seen
	answered     uint8 // of the services counted from a response alone
	writes       int
	device       string
	deviceIsOrig bool // a Hello: the announcing device is the originator
	names        []cw.HostName

	prev, next *dcpExchange
}

type dcpTable struct {
	max        int
	m          map[dcpKey]*dcpExchange
	head, tail *dcpExchange // least to most recently active
}

func (d *dcpTable) pushBack(e *dcpExchange) {
	e.prev, e.next = d.tail, nil
	if d.tail != nil {
		d.tail.next = e
	} else {
		d.head = e
	}
	d.tail = e
}

func (d *dcpTable) remove(e *dcpExchange) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		d.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		d.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// addL2 accounts a layer-2 frame (pcap.Packet.EtherType set). Only
// PROFINET is handed over by the reader today.
func (t *Table) addL2(p *pcap.Packet) {
	if p.EtherType != pcap.EtherTypePROFINET {
		return
	}
	m, err := ot.ParseDCP(p.Payload)
	switch {
	case errors.Is(err, ot.ErrNotDCP):
		t.stats.DCP.Other++
		return
	case err != nil:
		t.stats.DCP.Malformed++
		// Not an input error: one odd frame among many says nothing of
		// the capture, so it is counted and logged for who looks.
		slog.Debug("flow: profinet dcp frame", "input", p.Input, "ts", p.TS, "src", macString(p.SrcMAC), "err", err)
		if m == nil {
			return
		}
	}
	t.stats.DCP.Frames++
	t.dcpMessage(p, m)
}

func (t *Table) dcpMessage(p *pcap.Packet, m *ot.DCPMessage) {
	d := t.dcp
	if d == nil {
		d = &dcpTable{max: maxDCPExchanges, m: make(map[dcpKey]*dcpExchange)}
		t.dcp = d
	}
	hello := m.Service == "hello"
	// fromOrig: the sender is the originator. Responses come from the
	// device, the responder; everything else (requests, Hello) from the
	// originator.
	fromOrig := !m.Response
	k := dcpKey{orig: p.SrcMAC, resp: p.DstMAC, xid: m.Xid}
	if !fromOrig {
		k.orig, k.resp = p.DstMAC, p.SrcMAC
	}
	e := d.m[k]
	if e != nil && t.now.Sub(e.last) > t.cfg.UDPTimeout {
		t.stats.DCP.TimedOut++
		t.finishDCP(e, false)
		e = nil
	}
	if e == nil {
		if len(d.m) >= d.max {
			t.stats.DCP.Evicted++
			t.finishDCP(d.head, true)
		}
		t.counter++
		e = &dcpExchange{k: k, counter: t.counter, input: p.Input, hasMAC: p.HasMAC,
			vlan: p.VLAN, tunnel: p.Tunnel, first: p.TS, last: p.TS}
		d.m[k] = e
		t.stats.DCP.Exchanges++
	} else {
		d.remove(e)
	}
	d.pushBack(e)
	if p.TS.After(e.last) {
		e.last = p.TS
	}

	n := int64(len(p.Payload))
	if len(p.Payload) >= 12 {
		n = min(n, 12+int64(binary.BigEndian.Uint16(p.Payload[10:])))
	}
	if fromOrig {
		e.origPkts++
		e.origBytes += n
		e.origIPBytes += int64(p.IPLen)
	} else {
		e.respPkts++
		e.respBytes += n
		e.respIPBytes += int64(p.IPLen)
	}

	if e.functions == nil {
		e.functions = make(map[string]int, 2)
	}
	bit := dcpServiceBit(m.Service)
	switch {
	case !m.Response:
		// A response seen first already stands for its request.
		if e.answered&bit == 0 || e.requested&bit != 0 {
			e.functions[m.Service]++
		}
		e.requested |= bit
		if m.Service == "set" {
			e.writes++
			for _, w := range m.Writes {
				e.functions["set_"+w]++
			}
		}
	case e.requested&bit == 0 && e.answered&bit == 0:
		// The multicast request that this response answers is in a
		// Conn of its own (or was not captured); name the service here
		// too, once.
		e.functions[m.Service] = 1
		e.answered |= bit
	}

	// Only the device speaks of itself: a Set request's name or address
	// is what the requester wants the device to become, counted as a
	// write, not taken as the device's identity.
	if !m.Response && !hello {
		return
	}
	e.deviceIsOrig = hello
	ip := m.IP
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = netip.Addr{}
	}
	if ip.IsValid() {
		if hello {
			e.origAddr = ip
		} else {
			e.respAddr = ip
		}
	}
	if dev := m.Device(); len(dev) > len(e.device) {
		e.device = dev[:min(len(dev), 128)]
	}
	if name := m.StationName; name != "" && len(e.names) < maxDCPNames {
		hn := cw.HostName{Addr: ip, Name: name[:min(len(name), maxStationName)], Source: ot.DCP}
		if p.HasMAC {
			hn.MAC = macString(p.SrcMAC)
		}
		if !slices.Contains(e.names, hn) {
			e.names = append(e.names, hn)
		}
	}
}

func dcpServiceBit(svc string) uint8 {
	switch svc {
	case "get":
		return 1
	case "set":
		return 2
	case "identify":
		return 4
	}
	return 8 // hello
}

// sweepDCP emits the exchanges idle for longer than UDPTimeout.
func (t *Table) sweepDCP() {
	d := t.dcp
	if d == nil {
		return
	}
	for d.head != nil && t.now.Sub(d.head.last) > t.cfg.UDPTimeout {
		t.stats.DCP.TimedOut++
		t.finishDCP(d.head, false)
	}
}

// flushDCP emits every exchange left, oldest first, as open.
func (t *Table) flushDCP() {
	d := t.dcp
	if d == nil {
		return
	}
	all := make([]*dcpExchange, 0, len(d.m))
	for _, e := range d.m {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *dcpExchange) int {
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return int(a.counter - b.counter)
	})
	for _, e := range all {
		t.finishDCP(e, true)
	}
}

func (t *Table) finishDCP(e *dcpExchange, open bool) {
	t.dcp.remove(e)
	delete(t.dcp.m, e.k)
	t.stats.DCP.Emitted++
	if t.emit != nil {
		t.emit(e.conn(open))
	}
}

func (e *dcpExchange) conn(open bool) *cw.Conn {
	// The uid hashes a key like an IP flow's; the two MACs and the Xid
	// fill exactly one 16-byte address.
	var a [16]byte
	copy(a[:6], e.k.orig[:])
	copy(a[6:12], e.k.resp[:])
	binary.BigEndian.PutUint32(a[12:], e.k.xid)
	uk := key{a: netip.AddrFrom16(a)}
	c := &cw.Conn{
		TS:          e.first,
		UID:         makeUID(e.first.UnixNano(), &uk, e.counter),
		Orig:        cw.Endpoint{Addr: e.origAddr},
		Resp:        cw.Endpoint{Addr: e.respAddr},
		Proto:       "profinet",
		Service:     ot.DCP,
		Duration:    e.last.Sub(e.first),
		OrigBytes:   e.origBytes,
		RespBytes:   e.respBytes,
		OrigPkts:    e.origPkts,
		RespPkts:    e.respPkts,
		OrigIPBytes: e.origIPBytes,
		RespIPBytes: e.respIPBytes,
		Open:        open,
		VLAN:        e.vlan,
		Tunnel:      e.tunnel,
		Source:      e.input,
		OT: &cw.OT{Protocol: ot.DCP, ServerIsOrig: e.deviceIsOrig, Functions: e.functions,
			Writes: e.writes, Device: e.device},
		HostNames: e.names,
	}
	if e.hasMAC {
		c.Orig.MAC, c.Resp.MAC = macString(e.k.orig), macString(e.k.resp)
	}
	// As for UDP: both sides, the originator only, the responder only.
	switch {
	case e.origPkts > 0 && e.respPkts > 0:
		c.State, c.History = "SF", "Dd"
	case e.origPkts > 0:
		c.State, c.History = "S0", "D"
	default:
		c.State, c.History = "SHR", "d"
	}
	return c
}
