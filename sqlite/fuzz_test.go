package sqlite

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

// FuzzOpen feeds arbitrary bytes as a database file: a user can point
// --db at anything, and a damaged store must give errors, not panics.
// The seed is a real store so that mutations reach page and row decoding.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	seedPath := filepath.Join(dir, "seed.db")
	db, err := Open(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	run := &cargowatch.Run{Command: "seed", Stats: map[string]any{"n": 1}}
	if err := db.BeginRun(ctx, run); err != nil {
		f.Fatal(err)
	}
	if err := db.WriteConns(ctx, run.ID, []*cargowatch.Conn{fullConn(0), fullConn(1)}); err != nil {
		f.Fatal(err)
	}
	if err := db.WriteFindings(ctx, run.ID, []cargowatch.Finding{finding("beacon", cargowatch.High, time.Unix(5, 0))}); err != nil {
		f.Fatal(err)
	}
	// Fold the WAL into the main file so the seed is self-contained.
	if _, err := db.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		f.Fatal(err)
	}
	db.Close()
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte("SQLite format 3\x00"))
	f.Add(append([]byte("SQLite format 3\x00"), make([]byte, 512)...))
	f.Add([]byte("#separator \\x09\n#fields\tts\tuid\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// A damaged file must fail fast, not wait out busy_timeout on
		// every statement.
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		}()
		db, err := Open(path)
		if err != nil {
			return
		}
		defer db.Close()
		_ = db.Conns(ctx, cargowatch.ConnQuery{}, func(*cargowatch.Conn) error { return nil })
		_ = db.Findings(ctx, cargowatch.FindingQuery{}, func(*cargowatch.Finding) error { return nil })
		_ = db.Rollups(ctx, time.Time{}, time.Time{}, func(*Rollup) error { return nil })
		_, _ = db.Run(ctx, 1)
		_, _, _ = db.FirstSeen(ctx, netip.MustParseAddr("2001:db8::8:1"))
		_, _ = db.Prevalence(ctx, netip.MustParseAddr("2001:db8::8:1"))
		r := &cargowatch.Run{Command: "fuzz"}
		if db.BeginRun(ctx, r) == nil {
			_ = db.WriteConns(ctx, r.ID, []*cargowatch.Conn{fullConn(3)})
		}
	})
}
