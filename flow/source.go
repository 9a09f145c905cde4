package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"
)

// CaptureSource reads pcap/pcapng inputs (merged in time order by
// pcap.Reader) through a flow table: a cargowatch.Source of Conns.
type CaptureSource struct {
	inputs []string
	cfg    Config
	popts  pcap.Options

	reader pcap.Stats
	table  Stats

	exports  ExportDecoder
	exportSt ExportStats

	current atomic.Pointer[pcap.Reader] // for Progress from another goroutine
}

// SourceStats holds both halves of a run's counters.
type SourceStats struct {
	Reader pcap.Stats
	Table  Stats
	// Exports counts the flow-export datagrams decoded (DecodeExports).
	Exports ExportStats
}

// ExportDecoder reads flow-export datagrams (NetFlow, IPFIX, sFlow):
// netflow.Decoder is one. Sniff says whether a UDP payload looks like an
// export whatever its ports; Decode emits its flow records as Conns.
type ExportDecoder interface {
	Sniff(payload []byte) bool
	Decode(exporter netip.AddrPort, now time.Time, payload []byte, emit func(*cw.Conn)) error
}

// ExportStats counts the export datagrams a capture held.
type ExportStats struct {
	Datagrams int64 // accepted by Sniff and decoded
	Errors    int64 // of which Decode could not read all
	// FirstError is the first Decode error, naming the exporter.
	FirstError string `json:",omitempty"`
}

// NewCaptureSource reads inputs (files or directories) with popts and
// builds flows with cfg.
func NewCaptureSource(inputs []string, cfg Config, popts pcap.Options) *CaptureSource {
	return &CaptureSource{inputs: inputs, cfg: cfg, popts: popts}
}

// DecodeExports makes Run also decode the UDP datagrams that dec.Sniff
// accepts — a capture taken between exporters and their collector — and
// emit their flow records as Conns, besides the capture's own
// conversations (the export traffic itself among them). Datagrams are
// decoded in capture order with the capture time as their arrival.
func (s *CaptureSource) DecodeExports(dec ExportDecoder) { s.exports = dec }

// Name implements cargowatch.Source.
func (s *CaptureSource) Name() string { return "pcap" }

// checkEvery is how many packets pass between looks at ctx: often enough
// to stop within milliseconds, rarely enough to cost nothing.
const checkEvery = 4096

// Run feeds every packet to a flow table and emits the Conns, flushing
// the table at the end. It returns the inputs' *cargowatch.InputErrors
// joined, or ctx's error when cancelled (after emitting what was open).
func (s *CaptureSource) Run(ctx context.Context, emit func(*cw.Conn)) error {
	r := pcap.NewReader(s.inputs, s.popts)
	defer r.Close()
	s.current.Store(r)
	cfg := s.cfg
	s.exportSt = ExportStats{}
	// input is the file of the packet being added: exported flows decoded
	// from it are named "FILE#netflow://EXPORTER", so that a store that
	// already holds the capture does not take them again.
	var input string
	if s.exports != nil {
		exportEmit := func(c *cw.Conn) {
			c.Source = input + "#" + c.Source
			emit(c)
		}
		tap := cfg.UDPTap
		cfg.UDPTap = func(ts time.Time, src, dst netip.AddrPort, payload []byte) {
			if tap != nil {
				tap(ts, src, dst, payload)
			}
			if !s.exports.Sniff(payload) {
				return
			}
			s.exportSt.Datagrams++
			if err := s.exports.Decode(src, ts, payload, exportEmit); err != nil {
				s.exportSt.Errors++
				if s.exportSt.FirstError == "" {
					s.exportSt.FirstError = err.Error()
				}
			}
		}
	}
	t := NewTable(cfg, emit)
	var runErr error
	for n := 0; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				runErr = err
				break
			}
		}
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Next reports input problems through Errors; anything else
			// ends the run with context.
			runErr = fmt.Errorf("flow: reading captures: %w", err)
			break
		}
		input = p.Input
		t.Add(p)
	}
	t.Flush()
	s.reader, s.table = r.Stats(), t.Stats()
	return errors.Join(append([]error{runErr}, r.Errors()...)...)
}

// Progress returns the capture bytes read so far and their total; safe to
// call from any goroutine while Run runs.
func (s *CaptureSource) Progress() (read, total int64) {
	if r := s.current.Load(); r != nil {
		return r.Progress()
	}
	return 0, 0
}

// Stats returns the counters of the last Run.
func (s *CaptureSource) Stats() SourceStats {
	return SourceStats{Reader: s.reader, Table: s.table, Exports: s.exportSt}
}
