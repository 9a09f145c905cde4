package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// multiInsert batches rows into multi-row INSERT statements inside one
// transaction. One row per Exec spent about half the write time on
// per-statement overhead (database/sql argument conversion, bind, VDBE
// setup), for conns and for the rollup upserts alike.
type multiInsert struct {
	ctx   context.Context
	tx    *sql.Tx
	head  string // "INSERT INTO t(a, b) VALUES "
	tail  string // "" or " ON CONFLICT ... DO UPDATE ..."
	cols  int
	per   int // rows per full statement
	full  *sql.Stmt
	args  []any
	rows  int
	first int // caller's index of the first buffered row, for errors
}

func newMultiInsert(ctx context.Context, tx *sql.Tx, head, tail string, cols int) *multiInsert {
	// SQLite allows 32766 bound parameters per statement; 64 rows of at most
	// ~50 columns stay well below.
	per := 64
	if per*cols > 4096 {
		per = 4096 / cols
	}
	return &multiInsert{ctx: ctx, tx: tx, head: head, tail: tail, cols: cols, per: per,
		args: make([]any, 0, per*cols)}
}

func (m *multiInsert) sql(rows int) string {
	row := "(" + placeholders(m.cols) + ")"
	return m.head + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ") + m.tail
}

// add buffers one row whose values the caller appended to m.args (so rows
// are built without another copy) and flushes a full statement.
func (m *multiInsert) add(index int) error {
	if len(m.args) != (m.rows+1)*m.cols {
		return fmt.Errorf("row %d: %d values, want %d", index, len(m.args)-m.rows*m.cols, m.cols)
	}
	if m.rows == 0 {
		m.first = index
	}
	if m.rows++; m.rows == m.per {
		return m.flush()
	}
	return nil
}

func (m *multiInsert) flush() error {
	if m.rows == 0 {
		return nil
	}
	var stmt *sql.Stmt
	var err error
	if m.rows == m.per {
		if m.full == nil {
			if m.full, err = m.tx.PrepareContext(m.ctx, m.sql(m.per)); err != nil {
				return err
			}
		}
		stmt = m.full
	} else {
		if stmt, err = m.tx.PrepareContext(m.ctx, m.sql(m.rows)); err != nil {
			return err
		}
		defer stmt.Close()
	}
	if _, err := stmt.ExecContext(m.ctx, m.args...); err != nil {
		return fmt.Errorf("rows %d..%d: %w", m.first, m.first+m.rows-1, err)
	}
	m.rows, m.args = 0, m.args[:0]
	return nil
}

func (m *multiInsert) close() {
	if m.full != nil {
		m.full.Close()
	}
}
