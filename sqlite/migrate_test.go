package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

// dumpDerived returns the rollup and first-seen tables as comparable values.
func dumpDerived(t *testing.T, db *DB) (map[rollupKey]rollupRow, [][3]any, [][3]any) {
	t.Helper()
	ru := rollups(t, db)
	var pairs [][3]any
	rows, err := db.db.Query("SELECT remote_ip, local_ip, first_seen FROM first_seen_pair ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r, l string
		var f int64
		if err := rows.Scan(&r, &l, &f); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, [3]any{r, l, f})
	}
	rows.Close()
	var remotes [][3]any
	rows, err = db.db.Query("SELECT remote_ip, first_seen, last_seen FROM first_seen_remote ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		var f, la int64
		if err := rows.Scan(&r, &f, &la); err != nil {
			t.Fatal(err)
		}
		remotes = append(remotes, [3]any{r, f, la})
	}
	rows.Close()
	return ru, pairs, remotes
}

// insertV1Conns stores conns with the literal SQL of schema version 1, so
// tests of old files keep building the rows an old cargowatch wrote
// however today's WriteConns (which follows the latest schema) changes.
// It keeps the columns the upgrades read: times, addresses, locality,
// geography and byte counts.
func insertV1Conns(t *testing.T, db *DB, run int64, conns []*cargowatch.Conn) {
	t.Helper()
	const v1Insert = `INSERT INTO conns(run_id, ts, uid, orig_h, orig_p, orig_local, orig_org, orig_country, orig_jurisdiction,
		resp_h, resp_p, resp_local, resp_org, resp_country, resp_jurisdiction,
		duration, orig_bytes, resp_bytes, orig_ip_bytes, resp_ip_bytes) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for _, c := range conns {
		if _, err := db.db.Exec(v1Insert, run, c.TS.UnixNano(), c.UID,
			c.Orig.Addr.String(), c.Orig.Local, c.Orig.Org, c.Orig.Country, c.Orig.Jurisdiction,
			c.Resp.Addr.String(), c.Resp.Local, c.Resp.Org, c.Resp.Country, c.Resp.Jurisdiction,
			int64(c.Duration), c.OrigBytes, c.RespBytes, c.OrigIPBytes, c.RespIPBytes); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateV1ToLatest builds a file with only migration 1, fills it with
// the literal v1 SQL (not today's insert code, which follows the latest
// schema), and checks that opening it upgrades it and that the backfilled
// rollups and first-seen equal what WriteConns computes for the same conns.
func TestMigrateV1ToLatest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	old, err := open(ctx, path, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := old.SchemaVersion(ctx); v != 1 {
		t.Fatalf("v1 file has version %d", v)
	}
	var n int
	if err := old.db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'rollup_hourly'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("v1 file already has rollup_hourly (%d, %v)", n, err)
	}
	run := beginRun(t, old)

	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	conns := []*cargowatch.Conn{
		mk(h.Add(time.Minute), "10.0.0.5", "203.0.113.9", 100, 10, false),
		mk(h.Add(2*time.Minute), "10.0.0.5", "203.0.113.9", 1, 2, true),
		mk(h.Add(90*time.Minute), "10.0.0.6", "203.0.113.9", 5, 6, false),
		mk(h.Add(-time.Hour), "10.0.0.6", "2001:db8::1", 7, 8, false),
		mk(time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), "10.0.0.6", "192.0.2.1", 1, 1, false), // before the epoch
	}
	insertV1Conns(t, old, run, conns)
	old.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != latestVersion() {
		t.Fatalf("after upgrade version %d, want %d", v, latestVersion())
	}
	if got := collectConns(t, db, cargowatch.ConnQuery{}); len(got) != len(conns) {
		t.Errorf("upgrade kept %d of %d conns", len(got), len(conns))
	}

	fresh := openTemp(t)
	if err := fresh.WriteConns(ctx, beginRun(t, fresh), conns); err != nil {
		t.Fatal(err)
	}
	gr, gp, gm := dumpDerived(t, db)
	wr, wp, wm := dumpDerived(t, fresh)
	if len(gr) != 4 || !reflect.DeepEqual(gr, wr) {
		t.Errorf("backfilled rollups differ from WriteConns':\n got %v\nwant %v", gr, wr)
	}
	if len(gp) != 4 || !reflect.DeepEqual(gp, wp) {
		t.Errorf("backfilled first_seen_pair differs:\n got %v\nwant %v", gp, wp)
	}
	if len(gm) != 3 || !reflect.DeepEqual(gm, wm) {
		t.Errorf("backfilled first_seen_remote differs:\n got %v\nwant %v", gm, wm)
	}

	// New writes after the upgrade add to the backfilled rows.
	if err := db.WriteConns(ctx, beginRun(t, db), conns[:1]); err != nil {
		t.Fatal(err)
	}
	if got := rollups(t, db)[rollupKey{h.Unix(), "10.0.0.5", "203.0.113.9"}].conns; got != 3 {
		t.Errorf("after upgrade and a new write, hour conns = %d, want 3", got)
	}
}

// TestConcurrentOpenMigratesOnce opens one fresh file from several
// goroutines at once, as two cargowatch processes might.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cw.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(path)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, len(migrations))
	}
}

// TestMigrateV3ToLatest upgrades a file at version 3 (rows written with
// the v1 SQL, which is all a v3 conn row held) and checks that its old
// conns read with nil OT and HostNames while new ones keep theirs.
func TestMigrateV3ToLatest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	old, err := open(ctx, path, 3)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := old.db.QueryRow("SELECT count(*) FROM pragma_table_info('conns') WHERE name IN ('ot', 'host_names')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("v3 file already has the OT columns (%d, %v)", n, err)
	}
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	oldConns := []*cargowatch.Conn{
		mk(h, "10.0.0.5", "203.0.113.9", 100, 10, false),
		mk(h.Add(time.Minute), "10.0.0.6", "203.0.113.9", 1, 2, true),
	}
	insertV1Conns(t, old, beginRun(t, old), oldConns)
	old.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != latestVersion() {
		t.Fatalf("after upgrade version %d, want %d", v, latestVersion())
	}
	fresh := fullConn(9)
	fresh.TS = h.Add(time.Hour)
	if err := db.WriteConns(ctx, beginRun(t, db), []*cargowatch.Conn{fresh}); err != nil {
		t.Fatal(err)
	}
	got := collectConns(t, db, cargowatch.ConnQuery{})
	if len(got) != 3 {
		t.Fatalf("got %d conns, want 3", len(got))
	}
	for i, c := range got[:2] {
		if c.OT != nil || c.HostNames != nil {
			t.Errorf("old conn %d: OT %+v, HostNames %+v; want nil", i, c.OT, c.HostNames)
		}
		if c.Orig.Addr != oldConns[i].Orig.Addr || c.OrigBytes != oldConns[i].OrigBytes {
			t.Errorf("old conn %d changed by the upgrade: %+v", i, c)
		}
	}
	if !reflect.DeepEqual(got[2].OT, fresh.OT) || !reflect.DeepEqual(got[2].HostNames, fresh.HostNames) {
		t.Errorf("new conn after upgrade: OT %+v HostNames %+v, want %+v %+v", got[2].OT, got[2].HostNames, fresh.OT, fresh.HostNames)
	}
}
