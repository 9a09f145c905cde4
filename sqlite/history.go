package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// DailyBytesOut streams, per local host and UTC day with hour in [from,
// to), the bytes the host sent to remote hosts: payload bytes, or IP bytes
// for an hour whose rollup has no payload count (flow sources). Rows come
// ordered by host, then day. It reads the hourly rollups by their leading
// hour key, so the cost is that of the window, and SQLite's grouping holds
// one row per (host, day) of it.
func (s *DB) DailyBytesOut(ctx context.Context, from, to time.Time, fn func(local netip.Addr, day time.Time, bytesOut int64) error) error {
	const q = `SELECT local_ip, day, sum(b) FROM (
		SELECT local_ip, (hour - ((hour % 86400) + 86400) % 86400) AS day,
		       CASE WHEN bytes_out > 0 THEN bytes_out ELSE ip_bytes_out END AS b
		FROM rollup_hourly WHERE hour >= ? AND hour < ?)
	GROUP BY local_ip, day ORDER BY local_ip, day`
	lo, hi := int64(-1<<62), int64(1<<62)
	if !from.IsZero() {
		lo = from.Unix()
	}
	if !to.IsZero() {
		hi = to.Unix()
	}
	rows, err := s.db.QueryContext(ctx, q, lo, hi)
	if err != nil {
		return fmt.Errorf("sqlite: %s: daily bytes out: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var local string
		var day, n int64
		if err := rows.Scan(&local, &day, &n); err != nil {
			return fmt.Errorf("sqlite: %s: daily bytes out: %w", s.path, err)
		}
		a, err := netip.ParseAddr(local)
		if err != nil {
			return fmt.Errorf("sqlite: %s: daily bytes out: local %q: %w", s.path, local, err)
		}
		if err := fn(a, time.Unix(day, 0).UTC(), n); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: daily bytes out: %w", s.path, err)
	}
	return nil
}
