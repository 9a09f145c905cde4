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
	"slices"
	"sort"
	"sync"
	"time"

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
	// Finalize, when set, sees all detectors' findings together before
	// they are ranked and stored (prevalence annotation, combination of
	// findings about one pair).
	Finalize func(context.Context, []cw.Finding) []cw.Finding
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

	// Every > 0 makes the run continuous, for a collector: the sources
	// run at the same time (each until ctx is done), a Conn waits at most
	// FlushAfter before analysis however slowly Conns come, and every
	// Every a window closes: the Conns waiting for the store are written,
	// the detectors' Findings are ranked, stored and handed to OnWindow,
	// and each detector that is a cargowatch.Expirer is told Expire(end),
	// so that it forgets what fell out of its own window. The end of the
	// run closes a last, partial window the same way (without Expire),
	// ending at Now, or in record time at the latest Conn end.
	Every time.Duration
	// RecordTime closes windows on the Conns' own clock (the latest end,
	// TS plus Duration, seen so far) at multiples of Every, instead of on
	// the wall clock: for replaying exports or logs faster than they were
	// made. A live collector uses the wall clock, because flow records
	// arrive up to the exporters' active timeout late and an idle network
	// must still close its windows.
	RecordTime bool
	// OnWindow receives each closed window's end and ranked findings,
	// from the analysis goroutine.
	OnWindow func(end time.Time, fs []cw.Finding)
	// FlushAfter bounds how long a continuous run holds a partial batch
	// (default 200 ms).
	FlushAfter time.Duration
	// Now is the wall clock of window ends (nil: time.Now), for tests.
	Now func() time.Time
}

// Result is what a run produced.
type Result struct {
	Conns    int64
	NoLocal  int64 // conversations that still had no local side
	Inferred []netip.Prefix
	Findings []cw.Finding
	// Err joins the sources' errors (InputErrors for unusable inputs).
	Err error
	// Windows counts the windows a continuous run closed, the last,
	// partial one included.
	Windows int
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FlushAfter <= 0 {
		cfg.FlushAfter = 200 * time.Millisecond
	}
	a := &analyser{cfg: cfg, names: newNameCache(1 << 16), res: &Result{}}

	batches := make(chan []*cw.Conn, 8)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srcErrs []error
	var wg sync.WaitGroup
	wg.Add(1)
	if cfg.Every > 0 {
		go func() {
			defer wg.Done()
			srcErrs = runConcurrently(ctx, sources, batches, cfg.FlushAfter)
		}()
	} else {
		go func() {
			defer wg.Done()
			srcErrs = runInTurn(ctx, sources, batches)
		}()
	}

	// Store writes and window closes must finish even when ctx is
	// cancelled: an interrupted run still keeps what it analysed.
	keep := context.WithoutCancel(ctx)
	var tick <-chan time.Time
	if cfg.Every > 0 && !cfg.RecordTime {
		t := time.NewTicker(cfg.Every)
		defer t.Stop()
		tick = t.C
	}
	var runErr error
	for open := true; open; {
		select {
		case b, ok := <-batches:
			if !ok {
				open = false
				break
			}
			if runErr != nil {
				continue // drain so the sources can finish
			}
			for _, c := range b {
				if err := a.conn(keep, c); err != nil {
					runErr = err
					cancel()
					break
				}
			}
			if cfg.Progress != nil {
				cfg.Progress(a.res.Conns)
			}
		case <-tick:
			if runErr == nil {
				if err := a.closeWindow(keep, cfg.Now(), true); err != nil {
					runErr = err
					cancel()
				}
			}
		}
	}
	wg.Wait()
	if runErr == nil {
		runErr = a.finish(keep)
	}
	if err := a.waitStore(); runErr == nil {
		runErr = err // no write may outlive Run: the caller closes the store
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

// runInTurn reads the sources one after the other (files), handing Conns
// over in full batches.
func runInTurn(ctx context.Context, sources []cw.Source, batches chan<- []*cw.Conn) []error {
	defer close(batches)
	var errs []error
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
			errs = append(errs, err)
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
	return errs
}

// runConcurrently runs every source at once (a collector's sockets, a
// followed log directory) into one shared batch, handed over when full or
// flushAfter after its first Conn. Handing over blocks emitters while the
// analysis is behind: backpressure reaches the sources, which decide what
// to drop (netflow.Collector drops at its socket queue, never blocking
// the socket).
func runConcurrently(ctx context.Context, sources []cw.Source, batches chan<- []*cw.Conn, flushAfter time.Duration) []error {
	var mu sync.Mutex
	batch := make([]*cw.Conn, 0, batchSize)
	handOver := func() { // under mu
		if len(batch) == 0 {
			return
		}
		select {
		case batches <- batch:
		case <-ctx.Done():
			// Analysis still drains after cancellation: hand the last
			// Conns over rather than lose them.
			batches <- batch
		}
		batch = make([]*cw.Conn, 0, batchSize)
	}
	emit := func(c *cw.Conn) {
		mu.Lock()
		batch = append(batch, c)
		if len(batch) == batchSize {
			handOver()
		}
		mu.Unlock()
	}
	stopFlush := make(chan struct{})
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(flushAfter)
		defer t.Stop()
		for {
			select {
			case <-stopFlush:
				return
			case <-t.C:
				mu.Lock()
				handOver()
				mu.Unlock()
			}
		}
	}()
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Run(ctx, emit)
		}()
	}
	wg.Wait()
	close(stopFlush)
	<-flushDone
	mu.Lock()
	handOver()
	mu.Unlock()
	close(batches)
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

type analyser struct {
	cfg      Config
	names    *nameCache
	res      *Result
	inferred []netip.Prefix
	decided  bool
	pending  []*cw.Conn
	toStore  []*cw.Conn

	// writing, when not nil, delivers the result of the store write of
	// inFlight; spare is a drained batch buffer for reuse.
	writing         chan error
	inFlight, spare []*cw.Conn

	// nextEnd is the end of the open window in record time, lastEnd the
	// latest Conn end seen.
	nextEnd, lastEnd time.Time
}

func (a *analyser) conn(ctx context.Context, c *cw.Conn) error {
	if a.cfg.Every > 0 && a.cfg.RecordTime && !c.TS.IsZero() {
		end := c.TS.Add(c.Duration)
		if end.After(a.lastEnd) {
			a.lastEnd = end
		}
		if a.nextEnd.IsZero() {
			a.nextEnd = end.Truncate(a.cfg.Every).Add(a.cfg.Every)
		}
		if !end.Before(a.nextEnd) {
			if err := a.closeWindow(ctx, a.nextEnd, true); err != nil {
				return err
			}
			a.nextEnd = end.Truncate(a.cfg.Every).Add(a.cfg.Every)
		}
	}
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
		if slices.Contains(out, sub) {
			continue // two inferred hosts of one subnet
		}
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

// flushStore hands the waiting Conns to a writer goroutine and returns:
// analysis goes on while SQLite writes, which nearly doubles a
// collector's rate on two cores. One batch is in flight at most (5,000
// Conns): the next flush first waits for it, and so the store bounds
// what waits for it.
func (a *analyser) flushStore(ctx context.Context) error {
	if err := a.waitStore(); err != nil {
		return err
	}
	if len(a.toStore) == 0 {
		return nil
	}
	batch := a.toStore
	a.toStore, a.spare = a.spare[:0], nil
	done := make(chan error, 1)
	a.writing, a.inFlight = done, batch
	go func() { done <- a.cfg.Store.WriteConns(ctx, a.cfg.RunID, batch) }()
	return nil
}

// waitStore waits for the batch in flight, if any.
func (a *analyser) waitStore() error {
	if a.writing == nil {
		return nil
	}
	err := <-a.writing
	clear(a.inFlight) // the Conns belong to the detectors now, not to this buffer
	a.spare, a.writing, a.inFlight = a.inFlight[:0], nil, nil
	if err != nil {
		return fmt.Errorf("engine: storing conns: %w", err)
	}
	return nil
}

// syncStore writes every waiting Conn and waits until the store has them,
// before findings are computed: detectors and Finalize may read the
// store's history.
func (a *analyser) syncStore(ctx context.Context) error {
	if a.cfg.Store == nil {
		return nil
	}
	if err := a.flushStore(ctx); err != nil {
		return err
	}
	return a.waitStore()
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
	if err := a.syncStore(ctx); err != nil {
		return err
	}
	if a.cfg.Every > 0 {
		end := a.cfg.Now()
		if a.cfg.RecordTime && !a.lastEnd.IsZero() {
			end = a.lastEnd
		}
		return a.closeWindow(ctx, end, false)
	}
	fs, err := a.findings(ctx)
	a.res.Findings = fs
	return err
}

// findings collects, ranks and stores the detectors' findings.
func (a *analyser) findings(ctx context.Context) ([]cw.Finding, error) {
	var fs []cw.Finding
	for _, d := range a.cfg.Detectors {
		fs = append(fs, d.Findings()...)
	}
	if a.cfg.Finalize != nil {
		fs = a.cfg.Finalize(ctx, fs)
	}
	Rank(fs)
	if a.cfg.Store != nil && len(fs) > 0 {
		if err := a.cfg.Store.WriteFindings(ctx, a.cfg.RunID, fs); err != nil {
			return fs, fmt.Errorf("engine: storing findings: %w", err)
		}
	}
	return fs, nil
}

// closeWindow ends a window of a continuous run at end: Conns held for
// inference are decided, the store gets what waits for it, findings are
// stored and handed over, and (unless this is the last window) the
// detectors forget what lies before their window.
func (a *analyser) closeWindow(ctx context.Context, end time.Time, expire bool) error {
	if a.cfg.Infer != nil && !a.decided && len(a.pending) > 0 {
		if err := a.decide(ctx); err != nil {
			return err
		}
	}
	if err := a.syncStore(ctx); err != nil {
		return err
	}
	fs, err := a.findings(ctx)
	a.res.Findings = fs
	a.res.Windows++
	if a.cfg.OnWindow != nil {
		a.cfg.OnWindow(end, fs)
	}
	if err != nil {
		return err
	}
	if expire {
		for _, d := range a.cfg.Detectors {
			if e, ok := d.(cw.Expirer); ok {
				e.Expire(end)
			}
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
