package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/format"
	"github.com/cargowatch/cargowatch/sqlite"
)

func cmdFlows(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("flows", "[INPUT...]  (no INPUT: the conversations held in --db)", stderr)
	var o options
	o.register(fs, true)
	limit := fs.Int("limit", 0, "with no INPUT: print at most this many stored conversations, oldest first (0 = all)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if o.format != "table" && o.format != "jsonl" {
		fmt.Fprintf(stderr, "cargowatch flows: --format %q: want table or jsonl\n", o.format)
		return exitUsage
	}
	out := newConnPrinter(stdout, o.format)
	var code int
	if fs.NArg() == 0 {
		if o.noDB {
			fmt.Fprintln(stderr, "cargowatch flows: no input and --no-db: nothing to read")
			return exitUsage
		}
		code = storedFlows(&o, *limit, out, stderr)
	} else {
		code = analyze(fs.Args(), &o, "flows", stdout, stderr, out.add)
	}
	if err := out.flush(); err != nil {
		fmt.Fprintf(stderr, "cargowatch flows: writing output: %v\n", err)
		return exitFail
	}
	return code
}

func storedFlows(o *options, limit int, out *connPrinter, stderr io.Writer) int {
	path := o.dbPath()
	// Reading must not create: a mistyped path would otherwise become an
	// empty store that "holds no conversations".
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "cargowatch flows: no store at %s (%v); analyse captures into it first, or give --db\n", path, errors.Unwrap(err))
		return exitUsage
	}
	db, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch flows: %v\n", err)
		return exitUsage
	}
	defer db.Close()
	if err := db.Conns(context.Background(), cw.ConnQuery{Limit: limit}, out.add); err != nil {
		fmt.Fprintf(stderr, "cargowatch flows: %v\n", err)
		return exitFail
	}
	return exitOK
}

// connPrinter streams conns as they arrive, as JSON lines or table rows.
type connPrinter struct {
	jsonl *format.JSONL
	table *format.ConnTable
}

func newConnPrinter(w io.Writer, f string) *connPrinter {
	if f == "jsonl" {
		return &connPrinter{jsonl: format.NewJSONL(w)}
	}
	return &connPrinter{table: format.NewConnTable(w)}
}

func (p *connPrinter) add(c *cw.Conn) error {
	if p.jsonl != nil {
		return p.jsonl.Write(format.ConnRecord(c))
	}
	return p.table.Write(c)
}

func (p *connPrinter) flush() error {
	if p.jsonl != nil {
		return p.jsonl.Flush()
	}
	return p.table.Flush()
}
