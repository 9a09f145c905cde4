package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"time"
)

// migrationAssets (version 3) adds when each local host was first and last
// seen, for the inventory's new_asset findings. It is backfilled from the
// local sides of the conns a v2 file holds, so a store that already has
// history does not call every device new after the upgrade.
const migrationAssets = `
CREATE TABLE asset_first_seen (
	ip         TEXT PRIMARY KEY,
	mac        TEXT NOT NULL DEFAULT '',
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) WITHOUT ROWID;

WITH x AS (
	SELECT orig_h AS ip, orig_mac AS mac, ts, ts + max(duration, 0) AS te
	FROM conns WHERE orig_local AND orig_h != '' AND ts IS NOT NULL
	UNION ALL
	SELECT resp_h, resp_mac, ts, ts + max(duration, 0)
	FROM conns WHERE resp_local AND resp_h != '' AND ts IS NOT NULL
)
INSERT INTO asset_first_seen SELECT ip, max(mac), min(ts), max(te) FROM x GROUP BY ip;
`

// AssetSighting is one host's span in a run.
type AssetSighting struct {
	Addr        netip.Addr
	MAC         string
	First, Last time.Time
}

const upsertAssetHead = `INSERT INTO asset_first_seen(ip, mac, first_seen, last_seen) VALUES `
const upsertAssetTail = `
ON CONFLICT(ip) DO UPDATE SET
	first_seen = min(first_seen, excluded.first_seen),
	last_seen = max(last_seen, excluded.last_seen),
	mac = CASE WHEN excluded.mac != '' THEN excluded.mac ELSE mac END`

// assetQueryChunk bounds the addresses of one "ip IN (...)" read.
const assetQueryChunk = 500

// RecordAssets stores this run's sightings (first-seen only ever moves
// back, last-seen forward) and returns, in the same transaction, each
// sighted host's earliest first-seen and the start of the history (the
// earliest first-seen of any host; zero when the table is empty).
// Sightings with a zero First are skipped.
func (s *DB) RecordAssets(ctx context.Context, seen []AssetSighting) (first map[netip.Addr]time.Time, start time.Time, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	m := newMultiInsert(ctx, tx, upsertAssetHead, upsertAssetTail, 4)
	defer m.close()
	var addrs []string
	for i, a := range seen {
		if a.First.IsZero() || !a.Addr.IsValid() {
			continue
		}
		last := a.Last
		if last.Before(a.First) {
			last = a.First
		}
		ip := addrText(a.Addr)
		addrs = append(addrs, ip)
		m.args = append(m.args, ip, a.MAC, s.nanos(a.First), s.nanos(last))
		if err = m.add(i); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
		}
	}
	if err = m.flush(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
	}
	first = make(map[netip.Addr]time.Time, len(addrs))
	for len(addrs) > 0 {
		n := min(len(addrs), assetQueryChunk)
		args := make([]any, n)
		for i := range args {
			args[i] = addrs[i]
		}
		addrs = addrs[n:]
		rows, qerr := tx.QueryContext(ctx, "SELECT ip, first_seen FROM asset_first_seen WHERE ip IN ("+placeholders(n)+")", args...)
		if qerr != nil {
			err = qerr
			return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
		}
		for rows.Next() {
			var ip string
			var f sql.NullInt64
			if err = rows.Scan(&ip, &f); err != nil {
				rows.Close()
				return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
			}
			if a, perr := netip.ParseAddr(ip); perr == nil {
				first[a] = fromNanos(f)
			}
		}
		if err = rows.Close(); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
		}
	}
	var st sql.NullInt64
	if err = tx.QueryRowContext(ctx, "SELECT min(first_seen) FROM asset_first_seen").Scan(&st); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
	}
	if err = tx.Commit(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: %s: assets: %w", s.path, err)
	}
	return first, fromNanos(st), nil
}

// AssetFirstSeen returns when a host was first and last seen, ok false
// when the history does not know it.
func (s *DB) AssetFirstSeen(ctx context.Context, a netip.Addr) (first, last time.Time, ok bool, err error) {
	var f, l sql.NullInt64
	err = s.db.QueryRowContext(ctx, "SELECT first_seen, last_seen FROM asset_first_seen WHERE ip = ?", addrText(a)).Scan(&f, &l)
	if err == sql.ErrNoRows {
		return time.Time{}, time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("sqlite: %s: asset %s: %w", s.path, addrText(a), err)
	}
	return fromNanos(f), fromNanos(l), true, nil
}
