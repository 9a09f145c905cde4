package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func TestRecordAssets(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fe80::1")
	for i, st := range []struct {
		seen      []AssetSighting
		wantFirst map[netip.Addr]time.Time
		wantStart time.Time
		wantMAC   string
	}{
		{[]AssetSighting{{Addr: a, MAC: "00:1b:1b:00:00:01", First: h, Last: h.Add(time.Hour)}},
			map[netip.Addr]time.Time{a: h}, h, "00:1b:1b:00:00:01"},
		// A later sighting keeps first-seen; an empty MAC keeps the known one.
		{[]AssetSighting{{Addr: a, First: h.Add(48 * time.Hour), Last: h.Add(49 * time.Hour)}, {Addr: b, First: h.Add(48 * time.Hour)}},
			map[netip.Addr]time.Time{a: h, b: h.Add(48 * time.Hour)}, h, "00:1b:1b:00:00:01"},
		// An older capture analysed later moves first-seen and the history start back.
		{[]AssetSighting{{Addr: b, First: h.Add(-24 * time.Hour), Last: h.Add(-23 * time.Hour)}},
			map[netip.Addr]time.Time{b: h.Add(-24 * time.Hour)}, h.Add(-24 * time.Hour), "00:1b:1b:00:00:01"},
		// Zero times are skipped, not stored as 1970.
		{[]AssetSighting{{Addr: netip.MustParseAddr("10.9.9.9")}}, map[netip.Addr]time.Time{}, h.Add(-24 * time.Hour), "00:1b:1b:00:00:01"},
	} {
		first, start, err := db.RecordAssets(ctx, st.seen)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(first) != len(st.wantFirst) {
			t.Errorf("step %d: first = %v, want %v", i, first, st.wantFirst)
		}
		for k, v := range st.wantFirst {
			if !first[k].Equal(v) {
				t.Errorf("step %d: first[%s] = %v, want %v", i, k, first[k], v)
			}
		}
		if !start.Equal(st.wantStart) {
			t.Errorf("step %d: start = %v, want %v", i, start, st.wantStart)
		}
		var mac string
		if err := db.db.QueryRow("SELECT mac FROM asset_first_seen WHERE ip = ?", a.String()).Scan(&mac); err != nil || mac != st.wantMAC {
			t.Errorf("step %d: mac %q %v, want %q", i, mac, err, st.wantMAC)
		}
	}
	f, l, ok, err := db.AssetFirstSeen(ctx, a)
	if err != nil || !ok || !f.Equal(h) || !l.Equal(h.Add(49*time.Hour)) {
		t.Errorf("AssetFirstSeen = %v %v %v %v", f, l, ok, err)
	}
	if _, _, ok, err := db.AssetFirstSeen(ctx, netip.MustParseAddr("10.9.9.9")); ok || err != nil {
		t.Errorf("unknown host: ok %v err %v", ok, err)
	}
}

// More hosts than one IN (...) chunk and one multi-row insert hold.
func TestRecordAssetsMany(t *testing.T) {
	db := openTemp(t)
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var seen []AssetSighting
	for i := 0; i < 3*assetQueryChunk+7; i++ {
		seen = append(seen, AssetSighting{Addr: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", i/256, i%256)), First: h.Add(time.Duration(i) * time.Second)})
	}
	first, start, err := db.RecordAssets(context.Background(), seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(seen) || !start.Equal(h) || !first[seen[len(seen)-1].Addr].Equal(seen[len(seen)-1].First) {
		t.Fatalf("%d firsts, start %v", len(first), start)
	}
}

// A v2 store's conns backfill the hosts' first sightings on upgrade.
func TestMigrateV2BackfillsAssets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	old, err := open(ctx, path, 2)
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	conns := []*cargowatch.Conn{
		mk(h.Add(time.Hour), "10.0.0.5", "203.0.113.9", 1, 1, false),
		mk(h, "10.0.0.5", "203.0.113.9", 1, 1, true), // inbound: the local side is the responder
		mk(h.Add(2*time.Hour), "10.0.0.6", "203.0.113.9", 1, 1, false),
	}
	insertV1Conns(t, old, beginRun(t, old), conns)
	old.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		ip          string
		first, last time.Time
	}{
		{"10.0.0.5", h, h.Add(time.Hour + 30*time.Second)},
		{"10.0.0.6", h.Add(2 * time.Hour), h.Add(2*time.Hour + 30*time.Second)},
	} {
		f, l, ok, err := db.AssetFirstSeen(ctx, netip.MustParseAddr(tc.ip))
		if err != nil || !ok || !f.Equal(tc.first) || !l.Equal(tc.last) {
			t.Errorf("%s: %v %v %v %v, want %v %v", tc.ip, f, l, ok, err, tc.first, tc.last)
		}
	}
	if _, _, ok, _ := db.AssetFirstSeen(ctx, netip.MustParseAddr("203.0.113.9")); ok {
		t.Error("the remote side was backfilled as a local host")
	}
}
