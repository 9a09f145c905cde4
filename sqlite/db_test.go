package sqlite

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func TestDefaultPath(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory: %v", err)
	}
	tests := []struct {
		name, env, xdg, want string
	}{
		{"env wins", "/srv/cw.db", "/xdg", "/srv/cw.db"},
		{"xdg", "", "/xdg", "/xdg/cargowatch/cargowatch.db"},
		{"relative xdg ignored", "", "rel", filepath.Join(home, ".local/share/cargowatch/cargowatch.db")},
		{"home", "", "", filepath.Join(home, ".local/share/cargowatch/cargowatch.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CARGOWATCH_DB", tt.env)
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			if got := DefaultPath(); got != tt.want {
				t.Errorf("DefaultPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenCreatesDirsAndReopens(t *testing.T) {
	ctx := context.Background()
	// '?' and '%' in the path must not be taken as DSN syntax.
	path := filepath.Join(t.TempDir(), "a b", "c?d%20", "cw.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != latestVersion() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latestVersion())
	}
	var mode string
	if err := db.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk, sync, busy int
	if err := db.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := db.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Errorf("synchronous = %d, %v; want 1 (NORMAL)", sync, err)
	}
	if err := db.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != int(busyTimeout.Milliseconds()) {
		t.Errorf("busy_timeout = %d, %v", busy, err)
	}
	id := beginRun(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}

	db, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if _, err := db.Run(ctx, id); err != nil {
		t.Errorf("run %d lost on reopen: %v", id, err)
	}
	var n int
	if err := db.db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("schema_migrations rows = %d, %v; want %d (reopen must not reapply)", n, err, len(migrations))
	}
}

func TestOpenNewerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cw.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open(newer) = %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "99") {
		t.Errorf("error %q should name the file and its version", err)
	}
}

func TestOpenForeignSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := open(context.Background(), path, 0) // a SQLite file with no migrations
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.Exec("CREATE TABLE runs(x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path)
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(other program's db) = %v, want ErrForeign naming the file", err)
	}
}

func TestOpenBadFiles(t *testing.T) {
	dir := t.TempDir()
	rnd := make([]byte, 8192)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	// A right header with garbage after it gets past checkHeader and must
	// be caught by SQLite itself.
	hdrGarbage := append([]byte("SQLite format 3\x00"), rnd[16:]...)
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"random", rnd, "not a SQLite database"},
		{"short", []byte("hello"), "not a SQLite database"},
		{"text", []byte(strings.Repeat("ts\tuid\n", 100)), "not a SQLite database"},
		{"header then garbage", hdrGarbage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded on a file that is not a database")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and say %q", err, path, tt.want)
			}
		})
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Open(dir) = %v, want a directory error", err)
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}

func TestRunRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	r := &cargowatch.Run{Command: "analyze", Args: []string{"a.pcap", "--local", "147.32.0.0/16"}, Version: "1.2.3",
		Locals: []string{"10.0.0.0/8"}}
	if err := db.BeginRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 || r.Status != "running" || r.Started.IsZero() {
		t.Fatalf("BeginRun left %+v", r)
	}
	r2 := &cargowatch.Run{Command: "flows"}
	if err := db.BeginRun(ctx, r2); err != nil || r2.ID == r.ID {
		t.Fatalf("second run id %d (first %d), err %v", r2.ID, r.ID, err)
	}
	r.Locals = append(r.Locals, "147.32.80.0/24") // inferred during the run
	r.Stats = map[string]any{"conns": float64(12), "inputs": []any{"a.pcap"}}
	if err := db.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := db.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ok" || got.Finished.IsZero() {
		t.Errorf("finished run: status %q finished %v", got.Status, got.Finished)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("run round trip:\n got %+v\nwant %+v", got, r)
	}
	nan := &cargowatch.Run{ID: r2.ID, Stats: map[string]any{"rate": math.NaN()}}
	if err := db.FinishRun(ctx, nan); err != nil {
		t.Errorf("FinishRun with a NaN stat failed: %v", err)
	}
	if got, err := db.Run(ctx, r2.ID); err != nil || got.Status != "ok" || got.Stats["_unencodable"] == nil {
		t.Errorf("run with NaN stat stored as %+v, %v", got, err)
	}
	if err := db.FinishRun(ctx, &cargowatch.Run{ID: 9999}); err == nil {
		t.Error("FinishRun of an unknown run succeeded")
	}
}

func TestInputsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run1, run2 := beginRun(t, db), beginRun(t, db)
	const h = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
	if ok, err := db.HasInput(ctx, h); err != nil || ok {
		t.Fatalf("HasInput before add = %v, %v", ok, err)
	}
	if err := db.AddInput(ctx, run1, "/a.pcap", h, 24); err != nil {
		t.Fatal(err)
	}
	// Same content under another name and in lower case: still one input,
	// still credited to the first run.
	if err := db.AddInput(ctx, run2, "/copy.pcap", strings.ToLower(h), 24); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.HasInput(ctx, strings.ToLower(h)); err != nil || !ok {
		t.Fatalf("HasInput after add = %v, %v", ok, err)
	}
	var n int
	var path string
	var first int64
	if err := db.db.QueryRow("SELECT count(*), max(path), max(first_run_id) FROM inputs").Scan(&n, &path, &first); err != nil {
		t.Fatal(err)
	}
	if n != 1 || path != "/a.pcap" || first != run1 {
		t.Errorf("inputs = %d rows, path %q, first run %d; want 1, /a.pcap, %d", n, path, first, run1)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64)} {
		if _, err := db.HasInput(ctx, bad); err == nil {
			t.Errorf("HasInput(%q) accepted a bad hash", bad)
		}
		if err := db.AddInput(ctx, run1, "x", bad, 1); err == nil {
			t.Errorf("AddInput(%q) accepted a bad hash", bad)
		}
	}
	if err := db.AddInput(ctx, 4242, "/b", strings.Repeat("a", 64), 1); err == nil {
		t.Error("AddInput with an unknown run id succeeded (foreign keys off?)")
	}
}

func TestTimeClamp(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)
	c := fullConn(0)
	c.TS = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.WriteConns(ctx, run, []*cargowatch.Conn{c}); err != nil {
		t.Fatal(err)
	}
	if db.TimesClamped() != 1 {
		t.Errorf("TimesClamped = %d, want 1", db.TimesClamped())
	}
	var got time.Time
	if err := db.Conns(ctx, cargowatch.ConnQuery{}, func(c *cargowatch.Conn) error { got = c.TS; return nil }); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(maxTime) {
		t.Errorf("clamped ts = %v, want %v", got, maxTime)
	}
}
