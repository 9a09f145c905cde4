package zeek

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Defaults for Options.
const (
	// DefaultMaxJoin is how many uids of side-log data (dns, ssl, http,
	// files, tunnel) are held for one rotation period: about 400 bytes
	// each with one DNS message, so about 100 MB at the cap.
	DefaultMaxJoin = 1 << 18
	// DefaultReorder is how many Conns are held to put a directory's
	// output in time order (conn.log is written when connections end, so
	// it is ordered by end, not start): with the slabs they sit in, at
	// most about 12 MB (see reorder).
	DefaultReorder = 8192
)

// Options tune a Source. The zero value is ready to use.
type Options struct {
	// MaxJoin caps the uids of side-log data held per period; side
	// records past it are dropped and counted (Stats.DroppedJoins).
	MaxJoin int
	// Reorder is the number of Conns held to restore time order within a
	// directory; negative emits in file order.
	Reorder int
	// MaxLine is the longest line read (DefaultMaxLine).
	MaxLine int
	// Logger receives warnings (slog.Default when nil).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxJoin <= 0 {
		o.MaxJoin = DefaultMaxJoin
	}
	if o.Reorder == 0 {
		o.Reorder = DefaultReorder
	}
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats counts what a Source (or Follower) read.
type Stats struct {
	Files     int64 // log files opened
	Lines     int64 // lines read, headers included
	Records   int64 // Conns emitted
	Side      int64 // side-log records (dns, ssl, http, files, tunnel) read
	Malformed int64 // lines skipped as malformed
	// DroppedJoins counts side-log records not held because the join was
	// full (Options.MaxJoin): their Conns lack those names.
	DroppedJoins int64
	// Unmatched counts uids of side-log data that no conn line claimed
	// (conn logs missing, or connections logged in another period).
	Unmatched int64
}

type counters struct {
	files, lines, records, side, malformed, dropped, unmatched atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Files: c.files.Load(), Lines: c.lines.Load(), Records: c.records.Load(),
		Side: c.side.Load(), Malformed: c.malformed.Load(),
		DroppedJoins: c.dropped.Load(), Unmatched: c.unmatched.Load(),
	}
}

// Source reads Zeek logs (files and directories, TSV or JSON, plain or
// gzip) as a cargowatch.Source.
type Source struct {
	paths []string
	opts  Options
	st    counters

	read, total atomic.Int64
}

// NewSource reads paths: directories of Zeek logs (with their dated
// subdirectories) and log files, each joined with the sibling logs of its
// rotation period.
func NewSource(paths []string, opts Options) *Source {
	return &Source{paths: paths, opts: opts.withDefaults()}
}

// Name implements cargowatch.Source.
func (s *Source) Name() string { return "zeek" }

// Stats returns the counters so far; safe from any goroutine.
func (s *Source) Stats() Stats { return s.st.snapshot() }

// Progress returns the bytes of log files read so far and their total;
// safe from any goroutine.
func (s *Source) Progress() (read, total int64) { return s.read.Load(), s.total.Load() }

// checkEvery is how many lines pass between looks at ctx.
const checkEvery = 4096

// Run reads every input and emits its Conns, each directory's in time
// order (within Options.Reorder). It returns the inputs' problems as
// joined *cargowatch.InputErrors, or ctx's error when cancelled.
func (s *Source) Run(ctx context.Context, emit func(*cw.Conn)) error {
	plans, errs := buildPlan(s.paths)
	for _, p := range plans {
		for _, g := range p.groups {
			for _, f := range g.files {
				if fi, err := os.Stat(f.path); err == nil {
					s.total.Add(fi.Size())
				}
			}
		}
	}
	cv := newConverter()
	for _, p := range plans {
		ro := newReorder(s.opts.Reorder, func(c *cw.Conn) {
			s.st.records.Add(1)
			emit(c)
		})
		for _, g := range p.groups {
			err := s.runGroup(ctx, g, cv, ro)
			if err != nil {
				if ctx.Err() != nil {
					ro.flush()
					return errors.Join(append(errs, ctx.Err())...)
				}
				errs = append(errs, err)
			}
		}
		ro.flush()
	}
	return errors.Join(errs...)
}

// runGroup reads one period: its side logs into a join index, then its
// conn logs, each Conn joined by uid.
func (s *Source) runGroup(ctx context.Context, g *group, cv *converter, ro *reorder) error {
	var errs []error
	conns, sides, firstSide := 0, 0, ""
	for _, f := range g.files {
		switch f.kind {
		case kindConn:
			conns++
		case kindOther:
		default:
			if sides++; sides == 1 {
				firstSide = f.path
			}
		}
	}
	if conns == 0 {
		if sides > 0 {
			// Side logs alone make no Conns: say so rather than emit
			// nothing silently. Periods with only other logs (stats,
			// loaded_scripts) are not read at all.
			return &cw.InputError{Input: firstSide, Err: errors.New("zeek: no conn log of the same period to join with; no records from it")}
		}
		return nil
	}
	idx := newJoinIndex(s.opts.MaxJoin, cv.in)
	for _, f := range g.files {
		if f.kind == kindConn || f.kind == kindOther {
			continue
		}
		err := s.readFile(ctx, f.path, func(r *record) error {
			s.st.side.Add(1)
			return idx.add(f.kind, r)
		}, nil)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
		}
	}
	if idx.dropped > 0 {
		s.opts.Logger.Warn("zeek: join full, side-log records dropped", "dir", g.dir, "period", g.label(), "held", idx.len(), "dropped", idx.dropped)
		s.st.dropped.Add(idx.dropped)
	}
	for _, f := range g.files {
		if f.kind != kindConn {
			continue
		}
		open := strings.HasPrefix(f.logPath, "open_")
		src := f.path
		// Most lines take the fast path, straight from the line into the
		// Conn; a line it does not vouch for goes through the record.
		fast := func(p *parser, line []byte) bool {
			pl := p.hdr.fastPlan(line)
			if pl == nil {
				return false
			}
			c := ro.slot()
			parent, ok := pl.conn(line, c, cv)
			if !ok {
				ro.abandon(c)
				return false
			}
			c.Open = open
			c.Source = src
			idx.attach(c, parent)
			ro.commit()
			return true
		}
		err := s.readFile(ctx, f.path, func(r *record) error {
			c := ro.slot()
			if err := cv.fill(r, c); err != nil {
				ro.abandon(c)
				return err
			}
			c.Open = open
			c.Source = src
			idx.attach(c, tunnelParent(r))
			ro.commit()
			return nil
		}, fast)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
		}
	}
	s.st.unmatched.Add(idx.unmatched())
	return errors.Join(errs...)
}

// readFile reads one log and calls fn for every data line; lines that do
// not parse or that fn refuses are counted and skipped. Problems are
// returned as an *InputError naming the file. fast, when not nil, is
// offered every line first; it returns true when it took the line as a
// good record, false to leave it to the parser and fn.
func (s *Source) readFile(ctx context.Context, path string, fn func(*record) error, fast func(*parser, []byte) bool) error {
	s.st.files.Add(1)
	rd, closeFn, err := openLog(path, &s.read)
	if err != nil {
		return &cw.InputError{Input: path, Err: fmt.Errorf("zeek: %w", err)}
	}
	defer closeFn()
	p := newParser(path, s.opts.Logger)
	var good int64
	lr := newLineReader(rd, s.opts.MaxLine)
	var readErr error
	for {
		if p.line%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b, err := lr.next()
		if err == errLineTooLong {
			p.line++
			p.bad(fmt.Errorf("longer than %d bytes", s.opts.MaxLine))
			if lr.err != nil {
				err = lr.err
			} else {
				continue
			}
		}
		if err != nil && err != io.EOF {
			// A cut gzip stream: what came before stands; the partial
			// line at the cut is not trusted.
			if len(b) > 0 {
				p.line++
			}
			readErr = fmt.Errorf("read after line %d: %w", p.line, err)
			break
		}
		if err == io.EOF && len(b) == 0 {
			break
		}
		if fast != nil && fast(p, b) {
			p.line++
			good++
		} else {
			r, perr := p.parse(b)
			if perr == nil && r != nil {
				perr = fn(r)
				if perr == nil {
					good++
				}
			}
			if perr != nil {
				p.bad(perr)
			}
		}
		if err == io.EOF {
			break
		}
	}
	s.st.lines.Add(p.line)
	s.st.malformed.Add(p.malformed)
	// Malformed lines among good ones are warned about and counted, like
	// malformed packets in a capture: the file is still usable. A file
	// with no good line at all, or cut short, is an input error.
	sum := p.summary()
	if sum != nil && good > 0 {
		s.opts.Logger.Warn("zeek: malformed lines skipped", "file", path, "summary", sum)
		sum = nil
	}
	err = errors.Join(readErr, sum)
	if err != nil {
		if readErr != nil {
			s.opts.Logger.Warn("zeek: log cut short", "file", path, "err", readErr)
		}
		return &cw.InputError{Input: path, Err: fmt.Errorf("zeek: %w", err)}
	}
	return nil
}

// reorder holds up to n Conns in a min-heap by start time and emits the
// earliest when full: conn.log is written as connections end, so a
// bounded window puts starts back in order for all but the long ones.
// The key sits beside the Conn's slot so that sifting never touches a
// Conn (with pointers alone the cache misses took a third of the time),
// and a full heap replaces its top in one sift rather than a pop and a
// push.
//
// Conns are filled in place in slabs (connSlab). A held Conn keeps its
// whole slab alive, so one that stays held for long (a start time far
// ahead of its neighbours') would pin a slab per Conn: every window's
// worth of slabs, the held Conns are scanned and those from slabs older
// than that are copied to the current one. Held Conns thus pin the slabs of at
// most the last two windows (2n Conns, about 12 MB at DefaultReorder).
type reorder struct {
	h []held
	n int
	// Held Conns by slot, with the serial of their slab; free lists the
	// slots not in use. The heap entries name slots so that they stay
	// small and hold no pointers.
	conns []*cw.Conn
	slabs []int64
	free  []int32
	slab  connSlab
	// age is the window in slabs; scanned is the slab serial of the
	// last scan for old Conns.
	age, scanned int64
	emit         func(*cw.Conn)
}

type held struct {
	ts int64
	i  int32
}

func newReorder(n int, emit func(*cw.Conn)) *reorder {
	return &reorder{n: n, emit: emit, age: max(int64(n)/connSlabSize, 1)}
}

// slot returns a zero Conn to fill; commit then takes it, or abandon
// clears it after a failed fill. One slot is out at a time.
func (r *reorder) slot() *cw.Conn { return r.slab.peek() }

func (r *reorder) abandon(c *cw.Conn) { *c = cw.Conn{} }

// commit takes the Conn filled in the slot last handed out.
func (r *reorder) commit() {
	c := r.slab.next()
	if r.n <= 0 {
		r.emit(c)
		return
	}
	if r.slab.serial-r.scanned >= r.age {
		r.relocate()
	}
	ts := c.TS.UnixNano()
	if len(r.h) < r.n {
		r.h = append(r.h, held{ts: ts, i: r.hold(c)})
		r.up(len(r.h) - 1)
		return
	}
	if ts <= r.h[0].ts {
		r.emit(c) // no later than anything held
		return
	}
	// Replace the top: its slot takes c.
	i := r.h[0].i
	out := r.conns[i]
	r.conns[i], r.slabs[i] = c, r.slab.serial
	r.h[0].ts = ts
	r.down(0)
	r.emit(out)
}

// hold puts c in a free slot.
func (r *reorder) hold(c *cw.Conn) int32 {
	if len(r.free) == 0 {
		r.conns = append(r.conns, c)
		r.slabs = append(r.slabs, r.slab.serial)
		return int32(len(r.conns) - 1)
	}
	i := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.conns[i], r.slabs[i] = c, r.slab.serial
	return i
}

// relocate moves held Conns out of slabs older than the window.
func (r *reorder) relocate() {
	r.scanned = r.slab.serial
	for i, c := range r.conns {
		if c != nil && r.slab.serial-r.slabs[i] > r.age {
			nc := r.slab.next()
			*nc = *c
			r.conns[i], r.slabs[i] = nc, r.slab.serial
		}
	}
}

func (r *reorder) up(i int) {
	h := r.h
	for i > 0 {
		p := (i - 1) / 2
		if h[p].ts <= h[i].ts {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (r *reorder) down(i int) {
	h := r.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if rt := l + 1; rt < len(h) && h[rt].ts < h[l].ts {
			m = rt
		}
		if h[i].ts <= h[m].ts {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (r *reorder) flush() {
	slices.SortStableFunc(r.h, func(a, b held) int { return cmp.Compare(a.ts, b.ts) })
	for _, e := range r.h {
		c := r.conns[e.i]
		r.conns[e.i] = nil
		r.free = append(r.free, e.i)
		r.emit(c)
	}
	r.h = r.h[:0]
}

// logFile is one file of a group.
type logFile struct {
	path    string
	logPath string
	kind    int
}

// group is one rotation period of one directory: the logs joined together.
type group struct {
	dir, prefix, tag string
	start            time.Time
	files            []logFile
}

func (g *group) label() string {
	if g.tag == "" {
		return g.prefix + "current"
	}
	return g.prefix + g.tag
}

type dirPlan struct {
	dir    string
	groups []*group
}

// buildPlan lists the inputs' logs by directory and period, in time order.
func buildPlan(paths []string) ([]*dirPlan, []error) {
	var errs []error
	dirs := map[string]*dirPlan{}
	var order []*dirPlan
	seen := map[string]bool{}
	groups := map[string]*group{}
	add := func(dir, path string, n logName, fromName bool) {
		abs, err := filepath.Abs(path)
		if err == nil {
			if seen[abs] {
				return
			}
			seen[abs] = true
		}
		// Dated subdirectories belong to their parent's plan, so that a
		// day's archives and the live logs are ordered together.
		planDir := dir
		if isDateDir(filepath.Base(dir)) {
			planDir = filepath.Dir(dir)
		}
		p := dirs[planDir]
		if p == nil {
			p = &dirPlan{dir: planDir}
			dirs[planDir] = p
			order = append(order, p)
		}
		key := dir + "\x00" + n.prefix + "\x00" + n.tag
		if !fromName {
			key += "\x00" + path // a file named its own way is its own group
		}
		g := groups[key]
		if g == nil {
			g = &group{dir: dir, prefix: n.prefix, tag: n.tag, start: tagTime(dir, n.tag)}
			groups[key] = g
			p.groups = append(p.groups, g)
		}
		g.files = append(g.files, logFile{path: path, logPath: n.path, kind: kindOf(n.path)})
	}
	listDir := func(dir string, filter func(logName) bool) int {
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, &cw.InputError{Input: dir, Err: fmt.Errorf("zeek: %w", err)})
			return 0
		}
		n := 0
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			ln, ok := parseName(e.Name())
			if !ok || (filter != nil && !filter(ln)) {
				continue
			}
			add(dir, filepath.Join(dir, e.Name()), ln, true)
			n++
		}
		return n
	}
	for _, in := range paths {
		fi, err := os.Stat(in)
		if err != nil {
			errs = append(errs, &cw.InputError{Input: in, Err: fmt.Errorf("zeek: %w", err)})
			continue
		}
		if fi.IsDir() {
			n := listDir(in, nil)
			ents, _ := os.ReadDir(in)
			for _, e := range ents {
				if e.IsDir() && isDateDir(e.Name()) {
					n += listDir(filepath.Join(in, e.Name()), nil)
				}
			}
			if n == 0 {
				errs = append(errs, &cw.InputError{Input: in, Err: errors.New("zeek: no Zeek logs in directory")})
			}
			continue
		}
		dir := filepath.Dir(in)
		// A name says the log's type only when it is one Zeek gives
		// (conn.log, dns.2026-...log.gz, x.zeek-conn.log); a file named
		// its own way (mylog.log, capture1.log) says it in its content.
		if ln, ok := parseName(filepath.Base(in)); ok && (kindOf(ln.path) != kindOther || knownPaths[ln.path]) {
			if kindOf(ln.path) == kindOther {
				errs = append(errs, &cw.InputError{Input: in, Err: fmt.Errorf("zeek: %w", unusedLog(ln.path))})
				continue
			}
			// The file and its siblings of the same period.
			add(dir, in, ln, true)
			listDir(dir, func(o logName) bool { return o.prefix == ln.prefix && o.tag == ln.tag })
			continue
		}
		lp, err := pathFromContent(in)
		if err == nil && kindOf(lp) == kindOther {
			err = unusedLog(lp)
		}
		if err != nil {
			errs = append(errs, &cw.InputError{Input: in, Err: fmt.Errorf("zeek: %w", err)})
			continue
		}
		add(dir, in, logName{path: lp}, false)
	}
	for _, p := range order {
		slices.SortStableFunc(p.groups, func(a, b *group) int {
			// Dated periods first in time order, then undated ones (the
			// live files) by name.
			az, bz := a.start.IsZero(), b.start.IsZero()
			if az != bz {
				if az {
					return 1
				}
				return -1
			}
			if c := a.start.Compare(b.start); c != 0 {
				return c
			}
			return cmp.Compare(a.dir+a.prefix+a.tag, b.dir+b.prefix+b.tag)
		})
		for _, g := range p.groups {
			// conn.log before open_conn.log; side logs in a stable order.
			slices.SortFunc(g.files, func(a, b logFile) int { return cmp.Compare(a.path, b.path) })
		}
	}
	return order, errs
}

// unusedLog says why a Zeek log given by name gives no Conns.
func unusedLog(path string) error {
	return fmt.Errorf("a Zeek %s log: cargowatch reads conn logs (RITA's open_conn too), joined with dns, ssl, http, files and tunnel logs", path)
}

// pathFromContent reads a log's path from its header (#path, or _path in
// JSON), or guesses conn from its fields, for files not named as Zeek
// names them.
func pathFromContent(path string) (string, error) {
	rd, closeFn, err := openLog(path, nil)
	if err != nil {
		return "", err
	}
	defer closeFn()
	lr := newLineReader(rd, DefaultMaxLine)
	p := newParser(path, nil)
	for i := 0; i < 64; i++ {
		b, err := lr.next()
		if err != nil && (err != io.EOF || len(b) == 0) {
			break
		}
		r, perr := p.parse(b)
		if p.hdr.path != "" {
			return p.hdr.path, nil
		}
		if perr == nil && r != nil {
			if r.has(fPath) {
				return r.str(fPath), nil
			}
			if r.has(fConnState) || r.has(fOrigPkts) {
				return "conn", nil
			}
			break
		}
		if err == io.EOF {
			break
		}
	}
	return "", errors.New("not a Zeek log: no #path header, _path field or conn fields")
}
