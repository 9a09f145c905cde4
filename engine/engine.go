// Package engine runs sources → enrichment → detectors → store and sinks.
// It owns the orientation of conversations (which side is ours, inferring
// the monitored network when no side is), the naming of remote endpoints
// from what the traffic said (TLS SNI, HTTP Host, DNS answers), and the
// batching that keeps decoding on one core and analysis on the other.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"

	cw "github.com/cargowatch/cargowatch"
)

// Inferrer guesses the monitored network from conversations that have no
// local side (for networks that use public addresses inside).
type Inferrer interface {
	Add(orig netip.Addr)
	Infer() []netip.Prefix
}

// Config wires a run.
type Config struct {
	Enrichers []cw.Enricher // in order; later ones may override (assets after geo)
	// Redact, when set, masks what must not be printed or stored (cargo
	// identifiers in URIs and names) before anything else sees the Conn.
	Redact    func(*cw.Conn)
	Detectors []cw.Detector
	// IsInternet tells whether an address can be a remote endpoint at all
	// (not multicast, broadcast, unspecified). Nil means every address.
	IsInternet func(netip.Addr) bool

	// Infer, when set, is fed the originators of conversations with no local
	// side, and InferResponders their responders; after InferAfter such
	// conversations (or at the end) the originators' answer — or, when it
	// has none (a network of servers that mostly answer), the responders'
	// — becomes part of the monitored network for the rest of the run.
	Infer           Inferrer
	InferResponders Inferrer
	InferAfter      int // default 10000

	Store     cw.Store
	RunID     int64
	StoreConn func(*cw.Conn) bool // nil: store every Conn
	// OnConn receives every enriched Conn (the flows command prints them).
	OnConn func(*cw.Conn) error
	// Progress is called with the number of Conns processed so far, from
	// the analysis goroutine, about every batch.
	Progress func(conns int64)
	Log      *slog.Logger
}

// Result is what a run produced.
type Result struct {
	Conns    int64
	NoLocal  int64 // conversations that still had no local side
	Inferred []netip.Prefix
	Findings []cw.Finding
	// Err joins the sources' errors (InputErrors for unusable inputs).
	Err error
}

const batchSize = 512
const storeBatch = 5000

// Run reads every source in turn and analyses what they yield. It returns
// an error only for failures of the machinery (store, output); problems of
// the inputs are in Result.Err.
func Run(ctx context.Context, sources []cw.Source, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.InferAfter <= 0 {
		cfg.InferAfter = 10000
	}
	a := &analyser{cfg: cfg, names: newNameCache(1 << 16), res: &Result{}}

	batches := make(chan []*cw.Conn, 8)
	var srcErrs []error
	var wg sync.WaitGroup
	wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer wg.Done()
		defer close(batches)
		batch := make([]*cw.Conn, 0, batchSize)
		emit := func(c *cw.Conn) {
			batch = append(batch, c)
			if len(batch) == batchSize {
				select {
				case batches <- batch:
				case <-ctx.Done():
				}
				batch = make([]*cw.Conn, 0, batchSize)
			}
		}
		for _, s := range sources {
			if err := s.Run(ctx, emit); err != nil {
				srcErrs = append(srcErrs, err)
			}
			if ctx.Err() != nil {
				break
			}
		}
		if len(batch) > 0 {
			select {
			case batches <- batch:
			case <-ctx.Done():
			}
		}
	}()

	var runErr error
	for b := range batches {
		if runErr != nil {
			continue // drain so the source goroutine can finish
		}
		for _, c := range b {
			if err := a.conn(ctx, c); err != nil {
				runErr = err
				cancel()
				break
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(a.res.Conns)
		}
	}
	wg.Wait()
	if runErr == nil {
		runErr = a.finish(ctx)
	}
	a.res.Err = errors.Join(srcErrs...)
	if runErr != nil {
		return a.res, runErr
	}
	if ctx.Err() != nil && a.res.Err == nil {
		a.res.Err = ctx.Err()
	}
	return a.res, nil
}

type analyser struct {
	cfg      Config
	names    *nameCache
	res      *Result
	inferred []netip.Prefix
	decided  bool
	pending  []*cw.Conn
	toStore  []*cw.Conn
}

func (a *analyser) conn(ctx context.Context, c *cw.Conn) error {
	if a.cfg.Redact != nil {
		a.cfg.Redact(c)
	}
	for _, e := range a.cfg.Enrichers {
		e.Enrich(c)
	}
	a.applyInferred(c)
	if a.cfg.Infer != nil && !a.decided && a.noLocalSide(c) {
		a.cfg.Infer.Add(c.Orig.Addr)
		if a.cfg.InferResponders != nil {
			a.cfg.InferResponders.Add(c.Resp.Addr)
		}
		a.pending = append(a.pending, c)
		if len(a.pending) >= a.cfg.InferAfter {
			return a.decide(ctx)
		}
		return nil
	}
	return a.process(ctx, c)
}

// decide fixes the inferred monitored network and replays the held Conns.
func (a *analyser) decide(ctx context.Context) error {
	a.decided = true
	a.inferred = a.cfg.Infer.Infer()
	if len(a.inferred) == 0 && a.cfg.InferResponders != nil {
		a.inferred = a.cfg.InferResponders.Infer()
	}
	a.inferred = widen(a.inferred, a.pending)
	a.res.Inferred = a.inferred
	if len(a.inferred) > 0 {
		strs := make([]string, len(a.inferred))
		for i, p := range a.inferred {
			strs[i] = p.String()
		}
		a.cfg.Log.Warn("no local side in some conversations; inferred the monitored network from the addresses that take part in most of them, and their /24 (/64) where they talk within it (correct with --local)",
			"conversations", len(a.pending), "inferred", strs)
	}
	pending := a.pending
	a.pending = nil
	for _, c := range pending {
		a.applyInferred(c)
		if err := a.process(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// widen turns an inferred single address into its /24 (IPv4) or /64
// (IPv6) when it talks to other addresses of that subnet: a monitored host
// polling PLCs beside it means the subnet is ours, and its neighbours must
// not be reported as foreign destinations.
func widen(ps []netip.Prefix, conns []*cw.Conn) []netip.Prefix {
	out := append([]netip.Prefix(nil), ps...)
	for _, p := range ps {
		if !p.IsSingleIP() {
			continue
		}
		bits := 24
		if p.Addr().Is6() {
			bits = 64
		}
		sub, _ := p.Addr().Prefix(bits)
		for _, c := range conns {
			o, r := c.Orig.Addr.Unmap(), c.Resp.Addr.Unmap()
			if (o == p.Addr() && r != o && sub.Contains(r)) || (r == p.Addr() && o != r && sub.Contains(o)) {
				out = append(out, sub)
				break
			}
		}
	}
	return out
}

func (a *analyser) noLocalSide(c *cw.Conn) bool {
	return !c.Orig.Local && !c.Resp.Local && a.internet(c.Orig.Addr) && a.internet(c.Resp.Addr)
}

func (a *analyser) internet(ad netip.Addr) bool {
	return a.cfg.IsInternet == nil || a.cfg.IsInternet(ad)
}

func (a *analyser) applyInferred(c *cw.Conn) {
	for _, p := range a.inferred {
		for _, ep := range []*cw.Endpoint{&c.Orig, &c.Resp} {
			if !ep.Local && p.Contains(ep.Addr) {
				ep.Local = true
				ep.Country, ep.ASN, ep.Org, ep.Jurisdiction, ep.JurisdictionSource = "", 0, "", "", ""
			}
		}
	}
}

func (a *analyser) process(ctx context.Context, c *cw.Conn) error {
	a.res.Conns++
	if a.noLocalSide(c) {
		a.res.NoLocal++
	}
	a.names.learn(c)
	a.names.name(c)
	for _, d := range a.cfg.Detectors {
		d.Observe(c)
	}
	if a.cfg.OnConn != nil {
		if err := a.cfg.OnConn(c); err != nil {
			return err
		}
	}
	if a.cfg.Store != nil && (a.cfg.StoreConn == nil || a.cfg.StoreConn(c)) {
		a.toStore = append(a.toStore, c)
		if len(a.toStore) >= storeBatch {
			return a.flushStore(ctx)
		}
	}
	return nil
}

func (a *analyser) flushStore(ctx context.Context) error {
	if len(a.toStore) == 0 {
		return nil
	}
	err := a.cfg.Store.WriteConns(ctx, a.cfg.RunID, a.toStore)
	a.toStore = a.toStore[:0]
	if err != nil {
		return fmt.Errorf("engine: storing conns: %w", err)
	}
	return nil
}

func (a *analyser) finish(ctx context.Context) error {
	if a.cfg.Infer != nil && !a.decided && len(a.pending) > 0 {
		if err := a.decide(ctx); err != nil {
			return err
		}
	}
	if a.res.NoLocal > 0 {
		a.cfg.Log.Warn("conversations with no local side are in no finding: neither address is in a private range, --local, the assets file or the inferred network; give --local",
			"conversations", a.res.NoLocal)
	}
	if a.cfg.Store != nil {
		if err := a.flushStore(ctx); err != nil {
			return err
		}
	}
	var fs []cw.Finding
	for _, d := range a.cfg.Detectors {
		fs = append(fs, d.Findings()...)
	}
	Rank(fs)
	a.res.Findings = fs
	if a.cfg.Store != nil && len(fs) > 0 {
		if err := a.cfg.Store.WriteFindings(ctx, a.cfg.RunID, fs); err != nil {
			return fmt.Errorf("engine: storing findings: %w", err)
		}
	}
	return nil
}

// Rank orders findings most severe first, then by score, then by bytes out,
// so the first lines of any output are the ones to read.
func Rank(fs []cw.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.BytesOut > b.BytesOut
	})
}
