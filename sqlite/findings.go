package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"

	"github.com/cargowatch/cargowatch"
)

var findingColumns = func() []string {
	cols := []string{"kind", "severity", "score"}
	cols = append(cols, endpointColumns("src_ip", "src_port", "src")...)
	cols = append(cols, endpointColumns("dst_ip", "dst_port", "dst")...)
	return append(cols, "first_seen", "last_seen", "count", "bytes_out", "bytes_in", "summary", "evidence")
}()

var (
	insertFindingSQL = "INSERT INTO findings(run_id, " + strings.Join(findingColumns, ", ") +
		") VALUES (" + placeholders(len(findingColumns)+1) + ")"
	selectFindingSQL = "SELECT " + strings.Join(findingColumns, ", ") + " FROM findings"
)

// WriteFindings stores fs under runID in one transaction. Evidence is
// stored as JSON and comes back decoded as JSON (numbers as float64);
// sample identifiers in it must already be masked.
func (s *DB) WriteFindings(ctx context.Context, runID int64, fs []cargowatch.Finding) (err error) {
	if len(fs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: write findings: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	ins, err := tx.PrepareContext(ctx, insertFindingSQL)
	if err != nil {
		return fmt.Errorf("sqlite: %s: write findings: %w", s.path, err)
	}
	defer ins.Close()
	args := make([]any, 0, len(findingColumns)+1)
	for i := range fs {
		f := &fs[i]
		args, err = s.findingArgs(args[:0], runID, f)
		if err != nil {
			return fmt.Errorf("sqlite: write findings: finding %d (%s): %w", i, f.Kind, err)
		}
		if _, err = ins.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: %s: write findings: finding %d (%s): %w", s.path, i, f.Kind, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: write findings: %w", s.path, err)
	}
	return nil
}

func (s *DB) findingArgs(args []any, runID int64, f *cargowatch.Finding) ([]any, error) {
	if f.Kind == "" {
		return nil, fmt.Errorf("empty kind")
	}
	score := f.Score
	if math.IsNaN(score) || math.IsInf(score, 0) {
		// SQLite stores NaN as NULL and the column is NOT NULL; a detector
		// bug must not lose the whole batch.
		score = 0
	}
	sev := f.Severity
	if sev < cargowatch.Info || sev > cargowatch.Critical {
		sev = cargowatch.Info
	}
	args = append(args, runID, f.Kind, int64(sev), score)
	src, err := endpointArgs(&f.Src)
	if err != nil {
		return nil, fmt.Errorf("src: %w", err)
	}
	dst, err := endpointArgs(&f.Dst)
	if err != nil {
		return nil, fmt.Errorf("dst: %w", err)
	}
	ev := marshalOrNote("evidence of "+f.Kind, f.Evidence)
	args = append(args, src...)
	args = append(args, dst...)
	return append(args, s.nanos(f.FirstSeen), s.nanos(f.LastSeen), f.Count, f.BytesOut, f.BytesIn, f.Summary, ev), nil
}

type findingRow struct {
	kind, summary, evidence sql.NullString
	sev, count, bout, bin   sql.NullInt64
	first, last             sql.NullInt64
	score                   sql.NullFloat64
	src, dst                endpointRow
}

func (r *findingRow) dest() []any {
	d := []any{&r.kind, &r.sev, &r.score}
	d = append(d, r.src.dest()...)
	d = append(d, r.dst.dest()...)
	return append(d, &r.first, &r.last, &r.count, &r.bout, &r.bin, &r.summary, &r.evidence)
}

func (r *findingRow) finding() (*cargowatch.Finding, error) {
	if r.sev.Int64 < int64(cargowatch.Info) || r.sev.Int64 > int64(cargowatch.Critical) {
		return nil, fmt.Errorf("severity %d out of range", r.sev.Int64)
	}
	f := &cargowatch.Finding{
		Kind: r.kind.String, Severity: cargowatch.Severity(r.sev.Int64), Score: r.score.Float64,
		FirstSeen: fromNanos(r.first), LastSeen: fromNanos(r.last),
		Count: r.count.Int64, BytesOut: r.bout.Int64, BytesIn: r.bin.Int64, Summary: r.summary.String,
	}
	if err := r.src.endpoint(&f.Src); err != nil {
		return nil, fmt.Errorf("src: %w", err)
	}
	if err := r.dst.endpoint(&f.Dst); err != nil {
		return nil, fmt.Errorf("dst: %w", err)
	}
	if err := unmarshalNull(r.evidence, &f.Evidence); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return f, nil
}

// Findings streams the stored findings that q selects, ordered by
// FirstSeen (then by insertion). An error returned by fn stops the stream
// and is returned as is.
func (s *DB) Findings(ctx context.Context, q cargowatch.FindingQuery, fn func(*cargowatch.Finding) error) error {
	var extra []string
	var extraArgs []any
	if q.Kind != "" {
		extra = append(extra, "kind = ?")
		extraArgs = append(extraArgs, q.Kind)
	}
	if q.MinSeverity > cargowatch.Info {
		extra = append(extra, "severity >= ?")
		extraArgs = append(extraArgs, int64(q.MinSeverity))
	}
	w, args := where(q.RunID, "last_seen", q.From, q.To, extra...)
	args = append(args, extraArgs...)
	query := selectFindingSQL + w + " ORDER BY first_seen, id"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s: findings: %w", s.path, err)
	}
	defer rows.Close()
	var r findingRow
	dest := r.dest()
	for rows.Next() {
		r = findingRow{}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sqlite: %s: findings: %w", s.path, err)
		}
		f, err := r.finding()
		if err != nil {
			return fmt.Errorf("sqlite: %s: finding %s: %w", s.path, r.kind.String, err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: findings: %w", s.path, err)
	}
	return nil
}
