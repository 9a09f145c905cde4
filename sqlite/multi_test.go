package sqlite

import (
	"context"
	"testing"
)

func TestMultiInsert(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if _, err := db.db.Exec("CREATE TABLE m(a INTEGER PRIMARY KEY, b TEXT)"); err != nil {
		t.Fatal(err)
	}
	per := newMultiInsert(ctx, nil, "", "", 2).per
	for _, n := range []int{0, 1, per - 1, per, per + 1, 2*per + 3} {
		tx, err := db.db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		m := newMultiInsert(ctx, tx, "INSERT INTO m(a, b) VALUES ", " ON CONFLICT(a) DO UPDATE SET b = excluded.b", 2)
		for i := range n {
			m.args = append(m.args, i, "x")
			if err := m.add(i); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.flush(); err != nil {
			t.Fatal(err)
		}
		m.close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.db.QueryRow("SELECT count(*) FROM m WHERE a < ?", n).Scan(&got); err != nil || got != n {
			t.Errorf("n=%d: %d rows, %v", n, got, err)
		}
	}

	// A row with the wrong number of values is refused, not shifted into
	// the next row's columns.
	tx, err := db.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	m := newMultiInsert(ctx, tx, "INSERT INTO m(a, b) VALUES ", "", 2)
	m.args = append(m.args, 1)
	if err := m.add(0); err == nil {
		t.Error("add accepted a short row")
	}
}
