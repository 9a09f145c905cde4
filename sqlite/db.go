// Package sqlite is the embedded cargowatch.Store: one SQLite file (through
// modernc.org/sqlite, so no cgo) that keeps runs, inputs, conns, findings,
// hourly rollups per local/remote pair, and when each remote was first seen.
//
// The store keeps what it is given. Cargo identifiers in Content.Hits and
// in finding evidence must be masked by the caller (the dlp package masks)
// unless the user asked to reveal them; raw payloads are never stored.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cargowatch/cargowatch"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// DB is a cargowatch.Store in one SQLite file. It is safe for concurrent
// use; writers are serialised by SQLite (WAL lets readers go on meanwhile).
type DB struct {
	db   *sql.DB
	path string

	// timesClamped counts timestamps outside the int64-nanosecond range
	// (years 1678..2262) that were clamped to its ends before storage.
	timesClamped atomic.Int64
}

var _ cargowatch.Store = (*DB)(nil)

// busyTimeout is how long a writer waits for another process's write lock
// (e.g. `analyze` while `watch` is writing) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

const maxConns = 8

// DefaultPath is where the store lives when the user names none:
// $CARGOWATCH_DB when set (services and containers point it at a volume),
// else $XDG_DATA_HOME/cargowatch/cargowatch.db, else
// ~/.local/share/cargowatch/cargowatch.db. It is XDG *data*, not cache:
// the history is what "new destination" and prevalence are measured
// against, so a cache cleaner must not silently reset those baselines.
func DefaultPath() string {
	if p := os.Getenv("CARGOWATCH_DB"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) { // the spec says relative values are invalid
		return filepath.Join(d, "cargowatch", "cargowatch.db")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "cargowatch.db"
	}
	return filepath.Join(home, ".local", "share", "cargowatch", "cargowatch.db")
}

// Open opens (creating when missing, with its parent directories) the store
// at path and migrates it to the current schema. A file from a newer
// cargowatch gives an error wrapping ErrNewerSchema; a file that is not a
// SQLite database gives an error naming it.
func Open(path string) (*DB, error) {
	return open(context.Background(), path, latestVersion())
}

func open(ctx context.Context, path string, target int) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := checkHeader(abs); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	// Enough for a stream and a write inside its callback, bounded so
	// that per-connection caches stay bounded.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(2)
	s := &DB{db: db, path: path}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	// A header can be right and the rest garbage; reading the schema
	// touches page 1 and the schema table before any migration writes.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := migrate(ctx, db, target); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return s, nil
}

// ping opens the first connection. Switching a new file to WAL mode (a
// pragma of the DSN, run as the connection opens) needs an exclusive lock
// and SQLite answers SQLITE_BUSY at once, without the busy handler, when
// another process is opening or migrating the same file; so a busy open
// is retried for as long as a busy write would wait.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		var se interface{ Code() int }
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqliteBusy is SQLITE_BUSY, the primary result code (extended codes
// carry it in their low byte).
const sqliteBusy = 5

// dsn builds a file: URI so that any byte in the path (notably '?', which
// the driver would otherwise take as the start of its parameters) is
// percent-escaped rather than misread.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL in WAL mode loses at most the last transactions on power
	// loss, never consistency; FULL would fsync every batch.
	q.Add("_pragma", "synchronous(NORMAL)")
	// 16 MiB of page cache per connection (default 2 MiB) keeps the conns
	// indexes in memory during batch inserts; with maxConns this bounds
	// cache memory to 128 MiB.
	q.Add("_pragma", "cache_size(-16384)")
	// Each multi-row INSERT and upsert keeps a statement journal (so that a
	// failing statement undoes only itself); on disk that was 15% of write
	// time in pwrite calls. It holds only the pages one statement touches.
	q.Add("_pragma", "temp_store(MEMORY)")
	// Write transactions take the lock at BEGIN, so two writers queue on
	// busy_timeout instead of one failing to upgrade a read lock.
	q.Set("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

var sqliteMagic = []byte("SQLite format 3\x00")

// checkHeader gives a clear error for a file that is not SQLite before the
// driver sees it (its message, "file is not a database", names no file and
// comes only at the first statement).
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory, not a database file")
	}
	if st.Size() == 0 {
		return nil // SQLite treats an empty file as a new database
	}
	var hdr [16]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || !bytes.Equal(hdr[:], sqliteMagic) {
		return errors.New("not a SQLite database (bad file header)")
	}
	return nil
}

// Path returns the path the store was opened with.
func (s *DB) Path() string { return s.path }

// SchemaVersion returns the schema version of the open file.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	return userVersion(ctx, s.db)
}

// TimesClamped returns how many timestamps were clamped to the storable
// range since Open.
func (s *DB) TimesClamped() int64 { return s.timesClamped.Load() }

// Close closes the database.
func (s *DB) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: %s: close: %w", s.path, err)
	}
	return nil
}

// BeginRun records a new run and sets r.ID.
func (s *DB) BeginRun(ctx context.Context, r *cargowatch.Run) error {
	if r.Started.IsZero() {
		r.Started = time.Now().UTC()
	}
	if r.Status == "" {
		r.Status = "running"
	}
	args, locals, stats, err := runJSON(r)
	if err != nil {
		return fmt.Errorf("sqlite: begin run: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs(started, finished, command, args, version, locals, stats, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.nanos(r.Started), s.nanos(r.Finished), r.Command, args, r.Version, locals, stats, r.Status)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin run: %w", s.path, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin run: %w", s.path, err)
	}
	r.ID = id
	return nil
}

// FinishRun records the end of r: Finished (now when zero), Status ("ok"
// when empty or still "running"), Stats and Locals, which may have been
// inferred during the run.
func (s *DB) FinishRun(ctx context.Context, r *cargowatch.Run) error {
	if r.Finished.IsZero() {
		r.Finished = time.Now().UTC()
	}
	if r.Status == "" || r.Status == "running" {
		r.Status = "ok"
	}
	_, locals, stats, err := runJSON(r)
	if err != nil {
		return fmt.Errorf("sqlite: finish run %d: %w", r.ID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET finished = ?, status = ?, stats = ?, locals = ? WHERE id = ?`,
		s.nanos(r.Finished), r.Status, stats, locals, r.ID)
	if err != nil {
		return fmt.Errorf("sqlite: %s: finish run %d: %w", s.path, r.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("sqlite: %s: finish run %d: no such run", s.path, r.ID)
	}
	return nil
}

// Run returns the stored run with this id.
func (s *DB) Run(ctx context.Context, id int64) (*cargowatch.Run, error) {
	var (
		r                     cargowatch.Run
		started, finished     sql.NullInt64
		args, locals, stats   sql.NullString
		command, version, stt sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, started, finished, command, args, version, locals, stats, status
		FROM runs WHERE id = ?`, id).Scan(&r.ID, &started, &finished, &command, &args, &version, &locals, &stats, &stt)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: run %d: %w", s.path, id, err)
	}
	r.Started, r.Finished = fromNanos(started), fromNanos(finished)
	r.Command, r.Version, r.Status = command.String, version.String, stt.String
	if err := unmarshalNull(args, &r.Args); err != nil {
		return nil, fmt.Errorf("sqlite: %s: run %d: args: %w", s.path, id, err)
	}
	if err := unmarshalNull(locals, &r.Locals); err != nil {
		return nil, fmt.Errorf("sqlite: %s: run %d: locals: %w", s.path, id, err)
	}
	if err := unmarshalNull(stats, &r.Stats); err != nil {
		return nil, fmt.Errorf("sqlite: %s: run %d: stats: %w", s.path, id, err)
	}
	return &r, nil
}

func runJSON(r *cargowatch.Run) (args, locals, stats any, err error) {
	if args, err = marshalNull(r.Args); err != nil {
		return nil, nil, nil, fmt.Errorf("args: %w", err)
	}
	if locals, err = marshalNull(r.Locals); err != nil {
		return nil, nil, nil, fmt.Errorf("locals: %w", err)
	}
	return args, locals, marshalOrNote("run stats", r.Stats), nil
}

// normSHA256 accepts a hex SHA-256 in either case and returns it lower case,
// so the same file is the same key whoever hashed it.
func normSHA256(h string) (string, error) {
	if len(h) != 64 {
		return "", fmt.Errorf("sha256 %q: want 64 hex digits", h)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("sha256 %q: %w", h, err)
	}
	return strings.ToLower(h), nil
}

// HasInput reports whether an input with this SHA-256 was added before.
func (s *DB) HasInput(ctx context.Context, sha256 string) (bool, error) {
	h, err := normSHA256(sha256)
	if err != nil {
		return false, fmt.Errorf("sqlite: has input: %w", err)
	}
	var one int
	err = s.db.QueryRowContext(ctx, "SELECT 1 FROM inputs WHERE sha256 = ?", h).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: has input: %w", s.path, err)
	}
	return true, nil
}

// AddInput records an input; a sha256 already known keeps its first record.
func (s *DB) AddInput(ctx context.Context, runID int64, path, sha256 string, size int64) error {
	h, err := normSHA256(sha256)
	if err != nil {
		return fmt.Errorf("sqlite: add input %s: %w", path, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO inputs(sha256, path, size, first_run_id, added)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING`, h, path, size, runID, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: %s: add input %s: %w", s.path, path, err)
	}
	return nil
}

// Earliest and latest instants that fit in int64 nanoseconds.
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// nanos converts t for storage: NULL for the zero time (unknown), else Unix
// nanoseconds, clamped (and counted) outside years 1678..2262 because
// UnixNano is undefined there and a bad source timestamp must not wrap
// around to a plausible-looking date.
func (s *DB) nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if t.Before(minTime) {
		s.timesClamped.Add(1)
		return minTime.UnixNano()
	}
	if t.After(maxTime) {
		s.timesClamped.Add(1)
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// marshalNull stores nil slices, maps and pointers as SQL NULL so that they
// come back nil rather than empty.
func marshalNull[T any](v T) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	return string(b), nil
}

// unmarshalNull decodes s into v (a pointer); NULL leaves v as it is.
// marshalOrNote is for free-form maps (run stats, finding evidence) where
// one unencodable value (a NaN rate, a func) must not lose the run or the
// finding: the value is replaced by a note saying why, and logged.
func marshalOrNote(what string, v map[string]any) any {
	j, err := marshalNull(v)
	if err == nil {
		return j
	}
	slog.Warn("sqlite: value not stored", "what", what, "err", err)
	b, _ := json.Marshal(map[string]string{"_unencodable": err.Error()})
	return string(b)
}

func unmarshalNull(s sql.NullString, v any) error {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.Unmarshal([]byte(s.String), v)
}
