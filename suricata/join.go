package suricata

import (
	"container/list"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// Per-flow and per-field bounds on what app events may attach, so one
// noisy flow cannot grow without end while it waits for its flow event.
const (
	maxDNS     = 64 // DNS messages per flow, as the flow table keeps
	maxAnswers = 32 // answers per DNS message
	maxHTTP    = 32 // HTTP requests per flow, as the flow table keeps
	maxAlerts  = 32 // distinct alert lines per flow
	maxName    = 255
	maxURI     = 4096
	maxUA      = 1024
	maxShort   = 256
	maxSig     = 512
	// recentSize is how many emitted flow ids are remembered, to tell an
	// app event that came after its flow event (late) and a netflow record
	// of a flow already logged as a flow event (duplicate).
	recentSize = 1 << 14
	// pendBase is what one pending flow costs before its attachments: the
	// struct, its list element and map entry.
	pendBase = 320
	// connSize is what a held netflow half costs.
	connSize = 640
)

// pend is what app events told about a flow whose flow event has not
// come yet, and for netflow records the first half of the pair.
type pend struct {
	id     uint64
	elem   *list.Element
	size   int
	events int64 // app events attached

	dns        []cw.DNS
	dnsDropped int
	tls        *cw.TLS
	http       []httpTx
	alerts     []string
	service    string // from the app events' app_proto, when the flow event lacks one

	nf      *cw.Conn // a netflow half waiting for its reverse
	nfFlags uint8    // its TCP flags
	// httpPort is the server port of the flow's HTTP transactions, to
	// tell uploads from downloads in fileinfo events.
	httpPort uint16
}

type httpTx struct {
	cw.HTTP
	txID   uint64
	hasTx  bool
	upload int64 // bytes of files sent by the client in this transaction
}

type nfRef struct {
	id  uint64
	seq int64
	c   *cw.Conn
}

// joiner joins app events to their flow by flow_id with bounded state.
type joiner struct {
	maxPending, maxBytes int
	nfWindow             int64

	pending map[uint64]*pend
	order   *list.List // of *pend, oldest first
	bytes   int

	recent    [recentSize]uint64
	recentSet map[uint64]struct{}
	recentPos int

	nfQueue []nfRef // netflow halves by arrival, from nfHead on
	nfHead  int
	seq     int64

	st   *Stats
	emit func(*cw.Conn)
}

func newJoiner(o Options, st *Stats, emit func(*cw.Conn)) *joiner {
	return &joiner{maxPending: o.MaxPending, maxBytes: o.MaxPendingBytes, nfWindow: int64(o.NetflowWindow),
		pending: make(map[uint64]*pend), order: list.New(), recentSet: make(map[uint64]struct{}, recentSize),
		st: st, emit: emit}
}

// event handles one decoded event from the file src.
func (j *joiner) event(e *event, src string) error {
	j.seq++
	defer j.expireNetflow()
	switch e.EventType {
	case "flow":
		return j.flow(e, src)
	case "netflow":
		return j.netflow(e, src)
	case "dns", "tls", "http", "fileinfo", "alert":
		j.app(e)
		return nil
	}
	return nil
}

// setSpan sets c's start (the event's timestamp when start is missing)
// and duration from an event's start and end fields.
func setSpan(c *cw.Conn, e *event, start, end, obj string) error {
	t, err := parseTime(start)
	if err != nil {
		if t, err = parseTime(e.Timestamp); err != nil {
			return fmt.Errorf("%s.start: %w", obj, err)
		}
	}
	c.TS = t
	if te, err := parseTime(end); err == nil && te.After(t) {
		c.Duration = te.Sub(t)
	}
	return nil
}

// flow builds the Conn of a flow event, attaches what waits for it and
// emits it.
func (j *joiner) flow(e *event, src string) error {
	if e.Flow == nil {
		return fmt.Errorf("flow event without a flow object")
	}
	c, err := baseConn(e, src)
	if err != nil {
		return err
	}
	f := e.Flow
	if err := setSpan(c, e, f.Start, f.End, "flow"); err != nil {
		return err
	}
	v6 := c.Orig.Addr.Is6()
	_, num := protoName(e.Proto)
	c.OrigPkts, c.RespPkts = clampInt(uint64(f.PktsToServer)), clampInt(uint64(f.PktsToClient))
	c.OrigIPBytes, c.OrigBytes = sizes(uint64(f.BytesToServer), uint64(f.PktsToServer), v6, num)
	c.RespIPBytes, c.RespBytes = sizes(uint64(f.BytesToClient), uint64(f.PktsToClient), v6, num)
	c.State = connState(e, num, c)
	if c.State == "S0" || c.State == "REJ" || c.State == "RSTOS0" || c.State == "SH" {
		// No handshake, no data: what the estimate saw is header options.
		c.OrigBytes, c.RespBytes = 0, 0
	}
	c.Open = f.State != "closed" && (f.Reason == "shutdown" || f.Reason == "forced")
	id := uint64(e.FlowID)
	j.st.Flows++
	if p := j.pending[id]; p != nil && id != 0 {
		if p.nf != nil {
			// Both flow and netflow logging are on: the flow event wins.
			j.st.NetflowDuplicates++
			p.nf = nil
		}
		j.attach(c, p)
		j.drop(p)
	}
	j.done(id, c)
	return nil
}

// connState is Zeek's conn_state for a flow event.
func connState(e *event, proto int, c *cw.Conn) string {
	switch proto {
	case 6:
		if e.TCP != nil {
			ts, ok1 := parseFlags(e.TCP.FlagsTS)
			tc, ok2 := parseFlags(e.TCP.FlagsTC)
			if ok1 || ok2 {
				return tcpStateFromFlags(ts, tc, uint64(c.RespPkts))
			}
		}
		return tcpStateFromFlow(e.Flow.State, uint64(c.OrigPkts), uint64(c.RespPkts), c.OrigBytes, c.RespBytes)
	case 17:
		if c.RespPkts > 0 {
			return "SF"
		}
		return "S0"
	}
	return "OTH"
}

// netflow pairs the two unidirectional records Suricata writes for one
// flow (the second only when the server answered) into one Conn.
func (j *joiner) netflow(e *event, src string) error {
	if e.Netflow == nil {
		return fmt.Errorf("netflow event without a netflow object")
	}
	c, err := baseConn(e, src)
	if err != nil {
		return err
	}
	n := e.Netflow
	if err := setSpan(c, e, n.Start, n.End, "netflow"); err != nil {
		return err
	}
	_, num := protoName(e.Proto)
	c.OrigPkts = clampInt(uint64(n.Pkts))
	c.OrigIPBytes, c.OrigBytes = sizes(uint64(n.Bytes), uint64(n.Pkts), c.Orig.Addr.Is6(), num)
	var flags uint8
	if e.TCP != nil {
		flags, _ = parseFlags(e.TCP.Flags)
	}
	id := uint64(e.FlowID)
	j.st.Netflows++
	if id != 0 {
		if _, ok := j.recentSet[id]; ok {
			j.st.NetflowDuplicates++
			return nil
		}
	}
	p := j.pending[id]
	if id != 0 && p != nil && p.nf != nil {
		h := p.nf
		reverse := h.Orig.Addr == c.Resp.Addr && h.Resp.Addr == c.Orig.Addr
		if num != 1 && num != 58 {
			// ICMP records carry each direction's type and code instead.
			reverse = reverse && h.Orig.Port == c.Resp.Port && h.Resp.Port == c.Orig.Port
		}
		if reverse {
			h.RespPkts, h.RespIPBytes, h.RespBytes = c.OrigPkts, c.OrigIPBytes, c.OrigBytes
			if end := c.TS.Add(c.Duration); end.After(h.TS.Add(h.Duration)) {
				h.Duration = end.Sub(h.TS)
			}
			if h.Service == "" {
				h.Service = c.Service
			}
			p.nf = nil
			finishNetflow(h, num, p.nfFlags, flags)
			j.attach(h, p)
			j.drop(p)
			j.done(id, h)
			return nil
		}
		// The same direction again: the earlier half stands alone.
		finishNetflow(h, num, p.nfFlags, 0)
		p.nf = nil
		j.attach(h, p)
		j.drop(p)
		j.done(id, h)
		p = nil
	}
	if id == 0 {
		finishNetflow(c, num, flags, 0)
		j.done(0, c)
		return nil
	}
	if p == nil {
		p = j.get(id)
	}
	p.nf, p.nfFlags = c, flags
	p.size += connSize
	j.bytes += connSize
	j.nfQueue = append(j.nfQueue, nfRef{id: id, seq: j.seq, c: c})
	j.shrink()
	return nil
}

// finishNetflow sets the state of a netflow Conn once its halves are
// known, from each half's TCP flags.
func finishNetflow(c *cw.Conn, proto int, ts, tc uint8) {
	switch proto {
	case 6:
		if ts|tc != 0 {
			c.State = tcpStateFromFlags(ts, tc, uint64(c.RespPkts))
		} else {
			c.State = "OTH"
		}
		if c.State == "S0" || c.State == "REJ" || c.State == "RSTOS0" || c.State == "SH" {
			c.OrigBytes, c.RespBytes = 0, 0
		}
	case 17:
		c.State = "S0"
		if c.RespPkts > 0 {
			c.State = "SF"
		}
	default:
		c.State = "OTH"
	}
}

// expireNetflow emits netflow halves whose reverse did not follow within
// the window: Suricata writes the pair together, so a lone half means
// the server never answered.
func (j *joiner) expireNetflow() {
	for j.nfHead < len(j.nfQueue) && j.seq-j.nfQueue[j.nfHead].seq > j.nfWindow {
		j.flushHalf(j.nfQueue[j.nfHead])
		j.nfQueue[j.nfHead] = nfRef{}
		j.nfHead++
	}
	// Compact now and then rather than on every expiry.
	if j.nfHead > 1024 && j.nfHead*2 > len(j.nfQueue) {
		j.nfQueue = append(j.nfQueue[:0], j.nfQueue[j.nfHead:]...)
		j.nfHead = 0
	}
}

func (j *joiner) flushHalf(r nfRef) {
	p := j.pending[r.id]
	if p == nil || p.nf != r.c {
		return // paired, superseded or evicted already
	}
	h := p.nf
	p.nf = nil
	_, num := protoName(flexProto(h.Proto))
	finishNetflow(h, num, p.nfFlags, 0)
	j.attach(h, p)
	j.drop(p)
	j.done(r.id, h)
}

// baseConn fills what every flow record shares: uid, tuple, protocol,
// service, VLAN, MACs.
func baseConn(e *event, src string) (*cw.Conn, error) {
	sa, err := parseAddr(e.SrcIP)
	if err != nil {
		return nil, fmt.Errorf("src_ip: %w", err)
	}
	da, err := parseAddr(e.DestIP)
	if err != nil {
		return nil, fmt.Errorf("dest_ip: %w", err)
	}
	if uint64(e.SrcPort) > 65535 || uint64(e.DestPort) > 65535 {
		return nil, fmt.Errorf("port out of range: %d, %d", e.SrcPort, e.DestPort)
	}
	name, num := protoName(e.Proto)
	if name == "" {
		return nil, fmt.Errorf("no proto")
	}
	c := &cw.Conn{Orig: cw.Endpoint{Addr: sa, Port: uint16(e.SrcPort)}, Resp: cw.Endpoint{Addr: da, Port: uint16(e.DestPort)},
		Proto: clip(name, 16), Service: clip(serviceName(e.AppProto), 32), VLAN: vlanID(e.VLAN), Source: src}
	if e.FlowID != 0 {
		c.UID = strconv.FormatUint(uint64(e.FlowID), 10)
	}
	if (num == 1 || num == 58) && e.ICMPType != nil {
		// Zeek's convention, which the flow table follows: type and code
		// in the port fields.
		c.Orig.Port = uint16(min(uint64(*e.ICMPType), 255))
		if e.ICMPCode != nil {
			c.Resp.Port = uint16(min(uint64(*e.ICMPCode), 255))
		}
	}
	if et := e.Ether; et != nil {
		c.Orig.MAC, c.Resp.MAC = mac(et.SrcMAC, et.SrcMACs), mac(et.DestMAC, et.DestMACs)
	}
	return c, nil
}

func mac(one string, many []string) string {
	if one == "" && len(many) > 0 {
		one = many[0]
	}
	return strings.ToLower(clip(one, 17))
}

// app attaches a dns, tls, http, fileinfo or alert event to its flow.
func (j *joiner) app(e *event) {
	id := uint64(e.FlowID)
	if id == 0 {
		j.st.Orphaned++
		return
	}
	if _, ok := j.recentSet[id]; ok {
		j.st.Late++
		return
	}
	p := j.get(id)
	before := p.size
	switch e.EventType {
	case "dns":
		if e.DNS != nil {
			p.addDNS(e.DNS)
		}
	case "tls":
		if e.TLS != nil {
			p.addTLS(e.TLS)
		}
	case "http":
		if e.HTTP != nil {
			p.addHTTP(e.HTTP, e.TxID)
			if p.httpPort == 0 {
				p.httpPort = uint16(e.DestPort)
			}
		}
	case "fileinfo":
		if e.Fileinfo != nil {
			p.addFile(e)
		}
	case "alert":
		if e.Alert != nil {
			p.addAlert(e.Alert, &j.st.AlertsDropped)
		}
	}
	if p.service == "" && e.EventType != "alert" {
		p.service = serviceName(e.AppProto)
		if p.service == "" && e.EventType != "fileinfo" {
			p.service = serviceName(e.EventType)
		}
	}
	p.events++
	j.bytes += p.size - before
	j.shrink()
}

// get returns the pending entry of id, making room for a new one by
// evicting the oldest when a bound is reached.
func (j *joiner) get(id uint64) *pend {
	if p := j.pending[id]; p != nil {
		return p
	}
	for len(j.pending) >= j.maxPending {
		j.evictOldest()
	}
	p := &pend{id: id, size: pendBase}
	p.elem = j.order.PushBack(p)
	j.pending[id] = p
	j.bytes += p.size
	return p
}

// shrink evicts the oldest pending flows while their bytes exceed the cap.
func (j *joiner) shrink() {
	for j.bytes > j.maxBytes && j.order.Len() > 1 {
		j.evictOldest()
	}
}

func (j *joiner) evictOldest() {
	p := j.order.Front().Value.(*pend)
	if p.nf != nil {
		// A netflow half is a flow record: emit it rather than lose it.
		h := p.nf
		p.nf = nil
		_, num := protoName(flexProto(h.Proto))
		finishNetflow(h, num, p.nfFlags, 0)
		j.attach(h, p)
		j.drop(p)
		j.done(p.id, h)
		return
	}
	j.st.Evicted += p.events
	j.st.EvictedFlows++
	j.drop(p)
}

func (j *joiner) drop(p *pend) {
	j.order.Remove(p.elem)
	delete(j.pending, p.id)
	j.bytes -= p.size
}

// done emits c and remembers its flow id.
func (j *joiner) done(id uint64, c *cw.Conn) {
	j.st.Conns++
	j.emit(c)
	if id == 0 {
		return
	}
	if old := j.recent[j.recentPos]; old != 0 {
		delete(j.recentSet, old)
	}
	j.recent[j.recentPos] = id
	j.recentSet[id] = struct{}{}
	j.recentPos = (j.recentPos + 1) % recentSize
}

// finish ends the input: lone netflow halves are emitted, app events
// still waiting had no flow event.
func (j *joiner) finish() {
	for _, r := range j.nfQueue[j.nfHead:] {
		j.flushHalf(r)
	}
	j.nfQueue, j.nfHead = nil, 0
	for e := j.order.Front(); e != nil; e = e.Next() {
		p := e.Value.(*pend)
		j.st.Orphaned += p.events
		j.st.OrphanedFlows++
	}
	j.pending = make(map[uint64]*pend)
	j.order.Init()
	j.bytes = 0
}

// attach moves what app events told onto the flow's Conn.
func (j *joiner) attach(c *cw.Conn, p *pend) {
	j.st.Joined += p.events
	if len(p.dns) > 0 {
		for i := range p.dns {
			p.dns[i].QueryLen, p.dns[i].RespLen = dnsSizes(&p.dns[i])
		}
		c.DNS = p.dns
		c.DNSDropped = p.dnsDropped
	}
	c.TLS = p.tls
	for i := range p.http {
		h := p.http[i].HTTP
		if p.http[i].upload > h.RequestBodyLen {
			h.RequestBodyLen = p.http[i].upload
		}
		c.HTTP = append(c.HTTP, h)
	}
	c.Alerts = p.alerts
	if c.Service == "" {
		c.Service = p.service
	}
	if c.Service == "" {
		switch {
		case len(c.DNS) > 0:
			c.Service = "dns"
		case c.TLS != nil:
			c.Service = "ssl"
		case len(c.HTTP) > 0:
			c.Service = "http"
		}
	}
}

func (p *pend) addDNS(d *dnsInfo) {
	name, qtype := d.RRName, d.RRType
	if len(d.Queries) > 0 {
		name, qtype = d.Queries[0].RRName, d.Queries[0].RRType
	}
	name = clip(name, maxName)
	id := uint16(d.ID)
	switch strings.ToLower(d.Type) {
	case "query", "request":
		if !p.roomDNS() {
			return
		}
		p.dns = append(p.dns, cw.DNS{TransID: id, Query: name, QType: rrtype(qtype), QClass: 1, RCode: -1})
		p.size += 96 + len(name)
		return
	case "answer", "response":
	default:
		return
	}
	// Version 1 writes one answer event per record, named after the
	// record rather than the query: match on the transaction id alone.
	v1 := d.Version == 0 && len(d.Answers) == 0 && d.Grouped == nil && len(d.Queries) == 0
	var m *cw.DNS
	for i := len(p.dns) - 1; i >= 0; i-- {
		x := &p.dns[i]
		if x.TransID != id {
			continue
		}
		if v1 || strings.EqualFold(x.Query, name) {
			m = x
			break
		}
	}
	if m == nil {
		if !p.roomDNS() {
			return
		}
		p.dns = append(p.dns, cw.DNS{TransID: id, Query: name, QType: rrtype(qtype), QClass: 1, RCode: -1})
		p.size += 96 + len(name)
		m = &p.dns[len(p.dns)-1]
	}
	m.RCode = rcode(d.RCode)
	add := func(data string, ttl uint64) {
		if data == "" || len(m.Answers) >= maxAnswers {
			return
		}
		data = clip(data, maxName)
		m.Answers = append(m.Answers, data)
		m.TTLs = append(m.TTLs, uint32(min(ttl, 1<<32-1)))
		p.size += 24 + len(data)
	}
	switch {
	case v1:
		add(d.RData, uint64(d.TTL))
	case len(d.Answers) > 0:
		for _, a := range d.Answers {
			add(a.RData, uint64(a.TTL))
		}
	default:
		for _, vals := range d.Grouped {
			for _, raw := range vals {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					add(s, 0)
				}
			}
		}
	}
}

// dnsSizes estimates the wire sizes EVE does not give, as the zeek source
// does, so DNS tunnelling scores weigh both sources alike: a 12-byte
// header, the name's wire length and 4 bytes of type and class; each
// answer 12 bytes plus its data (4 for IPv4, 16 for IPv6, else its text).
func dnsSizes(d *cw.DNS) (query, resp int) {
	name := 1
	if d.Query != "" {
		name = len(d.Query) + 2
	}
	query = 12 + name + 4
	if d.RCode < 0 {
		return query, 0
	}
	resp = query
	for _, a := range d.Answers {
		rd := len(a)
		if ip, err := netip.ParseAddr(a); err == nil {
			rd = 4
			if ip.Is6() {
				rd = 16
			}
		}
		resp += 12 + rd
	}
	return query, resp
}

func (p *pend) roomDNS() bool {
	if len(p.dns) >= maxDNS {
		p.dnsDropped++
		return false
	}
	return true
}

func (p *pend) addTLS(t *tlsInfo) {
	if p.tls == nil {
		p.tls = &cw.TLS{}
		p.size += 96
	}
	x := p.tls
	set := func(dst *string, v string, n int) {
		if *dst == "" && v != "" {
			*dst = clip(v, n)
			p.size += len(*dst)
		}
	}
	set(&x.SNI, t.SNI, maxName)
	set(&x.Version, tlsVersion(t.Version), 16)
	if t.JA3 != nil {
		set(&x.JA3, t.JA3.Hash, 64)
	}
	set(&x.JA4, t.JA4, 64)
	if len(x.ALPN) == 0 {
		for _, a := range t.ClientALPNs {
			if len(x.ALPN) == 8 {
				break
			}
			x.ALPN = append(x.ALPN, clip(a, 32))
			p.size += 16 + len(x.ALPN[len(x.ALPN)-1])
		}
	}
}

func (p *pend) addHTTP(h *httpInfo, tx *flexUint) {
	var t *httpTx
	if tx != nil {
		for i := range p.http {
			if p.http[i].hasTx && p.http[i].txID == uint64(*tx) {
				t = &p.http[i]
				break
			}
		}
	}
	if t == nil {
		if len(p.http) >= maxHTTP {
			return
		}
		p.http = append(p.http, httpTx{})
		t = &p.http[len(p.http)-1]
		if tx != nil {
			t.txID, t.hasTx = uint64(*tx), true
		}
		p.size += 160
	}
	set := func(dst *string, v string, n int) {
		if *dst == "" && v != "" {
			*dst = clip(v, n)
			p.size += len(*dst)
		}
	}
	set(&t.Method, h.Method, maxShort)
	set(&t.Host, h.Hostname, maxName)
	set(&t.URI, h.URL, maxURI)
	set(&t.UserAgent, h.UserAgent, maxUA)
	set(&t.ContentType, h.ContentType, maxShort)
	if h.Status != 0 && t.StatusCode == 0 {
		t.StatusCode = int(min(uint64(h.Status), 999))
	}
	if l := clampInt(uint64(h.Length)); l > t.ResponseBodyLen {
		t.ResponseBodyLen = l
	}
}

// addFile records a file's size on its HTTP transaction: Suricata writes
// a fileinfo event in the file's direction, so a file sent by the flow's
// client is an upload (request body) and one sent to it a download.
func (p *pend) addFile(e *event) {
	f := e.Fileinfo
	if e.HTTP == nil && serviceName(e.AppProto) != "http" {
		return // SMB, FTP, SMTP files have no place on the Conn yet
	}
	tx := flexUint(f.TxID)
	var t *httpTx
	for i := range p.http {
		if p.http[i].hasTx && p.http[i].txID == uint64(tx) {
			t = &p.http[i]
			break
		}
	}
	if t == nil {
		if e.HTTP == nil || len(p.http) >= maxHTTP {
			return
		}
		p.addHTTP(e.HTTP, &tx)
		t = &p.http[len(p.http)-1]
	}
	size := clampInt(uint64(f.Size))
	server := uint64(p.httpPort)
	if e.HTTP != nil && e.HTTP.Port != 0 {
		server = uint64(e.HTTP.Port)
	}
	if server == 0 {
		server = 80
	}
	if uint64(e.DestPort) == server {
		t.upload += size
	} else if size > t.ResponseBodyLen {
		t.ResponseBodyLen = size
	}
}

func (p *pend) addAlert(a *alertInfo, dropped *int64) {
	s := alertString(a)
	for _, x := range p.alerts {
		if x == s {
			return
		}
	}
	if len(p.alerts) >= maxAlerts {
		*dropped++
		return
	}
	p.alerts = append(p.alerts, s)
	p.size += 16 + len(s)
}

// alertString is how a Suricata alert reads on a Conn: the signature
// first, then what identifies and grades it.
func alertString(a *alertInfo) string {
	var b strings.Builder
	sig := clip(a.Signature, maxSig)
	if sig == "" {
		sig = "signature " + strconv.FormatUint(uint64(a.SID), 10)
	}
	b.WriteString(sig)
	fmt.Fprintf(&b, " [sid %d:%d:%d", a.GID, a.SID, a.Rev)
	if a.Category != "" {
		b.WriteString(", ")
		b.WriteString(clip(a.Category, maxShort))
	}
	if a.Severity != 0 {
		fmt.Fprintf(&b, ", severity %d", a.Severity)
	}
	if a.Action != "" && a.Action != "allowed" {
		b.WriteString(", ")
		b.WriteString(clip(a.Action, 32))
	}
	b.WriteString("]")
	return b.String()
}
