package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A migration moves the schema from version-1 to version. Migrations are
// append-only: once released, a migration's SQL never changes, because
// databases in the field were built by it. A change is a new migration.
type migration struct {
	version int
	name    string
	sql     string
}

// ErrNewerSchema is returned when a database was written by a newer
// cargowatch whose schema this build does not know; opening it anyway could
// drop or misread columns.
var ErrNewerSchema = errors.New("database schema is newer than this cargowatch supports")

// Times are INTEGER nanoseconds since the Unix epoch (UTC) so that ordering
// and range queries are plain integer comparisons and ns precision survives.
// Addresses are TEXT in netip.Addr.String form so that rows read well in the
// sqlite3 shell. Severity is INTEGER 0..4 (info..critical) so that
// "severity >= high" is an index range.
var migrations = []migration{
	{1, "runs, inputs, conns, findings", `
CREATE TABLE runs (
	id       INTEGER PRIMARY KEY,
	started  INTEGER NOT NULL,
	finished INTEGER,
	command  TEXT NOT NULL DEFAULT '',
	args     TEXT,        -- JSON array
	version  TEXT NOT NULL DEFAULT '',
	locals   TEXT,        -- JSON array of CIDRs, inferred ones included
	stats    TEXT,        -- JSON object
	status   TEXT NOT NULL DEFAULT 'running'
);

CREATE TABLE inputs (
	sha256       TEXT PRIMARY KEY,
	path         TEXT NOT NULL,
	size         INTEGER NOT NULL,
	first_run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	added        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conns (
	id       INTEGER PRIMARY KEY,
	run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	ts       INTEGER,
	uid      TEXT NOT NULL DEFAULT '',
` + endpointDDL("orig_h", "orig_p", "orig") + `,
` + endpointDDL("resp_h", "resp_p", "resp") + `,
	proto         TEXT NOT NULL DEFAULT '',
	service       TEXT NOT NULL DEFAULT '',
	duration      INTEGER NOT NULL DEFAULT 0,
	orig_bytes    INTEGER NOT NULL DEFAULT 0,
	resp_bytes    INTEGER NOT NULL DEFAULT 0,
	orig_pkts     INTEGER NOT NULL DEFAULT 0,
	resp_pkts     INTEGER NOT NULL DEFAULT 0,
	orig_ip_bytes INTEGER NOT NULL DEFAULT 0,
	resp_ip_bytes INTEGER NOT NULL DEFAULT 0,
	missed_bytes  INTEGER NOT NULL DEFAULT 0,
	conn_state    TEXT NOT NULL DEFAULT '',
	history       TEXT NOT NULL DEFAULT '',
	open          INTEGER NOT NULL DEFAULT 0,
	vlan          INTEGER NOT NULL DEFAULT 0,
	tunnel        TEXT NOT NULL DEFAULT '',
	dns           TEXT,   -- JSON array of cargowatch.DNS
	tls           TEXT,   -- JSON cargowatch.TLS
	http          TEXT,   -- JSON array of cargowatch.HTTP
	dns_dropped   INTEGER NOT NULL DEFAULT 0,
	content       TEXT,   -- JSON cargowatch.Content, hit values masked by the caller
	source        TEXT NOT NULL DEFAULT '',
	alerts        TEXT    -- JSON array
);
CREATE INDEX conns_ts ON conns(ts);
CREATE INDEX conns_orig_h ON conns(orig_h);
CREATE INDEX conns_resp_h ON conns(resp_h);
CREATE INDEX conns_run ON conns(run_id, ts);

CREATE TABLE findings (
	id         INTEGER PRIMARY KEY,
	run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	kind       TEXT NOT NULL,
	severity   INTEGER NOT NULL,
	score      REAL NOT NULL DEFAULT 0,
` + endpointDDL("src_ip", "src_port", "src") + `,
` + endpointDDL("dst_ip", "dst_port", "dst") + `,
	first_seen INTEGER,
	last_seen  INTEGER,
	count      INTEGER NOT NULL DEFAULT 0,
	bytes_out  INTEGER NOT NULL DEFAULT 0,
	bytes_in   INTEGER NOT NULL DEFAULT 0,
	summary    TEXT NOT NULL DEFAULT '',
	evidence   TEXT   -- JSON object
);
CREATE INDEX findings_kind ON findings(kind);
CREATE INDEX findings_severity ON findings(severity);
CREATE INDEX findings_src_ip ON findings(src_ip);
CREATE INDEX findings_dst_ip ON findings(dst_ip);
CREATE INDEX findings_run ON findings(run_id, first_seen);
CREATE INDEX findings_first_seen ON findings(first_seen);
`},
	// Rollups and first-seen are derived from conns, so a v1 database is
	// backfilled from the conns it already holds: history written before
	// the upgrade still counts for prevalence and "new destination".
	{2, "hourly rollups, first seen", `
CREATE TABLE rollup_hourly (
	hour          INTEGER NOT NULL,  -- Unix seconds of the hour's start, UTC
	local_ip      TEXT NOT NULL,
	remote_ip     TEXT NOT NULL,
	remote_org    TEXT NOT NULL DEFAULT '',
	jurisdiction  TEXT NOT NULL DEFAULT '',
	country       TEXT NOT NULL DEFAULT '',
	conns         INTEGER NOT NULL DEFAULT 0,
	bytes_out     INTEGER NOT NULL DEFAULT 0,  -- payload bytes local -> remote
	bytes_in      INTEGER NOT NULL DEFAULT 0,
	ip_bytes_out  INTEGER NOT NULL DEFAULT 0,  -- for flow sources that only count IP bytes
	ip_bytes_in   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (hour, local_ip, remote_ip)
) WITHOUT ROWID;
-- No secondary indexes: each cost ~10% of conn write throughput, and
-- readers go by time window (the key's leading hour); per-remote history
-- is in conns (resp_h index) and first_seen_remote.

-- No last_seen per pair: it would rewrite a row for nearly every conn,
-- and the hourly rollups already tell when a pair was last active.
CREATE TABLE first_seen_pair (
	remote_ip  TEXT NOT NULL,
	local_ip   TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	PRIMARY KEY (remote_ip, local_ip)
) WITHOUT ROWID;

CREATE TABLE first_seen_remote (
	remote_ip  TEXT PRIMARY KEY,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) WITHOUT ROWID;

WITH x AS (
	SELECT ts, duration,
	       CASE WHEN orig_local THEN orig_h ELSE resp_h END AS local_ip,
	       CASE WHEN orig_local THEN resp_h ELSE orig_h END AS remote_ip,
	       CASE WHEN orig_local THEN resp_org ELSE orig_org END AS org,
	       CASE WHEN orig_local THEN resp_jurisdiction ELSE orig_jurisdiction END AS jur,
	       CASE WHEN orig_local THEN resp_country ELSE orig_country END AS cc,
	       CASE WHEN orig_local THEN orig_bytes ELSE resp_bytes END AS b_out,
	       CASE WHEN orig_local THEN resp_bytes ELSE orig_bytes END AS b_in,
	       CASE WHEN orig_local THEN orig_ip_bytes ELSE resp_ip_bytes END AS ib_out,
	       CASE WHEN orig_local THEN resp_ip_bytes ELSE orig_ip_bytes END AS ib_in
	FROM conns
	WHERE ts IS NOT NULL AND orig_local != resp_local AND orig_h != '' AND resp_h != ''
)
INSERT INTO rollup_hourly
SELECT (ts / 1000000000 - ((ts / 1000000000) % 3600 + 3600) % 3600), local_ip, remote_ip,
       max(org), max(jur), max(cc), count(*), sum(b_out), sum(b_in), sum(ib_out), sum(ib_in)
FROM x GROUP BY 1, 2, 3;

WITH x AS (
	SELECT ts, ts + max(duration, 0) AS te,
	       CASE WHEN orig_local THEN orig_h ELSE resp_h END AS local_ip,
	       CASE WHEN orig_local THEN resp_h ELSE orig_h END AS remote_ip
	FROM conns
	WHERE ts IS NOT NULL AND orig_local != resp_local AND orig_h != '' AND resp_h != ''
)
INSERT INTO first_seen_pair SELECT remote_ip, local_ip, min(ts) FROM x GROUP BY 1, 2;

WITH x AS (
	SELECT ts, ts + max(duration, 0) AS te,
	       CASE WHEN orig_local THEN resp_h ELSE orig_h END AS remote_ip
	FROM conns
	WHERE ts IS NOT NULL AND orig_local != resp_local AND orig_h != '' AND resp_h != ''
)
INSERT INTO first_seen_remote SELECT remote_ip, min(ts), max(te) FROM x GROUP BY 1;
`},
	{3, "asset first seen", migrationAssets},
	// Nullable and without a default, so ADD COLUMN only rewrites the
	// schema, not the rows: a large v3 file upgrades instantly, and its old
	// rows (which never had OT or host names) read back as nil.
	{4, "conn OT and host names", `
ALTER TABLE conns ADD COLUMN ot TEXT;          -- JSON cargowatch.OT
ALTER TABLE conns ADD COLUMN host_names TEXT;  -- JSON array of cargowatch.HostName
`},
}

// ErrForeign is returned for a SQLite file that holds tables but no
// cargowatch schema version: another program's database.
var ErrForeign = errors.New("not a cargowatch database (SQLite file with other tables and no schema version)")

// latestVersion is the schema version this build writes.
func latestVersion() int { return migrations[len(migrations)-1].version }

func endpointDDL(addr, port, p string) string {
	return fmt.Sprintf(`	%[1]s TEXT NOT NULL DEFAULT '',
	%[2]s INTEGER NOT NULL DEFAULT 0,
	%[3]s_mac TEXT NOT NULL DEFAULT '',
	%[3]s_local INTEGER NOT NULL DEFAULT 0,
	%[3]s_name TEXT NOT NULL DEFAULT '',
	%[3]s_country TEXT NOT NULL DEFAULT '',
	%[3]s_asn INTEGER NOT NULL DEFAULT 0,
	%[3]s_org TEXT NOT NULL DEFAULT '',
	%[3]s_jurisdiction TEXT NOT NULL DEFAULT '',
	%[3]s_jurisdiction_source TEXT NOT NULL DEFAULT '',
	%[3]s_asset TEXT`, addr, port, p)
}

// migrate brings db up to version target (latestVersion in production;
// tests stop earlier to build old files). Each migration runs in its own
// BEGIN IMMEDIATE transaction that re-reads user_version, so two processes
// opening the same old file do not both apply a step.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	cur, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if cur > latestVersion() {
		return fmt.Errorf("%w: file has version %d, this build knows up to %d; use a newer cargowatch", ErrNewerSchema, cur, latestVersion())
	}
	for _, m := range migrations {
		if m.version <= cur || m.version > target {
			continue
		}
		if err := apply(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m migration) (err error) {
	tx, err := db.BeginTx(ctx, nil) // _txlock=immediate: takes the write lock now
	if err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur int
	if err = tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	if cur >= m.version {
		return tx.Rollback() // another process got here first
	}
	if cur == 0 {
		// Version 0 with tables is some other program's database: creating
		// ours beside its tables would mix the two.
		var n int
		if err = tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").Scan(&n); err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
		if n > 0 {
			err = ErrForeign
			return err
		}
	}
	if cur != m.version-1 {
		return fmt.Errorf("migration %d: database is at version %d, want %d", m.version, cur, m.version-1)
	}
	if _, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	if _, err = tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if _, err = tx.ExecContext(ctx, "INSERT INTO schema_migrations(version, name, applied) VALUES (?, ?, ?)",
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	// PRAGMA takes no bound parameters; the version is our own integer.
	if _, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: %w", m.version, err)
	}
	return nil
}

func userVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, err
	}
	return v, nil
}
