package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

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

	current atomic.Pointer[pcap.Reader] // for Progress from another goroutine
}

// SourceStats holds both halves of a run's counters.
type SourceStats struct {
	Reader pcap.Stats
	Table  Stats
}

// NewCaptureSource reads inputs (files or directories) with popts and
// builds flows with cfg.
func NewCaptureSource(inputs []string, cfg Config, popts pcap.Options) *CaptureSource {
	return &CaptureSource{inputs: inputs, cfg: cfg, popts: popts}
}

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
	t := NewTable(s.cfg, emit)
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
func (s *CaptureSource) Stats() SourceStats { return SourceStats{Reader: s.reader, Table: s.table} }
