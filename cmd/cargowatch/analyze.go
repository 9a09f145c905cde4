package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/asset"
	"github.com/cargowatch/cargowatch/detect"
	"github.com/cargowatch/cargowatch/dlp"
	"github.com/cargowatch/cargowatch/engine"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/format"
	"github.com/cargowatch/cargowatch/geo"
	"github.com/cargowatch/cargowatch/policy"
	"github.com/cargowatch/cargowatch/sqlite"
)

// options are the flags analyze, flows and demo share.
type options struct {
	format      string
	db          string
	noDB        bool
	locals      string
	asnDB       string
	countryDB   string
	policyFile  string
	assetsFile  string
	minSeverity string
	verbose     bool
	quiet       bool
	tcpTimeout  time.Duration
	udpTimeout  time.Duration
	maxFlows    int
	inspect     int64
	quietFile   string
	baseline    time.Duration
}

func (o *options) register(fs *flag.FlagSet, withDB bool) {
	fs.StringVar(&o.format, "format", "table", "output: table or jsonl")
	if withDB {
		fs.StringVar(&o.db, "db", "", "SQLite store (default "+sqlite.DefaultPath()+", or $CARGOWATCH_DB)")
		fs.BoolVar(&o.noDB, "no-db", false, "do not open or write a store: a pure pipe")
	}
	fs.StringVar(&o.locals, "local", "", "more local networks, comma-separated CIDRs (private ranges are local already)")
	fs.StringVar(&o.asnDB, "asn-db", "", "MaxMind-format ASN database (GeoLite2-ASN layout) for ASN and organisation")
	fs.StringVar(&o.countryDB, "country-db", "", "MaxMind-format country database overriding the embedded one")
	fs.StringVar(&o.policyFile, "policy", "", "jurisdiction policy YAML (default: the built-in EU-hub policy, see docs/POLICY.md)")
	fs.StringVar(&o.assetsFile, "assets", "", "assets file (CSV or YAML: name, address, role, zone, owner)")
	fs.StringVar(&o.minSeverity, "min-severity", "info", "report findings of at least this severity")
	fs.BoolVar(&o.verbose, "v", false, "log progress details on stderr")
	fs.BoolVar(&o.quiet, "q", false, "no progress bar")
	fs.DurationVar(&o.tcpTimeout, "tcp-timeout", 5*time.Minute, "TCP idle timeout (capture time)")
	fs.DurationVar(&o.udpTimeout, "udp-timeout", time.Minute, "UDP and ICMP idle timeout (capture time)")
	fs.IntVar(&o.maxFlows, "max-flows", 250000, "flow table cap (about 900 bytes each); the least recently active flow is evicted (and counted) beyond it")
	fs.DurationVar(&o.baseline, "baseline", asset.DefaultBaseline, "with a store: a device first seen this long after the store's history began is new (new_asset)")
	fs.StringVar(&o.quietFile, "quiet-domains", "", "file of domains (one per line) whose DNS-tunnelling scores are lowered, replacing the built-in CDN/telemetry list")
	fs.Int64Var(&o.inspect, "inspect-bytes", 1<<20, "payload inspected for cargo data per flow direction (0 = none)")
}

func cmdAnalyze(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("analyze", "INPUT...", stderr)
	var o options
	o.register(fs, true)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "cargowatch analyze: no input given (a capture file or directory)")
		return exitUsage
	}
	return analyze(fs.Args(), &o, "analyze", stdout, stderr, nil)
}

// dbPath is the store --db names, else the default one.
func (o *options) dbPath() string {
	if o.db != "" {
		return o.db
	}
	return sqlite.DefaultPath()
}

// openStore opens the store unless --no-db (then it returns nil); the
// caller closes it. A store that cannot be opened is reported on stderr
// and ok is false.
func (o *options) openStore(command string, stderr io.Writer) (store *sqlite.DB, ok bool) {
	if o.noDB {
		return nil, true
	}
	store, err := sqlite.Open(o.dbPath())
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
		return nil, false
	}
	return store, true
}

// pipeline is what every subcommand that analyses traffic sets up the same
// way from the shared flags: policy, enrichment, detectors and the flow
// table's configuration.
type pipeline struct {
	log       *slog.Logger
	policy    *policy.Policy
	geo       *geo.Enricher
	enrichers []cw.Enricher
	jur       *detect.Jurisdiction
	cargo     *dlp.Detector
	detectors []cw.Detector
	insp      *dlp.Inspector
	flow      flow.Config
	// finalize, when set, annotates and combines all detectors' findings
	// before they are ranked and stored.
	finalize func(context.Context, []cw.Finding) []cw.Finding
	// quiet is the DNS-tunnelling quiet list (nil: the built-in one).
	quiet []string
	// window is how far back detectors look on a continuous source (zero:
	// their default); files are analysed whole.
	window time.Duration
}

// close releases what the pipeline opened (the geo databases).
func (pl *pipeline) close() { pl.geo.Close() }

// newPipeline builds the pipeline from o; a non-zero code means the flags
// or the files they name are unusable and the message is on stderr.
func newPipeline(o *options, command string, stderr io.Writer) (*pipeline, int) {
	pl := &pipeline{log: newLogger(stderr, o.verbose)}
	if o.format != "table" && o.format != "jsonl" {
		fmt.Fprintf(stderr, "cargowatch %s: --format %q: want table or jsonl\n", command, o.format)
		return nil, exitUsage
	}
	p := policy.Default()
	if o.policyFile != "" {
		var err error
		if p, err = policy.Load(o.policyFile); err != nil {
			fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
			return nil, exitUsage
		}
	}
	pl.policy = p
	gcfg := geo.Config{CountryDB: o.countryDB, ASNDB: o.asnDB}
	if o.locals != "" {
		l, err := geo.ParseCIDRs(o.locals)
		if err != nil {
			fmt.Fprintf(stderr, "cargowatch %s: --local: %v\n", command, err)
			return nil, exitUsage
		}
		gcfg.Locals = l
	}
	g, err := geo.New(gcfg)
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
		return nil, exitUsage
	}
	pl.geo = g
	for _, ov := range p.Jurisdictions {
		if err := g.AddJurisdiction(jurisdictionEntry(ov)); err != nil {
			g.Close()
			fmt.Fprintf(stderr, "cargowatch %s: policy %s: %v\n", command, p.Name, err)
			return nil, exitUsage
		}
	}
	pl.enrichers = []cw.Enricher{g}
	if o.assetsFile != "" {
		inv, err := asset.LoadFile(o.assetsFile)
		if err != nil {
			g.Close()
			fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
			return nil, exitUsage
		}
		for _, e := range inv.Entries {
			for _, a := range e.Allow {
				if !policy.ValidAllow(a) {
					g.Close()
					fmt.Fprintf(stderr, "cargowatch %s: assets: %s:%d: allow %q: not a country code or group (EU, EEA, ADEQUACY)\n", command, o.assetsFile, e.Line, a)
					return nil, exitUsage
				}
			}
		}
		pl.enrichers = append(pl.enrichers, inv)
	}

	if o.quietFile != "" {
		f, err := os.Open(o.quietFile)
		if err == nil {
			pl.quiet, err = detect.ParseQuietDomains(f, o.quietFile)
			f.Close()
		}
		if err != nil {
			g.Close()
			fmt.Fprintf(stderr, "cargowatch %s: --quiet-domains: %v\n", command, err)
			return nil, exitUsage
		}
	}

	pl.jur = detect.NewJurisdiction(p)
	var watched []string
	for code := range p.Watch {
		watched = append(watched, code)
	}
	pl.cargo = dlp.NewDetector(dlp.DetectorConfig{Watched: watched,
		Allowed: func(local, remote cw.Endpoint) bool { return p.Evaluate(local, remote).Allowed }})
	pl.detectors = []cw.Detector{pl.jur, pl.cargo}

	pl.flow = flow.Config{TCPTimeout: o.tcpTimeout, UDPTimeout: o.udpTimeout, ICMPTimeout: o.udpTimeout, MaxFlows: o.maxFlows,
		MaxBufferBytes: 64 << 20}
	if o.inspect > 0 {
		// Small windows and bodies with a cap on open Streams keep the
		// worst case near 160 MiB (docs/ARCHITECTURE.md, memory bounds).
		pl.insp = dlp.NewInspector(dlp.StreamConfig{MaxBytes: o.inspect, Window: 32 << 10, MaxBody: 256 << 10}, inspectMaxOpen)
		pl.flow.Inspector, pl.flow.InspectBytes = inspector{pl.insp}, o.inspect
	}
	return pl, exitOK
}

// engineConfig is the engine's configuration for the pipeline; callers
// add the store, the conn callback and progress.
func (pl *pipeline) engineConfig() engine.Config {
	return engine.Config{
		Enrichers:  pl.enrichers,
		Redact:     dlp.RedactConn,
		Detectors:  pl.detectors,
		IsInternet: geo.IsInternet,
		Infer:      geo.NewOriginatorCounter(),
		// The same counter over responders: its rule does not care which side.
		InferResponders: geo.NewOriginatorCounter(),
		Finalize:        pl.finalize,
		Log:             pl.log,
	}
}

// analyze runs the pipeline on inputs and prints findings (or, with
// onConn, lets the caller print conns instead).
func analyze(inputs []string, o *options, command string, stdout, stderr io.Writer, onConn func(*cw.Conn) error) int {
	minSev, err := cw.ParseSeverity(o.minSeverity)
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch %s: --min-severity: %v\n", command, err)
		return exitUsage
	}
	pl, code := newPipeline(o, command, stderr)
	if code != exitOK {
		return code
	}
	defer pl.close()
	log := pl.log

	ctx, stop := interruptible(stderr)
	defer stop()

	run := &cw.Run{Started: time.Now().UTC(), Command: command, Args: inputs, Version: cw.Version}
	var ins inputSet
	store, ok := o.openStore(command, stderr)
	if !ok {
		return exitFail
	}
	if store != nil {
		defer store.Close()
		if err := store.BeginRun(ctx, run); err != nil {
			fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
			return exitFail
		}
		ins = checkInputs(ctx, store, inputs, log)
	}
	addDetectors(pl, store)
	if d := discoveryOf(pl); d != nil {
		d.SetBaseline(o.baseline)
	}

	srcs := openSources(inputs, pl)
	ecfg := pl.engineConfig()
	ecfg.Detectors = pl.detectors
	ecfg.OnConn = onConn
	// Conns and findings of inputs the store already holds are not stored
	// again; a run over nothing new stores nothing but its run record.
	if store != nil && len(ins.fresh) > 0 {
		ecfg.Store, ecfg.RunID = store, run.ID
		ecfg.StoreConn = func(c *cw.Conn) bool {
			// Flows decoded from a capture's export traffic are named
			// FILE#netflow://EXPORTER: they belong to the capture.
			src, _, _ := strings.Cut(c.Source, "#")
			return !ins.known[src]
		}
	}
	var bar *progress
	// A bar only for a person watching: not when output goes to a pipe or file.
	if !o.quiet && isTerminal(stderr) && isTerminal(stdout) {
		bar = newProgress(stderr, srcs)
		ecfg.Progress = bar.update
	}
	res, err := engine.Run(ctx, srcs.all, ecfg)
	if bar != nil {
		bar.done()
	}
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
		return exitFail
	}
	code = reportInputErrors(stderr, command, res.Err)
	var st flow.SourceStats
	if srcs.capture != nil {
		st = srcs.capture.Stats()
	}
	log.Info("run finished", "conns", res.Conns, "findings", len(res.Findings), "stats", fmt.Sprintf("%+v", st))
	if pl.insp != nil && pl.insp.Skipped > 0 {
		log.Warn("more cleartext TCP flows were open at once than are inspected; the rest went uninspected",
			"skipped_flows", pl.insp.Skipped, "max_open", inspectMaxOpen)
	}
	if st.Table.Evicted > 0 {
		log.Warn("flow table full: flows were emitted before they ended (raise --max-flows)",
			"evicted", st.Table.Evicted, "max_flows", o.maxFlows)
	}

	if store != nil {
		run.Finished = time.Now().UTC()
		switch {
		case ctx.Err() != nil:
			// Inputs are recorded only for completed runs, so an
			// interrupted one is analysed and stored again next time.
			run.Status = "interrupted"
		case len(ins.fresh) == 0 && len(ins.known) > 0:
			run.Status = "already analysed: nothing stored"
		case code != exitOK:
			run.Status = "input errors"
		default:
			run.Status = "ok"
		}
		if ctx.Err() == nil {
			for _, in := range ins.fresh {
				if err := store.AddInput(context.Background(), run.ID, in.path, in.sum, in.size); err != nil {
					fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
					return exitFail
				}
			}
		}
		for _, p := range res.Inferred {
			run.Locals = append(run.Locals, p.String()+" (inferred)")
		}
		run.Stats = map[string]any{"conns": res.Conns, "no_local": res.NoLocal, "findings": len(res.Findings), "source": srcs.stats(),
			"inspected_bytes": pl.cargo.Inspected, "uninspected_bytes": pl.cargo.Uninspected}
		if err := store.FinishRun(ctx, run); err != nil {
			fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, err)
			return exitFail
		}
	}
	if onConn != nil {
		return code
	}
	var shown []cw.Finding
	for _, f := range res.Findings {
		if f.Severity >= minSev {
			shown = append(shown, f)
		}
	}
	if err := printFindings(stdout, o.format, shown, pl.jur); err != nil {
		fmt.Fprintf(stderr, "cargowatch %s: writing output: %v\n", command, err)
		return exitFail
	}
	if o.format == "table" {
		fmt.Fprintln(stdout)
		if srcs.capture != nil {
			r := st.Reader
			fmt.Fprintf(stdout, "Read %d packets (%s) from %d capture files; %d truncated or malformed packets skipped; %d flows evicted early.\n",
				r.Packets, format.Bytes(r.Bytes), r.Files, r.Truncated+r.Malformed, st.Table.Evicted)
		}
		if srcs.zeek != nil {
			z := srcs.zeek.Stats()
			fmt.Fprintf(stdout, "Read %d Zeek log files: %d conn records, %d dns/ssl/http/files records joined to them; %d malformed lines skipped.\n",
				z.Files, z.Records, z.Side, z.Malformed)
		}
		if srcs.suricata != nil {
			e := srcs.suricata.Stats()
			fmt.Fprintf(stdout, "Read %d Suricata EVE files: %d flow events, %d netflow records; %d malformed lines skipped.\n",
				e.Files, e.Flows, e.Netflows, e.Malformed)
		}
		fmt.Fprintf(stdout, "%d conversations (%d with no local side).\n", res.Conns, res.NoLocal)
		if srcs.capture != nil {
			fmt.Fprintf(stdout, "Payload inspected for cargo data: %s; not inspected (encrypted, over --inspect-bytes, or more than %d cleartext TCP flows open at once): %s.\n",
				format.Bytes(pl.cargo.Inspected), inspectMaxOpen, format.Bytes(pl.cargo.Uninspected))
		}
	}
	return code
}

func printFindings(w io.Writer, formatName string, fs []cw.Finding, jur *detect.Jurisdiction) error {
	if formatName == "jsonl" {
		j := format.NewJSONL(w)
		for i := range fs {
			if err := j.Write(format.FindingRecord(&fs[i])); err != nil {
				return err
			}
		}
		return j.Flush()
	}
	var totals []format.JurisdictionTotal
	for _, t := range jur.Totals() {
		totals = append(totals, format.JurisdictionTotal{Jurisdiction: t.Jurisdiction, Country: t.Country,
			BytesOut: t.BytesOut, BytesIn: t.BytesIn, Conns: t.Conns, Hosts: t.Hosts})
	}
	return format.FindingsTable(w, fs, totals)
}

// reportInputErrors prints one line per unusable input and returns the
// exit status the run deserves.
func reportInputErrors(stderr io.Writer, command string, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitOK
	for _, e := range flatten(err) {
		fmt.Fprintf(stderr, "cargowatch %s: %v\n", command, e)
		if cw.IsInputError(e) {
			code = exitUsage
		} else if errors.Is(e, context.Canceled) {
			code = max(code, exitFail)
		} else {
			code = exitUsage
		}
	}
	return code
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// inputSet is what the store already holds of a run's input files.
type inputSet struct {
	known map[string]bool // path -> its content is already stored (earlier run, or earlier in this one)
	fresh []inputFile     // to record once the run completes
}

type inputFile struct {
	path, sum string
	size      int64
}

// checkInputs hashes each input file (SHA-256, by content, so a renamed
// or copied capture is still recognised) and sorts them into known and
// fresh. Nothing is written: inputs are recorded when the run completes.
func checkInputs(ctx context.Context, store *sqlite.DB, inputs []string, log *slog.Logger) inputSet {
	ins := inputSet{known: map[string]bool{}}
	thisRun := map[string]string{} // sum -> first path in this run
	for _, in := range inputs {
		_ = filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			sum, size, err := hashFile(path)
			if err != nil {
				return nil // the source reports unreadable inputs
			}
			if first, ok := thisRun[sum]; ok {
				if first != path {
					ins.known[path] = true
					log.Warn("input has the same content as another input of this run; its conversations are stored once", "path", path, "same_as", first)
				}
				return nil
			}
			thisRun[sum] = path
			seen, err := store.HasInput(ctx, sum)
			if err != nil {
				log.Warn("store: checking input", "path", path, "err", err)
				return nil
			}
			if seen {
				ins.known[path] = true
				log.Warn("input already in the store; its conversations and findings are not stored again", "path", path, "sha256", sum)
				return nil
			}
			ins.fresh = append(ins.fresh, inputFile{path, sum, size})
			return nil
		})
	}
	return ins
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// progress draws a one-line bar on a terminal's stderr: share of the
// capture bytes read, conversations so far, elapsed time. It redraws on
// its own ticker so that a capture of few, long flows still moves it.
type progress struct {
	w     io.Writer
	src   interface{ Progress() (read, total int64) }
	start time.Time
	conns atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, src interface{ Progress() (read, total int64) }) *progress {
	p := &progress{w: w, src: src, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.draw()
			}
		}
	}()
	return p
}

// update is the engine's progress callback.
func (p *progress) update(conns int64) { p.conns.Store(conns) }

func (p *progress) draw() {
	read, total := p.src.Progress()
	frac := 0.0
	if total > 0 {
		frac = min(float64(read)/float64(total), 1)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s of %s, %d conversations, %.1fs ",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac,
		format.Bytes(read), format.Bytes(total), p.conns.Load(), time.Since(p.start).Seconds())
}

// done stops the ticker and clears the line.
func (p *progress) done() {
	close(p.stop)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 100)+"\r")
}

// inspectMaxOpen bounds the flows whose payload is inspected at once.
const inspectMaxOpen = 512

// inspector gives the flow table dlp's Streams; a nil Stream (too many
// open) must become a nil interface, not a non-nil one holding nil.
type inspector struct{ in *dlp.Inspector }

func (i inspector) Open(c *cw.Conn) flow.StreamSink {
	if c.Proto == "udp" {
		return i.in.Datagrams() // holds nothing between datagrams: no place needed
	}
	if s := i.in.Stream(); s != nil {
		return s
	}
	return nil
}

// interruptible returns a context cancelled by the first SIGINT or
// SIGTERM, so the run stops, flushes what it has and records itself as
// interrupted. Whatever the run is blocked in (opening a FIFO with no
// writer), a second signal, or 10 s after the first, ends the process.
func interruptible(stderr io.Writer) (context.Context, func()) {
	return onSignal(stderr, 10*time.Second,
		"cargowatch: stopping (signal again to quit at once)",
		"cargowatch: quit before the run finished")
}

// onSignal returns a context cancelled by the first SIGINT or SIGTERM,
// saying stopping on stderr; a second signal, or grace running out, ends
// the process with status 1 after saying quitting.
func onSignal(stderr io.Writer, grace time.Duration, stopping, quitting string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
		case <-done:
			return
		}
		cancel()
		fmt.Fprintln(stderr, stopping)
		select {
		case <-sig:
		case <-time.After(grace):
		case <-done:
			return
		}
		fmt.Fprintln(stderr, quitting)
		os.Exit(exitFail)
	}()
	return ctx, func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}

// jurisdictionEntry turns a policy override into an entry of geo's table,
// so flows and every detector see the policy's view, not only the
// jurisdiction detector.
func jurisdictionEntry(o policy.JurisdictionOverride) geo.JurisdictionEntry {
	e := geo.JurisdictionEntry{Org: o.Source, Jurisdiction: o.Jurisdiction, Reason: "policy override"}
	if e.Org == "" {
		e.Org = "policy override"
	}
	if o.Source != "" {
		e.Sources = []string{o.Source}
	}
	switch {
	case o.ASN != 0:
		e.ASNs = []uint32{o.ASN}
	case o.Prefix.IsValid():
		e.Prefixes = []netip.Prefix{o.Prefix}
	case o.OrgContains != "":
		e.OrgContains = []string{o.OrgContains}
	}
	return e
}
