// Package suricata reads Suricata EVE JSON logs (one event per line,
// plain or gzip-compressed) as a cargowatch Source.
//
// Flow and netflow events become Conn records; dns, tls, http, fileinfo
// and alert events are joined to the Conn of the same flow_id. Suricata
// writes a flow's event when the flow ends, after its app events, so
// those wait in a pending table until the flow event comes. Events of
// other types are counted and skipped.
//
// Memory is bounded whatever the input: a line longer than
// Options.MaxLine (1 MiB) is skipped without being buffered; at most
// Options.MaxPending (65,536) flows wait for their flow event, holding at
// most Options.MaxPendingBytes (64 MiB, approximate accounting) of joined
// data, beyond which the oldest are dropped and counted (Stats.Evicted);
// each flow keeps at most 64 DNS messages of 32 answers, 32 HTTP requests
// and 32 distinct alerts, with strings clipped (names 255 bytes, URIs
// 4 KiB); 16,384 emitted flow ids are remembered to recognise late app
// events and netflow records of flows already logged as flow events; lone
// netflow halves wait at most Options.NetflowWindow (10,000) events for
// their reverse. docs/SOURCES.md has the field mapping.
package suricata

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Options bound the reader's memory; zero values mean defaults.
type Options struct {
	// MaxPending is how many flows may wait for their flow event with app
	// events attached (default 65,536).
	MaxPending int
	// MaxPendingBytes bounds what those flows hold (default 64 MiB).
	MaxPendingBytes int
	// MaxLine is the longest line read (default 1 MiB); longer lines are
	// skipped and counted as malformed.
	MaxLine int
	// NetflowWindow is how many events a netflow record waits for the
	// record of the other direction (default 10,000).
	NetflowWindow int
	// MaxLogged is how many malformed lines per file are logged one by
	// one (default 5); the rest are summed up at the end of the file.
	MaxLogged int
	// Log receives warnings about the input (default slog.Default()).
	Log *slog.Logger
}

const (
	defaultMaxPending      = 1 << 16
	defaultMaxPendingBytes = 64 << 20
	defaultMaxLine         = 1 << 20
	defaultNetflowWindow   = 10000
	defaultMaxLogged       = 5
	maxTypes               = 64 // distinct event types counted by name
	readBufSize            = 256 << 10
	checkEvery             = 4096
)

func (o *Options) defaults() {
	if o.MaxPending <= 0 {
		o.MaxPending = defaultMaxPending
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = defaultMaxPendingBytes
	}
	if o.MaxLine <= 0 {
		o.MaxLine = defaultMaxLine
	}
	if o.NetflowWindow <= 0 {
		o.NetflowWindow = defaultNetflowWindow
	}
	if o.MaxLogged <= 0 {
		o.MaxLogged = defaultMaxLogged
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Stats counts what the source read. Every line is counted once in
// Lines and, unless blank, in exactly one of Malformed, Ignored or
// Types (by event type).
type Stats struct {
	Files     int64 // files read
	Skipped   int64 // files in input directories that are not EVE
	Truncated int64 // files cut short (damaged gzip)
	Lines     int64
	Malformed int64 // lines that are not EVE events (bad JSON, too long, bad fields)
	Ignored   int64 // events of types cargowatch does not use
	// Types counts events by event_type (at most 64 names; the rest
	// under "other").
	Types map[string]int64

	Flows    int64 // flow events
	Netflows int64 // netflow records (two per answered flow)
	Conns    int64 // Conns emitted

	Joined        int64 // app events attached to a Conn
	Orphaned      int64 // app events whose flow event never came
	OrphanedFlows int64 // flows those events belonged to
	Evicted       int64 // app events dropped to keep the pending table bounded
	EvictedFlows  int64
	Late          int64 // app events that came after their flow's event
	AlertsDropped int64 // distinct alerts beyond 32 on one flow
	// NetflowDuplicates counts netflow records of flows that a flow event
	// also reported (both logs enabled): the flow event is kept.
	NetflowDuplicates int64
}

// Source reads EVE files; it implements cargowatch.Source.
type Source struct {
	paths []string
	opts  Options
	stats Stats

	read, total atomic.Int64
}

// NewSource reads paths: files, or directories searched recursively for
// EVE files (recognised by content, so eve.json, eve.json.1.gz and
// alert-only files all count).
func NewSource(paths []string, opts Options) *Source {
	opts.defaults()
	return &Source{paths: paths, opts: opts}
}

// Name implements cargowatch.Source.
func (s *Source) Name() string { return "suricata" }

// Stats returns the counters of the last Run.
func (s *Source) Stats() Stats { return s.stats }

// Progress returns the bytes read so far (compressed bytes for gzip
// files) and the inputs' size on disk; safe from any goroutine.
func (s *Source) Progress() (read, total int64) { return s.read.Load(), s.total.Load() }

// file is one input file with the time of its first event, for ordering.
type file struct {
	path  string
	first time.Time
	size  int64
}

// Run reads every file, oldest first, and emits Conns. Unusable or
// damaged files are returned as *cargowatch.InputError (joined); the
// others are read whole. A cancelled ctx stops the reading; what was
// complete is emitted, and ctx's error is returned.
func (s *Source) Run(ctx context.Context, emit func(*cw.Conn)) error {
	s.stats = Stats{Types: map[string]int64{}}
	s.read.Store(0)
	s.total.Store(0)
	var errs []error
	files := s.collect(&errs)
	for _, f := range files {
		s.total.Add(f.size)
	}
	j := newJoiner(s.opts, &s.stats, emit)
	var runErr error
	for _, f := range files {
		if err := s.readFile(ctx, f, j, &errs); err != nil {
			runErr = err
			break
		}
	}
	j.finish()
	if s.stats.Orphaned > 0 {
		s.opts.Log.Warn("suricata: app events whose flow event never came were not attached to any flow",
			"events", s.stats.Orphaned, "flows", s.stats.OrphanedFlows, "hint", orphanHint(&s.stats))
	}
	if s.stats.Evicted > 0 {
		s.opts.Log.Warn("suricata: too many flows waited for their flow event; the oldest's app events were dropped",
			"events", s.stats.Evicted, "flows", s.stats.EvictedFlows, "max_pending", s.opts.MaxPending)
	}
	if s.stats.Late > 0 {
		s.opts.Log.Info("suricata: app events came after their flow's event and were not attached", "events", s.stats.Late)
	}
	return errors.Join(append([]error{runErr}, errs...)...)
}

func orphanHint(st *Stats) string {
	if st.Flows == 0 && st.Netflows == 0 {
		return "the input has no flow events: enable the flow type in suricata.yaml's eve-log"
	}
	return "the log starts or ends inside those flows, or flow logging was off for a while"
}

// collect expands directories and orders the files by their first event.
func (s *Source) collect(errs *[]error) []file {
	var out []file
	seen := map[string]bool{}
	add := func(path string, explicit bool) {
		abs, _ := filepath.Abs(path)
		if seen[abs] {
			return
		}
		seen[abs] = true
		f, err := s.probe(path)
		switch {
		case err == nil:
			out = append(out, f)
		case explicit:
			*errs = append(*errs, &cw.InputError{Input: path, Err: fmt.Errorf("suricata: %w", err)})
		default:
			s.stats.Skipped++
			s.opts.Log.Debug("suricata: skipping a file that is not EVE", "path", path, "reason", err)
		}
	}
	for _, in := range s.paths {
		fi, err := os.Stat(in)
		if err != nil {
			*errs = append(*errs, &cw.InputError{Input: in, Err: pathReason(err)})
			continue
		}
		if !fi.IsDir() {
			add(in, true)
			continue
		}
		found := len(out)
		werr := filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == in {
					return err
				}
				*errs = append(*errs, &cw.InputError{Input: path, Err: pathReason(err)})
				return nil
			}
			if d.Type().IsRegular() {
				add(path, false)
			}
			return nil
		})
		if werr != nil {
			*errs = append(*errs, &cw.InputError{Input: in, Err: pathReason(werr)})
		} else if len(out) == found {
			*errs = append(*errs, &cw.InputError{Input: in, Err: errors.New("no Suricata EVE files in directory")})
		}
	}
	slices.SortStableFunc(out, func(a, b file) int {
		// Files without a readable first time go last, in name order.
		if c := cmp.Compare(boolInt(a.first.IsZero()), boolInt(b.first.IsZero())); c != 0 {
			return c
		}
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return cmp.Compare(a.path, b.path)
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// probe checks that path holds EVE and reads the time of its first event.
func (s *Source) probe(path string) (file, error) {
	f, err := os.Open(path)
	if err != nil {
		return file{}, pathReason(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return file{}, pathReason(err)
	}
	if fi.Size() == 0 {
		return file{}, errors.New("empty file")
	}
	head := make([]byte, sniffLen)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !Sniff(head) {
		return file{}, errors.New("not Suricata EVE JSON (no event_type and timestamp in its first line)")
	}
	out := file{path: path, size: fi.Size()}
	if plain, err := gunzipHead(head); err == nil {
		line, _, _ := bytes.Cut(bytes.TrimLeft(bytes.TrimPrefix(plain, []byte(bom)), " \t\r\n"), []byte("\n"))
		var h struct {
			Timestamp string `json:"timestamp"`
		}
		if jsonUnmarshal(line, &h) == nil {
			out.first, _ = parseTime(h.Timestamp)
		}
	}
	return out, nil
}

// countingReader adds what it reads to n, for Progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readFile feeds every line of f to j. Problems with the file become
// InputErrors in errs; the returned error is ctx's.
func (s *Source) readFile(ctx context.Context, f file, j *joiner, errs *[]error) error {
	fh, err := os.Open(f.path)
	if err != nil {
		*errs = append(*errs, &cw.InputError{Input: f.path, Err: pathReason(err)})
		return nil
	}
	defer fh.Close()
	s.stats.Files++
	br := bufio.NewReaderSize(countingReader{fh, &s.read}, readBufSize)
	var rd io.Reader = br
	gz := false
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			*errs = append(*errs, &cw.InputError{Input: f.path, Err: fmt.Errorf("suricata: gzip: %w", err)})
			return nil
		}
		defer z.Close()
		z.Multistream(true)
		rd, gz = z, true
	}
	lr := newLineReader(rd, s.opts.MaxLine)
	var (
		lineNo, events, malformed int64
		logged                    int
	)
	bad := func(n int64, reason error) {
		malformed++
		s.stats.Malformed++
		if logged < s.opts.MaxLogged {
			logged++
			s.opts.Log.Warn(fmt.Sprintf("suricata: %s:%d: %v", f.path, n, reason))
		}
	}
	for {
		if lineNo%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := lr.next()
		if err != nil && !errors.Is(err, errLineTooLong) {
			if err == io.EOF {
				break
			}
			// The file ends in damage: keep what came before.
			s.stats.Truncated++
			reason := err
			if errors.Is(err, io.ErrUnexpectedEOF) {
				reason = errors.New("truncated")
			}
			kind := "file"
			if gz {
				kind = "gzip stream"
			}
			*errs = append(*errs, &cw.InputError{Input: f.path,
				Err: fmt.Errorf("suricata: %s damaged after line %d (%v); the %d events before it were read", kind, lineNo, reason, events)})
			break
		}
		lineNo++
		s.stats.Lines++
		if errors.Is(err, errLineTooLong) {
			bad(lineNo, fmt.Errorf("line longer than %d bytes skipped", s.opts.MaxLine))
			continue
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte(bom))
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if typ, ok := eventType(line); ok && !wanted(typ) {
			s.countType(typ)
			s.stats.Ignored++
			events++
			continue
		}
		e, err := parseEvent(line)
		if err != nil {
			bad(lineNo, err)
			continue
		}
		if err := j.event(e, f.path); err != nil {
			bad(lineNo, fmt.Errorf("%s event: %w", clip(e.EventType, 32), err))
			continue
		}
		s.countType(e.EventType)
		if !wanted(e.EventType) {
			s.stats.Ignored++
		}
		events++
	}
	if extra := int(malformed) - logged; extra > 0 {
		s.opts.Log.Warn(fmt.Sprintf("suricata: %s: %d more malformed lines not shown", f.path, extra))
	}
	if events == 0 && malformed > 0 {
		*errs = append(*errs, &cw.InputError{Input: f.path,
			Err: fmt.Errorf("suricata: no EVE events in %d lines (all malformed)", malformed)})
	}
	return nil
}

// wanted reports whether events of type t are decoded.
func wanted(t string) bool {
	switch t {
	case "flow", "netflow", "dns", "tls", "http", "fileinfo", "alert":
		return true
	}
	return false
}

func (s *Source) countType(t string) {
	t = clip(t, 32)
	if _, ok := s.stats.Types[t]; ok || len(s.stats.Types) < maxTypes {
		s.stats.Types[t]++
		return
	}
	s.stats.Types["other"]++
}

// pathReason strips the path that os errors repeat, since InputError
// already names the input.
func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var errLineTooLong = errors.New("line too long")

// lineReader returns lines of at most max bytes without ever buffering
// more: a longer line is discarded up to its newline.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufSize), max: max}
}

// next returns the following line without its newline, valid until the
// next call; errLineTooLong for a line over the bound (consumed);
// io.EOF at a clean end; another error when reading failed, after the
// complete lines before it.
func (l *lineReader) next() ([]byte, error) {
	l.buf = l.buf[:0]
	over := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !over {
			if len(l.buf)+len(chunk) > l.max+1 {
				over = true
				l.buf = l.buf[:0]
			} else {
				if len(l.buf) == 0 && err == nil {
					return chunk[:len(chunk)-1], nil // the common case: no copy
				}
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if over {
				return nil, errLineTooLong
			}
			return l.buf[:len(l.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if over {
				return nil, errLineTooLong
			}
			if len(l.buf) > 0 {
				// A last line without its newline.
				return l.buf, nil
			}
			return nil, io.EOF
		default:
			// A damaged stream: the partial line is not trusted.
			return nil, err
		}
	}
}
