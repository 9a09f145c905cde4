package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/engine"
	"github.com/cargowatch/cargowatch/netflow"
	"github.com/cargowatch/cargowatch/zeek"
)

// collectOptions are collect's flags beside the shared ones.
type collectOptions struct {
	options
	listen    listFlag
	zeekDir   string
	zeekState string
	window    time.Duration
	every     time.Duration
	status    string
	queue     int
	logEvery  time.Duration
	args      []string // as given, for the run record
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func cmdCollect(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	co, code, done := collectFlags(args, stdout, stderr)
	if done {
		return code
	}
	ctx, stop := stopOnSignal(stderr, stopGrace)
	defer stop()
	return collect(ctx, co, stdout, stderr)
}

// stopGrace is how long a stopping collector may take to store what it
// holds (the last window's findings over a day of traffic) before a
// SIGINT or SIGTERM ends it anyway; a second signal ends it at once.
const stopGrace = time.Minute

// stopOnSignal returns a context cancelled by the first SIGINT or SIGTERM:
// collect then stores what it holds and exits 0. A second signal, or the
// grace running out, ends the process with status 1.
func stopOnSignal(stderr io.Writer, grace time.Duration) (context.Context, func()) {
	return onSignal(stderr, grace,
		"cargowatch collect: stopping: storing what is buffered (signal again to quit at once)",
		"cargowatch collect: quit before everything was stored")
}

// collectFlags parses collect's flags; done is true when the command
// should exit with code (after -h, or on a flag error).
func collectFlags(args []string, stdout, stderr io.Writer) (co *collectOptions, code int, done bool) {
	fs := newFlagSet("collect", "", stderr)
	co = &collectOptions{args: args}
	co.register(fs, true)
	fs.Var(&co.listen, "listen", "UDP socket for NetFlow v5/v9, IPFIX and sFlow exports, udp://ADDRESS:PORT (repeatable)")
	fs.StringVar(&co.zeekDir, "zeek-dir", "", "follow the rotating Zeek logs of this directory")
	fs.StringVar(&co.zeekState, "zeek-state", "", "where the position in the Zeek logs is kept across restarts (default: beside the store)")
	fs.DurationVar(&co.window, "window", 24*time.Hour, "how far back the detectors look")
	fs.DurationVar(&co.every, "every", time.Hour, "how often a window closes: findings are stored and printed, and detectors forget what left the window")
	fs.StringVar(&co.status, "status", "", "serve the counters as JSON over HTTP on this address (e.g. 127.0.0.1:9100)")
	fs.IntVar(&co.queue, "queue", 16384, "datagrams held between the sockets and the decoder (at most 64 MiB); past it datagrams are dropped and counted")
	fs.DurationVar(&co.logEvery, "log-every", time.Minute, "how often the counters are logged (at warning level when something was dropped)")
	if code, done := parse(fs, args, stdout); done {
		return nil, code, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cargowatch collect: unexpected argument %q: collect reads sockets and directories given by --listen and --zeek-dir\n", fs.Arg(0))
		return nil, exitUsage, true
	}
	return co, exitOK, false
}

// collector is one collect run: what the status line, the status
// endpoint and the periodic log read while the engine runs.
type collector struct {
	started time.Time
	listen  []string
	nf      *netflow.Collector
	zf      *zeek.Follower

	conns        atomic.Int64
	windows      atomic.Int64
	lastWindow   atomic.Int64 // unix ms
	lastFindings atomic.Int64
}

// collectStatus is the status endpoint's JSON.
type collectStatus struct {
	Started      time.Time               `json:"started"`
	UptimeS      float64                 `json:"uptime_s"`
	Listen       []string                `json:"listen,omitempty"`
	NetFlow      *netflow.CollectorStats `json:"netflow,omitempty"`
	Zeek         *zeek.Stats             `json:"zeek,omitempty"`
	Conns        int64                   `json:"conns"`
	Windows      int64                   `json:"windows"`
	LastWindow   *time.Time              `json:"last_window,omitempty"`
	LastFindings int64                   `json:"last_window_findings"`
}

func (c *collector) status() collectStatus {
	s := collectStatus{Started: c.started, UptimeS: time.Since(c.started).Seconds(), Listen: c.listen,
		Conns: c.conns.Load(), Windows: c.windows.Load(), LastFindings: c.lastFindings.Load()}
	if c.nf != nil {
		st := c.nf.Stats()
		s.NetFlow = &st
	}
	if c.zf != nil {
		st := c.zf.Stats()
		s.Zeek = &st
	}
	if ms := c.lastWindow.Load(); ms != 0 {
		t := time.UnixMilli(ms).UTC()
		s.LastWindow = &t
	}
	return s
}

// line is the one-line status (SIGUSR1, the periodic log, the end).
func (s *collectStatus) line() string {
	var b strings.Builder
	if n := s.NetFlow; n != nil {
		d := n.Decoder
		fmt.Fprintf(&b, "flow exports: %d datagrams received, %d dropped (queue full), %d malformed; %d records, %d records dropped, %d data sets without template; %d exporters, %d templates; ",
			n.Received, n.QueueDropped, d.Malformed, d.Records, d.Dropped, d.TemplatesMissing, d.Exporters, d.Templates)
	}
	if z := s.Zeek; z != nil {
		fmt.Fprintf(&b, "zeek: %d files, %d records, %d malformed lines; ", z.Files, z.Records, z.Malformed)
	}
	fmt.Fprintf(&b, "%d conns analysed, %d windows closed", s.Conns, s.Windows)
	return b.String()
}

func collect(ctx context.Context, co *collectOptions, stdout, stderr io.Writer) int {
	stderr = &syncWriter{w: stderr}
	if len(co.listen) == 0 && co.zeekDir == "" {
		fmt.Fprintln(stderr, "cargowatch collect: nothing to collect: give --listen udp://ADDRESS:PORT and/or --zeek-dir DIR")
		return exitUsage
	}
	if co.window <= 0 || co.every <= 0 {
		fmt.Fprintf(stderr, "cargowatch collect: --window %v and --every %v must be positive\n", co.window, co.every)
		return exitUsage
	}
	if co.logEvery <= 0 {
		co.logEvery = time.Minute
	}
	minSev, err := cw.ParseSeverity(co.minSeverity)
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch collect: --min-severity: %v\n", err)
		return exitUsage
	}
	pl, code := newPipeline(&co.options, "collect", stderr)
	if code != exitOK {
		return code
	}
	defer pl.close()
	log := pl.log

	c := &collector{started: time.Now().UTC()}
	var srcs []cw.Source
	if len(co.listen) > 0 {
		col, err := netflow.NewCollector(netflow.NewDecoder(netflow.Config{}),
			netflow.CollectorConfig{Listen: co.listen, QueueDatagrams: co.queue, Log: log})
		if err != nil {
			fmt.Fprintf(stderr, "cargowatch collect: %v\n", err)
			return exitUsage
		}
		defer col.Close()
		c.nf = col
		for _, a := range col.Addrs() {
			c.listen = append(c.listen, "udp://"+a.String())
		}
		srcs = append(srcs, col)
	}

	// Store operations use their own context: a signal must stop the
	// sources, not the writing of what they gave.
	bg := context.Background()
	run := &cw.Run{Started: c.started, Command: "collect", Args: co.args, Version: cw.Version}
	store, ok := co.openStore("collect", stderr)
	if !ok {
		return exitFail
	}
	if store != nil {
		defer store.Close()
		if err := store.BeginRun(bg, run); err != nil {
			fmt.Fprintf(stderr, "cargowatch collect: %v\n", err)
			return exitFail
		}
		if co.zeekState == "" && co.zeekDir != "" {
			co.zeekState = co.dbPath() + ".zeek-follow.json"
		}
	}
	if co.zeekDir != "" {
		c.zf = zeek.NewFollower(co.zeekDir, zeek.FollowConfig{StatePath: co.zeekState, Logger: log})
		srcs = append(srcs, c.zf)
	}
	pl.window = co.window
	addDetectors(pl, store)

	if co.status != "" {
		ln, err := net.Listen("tcp", co.status)
		if err != nil {
			fmt.Fprintf(stderr, "cargowatch collect: --status %s: %v\n", co.status, err)
			return exitUsage
		}
		srv := &http.Server{Handler: statusHandler(c), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Fprintf(stderr, "cargowatch collect: status on http://%s/\n", ln.Addr())
	}
	for _, l := range c.listen {
		fmt.Fprintf(stderr, "cargowatch collect: listening on %s\n", l)
	}
	if c.zf != nil {
		fmt.Fprintf(stderr, "cargowatch collect: following Zeek logs in %s\n", co.zeekDir)
	}

	bgDone := make(chan struct{})
	var bgWG sync.WaitGroup
	bgWG.Add(2)
	go func() { defer bgWG.Done(); c.onUSR1(stderr, bgDone) }()
	go func() { defer bgWG.Done(); c.logPeriodically(log, co.logEvery, bgDone) }()
	defer func() { close(bgDone); bgWG.Wait() }()

	ecfg := pl.engineConfig()
	ecfg.Detectors = pl.detectors
	if ecfg.Finalize == nil {
		ecfg.Finalize = pl.finalize
	}
	if store != nil {
		ecfg.Store, ecfg.RunID = store, run.ID
	}
	ecfg.Every = co.every
	ecfg.Progress = func(n int64) { c.conns.Store(n) }
	var printErr error
	ecfg.OnWindow = func(end time.Time, fs []cw.Finding) {
		c.windows.Add(1)
		c.lastWindow.Store(end.UnixMilli())
		c.lastFindings.Store(int64(len(fs)))
		log.Info("window closed", "end", end.UTC().Format(time.RFC3339), "findings", len(fs))
		var shown []cw.Finding
		for _, f := range fs {
			if f.Severity >= minSev {
				shown = append(shown, f)
			}
		}
		if len(shown) > 0 && printErr == nil {
			printErr = printFindings(stdout, co.format, shown, pl.jur)
		}
	}
	res, err := engine.Run(ctx, srcs, ecfg)
	if res != nil {
		c.conns.Store(res.Conns)
	}
	st := c.status()
	fmt.Fprintf(stderr, "cargowatch collect: stopped: %s\n", st.line())
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch collect: %v\n", err)
		return exitFail
	}
	code = exitOK
	var inputErrs []error
	for _, e := range flatten(res.Err) {
		if e != nil && !errors.Is(e, context.Canceled) {
			inputErrs = append(inputErrs, e)
		}
	}
	if len(inputErrs) > 0 {
		code = reportInputErrors(stderr, "collect", errors.Join(inputErrs...))
	}
	if store != nil {
		run.Finished = time.Now().UTC()
		run.Status = "stopped"
		if code != exitOK {
			run.Status = "input errors"
		}
		for _, p := range res.Inferred {
			run.Locals = append(run.Locals, p.String()+" (inferred)")
		}
		run.Stats = map[string]any{"conns": res.Conns, "no_local": res.NoLocal, "windows": res.Windows, "status": st}
		if err := store.FinishRun(bg, run); err != nil {
			fmt.Fprintf(stderr, "cargowatch collect: %v\n", err)
			return exitFail
		}
	}
	if printErr != nil {
		fmt.Fprintf(stderr, "cargowatch collect: writing output: %v\n", printErr)
		return exitFail
	}
	return code
}

// statusHandler serves the counters as JSON.
func statusHandler(c *collector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		st := c.status()
		_ = json.NewEncoder(w).Encode(&st)
	})
}

// onUSR1 prints the status line to stderr on each SIGUSR1, as dd does.
func (c *collector) onUSR1(stderr io.Writer, done <-chan struct{}) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	for {
		select {
		case <-done:
			return
		case <-sig:
			st := c.status()
			fmt.Fprintf(stderr, "cargowatch collect: %s\n", st.line())
		}
	}
}

// logPeriodically logs the counters every interval: at warning level
// (shown by default) when datagrams were dropped or malformed or records
// lost since the last time, else at info level (shown with -v).
func (c *collector) logPeriodically(log *slog.Logger, every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last netflow.CollectorStats
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		st := c.status()
		lvl := slog.LevelInfo
		if n := st.NetFlow; n != nil {
			if n.QueueDropped > last.QueueDropped || n.Decoder.Malformed > last.Decoder.Malformed || n.Decoder.Dropped > last.Decoder.Dropped {
				lvl = slog.LevelWarn
			}
			last = *n
		}
		log.Log(context.Background(), lvl, "collector status", "status", st.line())
	}
}

// syncWriter serialises writes from the engine, the signal handler and
// the loggers to one stream.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
