package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func TestDailyBytesOut(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)
	d0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const a, b, r1, r2 = "10.0.0.5", "10.0.0.6", "203.0.113.9", "198.51.100.1"
	flowOnly := mk(d0.Add(50*time.Hour), b, r1, 0, 0, false) // flow source: IP bytes only
	flowOnly.OrigIPBytes, flowOnly.RespIPBytes = 900, 100
	cs := []*cargowatch.Conn{
		mk(d0.Add(1*time.Hour), a, r1, 100, 1, false),
		mk(d0.Add(23*time.Hour+59*time.Minute), a, r2, 200, 1, false),
		mk(d0.Add(23*time.Hour+59*time.Minute), a, r2, 7, 1000, true), // inbound: still a's bytes out
		mk(d0.Add(24*time.Hour), a, r1, 1000, 1, false),               // next day
		mk(d0.Add(26*time.Hour), b, r1, 5, 1, false),
		flowOnly,
		mk(d0.Add(-1*time.Hour), a, r1, 1<<20, 1, false), // before the window
	}
	if err := db.WriteConns(ctx, run, cs); err != nil {
		t.Fatal(err)
	}
	type row struct {
		local string
		day   string
		n     int64
	}
	var got []row
	err := db.DailyBytesOut(ctx, d0, d0.Add(72*time.Hour), func(l netip.Addr, day time.Time, n int64) error {
		got = append(got, row{l.String(), day.Format("01-02"), n})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{a, "05-01", 307}, {a, "05-02", 1000}, {b, "05-02", 5}, {b, "05-03", 900}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// Zero times do not filter; a callback error stops the stream.
	n := 0
	stop := fmt.Errorf("stop")
	err = db.DailyBytesOut(ctx, time.Time{}, time.Time{}, func(netip.Addr, time.Time, int64) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("callback error: got %v after %d rows", err, n)
	}
	var all int
	if err := db.DailyBytesOut(ctx, time.Time{}, time.Time{}, func(netip.Addr, time.Time, int64) error { all++; return nil }); err != nil || all != 5 {
		t.Errorf("unfiltered: %d rows, %v; want 5", all, err)
	}
}
