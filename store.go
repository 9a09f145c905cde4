package cargowatch

import (
	"context"
	"time"
)

// Run is one invocation of the tool as the store records it, so that an
// analyst can later tell which command, version and inferred local networks
// produced the rows they are looking at.
type Run struct {
	ID       int64
	Started  time.Time
	Finished time.Time // zero while the run is going on
	Command  string    // subcommand: analyze, flows, watch, ...
	Args     []string
	Version  string
	// Locals are the local networks in force, including those that were
	// inferred (DESIGN.md "Which side is ours"), as CIDR strings.
	Locals []string
	Stats  map[string]any
	Status string // running, ok, failed, interrupted
}

// ConnQuery selects stored conns. Zero fields do not filter.
type ConnQuery struct {
	RunID int64
	// From is inclusive and To exclusive, on Conn.TS.
	From, To time.Time
	Limit    int
}

// FindingQuery selects stored findings. Zero fields do not filter.
type FindingQuery struct {
	RunID int64
	// From is inclusive and To exclusive, on Finding.LastSeen, so a query
	// for a window returns what was still happening in it.
	From, To    time.Time
	Kind        string
	MinSeverity Severity // Info (the zero value) selects every severity
	Limit       int
}

// Store keeps runs, inputs, conns and findings across invocations.
//
// The store keeps what it is given: Content.Hits values and finding
// evidence must already be masked by the caller (the dlp package masks)
// unless the user asked to reveal them. Raw payloads are never stored.
type Store interface {
	// BeginRun records a new run and sets r.ID (and r.Started and r.Status
	// when they are zero).
	BeginRun(ctx context.Context, r *Run) error
	// FinishRun records r.Finished (now when zero), r.Status and r.Stats.
	FinishRun(ctx context.Context, r *Run) error
	// HasInput reports whether an input with this SHA-256 (hex) was stored,
	// so analysing the same file twice adds nothing twice.
	HasInput(ctx context.Context, sha256 string) (bool, error)
	// AddInput records an input; adding a known sha256 again is a no-op.
	AddInput(ctx context.Context, runID int64, path, sha256 string, size int64) error
	// WriteConns stores cs in one transaction and updates the hourly
	// rollups and first-seen tables from them.
	WriteConns(ctx context.Context, runID int64, cs []*Conn) error
	WriteFindings(ctx context.Context, runID int64, fs []Finding) error
	// Conns streams stored conns ordered by TS; a non-nil error from fn
	// stops the stream and is returned.
	Conns(ctx context.Context, q ConnQuery, fn func(*Conn) error) error
	// Findings streams stored findings ordered by FirstSeen.
	Findings(ctx context.Context, q FindingQuery, fn func(*Finding) error) error
	Close() error
}
