package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cargowatch/cargowatch"
)

var connColumns = func() []string {
	cols := []string{"ts", "uid"}
	cols = append(cols, endpointColumns("orig_h", "orig_p", "orig")...)
	cols = append(cols, endpointColumns("resp_h", "resp_p", "resp")...)
	return append(cols, "proto", "service", "duration",
		"orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "missed_bytes",
		"conn_state", "history", "open", "vlan", "tunnel",
		"dns", "tls", "http", "dns_dropped", "content", "source", "alerts", "ot", "host_names")
}()

var selectConnSQL = "SELECT " + strings.Join(connColumns, ", ") + " FROM conns"

const (
	upsertRollupHead = `INSERT INTO rollup_hourly(hour, local_ip, remote_ip, remote_org, jurisdiction, country,
	conns, bytes_out, bytes_in, ip_bytes_out, ip_bytes_in) VALUES `
	upsertRollupTail = `
ON CONFLICT(hour, local_ip, remote_ip) DO UPDATE SET
	remote_org   = CASE WHEN excluded.remote_org   != '' THEN excluded.remote_org   ELSE remote_org END,
	jurisdiction = CASE WHEN excluded.jurisdiction != '' THEN excluded.jurisdiction ELSE jurisdiction END,
	country      = CASE WHEN excluded.country      != '' THEN excluded.country      ELSE country END,
	conns        = conns + excluded.conns,
	bytes_out    = bytes_out + excluded.bytes_out,
	bytes_in     = bytes_in + excluded.bytes_in,
	ip_bytes_out = ip_bytes_out + excluded.ip_bytes_out,
	ip_bytes_in  = ip_bytes_in + excluded.ip_bytes_in`
	upsertPairHead = `INSERT INTO first_seen_pair(remote_ip, local_ip, first_seen) VALUES `
	// The WHERE leaves the row (and its page) untouched in the usual case
	// of a pair seen before.
	upsertPairTail = `
ON CONFLICT(remote_ip, local_ip) DO UPDATE SET first_seen = excluded.first_seen
	WHERE excluded.first_seen < first_seen`
	upsertRemoteHead = `INSERT INTO first_seen_remote(remote_ip, first_seen, last_seen) VALUES `
	upsertRemoteTail = `
ON CONFLICT(remote_ip) DO UPDATE SET
	first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)`
)

type rollupKey struct {
	hour          int64
	local, remote string
}

type rollupVal struct {
	org, jur, cc            string
	conns, bo, bi, ibo, ibi int64
}

type pairKey struct{ remote, local string }

type span struct{ first, last int64 }

func (s *span) add(first, last int64) {
	if first < s.first {
		s.first = first
	}
	if last > s.last {
		s.last = last
	}
}

// batchAgg folds one WriteConns batch in memory first, so the upserts run
// once per distinct pair and hour rather than once per conn. It is bounded
// by the batch length.
type batchAgg struct {
	rollup map[rollupKey]*rollupVal
	pair   map[pairKey]int64 // first seen
	remote map[string]*span
}

// maxAggKeys bounds the in-memory fold when a caller passes one huge
// batch: past it the fold is written out (in the same transaction) and
// started afresh, which costs a few more upserts and loses nothing.
var maxAggKeys = 1 << 14 // a var so tests can hit it

func (a *batchAgg) reset() {
	clear(a.rollup)
	clear(a.pair)
	clear(a.remote)
}

// add counts c when exactly one side is local: rollups and first-seen are
// about our hosts talking to the outside (DESIGN.md), and conns with no
// timestamp cannot be placed in an hour.
func (a *batchAgg) add(c *cargowatch.Conn, ts int64) {
	if c.Orig.Local == c.Resp.Local || !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() {
		return
	}
	l, r := &c.Orig, &c.Resp
	bo, bi, ibo, ibi := c.OrigBytes, c.RespBytes, c.OrigIPBytes, c.RespIPBytes
	if c.Resp.Local {
		l, r = r, l
		bo, bi, ibo, ibi = bi, bo, ibi, ibo
	}
	local, remote := l.Addr.String(), r.Addr.String()
	sec := ts / 1e9 // truncating, like SQLite's integer division in migration 2
	k := rollupKey{sec - ((sec%3600)+3600)%3600, local, remote}
	v := a.rollup[k]
	if v == nil {
		v = &rollupVal{}
		a.rollup[k] = v
	}
	if r.Org != "" {
		v.org = r.Org
	}
	if r.Jurisdiction != "" {
		v.jur = r.Jurisdiction
	}
	if r.Country != "" {
		v.cc = r.Country
	}
	v.conns++
	v.bo += bo
	v.bi += bi
	v.ibo += ibo
	v.ibi += ibi

	end := ts
	if c.Duration > 0 && ts <= maxTime.UnixNano()-int64(c.Duration) {
		end = ts + int64(c.Duration)
	}
	pk := pairKey{remote, local}
	if p, ok := a.pair[pk]; !ok || ts < p {
		a.pair[pk] = ts
	}
	if p := a.remote[remote]; p != nil {
		p.add(ts, end)
	} else {
		a.remote[remote] = &span{ts, end}
	}
}

// WriteConns stores cs under runID in one transaction, with the rollups and
// first-seen tables updated in the same transaction so they never disagree
// with the conns. Nil entries are skipped. Content.Hits must already be
// masked (see the package comment); OT and HostNames are stored as given,
// as device and host names are not cargo identifiers.
func (s *DB) WriteConns(ctx context.Context, runID int64, cs []*cargowatch.Conn) (err error) {
	if len(cs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	agg := batchAgg{
		rollup: make(map[rollupKey]*rollupVal),
		pair:   make(map[pairKey]int64),
		remote: make(map[string]*span),
	}
	ins := newMultiInsert(ctx, tx, "INSERT INTO conns(run_id, "+strings.Join(connColumns, ", ")+") VALUES ", "",
		len(connColumns)+1)
	defer ins.close()
	for i, c := range cs {
		if c == nil {
			continue
		}
		n := len(ins.args)
		ins.args, err = s.connArgs(ins.args, runID, c)
		if err != nil {
			return fmt.Errorf("sqlite: write conns: conn %d (uid %q): %w", i, c.UID, err)
		}
		if ts, ok := ins.args[n+1].(int64); ok {
			agg.add(c, ts)
		}
		if len(agg.rollup) >= maxAggKeys || len(agg.pair) >= maxAggKeys {
			if err = s.writeAgg(ctx, tx, &agg); err != nil {
				return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
			}
			agg.reset()
		}
		if err = ins.add(i); err != nil {
			return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
		}
	}
	if err = ins.flush(); err != nil {
		return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
	}
	if err = s.writeAgg(ctx, tx, &agg); err != nil {
		return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: write conns: %w", s.path, err)
	}
	return nil
}

// writeAgg upserts the fold. Keys are unique within each map, so no two
// rows of one multi-row statement conflict with each other.
func (s *DB) writeAgg(ctx context.Context, tx *sql.Tx, a *batchAgg) error {
	m := newMultiInsert(ctx, tx, upsertRollupHead, upsertRollupTail, 11)
	defer m.close()
	i := 0
	for k, v := range a.rollup {
		m.args = append(m.args, k.hour, k.local, k.remote, v.org, v.jur, v.cc, v.conns, v.bo, v.bi, v.ibo, v.ibi)
		if err := m.add(i); err != nil {
			return fmt.Errorf("rollup: %w", err)
		}
		i++
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("rollup: %w", err)
	}
	p := newMultiInsert(ctx, tx, upsertPairHead, upsertPairTail, 3)
	defer p.close()
	i = 0
	for k, v := range a.pair {
		p.args = append(p.args, k.remote, k.local, v)
		if err := p.add(i); err != nil {
			return fmt.Errorf("first seen: %w", err)
		}
		i++
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("first seen: %w", err)
	}
	r := newMultiInsert(ctx, tx, upsertRemoteHead, upsertRemoteTail, 3)
	defer r.close()
	i = 0
	for k, v := range a.remote {
		r.args = append(r.args, k, v.first, v.last)
		if err := r.add(i); err != nil {
			return fmt.Errorf("first seen: %w", err)
		}
		i++
	}
	if err := r.flush(); err != nil {
		return fmt.Errorf("first seen: %w", err)
	}
	return nil
}

func (s *DB) connArgs(args []any, runID int64, c *cargowatch.Conn) ([]any, error) {
	args = append(args, runID, s.nanos(c.TS), c.UID)
	o, err := endpointArgs(&c.Orig)
	if err != nil {
		return nil, fmt.Errorf("orig: %w", err)
	}
	r, err := endpointArgs(&c.Resp)
	if err != nil {
		return nil, fmt.Errorf("resp: %w", err)
	}
	args = append(args, o...)
	args = append(args, r...)
	dns, err := marshalNull(c.DNS)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	tls, err := marshalNull(c.TLS)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	http, err := marshalNull(c.HTTP)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	content, err := marshalNull(c.Content)
	if err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	alerts, err := marshalNull(c.Alerts)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	// Most conns carry neither, and json.Marshal of a nil pointer or slice
	// still costs a reflection walk per conn on the hot write path.
	var ot, hostNames any
	if c.OT != nil {
		if ot, err = marshalNull(c.OT); err != nil {
			return nil, fmt.Errorf("ot: %w", err)
		}
	}
	if c.HostNames != nil {
		if hostNames, err = marshalNull(c.HostNames); err != nil {
			return nil, fmt.Errorf("host names: %w", err)
		}
	}
	return append(args, c.Proto, c.Service, int64(c.Duration),
		c.OrigBytes, c.RespBytes, c.OrigPkts, c.RespPkts, c.OrigIPBytes, c.RespIPBytes, c.MissedBytes,
		c.State, c.History, c.Open, int64(c.VLAN), c.Tunnel,
		dns, tls, http, int64(c.DNSDropped), content, c.Source, alerts, ot, hostNames), nil
}

type connRow struct {
	ts                                   sql.NullInt64
	uid                                  sql.NullString
	orig, resp                           endpointRow
	proto, service, state, history       sql.NullString
	tunnel, source                       sql.NullString
	dur, ob, rb, op, rp, oib, rib, missd sql.NullInt64
	vlan, dnsDropped                     sql.NullInt64
	open                                 sql.NullBool
	dns, tls, http, content, alerts      sql.NullString
	ot, hostNames                        sql.NullString
}

func (r *connRow) dest() []any {
	d := []any{&r.ts, &r.uid}
	d = append(d, r.orig.dest()...)
	d = append(d, r.resp.dest()...)
	return append(d, &r.proto, &r.service, &r.dur,
		&r.ob, &r.rb, &r.op, &r.rp, &r.oib, &r.rib, &r.missd,
		&r.state, &r.history, &r.open, &r.vlan, &r.tunnel,
		&r.dns, &r.tls, &r.http, &r.dnsDropped, &r.content, &r.source, &r.alerts, &r.ot, &r.hostNames)
}

func (r *connRow) conn() (*cargowatch.Conn, error) {
	c := &cargowatch.Conn{
		TS: fromNanos(r.ts), UID: r.uid.String,
		Proto: r.proto.String, Service: r.service.String, Duration: time.Duration(r.dur.Int64),
		OrigBytes: r.ob.Int64, RespBytes: r.rb.Int64, OrigPkts: r.op.Int64, RespPkts: r.rp.Int64,
		OrigIPBytes: r.oib.Int64, RespIPBytes: r.rib.Int64, MissedBytes: r.missd.Int64,
		State: r.state.String, History: r.history.String, Open: r.open.Bool,
		VLAN: uint16(r.vlan.Int64), Tunnel: r.tunnel.String,
		DNSDropped: int(r.dnsDropped.Int64), Source: r.source.String,
	}
	if err := r.orig.endpoint(&c.Orig); err != nil {
		return nil, fmt.Errorf("orig: %w", err)
	}
	if err := r.resp.endpoint(&c.Resp); err != nil {
		return nil, fmt.Errorf("resp: %w", err)
	}
	for _, j := range []struct {
		name string
		s    sql.NullString
		v    any
	}{{"dns", r.dns, &c.DNS}, {"tls", r.tls, &c.TLS}, {"http", r.http, &c.HTTP},
		{"content", r.content, &c.Content}, {"alerts", r.alerts, &c.Alerts},
		{"ot", r.ot, &c.OT}, {"host names", r.hostNames, &c.HostNames}} {
		if err := unmarshalNull(j.s, j.v); err != nil {
			return nil, fmt.Errorf("%s: %w", j.name, err)
		}
	}
	return c, nil
}

// where builds the filter shared by the stream queries.
func where(runID int64, col string, from, to time.Time, extra ...string) (string, []any) {
	var conds []string
	var args []any
	if runID != 0 {
		conds = append(conds, "run_id = ?")
		args = append(args, runID)
	}
	if !from.IsZero() {
		conds = append(conds, col+" >= ?")
		args = append(args, clampNanos(from))
	}
	if !to.IsZero() {
		conds = append(conds, col+" < ?")
		args = append(args, clampNanos(to))
	}
	conds = append(conds, extra...)
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}

// Conns streams the stored conns that q selects, ordered by TS (then by
// insertion). An error returned by fn stops the stream and is returned as is.
func (s *DB) Conns(ctx context.Context, q cargowatch.ConnQuery, fn func(*cargowatch.Conn) error) error {
	w, args := where(q.RunID, "ts", q.From, q.To)
	query := selectConnSQL + w + " ORDER BY ts, id"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s: conns: %w", s.path, err)
	}
	defer rows.Close()
	var r connRow
	dest := r.dest()
	for rows.Next() {
		r = connRow{}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sqlite: %s: conns: %w", s.path, err)
		}
		c, err := r.conn()
		if err != nil {
			return fmt.Errorf("sqlite: %s: conn uid %q: %w", s.path, r.uid.String, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: conns: %w", s.path, err)
	}
	return nil
}

// FirstSeen returns when any local host was first seen talking to remote
// (ok false when never).
func (s *DB) FirstSeen(ctx context.Context, remote netip.Addr) (time.Time, bool, error) {
	var ns int64
	err := s.db.QueryRowContext(ctx, "SELECT first_seen FROM first_seen_remote WHERE remote_ip = ?",
		addrText(remote)).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: %s: first seen %s: %w", s.path, addrText(remote), err)
	}
	return time.Unix(0, ns).UTC(), true, nil
}

// Prevalence returns how many distinct local hosts were seen talking to
// remote: a destination that one host of hundreds uses stands out.
func (s *DB) Prevalence(ctx context.Context, remote netip.Addr) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM first_seen_pair WHERE remote_ip = ?",
		addrText(remote)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: %s: prevalence %s: %w", s.path, addrText(remote), err)
	}
	return n, nil
}

// Rollup is one hour of traffic between a local and a remote address.
type Rollup struct {
	Hour                    time.Time
	Local, Remote           netip.Addr
	RemoteOrg, Jurisdiction string
	Country                 string
	Conns                   int64
	BytesOut, BytesIn       int64 // payload bytes, local -> remote and back
	IPBytesOut, IPBytesIn   int64
}

// Rollups streams the hourly rollups with hour in [from, to) (zero times do
// not filter), ordered by hour, local, remote.
func (s *DB) Rollups(ctx context.Context, from, to time.Time, fn func(*Rollup) error) error {
	var conds []string
	var args []any
	if !from.IsZero() {
		conds = append(conds, "hour >= ?")
		args = append(args, from.Unix())
	}
	if !to.IsZero() {
		conds = append(conds, "hour < ?")
		args = append(args, to.Unix())
	}
	q := `SELECT hour, local_ip, remote_ip, remote_org, jurisdiction, country, conns, bytes_out, bytes_in,
		ip_bytes_out, ip_bytes_in FROM rollup_hourly`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY hour, local_ip, remote_ip", args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s: rollups: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Rollup
		var hour int64
		var local, remote string
		if err := rows.Scan(&hour, &local, &remote, &r.RemoteOrg, &r.Jurisdiction, &r.Country,
			&r.Conns, &r.BytesOut, &r.BytesIn, &r.IPBytesOut, &r.IPBytesIn); err != nil {
			return fmt.Errorf("sqlite: %s: rollups: %w", s.path, err)
		}
		r.Hour = time.Unix(hour, 0).UTC()
		if r.Local, err = netip.ParseAddr(local); err != nil {
			return fmt.Errorf("sqlite: %s: rollups: local: %w", s.path, err)
		}
		if r.Remote, err = netip.ParseAddr(remote); err != nil {
			return fmt.Errorf("sqlite: %s: rollups: remote: %w", s.path, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: rollups: %w", s.path, err)
	}
	return nil
}
