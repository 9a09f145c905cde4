package zeek

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// FollowConfig tunes a Follower. The zero value polls every second and
// keeps no state across restarts.
type FollowConfig struct {
	// StatePath is the file where the position in each log is kept, so a
	// restart resumes where the last run stopped; "" keeps none (a start
	// reads the live logs from their beginning).
	StatePath string
	// Poll is how often the logs are looked at (default 1 s).
	Poll time.Duration
	// MaxJoin caps the uids of side-log data held (two generations of
	// half each; the older is forgotten when the newer fills).
	MaxJoin int
	// MaxLine is the longest line read (DefaultMaxLine).
	MaxLine int
	// Logger receives warnings (slog.Default when nil).
	Logger *slog.Logger
}

// followed are the live logs a Follower tails; side logs come first in
// each poll so that names are indexed before the conn lines that need
// them (Zeek writes dns, ssl and http lines before the conn line, which
// waits for the connection's end).
var followed = []string{"dns", "ssl", "http", "files", "tunnel", "conn"}

// headMax is how much of a file's start identifies it beside its inode:
// enough to hold a TSV header's #open time or a JSON line's uid.
const headMax = 4096

// maxHeaderBytes bounds the header block re-read when resuming a log.
const maxHeaderBytes = 1 << 20

// fileID identifies a log across renames (device and inode) and across
// compression (a hash of its first HeadLen bytes).
type fileID struct {
	Dev      uint64 `json:"dev"`
	Ino      uint64 `json:"ino"`
	HeadLen  int64  `json:"head_len"`
	HeadHash string `json:"head_hash"`
}

type logState struct {
	fileID
	Offset int64 `json:"offset"`
}

type followState struct {
	Version int                 `json:"version"`
	Dir     string              `json:"dir"`
	Logs    map[string]logState `json:"logs"`
}

// tail is one live log being followed.
type tail struct {
	name, path string
	kind       int
	f          *os.File
	id         fileID
	off        int64 // bytes consumed: the end of the last complete line
	p          *parser
	skipping   bool // inside a line longer than MaxLine
}

// Follower tails the live Zeek logs of a directory (conn.log and the side
// logs it joins) across Zeek's rotations: a cargowatch.Source for the
// collector. A rotated file is finished through its open descriptor
// (whatever it was renamed or compressed to) before the new one is read;
// with a state file, a restart resumes where the last run stopped, and
// reads the archives rotated while it was down.
type Follower struct {
	dir   string
	cfg   FollowConfig
	st    counters
	tails []*tail
	cv    *converter
	cur   *joinIndex
	old   *joinIndex
	emit  func(*cw.Conn)
	dirty bool
	buf   []byte
}

// NewFollower follows the logs in dir.
func NewFollower(dir string, cfg FollowConfig) *Follower {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxJoin <= 0 {
		cfg.MaxJoin = DefaultMaxJoin
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fl := &Follower{dir: dir, cfg: cfg, cv: newConverter()}
	for _, n := range followed {
		fl.tails = append(fl.tails, &tail{name: n, path: filepath.Join(dir, n+".log"), kind: kindOf(n)})
	}
	fl.cur = newJoinIndex(cfg.MaxJoin/2+1, fl.cv.in)
	fl.old = newJoinIndex(0, fl.cv.in)
	return fl
}

// Name implements cargowatch.Source.
func (fl *Follower) Name() string { return "zeek-follow" }

// Stats returns the counters so far; safe from any goroutine.
func (fl *Follower) Stats() Stats { return fl.st.snapshot() }

// Run follows the logs until ctx is done, then saves its state and
// returns nil, or the *cargowatch.InputErrors met on the way (a state file
// that cannot be read or written, a log that cannot be read).
func (fl *Follower) Run(ctx context.Context, emit func(*cw.Conn)) error {
	fl.emit = emit
	if fi, err := os.Stat(fl.dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return &cw.InputError{Input: fl.dir, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	var errs []error
	state, err := fl.loadState()
	if err != nil {
		errs = append(errs, err)
	}
	for _, t := range fl.tails {
		if err := fl.start(ctx, t, state.Logs[t.name]); err != nil {
			errs = append(errs, err)
		}
	}
	defer func() {
		for _, t := range fl.tails {
			if t.f != nil {
				t.f.Close()
			}
		}
	}()
	tick := time.NewTicker(fl.cfg.Poll)
	defer tick.Stop()
	for {
		for _, t := range fl.tails {
			if ctx.Err() != nil {
				break
			}
			if err := fl.poll(ctx, t); err != nil {
				errs = append(errs, err)
				fl.cfg.Logger.Warn("zeek: follow", "err", err)
			}
		}
		if err := fl.saveState(); err != nil {
			errs = append(errs, err)
			fl.cfg.Logger.Warn("zeek: follow: saving state", "err", err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-tick.C:
		}
	}
}

// start opens a log at the position the state kept, after reading what
// was rotated away while the follower was down.
func (fl *Follower) start(ctx context.Context, t *tail, st logState) error {
	fi, err := os.Stat(t.path)
	if st.HeadHash == "" && st.Offset == 0 && st.Ino == 0 {
		if err == nil {
			return fl.open(t, 0)
		}
		return nil
	}
	if err == nil && fl.same(t.path, fi, st.fileID, false) {
		return fl.open(t, st.Offset)
	}
	// The file of the state was rotated while we were down: finish it
	// from its archive, then read any later archives whole.
	arch := fl.archives(t.name)
	found := -1
	for i, a := range arch {
		if afi, err := os.Stat(a); err == nil && fl.same(a, afi, st.fileID, true) {
			found = i
			break
		}
	}
	var errs []error
	if found < 0 {
		fl.cfg.Logger.Warn("zeek: follow: the log of the saved state is gone; reading the live one from its start",
			"log", t.path, "offset", st.Offset)
		errs = append(errs, &cw.InputError{Input: t.path, Err: fmt.Errorf("zeek: follow: log of the saved state (inode %d, offset %d) not found among its archives", st.Ino, st.Offset)})
	} else {
		for i, a := range arch[found:] {
			skip := int64(0)
			if i == 0 {
				skip = st.Offset
			}
			if err := fl.readArchive(ctx, t, a, skip); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err == nil {
		if err := fl.open(t, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// same reports whether path is the file id names: same inode (when not
// compressed since) and the same first bytes.
func (fl *Follower) same(path string, fi os.FileInfo, id fileID, allowCompressed bool) bool {
	dev, ino := devIno(fi)
	sameIno := id.Ino != 0 && dev == id.Dev && ino == id.Ino
	if !sameIno && !allowCompressed {
		return false
	}
	if id.HeadLen == 0 {
		return sameIno
	}
	var r io.Reader
	var closeFn func() error
	if sameIno {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		r, closeFn = f, f.Close
	} else {
		var err error
		if r, closeFn, err = openLog(path, nil); err != nil {
			return false
		}
	}
	defer closeFn()
	return headHash(r, id.HeadLen) == id.HeadHash
}

func headHash(r io.Reader, n int64) string {
	h := sha256.New()
	got, _ := io.CopyN(h, r, n)
	if got != n {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// archives lists the rotated files of a log in dir and its dated
// subdirectories, oldest first.
func (fl *Follower) archives(name string) []string {
	type arch struct {
		path  string
		start time.Time
		mod   time.Time
	}
	var out []arch
	scan := func(d string) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			n, ok := parseName(e.Name())
			if !ok || n.path != name || n.tag == "" || n.prefix != "" {
				continue
			}
			a := arch{path: filepath.Join(d, e.Name()), start: tagTime(d, n.tag)}
			if fi, err := e.Info(); err == nil {
				a.mod = fi.ModTime()
			}
			out = append(out, a)
		}
	}
	scan(fl.dir)
	ents, _ := os.ReadDir(fl.dir)
	for _, e := range ents {
		if e.IsDir() && isDateDir(e.Name()) {
			scan(filepath.Join(fl.dir, e.Name()))
		}
	}
	slices.SortFunc(out, func(a, b arch) int {
		if c := a.start.Compare(b.start); c != 0 && !a.start.IsZero() && !b.start.IsZero() {
			return c
		}
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return cmp.Compare(a.path, b.path)
	})
	paths := make([]string, len(out))
	for i, a := range out {
		paths[i] = a.path
	}
	return paths
}

// readArchive reads a rotated log (maybe compressed) from byte skip of its
// content to its end; the header before skip is read for its fields.
func (fl *Follower) readArchive(ctx context.Context, t *tail, path string, skip int64) error {
	r, closeFn, err := openLog(path, nil)
	if err != nil {
		return &cw.InputError{Input: path, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	defer closeFn()
	fl.st.files.Add(1)
	p := newParser(path, fl.cfg.Logger)
	at := &tail{name: t.name, path: path, kind: t.kind, p: p}
	_, err = fl.consume(ctx, at, r, 0, skip, true)
	fl.finishParser(p)
	if err != nil {
		return &cw.InputError{Input: path, Err: fmt.Errorf("zeek: follow: reading archive: %w", err)}
	}
	return nil
}

// open starts following t.path at off (re-reading its header first).
func (fl *Follower) open(t *tail, off int64) error {
	f, err := os.Open(t.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return &cw.InputError{Input: t.path, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return &cw.InputError{Input: t.path, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	if off > fi.Size() {
		off = 0 // truncated since: start over
	}
	fl.st.files.Add(1)
	t.f = f
	t.id = fileID{}
	t.id.Dev, t.id.Ino = devIno(fi)
	t.off = off
	t.p = newParser(t.path, fl.cfg.Logger)
	t.skipping = false
	if off > 0 {
		// The header block at the top gives the fields of the lines after
		// off (Zeek writes one per file); JSON logs have none.
		lr := newLineReader(io.NewSectionReader(f, 0, min(off, maxHeaderBytes)), fl.cfg.MaxLine)
		for {
			b, err := lr.next()
			if h := bytes.TrimLeft(b, " \t"); len(h) == 0 || h[0] != '#' || err != nil {
				break
			}
			t.p.parse(b)
		}
		t.p.line = 0
	}
	fl.updateHead(t)
	fl.dirty = true
	return nil
}

// updateHead hashes up to headMax bytes already consumed, so the identity
// only covers bytes that will not change.
func (fl *Follower) updateHead(t *tail) {
	n := min(t.off, headMax)
	if t.f == nil || n <= t.id.HeadLen {
		return
	}
	if h := headHash(io.NewSectionReader(t.f, 0, n), n); h != "" {
		t.id.HeadLen, t.id.HeadHash = n, h
	}
}

// poll reads what was appended to t, and finishes and replaces it when
// Zeek rotated it.
func (fl *Follower) poll(ctx context.Context, t *tail) error {
	fi, statErr := os.Stat(t.path)
	if t.f != nil {
		rotated, truncated := statErr != nil, false
		if statErr == nil {
			dev, ino := devIno(fi)
			rotated = dev != t.id.Dev || ino != t.id.Ino
			// Truncated in place (copytruncate), maybe rewritten past our
			// offset between two polls: the size or the first bytes tell.
			truncated = !rotated && (fi.Size() < t.off ||
				t.id.HeadLen > 0 && headHash(io.NewSectionReader(t.f, 0, t.id.HeadLen), t.id.HeadLen) != t.id.HeadHash)
		}
		if rotated || truncated {
			var err error
			if rotated {
				// Finish the old file through the descriptor we hold: a
				// rename, a move to a dated directory or gzip-and-delete
				// do not take it away.
				err = fl.readOpen(ctx, t, true)
			}
			t.f.Close()
			t.f = nil
			fl.finishParser(t.p)
			fl.dirty = true
			if err != nil {
				return err
			}
		}
	}
	if t.f == nil {
		if statErr != nil {
			return nil
		}
		if err := fl.open(t, 0); err != nil {
			return err
		}
	}
	return fl.readOpen(ctx, t, false)
}

func (fl *Follower) readOpen(ctx context.Context, t *tail, final bool) error {
	if _, err := t.f.Seek(t.off, io.SeekStart); err != nil {
		return &cw.InputError{Input: t.path, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	off, err := fl.consume(ctx, t, t.f, t.off, 0, final)
	if off != t.off {
		t.off = off
		fl.dirty = true
		fl.updateHead(t)
	}
	if err != nil {
		return &cw.InputError{Input: t.path, Err: fmt.Errorf("zeek: follow: %w", err)}
	}
	return nil
}

func (fl *Follower) finishParser(p *parser) {
	if p == nil {
		return
	}
	fl.st.lines.Add(p.line)
	fl.st.malformed.Add(p.malformed)
	if err := p.summary(); err != nil {
		fl.cfg.Logger.Warn("zeek: follow: malformed lines", "file", p.name, "err", err)
	}
}

// consume reads r, which starts at byte pos of t's content, to its end and
// handles each complete line; lines before skip are read only for their
// header. With final, an unterminated last line counts as complete (the
// writer is done with the file). It returns the position after the last
// line handled.
func (fl *Follower) consume(ctx context.Context, t *tail, r io.Reader, pos, skip int64, final bool) (int64, error) {
	if cap(fl.buf) < 64<<10 {
		fl.buf = make([]byte, 0, 64<<10)
	}
	buf := fl.buf[:0]
	var readErr error
	for readErr == nil {
		if len(buf) == cap(buf) {
			if cap(buf) <= fl.cfg.MaxLine {
				nb := make([]byte, len(buf), min(2*cap(buf), fl.cfg.MaxLine+1))
				copy(nb, buf)
				buf = nb
				fl.buf = nb[:0]
			} else {
				// A line over MaxLine: drop it, and the rest of it as it comes.
				pos += int64(len(buf))
				buf = buf[:0]
				if !t.skipping {
					t.p.line++
					t.p.bad(fmt.Errorf("longer than %d bytes", fl.cfg.MaxLine))
				}
				t.skipping = true
			}
		}
		var n int
		n, readErr = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		start := 0
		for {
			i := bytes.IndexByte(buf[start:], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i]
			lineStart := pos
			pos += int64(i + 1)
			start += i + 1
			if t.skipping {
				t.skipping = false
				continue
			}
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			fl.line(t, line, lineStart < skip)
			if t.p.line%checkEvery == 0 && ctx.Err() != nil {
				return pos, nil
			}
		}
		n = copy(buf, buf[start:])
		buf = buf[:n]
	}
	if readErr != io.EOF {
		return pos, readErr
	}
	if final && len(buf) > 0 {
		if !t.skipping {
			fl.line(t, buf, pos < skip)
		}
		pos += int64(len(buf))
		t.skipping = false
	}
	return pos, nil
}

// line handles one line of t; before the resume point only header lines
// count.
func (fl *Follower) line(t *tail, b []byte, headerOnly bool) {
	if headerOnly {
		if len(b) > 0 && b[0] == '#' {
			t.p.parse(b)
		}
		return
	}
	r, err := t.p.parse(b)
	if err == nil && r != nil {
		err = fl.record(t, r)
	}
	if err != nil {
		t.p.bad(err)
	}
}

func (fl *Follower) record(t *tail, r *record) error {
	if t.kind != kindConn {
		fl.st.side.Add(1)
		if r.has(fUID) && fl.cur.get(string(r.v[fUID].b)) == nil && fl.cur.len() >= fl.cur.max {
			// The newer generation is full: forget the older.
			fl.st.unmatched.Add(fl.old.unmatched())
			fl.old = fl.cur
			fl.cur = newJoinIndex(fl.cfg.MaxJoin/2+1, fl.cv.in)
		}
		return fl.cur.add(t.kind, r)
	}
	c, err := fl.cv.conn(r)
	if err != nil {
		return err
	}
	c.Source = t.path
	attach(c, tunnelParent(r), func(uid string) *side {
		if s := fl.cur.get(uid); s != nil {
			return s
		}
		return fl.old.get(uid)
	})
	fl.st.records.Add(1)
	fl.emit(c)
	return nil
}

func (fl *Follower) loadState() (followState, error) {
	st := followState{Version: 1, Logs: map[string]logState{}}
	if fl.cfg.StatePath == "" {
		return st, nil
	}
	b, err := os.ReadFile(fl.cfg.StatePath)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		fl.cfg.Logger.Warn("zeek: follow: state unusable, reading the live logs from their start", "state", fl.cfg.StatePath, "err", err)
		return followState{Version: 1, Logs: map[string]logState{}}, &cw.InputError{Input: fl.cfg.StatePath, Err: fmt.Errorf("zeek: follow state: %w", err)}
	}
	if st.Logs == nil {
		st.Logs = map[string]logState{}
	}
	return st, nil
}

// saveState writes the positions atomically (a temporary file renamed
// over the old), so a crash leaves the old state or the new, never half.
func (fl *Follower) saveState() error {
	if fl.cfg.StatePath == "" || !fl.dirty {
		return nil
	}
	st := followState{Version: 1, Dir: fl.dir, Logs: map[string]logState{}}
	for _, t := range fl.tails {
		if t.f != nil {
			st.Logs[t.name] = logState{fileID: t.id, Offset: t.off}
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(fl.cfg.StatePath), ".zeek-follow-*")
	if err != nil {
		return &cw.InputError{Input: fl.cfg.StatePath, Err: fmt.Errorf("zeek: follow state: %w", err)}
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return &cw.InputError{Input: fl.cfg.StatePath, Err: fmt.Errorf("zeek: follow state: %w", err)}
	}
	if err := os.Rename(tmp.Name(), fl.cfg.StatePath); err != nil {
		os.Remove(tmp.Name())
		return &cw.InputError{Input: fl.cfg.StatePath, Err: fmt.Errorf("zeek: follow state: %w", err)}
	}
	fl.dirty = false
	return nil
}
