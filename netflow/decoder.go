package netflow

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	cw "github.com/cargowatch/cargowatch"
	nf "github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Config bounds a Decoder. Zero fields take the defaults.
type Config struct {
	// MaxExporters caps the exporters whose state (templates, sampling,
	// counters) is kept; past it the least recently heard one is
	// forgotten (default 1024).
	MaxExporters int
	// MaxTemplatesPerExporter caps one exporter's templates over all its
	// observation domains, so that one exporter cannot push the others'
	// templates out (default 256).
	MaxTemplatesPerExporter int
	// MaxTemplates caps the templates of all exporters (default 8192).
	MaxTemplates int
}

// maxTemplateFields bounds one template: real templates have tens of
// fields; a hostile one could otherwise hold 16 K.
const maxTemplateFields = 256

// maxPerExporterMaps bounds the sampler rates and IPFIX system init times
// kept per exporter.
const maxPerExporterMaps = 64

func (c Config) withDefaults() Config {
	if c.MaxExporters <= 0 {
		c.MaxExporters = 1024
	}
	if c.MaxTemplatesPerExporter <= 0 {
		c.MaxTemplatesPerExporter = 256
	}
	if c.MaxTemplates <= 0 {
		c.MaxTemplates = 8192
	}
	return c
}

// Stats are a Decoder's counters since it was made.
type Stats struct {
	Datagrams uint64 `json:"datagrams"`
	// Malformed counts datagrams that could not be read (or only in
	// part): bad header, unknown version, truncated or inconsistent sets.
	Malformed uint64 `json:"malformed"`
	// Records counts flow records turned into Conns.
	Records uint64 `json:"records"`
	// Dropped counts flow records that were lost: read but without the
	// addresses a Conn needs, or announced by a v5 header beyond the end
	// of its datagram.
	Dropped uint64 `json:"records_dropped"`
	// TemplatesMissing counts data sets that arrived before (or without)
	// their template: their records cannot be read.
	TemplatesMissing uint64 `json:"templates_missing"`
	// Options counts options data records (sampling, system init time,
	// exporter statistics): metadata, not flows.
	Options          uint64 `json:"options_records"`
	Templates        int    `json:"templates"`
	TemplatesEvicted uint64 `json:"templates_evicted"`
	Exporters        int    `json:"exporters"`
	ExportersEvicted uint64 `json:"exporters_evicted"`
}

// ExporterStats are one exporter's counters.
type ExporterStats struct {
	Exporter         string    `json:"exporter"`
	Datagrams        uint64    `json:"datagrams"`
	Malformed        uint64    `json:"malformed"`
	Records          uint64    `json:"records"`
	Dropped          uint64    `json:"records_dropped"`
	TemplatesMissing uint64    `json:"templates_missing"`
	Templates        int       `json:"templates"`
	LastSeen         time.Time `json:"last_seen"`
	LastError        string    `json:"last_error,omitempty"`
}

// Decoder turns export datagrams into Conns. It is safe for concurrent
// use; datagrams of one exporter must come in order for templates to be
// learnt before the data that needs them.
type Decoder struct {
	cfg Config

	mu         sync.Mutex
	exporters  map[netip.AddrPort]*exporter
	exLRU      list.List // *exporter, most recently heard at the front
	tmplLRU    list.List // *template of every exporter, most recently used at the front
	st         Stats
	uidCounter uint64
}

// NewDecoder returns a Decoder bounded by cfg.
func NewDecoder(cfg Config) *Decoder {
	return &Decoder{cfg: cfg.withDefaults(), exporters: map[netip.AddrPort]*exporter{}}
}

type exporter struct {
	d      *Decoder
	addr   netip.AddrPort
	source string
	elem   *list.Element

	templates map[tkey]*template
	tmplLRU   list.List // this exporter's *template, most recently used at the front

	// sampling holds rates from options records, by (version, domain,
	// sampler id); id anySampler is the domain's rate when the options
	// record named no sampler.
	sampling map[skey]float64
	// sysInit is IPFIX systemInitTimeMilliseconds by observation domain,
	// for records timed relative to the exporter's boot.
	sysInit map[uint32]int64

	st ExporterStats
}

type tkey struct {
	version uint16
	domain  uint32
	id      uint16
}

type template struct {
	key          tkey
	ex           *exporter
	rec          any // nf.TemplateRecord, nf.NFv9OptionsTemplateRecord or nf.IPFIXOptionsTemplateRecord
	gElem, xElem *list.Element
}

type skey struct {
	version uint16
	domain  uint32
	id      uint64
}

const anySampler = ^uint64(0)

var be = binary.BigEndian

// Decode reads one datagram from exporter, received at now, and calls
// emit for each flow record it carries. The error, when not nil, says why
// the datagram (or its tail) could not be read and names the exporter;
// records read before the problem are still emitted. Data sets whose
// template is not known yet are counted in Stats.TemplatesMissing, not
// returned as errors: every collector sees them until the exporter next
// sends its templates.
func (d *Decoder) Decode(exporter netip.AddrPort, now time.Time, payload []byte, emit func(*cw.Conn)) error {
	conns := connPool.Get().(*[]*cw.Conn)
	d.mu.Lock()
	ex := d.exporter(exporter, now)
	ex.st.Datagrams++
	d.st.Datagrams++
	var err error
	*conns, err = ex.decode(now, payload, (*conns)[:0])
	if err != nil {
		err = fmt.Errorf("netflow: exporter %s: %w", exporter, err)
		ex.st.Malformed++
		d.st.Malformed++
		ex.st.LastError = truncate(err.Error(), 200)
	}
	n := uint64(len(*conns))
	ex.st.Records += n
	d.st.Records += n
	d.mu.Unlock()
	// emit outside the lock: it may block on a busy pipeline, and Stats
	// must answer meanwhile.
	for i, c := range *conns {
		emit(c)
		(*conns)[i] = nil
	}
	*conns = (*conns)[:0]
	connPool.Put(conns)
	return err
}

var connPool = sync.Pool{New: func() any { s := make([]*cw.Conn, 0, 64); return &s }}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Exporters = len(d.exporters)
	s.Templates = d.tmplLRU.Len()
	return s
}

// Exporters returns each known exporter's counters, by address.
func (d *Decoder) Exporters() []ExporterStats {
	d.mu.Lock()
	out := make([]ExporterStats, 0, len(d.exporters))
	for _, ex := range d.exporters {
		s := ex.st
		s.Templates = len(ex.templates)
		out = append(out, s)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Exporter < out[j].Exporter })
	return out
}

// exporter returns the state of addr, creating it (and forgetting the
// least recently heard exporter past the cap).
func (d *Decoder) exporter(addr netip.AddrPort, now time.Time) *exporter {
	ex := d.exporters[addr]
	if ex == nil {
		if len(d.exporters) >= d.cfg.MaxExporters {
			d.forget(d.exLRU.Back().Value.(*exporter))
			d.st.ExportersEvicted++
		}
		ex = &exporter{d: d, addr: addr, source: "netflow://" + addr.String(),
			templates: map[tkey]*template{}, sampling: map[skey]float64{}, sysInit: map[uint32]int64{}}
		ex.st.Exporter = addr.String()
		ex.elem = d.exLRU.PushFront(ex)
		d.exporters[addr] = ex
	} else {
		d.exLRU.MoveToFront(ex.elem)
	}
	ex.st.LastSeen = now
	return ex
}

func (d *Decoder) forget(ex *exporter) {
	for _, t := range ex.templates {
		d.tmplLRU.Remove(t.gElem)
	}
	d.exLRU.Remove(ex.elem)
	delete(d.exporters, ex.addr)
}

func (ex *exporter) decode(now time.Time, b []byte, out []*cw.Conn) ([]*cw.Conn, error) {
	if len(b) < 4 {
		return out, fmt.Errorf("datagram of %d bytes is shorter than any flow export header", len(b))
	}
	switch v := be.Uint16(b); {
	case v == 5:
		return ex.v5(b, out)
	case v == 9:
		return ex.v9(b, out)
	case v == 10:
		return ex.ipfix(b, out)
	case v == 0 && be.Uint16(b[2:]) == 5:
		return ex.sflow(now, b, out)
	default:
		return out, fmt.Errorf("version %d is not NetFlow v5, v9, IPFIX (10) or sFlow (5)", v)
	}
}

// header is what a v9 or IPFIX message header says that its records need.
type header struct {
	version uint16
	domain  uint32
	export  time.Time
	// uptimeMs is the v9 exporter's SysUptime at export; IPFIX has none.
	uptimeMs  uint32
	hasUptime bool
}

func (ex *exporter) v9(b []byte, out []*cw.Conn) ([]*cw.Conn, error) {
	if len(b) < 20 {
		return out, fmt.Errorf("NetFlow v9 datagram of %d bytes is shorter than its 20-byte header", len(b))
	}
	var p nf.NFv9Packet
	buf := bytes.NewBuffer(b[2:])
	err := nf.DecodeMessageNetFlow(buf, templateView{ex}, &p)
	h := header{version: 9, domain: p.SourceId, export: time.Unix(int64(p.UnixSeconds), 0).UTC(),
		uptimeMs: p.SystemUptime, hasUptime: true}
	out = ex.flowSets(&h, p.FlowSets, out)
	return out, decodeErr(err)
}

func (ex *exporter) ipfix(b []byte, out []*cw.Conn) ([]*cw.Conn, error) {
	if len(b) < 16 {
		return out, fmt.Errorf("IPFIX datagram of %d bytes is shorter than its 16-byte header", len(b))
	}
	switch n := int(be.Uint16(b[2:])); {
	case n < 16:
		return out, fmt.Errorf("IPFIX header says the message is %d bytes, less than the header", n)
	case n > len(b):
		return out, fmt.Errorf("IPFIX message truncated: the header says %d bytes, the datagram has %d", n, len(b))
	default:
		b = b[:n] // RFC 7011: one message per datagram; what follows is not ours
	}
	var p nf.IPFIXPacket
	buf := bytes.NewBuffer(b[2:])
	err := nf.DecodeMessageIPFIX(buf, templateView{ex}, &p)
	h := header{version: 10, domain: p.ObservationDomainId, export: time.Unix(int64(p.ExportTime), 0).UTC()}
	out = ex.flowSets(&h, p.FlowSets, out)
	return out, decodeErr(err)
}

// decodeErr keeps goflow2's errors that mean the datagram is bad; data
// sets without their template are counted, not errors.
func decodeErr(err error) error {
	if err == nil || errors.Is(err, nf.ErrorTemplateNotFound) {
		return nil
	}
	return err
}

func (ex *exporter) flowSets(h *header, sets []any, out []*cw.Conn) []*cw.Conn {
	for _, s := range sets {
		switch fs := s.(type) {
		case nf.DataFlowSet:
			for i := range fs.Records {
				if c := ex.record(h, fs.Records[i].Values); c != nil {
					out = append(out, c)
				}
			}
		case nf.OptionsDataFlowSet:
			for i := range fs.Records {
				ex.options(h, &fs.Records[i])
			}
		case nf.RawFlowSet:
			if fs.Id >= 256 {
				ex.st.TemplatesMissing++
				ex.d.st.TemplatesMissing++
			}
		}
	}
	return out
}

// templateView is one exporter's window on the Decoder's bounded template
// store, in the shape goflow2's decoders ask for. goflow2 calls it from
// inside Decode, under the Decoder's lock.
type templateView struct{ ex *exporter }

var errTemplateNotFound = nf.ErrorTemplateNotFound

func (v templateView) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	t := v.ex.templates[tkey{version, domain, id}]
	if t == nil {
		return nil, errTemplateNotFound
	}
	v.ex.d.tmplLRU.MoveToFront(t.gElem)
	v.ex.tmplLRU.MoveToFront(t.xElem)
	return t.rec, nil
}

func (v templateView) AddTemplate(version uint16, domain uint32, id uint16, rec any) error {
	k := tkey{version, domain, id}
	withdraw, err := checkTemplate(id, rec)
	if err != nil {
		return err
	}
	ex, d := v.ex, v.ex.d
	if t := ex.templates[k]; t != nil {
		if withdraw {
			ex.drop(t)
			return nil
		}
		t.rec = rec
		d.tmplLRU.MoveToFront(t.gElem)
		ex.tmplLRU.MoveToFront(t.xElem)
		return nil
	}
	if withdraw {
		return nil
	}
	if len(ex.templates) >= d.cfg.MaxTemplatesPerExporter {
		ex.drop(ex.tmplLRU.Back().Value.(*template))
		d.st.TemplatesEvicted++
	}
	if d.tmplLRU.Len() >= d.cfg.MaxTemplates {
		old := d.tmplLRU.Back().Value.(*template)
		old.ex.drop(old)
		d.st.TemplatesEvicted++
	}
	t := &template{key: k, ex: ex, rec: rec}
	t.gElem = d.tmplLRU.PushFront(t)
	t.xElem = ex.tmplLRU.PushFront(t)
	ex.templates[k] = t
	return nil
}

func (ex *exporter) drop(t *template) {
	ex.d.tmplLRU.Remove(t.gElem)
	ex.tmplLRU.Remove(t.xElem)
	delete(ex.templates, t.key)
}

func (v templateView) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	t := v.ex.templates[tkey{version, domain, id}]
	if t == nil {
		return nil, errTemplateNotFound
	}
	v.ex.drop(t)
	return t.rec, nil
}

func (v templateView) GetTemplates() nf.FlowBaseTemplateSet {
	out := nf.FlowBaseTemplateSet{}
	for k, t := range v.ex.templates {
		out[uint64(k.version)<<48|uint64(k.domain)<<16|uint64(k.id)] = t.rec
	}
	return out
}

// checkTemplate refuses templates that goflow2 would mis-handle: a
// record of zero bytes makes its data-set loop spin forever, and IDs
// below 256 name sets, not templates. An IPFIX template without fields
// is a withdrawal (RFC 7011 8.1).
func checkTemplate(id uint16, rec any) (withdraw bool, err error) {
	var fields [][]nf.Field
	switch r := rec.(type) {
	case nf.TemplateRecord:
		if len(r.Fields) == 0 {
			return true, nil
		}
		fields = [][]nf.Field{r.Fields}
	case nf.NFv9OptionsTemplateRecord:
		fields = [][]nf.Field{r.Scopes, r.Options}
	case nf.IPFIXOptionsTemplateRecord:
		if len(r.Scopes)+len(r.Options) == 0 {
			return true, nil
		}
		fields = [][]nf.Field{r.Scopes, r.Options}
	default:
		return false, fmt.Errorf("template %d: unknown kind %T", id, rec)
	}
	if id < 256 {
		return false, fmt.Errorf("template id %d: data templates are numbered from 256", id)
	}
	n, size := 0, 0
	for _, fs := range fields {
		n += len(fs)
		for _, f := range fs {
			if f.Length == 0xffff {
				size++ // a variable-length field takes at least its length byte
			} else {
				size += int(f.Length)
			}
		}
	}
	if n > maxTemplateFields {
		return false, fmt.Errorf("template %d has %d fields, more than the %d accepted", id, n, maxTemplateFields)
	}
	if size == 0 {
		return false, fmt.Errorf("template %d describes records of zero bytes", id)
	}
	return false, nil
}

// Sniff reports whether payload looks like a flow export (see the
// package function Sniff); with Decode it makes the Decoder a
// flow.ExportDecoder.
func (d *Decoder) Sniff(payload []byte) bool { return Sniff(payload) }
