package sqlite

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func collectConns(t *testing.T, db *DB, q cargowatch.ConnQuery) []*cargowatch.Conn {
	t.Helper()
	var out []*cargowatch.Conn
	if err := db.Conns(context.Background(), q, func(c *cargowatch.Conn) error {
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConnRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)

	full := fullConn(0)
	// Edge values: a 4in6 and a zoned address must come back as the same
	// netip.Addr, not an unmapped or zoneless one.
	mapped := fullConn(1)
	mapped.Orig.Addr = netip.MustParseAddr("::ffff:10.9.9.9")
	mapped.Resp.Addr = netip.MustParseAddr("fe80::1%eth0")
	mapped.Content.Counts = map[string]int{} // empty, not nil
	mapped.DNS = []cargowatch.DNS{}
	mapped.OT = &cargowatch.OT{Protocol: "s7comm", Functions: map[string]int{}} // empty map, not nil
	mapped.HostNames = []cargowatch.HostName{}
	// A conn with nothing but a uid: zero values must stay zero (nil
	// pointers and slices, invalid addresses, zero time).
	bare := &cargowatch.Conn{UID: "bare"}
	// Time zones other than UTC come back as the same instant in UTC.
	local := fullConn(2)
	local.TS = time.Date(2026, 3, 14, 17, 9, 28, 1, time.FixedZone("CEST", 2*3600))

	if err := db.WriteConns(ctx, run, []*cargowatch.Conn{full, nil, mapped, bare, local}); err != nil {
		t.Fatal(err)
	}
	got := collectConns(t, db, cargowatch.ConnQuery{RunID: run})
	if len(got) != 4 {
		t.Fatalf("got %d conns, want 4 (nil skipped)", len(got))
	}
	// ORDER BY ts puts the zero (NULL) time first.
	wantLocal := *local
	wantLocal.TS = local.TS.UTC()
	for i, want := range []*cargowatch.Conn{bare, full, mapped, &wantLocal} {
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("conn %d round trip:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	if got[1].TS.Nanosecond() != 535897932 || got[1].TS.Location() != time.UTC {
		t.Errorf("ts precision/zone lost: %v", got[1].TS)
	}
}

func TestConnQuery(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run1, run2 := beginRun(t, db), beginRun(t, db)
	var cs1, cs2 []*cargowatch.Conn
	for i := 9; i >= 0; i-- { // written out of order: the query sorts
		cs1 = append(cs1, fullConn(i))
		cs2 = append(cs2, fullConn(100+i))
	}
	if err := db.WriteConns(ctx, run1, cs1); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteConns(ctx, run2, cs2); err != nil {
		t.Fatal(err)
	}
	t0 := fullConn(0).TS
	tests := []struct {
		name      string
		q         cargowatch.ConnQuery
		wantUIDs  []string
		wantCount int
	}{
		{"all", cargowatch.ConnQuery{}, nil, 20},
		{"run", cargowatch.ConnQuery{RunID: run2}, nil, 10},
		{"limit", cargowatch.ConnQuery{Limit: 3}, []string{"C00000000", "C00000001", "C00000002"}, 3},
		{"from inclusive", cargowatch.ConnQuery{From: t0.Add(8 * time.Second), RunID: run1}, []string{"C00000008", "C00000009"}, 2},
		{"to exclusive", cargowatch.ConnQuery{To: t0.Add(2 * time.Second)}, []string{"C00000000", "C00000001"}, 2},
		{"window", cargowatch.ConnQuery{From: t0.Add(5 * time.Second), To: t0.Add(6 * time.Second)}, []string{"C00000005"}, 1},
		{"empty", cargowatch.ConnQuery{RunID: 999}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collectConns(t, db, tt.q)
			if len(got) != tt.wantCount {
				t.Fatalf("got %d conns, want %d", len(got), tt.wantCount)
			}
			for i := 1; i < len(got); i++ {
				if got[i].TS.Before(got[i-1].TS) {
					t.Fatalf("not ordered by ts at %d", i)
				}
			}
			for i, u := range tt.wantUIDs {
				if got[i].UID != u {
					t.Errorf("conn %d uid %s, want %s", i, got[i].UID, u)
				}
			}
		})
	}

	stop := errors.New("stop")
	n := 0
	err := db.Conns(ctx, cargowatch.ConnQuery{}, func(*cargowatch.Conn) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn error: got %v after %d calls, want stop after 1", err, n)
	}
}

func TestWriteConnsUnknownRunRollsBack(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.WriteConns(ctx, 77, []*cargowatch.Conn{fullConn(0)}); err == nil {
		t.Fatal("WriteConns with an unknown run succeeded (foreign keys off?)")
	}
	if got := collectConns(t, db, cargowatch.ConnQuery{}); len(got) != 0 {
		t.Errorf("failed batch left %d conns", len(got))
	}
	if _, ok, err := db.FirstSeen(ctx, fullConn(0).Resp.Addr); err != nil || ok {
		t.Errorf("failed batch left first-seen: %v %v", ok, err)
	}
}

type rollupRow struct {
	conns, bo, bi, ibo, ibi int64
	org, jur, cc            string
}

func rollups(t *testing.T, db *DB) map[rollupKey]rollupRow {
	t.Helper()
	m := map[rollupKey]rollupRow{}
	if err := db.Rollups(context.Background(), time.Time{}, time.Time{}, func(r *Rollup) error {
		m[rollupKey{r.Hour.Unix(), r.Local.String(), r.Remote.String()}] = rollupRow{
			r.Conns, r.BytesOut, r.BytesIn, r.IPBytesOut, r.IPBytesIn, r.RemoteOrg, r.Jurisdiction, r.Country}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// mk makes a conn between a local and a remote address; reversed puts the
// remote side as originator (an inbound conn).
func mk(ts time.Time, local, remote string, out, in int64, reversed bool) *cargowatch.Conn {
	l := cargowatch.Endpoint{Addr: netip.MustParseAddr(local), Local: true}
	r := cargowatch.Endpoint{Addr: netip.MustParseAddr(remote), Org: "Org " + remote, Country: "DE", Jurisdiction: "CN"}
	c := &cargowatch.Conn{TS: ts, Orig: l, Resp: r, OrigBytes: out, RespBytes: in, OrigIPBytes: out + 40, RespIPBytes: in + 40,
		Duration: 30 * time.Second}
	if reversed {
		c.Orig, c.Resp = r, l
		c.OrigBytes, c.RespBytes = in, out
		c.OrigIPBytes, c.RespIPBytes = in+40, out+40
	}
	return c
}

func TestRollupUpsertSums(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	const l, r = "10.0.0.5", "203.0.113.9"
	batch1 := []*cargowatch.Conn{
		mk(h.Add(1*time.Minute), l, r, 100, 10, false),
		mk(h.Add(59*time.Minute+59*time.Second), l, r, 200, 20, true), // inbound: bytes still counted from the local side
		mk(h.Add(61*time.Minute), l, r, 1000, 1, false),               // next hour
		// Not crossing the boundary: neither rolled up nor first-seen.
		{TS: h, Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Local: true},
			Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr("10.0.0.2"), Local: true}, OrigBytes: 5},
		{TS: h, Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr("198.51.100.1")},
			Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr("198.51.100.2")}, OrigBytes: 5},
		// No timestamp: cannot be placed in an hour.
		{Orig: cargowatch.Endpoint{Addr: netip.MustParseAddr(l), Local: true},
			Resp: cargowatch.Endpoint{Addr: netip.MustParseAddr("192.0.2.77")}},
	}
	if err := db.WriteConns(ctx, run, batch1); err != nil {
		t.Fatal(err)
	}
	// A second run over new input adds to the same hour.
	c := mk(h.Add(30*time.Minute), l, r, 7, 3, false)
	c.Resp.Org = "" // unknown org in the new input must not erase the known one
	if err := db.WriteConns(ctx, beginRun(t, db), []*cargowatch.Conn{c}); err != nil {
		t.Fatal(err)
	}
	got := rollups(t, db)
	want := map[rollupKey]rollupRow{
		{h.Unix(), l, r}:                {3, 307, 33, 307 + 120, 33 + 120, "Org " + r, "CN", "DE"},
		{h.Add(time.Hour).Unix(), l, r}: {1, 1000, 1, 1040, 41, "Org " + r, "CN", "DE"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rollups:\n got %+v\nwant %+v", got, want)
	}
}

func TestFirstSeenPrevalence(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 123, time.UTC)
	const r = "203.0.113.9"
	remote := netip.MustParseAddr(r)
	if _, ok, err := db.FirstSeen(ctx, remote); err != nil || ok {
		t.Fatalf("FirstSeen before any conn = %v, %v", ok, err)
	}
	if n, err := db.Prevalence(ctx, remote); err != nil || n != 0 {
		t.Fatalf("Prevalence before any conn = %d, %v", n, err)
	}
	steps := []struct {
		conns     []*cargowatch.Conn
		wantFirst time.Time
		wantPrev  int
	}{
		{[]*cargowatch.Conn{mk(t0.Add(time.Hour), "10.0.0.1", r, 1, 1, false)}, t0.Add(time.Hour), 1},
		// Same host again, later: nothing changes.
		{[]*cargowatch.Conn{mk(t0.Add(2*time.Hour), "10.0.0.1", r, 1, 1, false)}, t0.Add(time.Hour), 1},
		// An older input analysed later moves first-seen back; two new hosts,
		// one of them inbound.
		{[]*cargowatch.Conn{mk(t0, "10.0.0.2", r, 1, 1, false), mk(t0.Add(3*time.Hour), "10.0.0.3", r, 1, 1, true),
			mk(t0, "10.0.0.2", "198.51.100.1", 1, 1, false)}, t0, 3},
	}
	for i, st := range steps {
		if err := db.WriteConns(ctx, run, st.conns); err != nil {
			t.Fatal(err)
		}
		first, ok, err := db.FirstSeen(ctx, remote)
		if err != nil || !ok || !first.Equal(st.wantFirst) {
			t.Errorf("step %d: FirstSeen = %v, %v, %v; want %v", i, first, ok, err, st.wantFirst)
		}
		if n, err := db.Prevalence(ctx, remote); err != nil || n != st.wantPrev {
			t.Errorf("step %d: Prevalence = %d, %v; want %d", i, n, err, st.wantPrev)
		}
	}
	if n, err := db.Prevalence(ctx, netip.MustParseAddr("198.51.100.1")); err != nil || n != 1 {
		t.Errorf("Prevalence(other) = %d, %v; want 1", n, err)
	}
	// Local addresses are never "remote".
	if _, ok, err := db.FirstSeen(ctx, netip.MustParseAddr("10.0.0.1")); err != nil || ok {
		t.Errorf("FirstSeen(local) = %v, %v; want not seen", ok, err)
	}
	var last int64
	if err := db.db.QueryRow("SELECT last_seen FROM first_seen_remote WHERE remote_ip = ?", r).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(3*time.Hour + 30*time.Second).UnixNano(); last != want {
		t.Errorf("last_seen = %d, want %d (ts + duration of the latest conn)", last, want)
	}
}

// TestStreamPlansUseIndexes checks that the stream queries read in index
// order: a "TEMP B-TREE" sort would buffer the whole result before the
// first row, which for `flows --db` over millions of conns is unbounded.
func TestStreamPlansUseIndexes(t *testing.T) {
	db := openTemp(t)
	t0 := time.Unix(1, 0)
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"conns all", "", nil},
		{"conns run", " WHERE run_id = ?", []any{1}},
		{"conns window", " WHERE ts >= ? AND ts < ?", []any{t0.UnixNano(), t0.UnixNano() + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := db.db.Query("EXPLAIN QUERY PLAN "+selectConnSQL+tt.query+" ORDER BY ts, id", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			t.Logf("plan: %v", plan)
			for _, p := range plan {
				if strings.Contains(p, "TEMP B-TREE") {
					t.Errorf("plan sorts in memory: %v", plan)
				}
			}
		})
	}
}

// TestAggCapFlushes lowers the fold cap so one batch crosses it several
// times; the totals must be what one fold would have written.
func TestAggCapFlushes(t *testing.T) {
	old := maxAggKeys
	maxAggKeys = 3
	t.Cleanup(func() { maxAggKeys = old })
	ctx := context.Background()
	db := openTemp(t)
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var cs []*cargowatch.Conn
	for i := range 40 {
		remote := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 7)}).String()
		cs = append(cs, mk(h.Add(time.Duration(i)*time.Minute), "10.0.0.1", remote, 10, 1, false))
	}
	if err := db.WriteConns(ctx, beginRun(t, db), cs); err != nil {
		t.Fatal(err)
	}
	var conns, out int64
	for _, r := range rollups(t, db) {
		conns += r.conns
		out += r.bo
	}
	if conns != 40 || out != 400 {
		t.Errorf("rollups sum to %d conns, %d bytes out; want 40, 400", conns, out)
	}
	first, ok, err := db.FirstSeen(ctx, netip.MustParseAddr("203.0.113.3"))
	if err != nil || !ok || !first.Equal(h.Add(3*time.Minute)) {
		t.Errorf("FirstSeen = %v %v %v, want %v", first, ok, err, h.Add(3*time.Minute))
	}
}
