// Command cargowatch watches a logistics hub's network for economic
// espionage: where data goes and under whose law, what phones home, which
// cargo data leaves, and what is on the network.
//
// This package holds flags and wiring only; the work is in the packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// Exit statuses (DESIGN.md): 0 the run completed, 2 unusable input or
// arguments, 1 the tool itself failed (store, output).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"analyze", "analyse captures and report findings", cmdAnalyze},
		{"flows", "print the conversations (Zeek conn.log names) of captures or of the store", cmdFlows},
		{"assets", "inventory of hosts, roles and OT protocols, and the communication map", cmdAssets},
		{"collect", "collect flow exports and Zeek logs continuously into the store", cmdCollect},
		{"scan", "find cargo data (container numbers, air waybills, ...) in files", cmdScan},
		{"demo", "simulate a hub's traffic, analyse it and print the findings", cmdDemo},
		{"version", "print the version", cmdVersion},
		{"help", "show help for a command", nil},
	}
}

func main() {
	// The live heap is bounded (docs/ARCHITECTURE.md), so a less eager
	// collector buys ~20 % speed for ~12 MB on a 190 MB capture; the soft
	// limit makes it eager again when a full flow table makes the heap
	// large, so RSS stays near the live heap. A user's GOGC/GOMEMLIMIT win.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(768 << 20)
	}
	// CARGOWATCH_CPUPROFILE=FILE writes a CPU profile, for the benchmarks.
	if path := os.Getenv("CARGOWATCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		if len(args) > 1 {
			return run([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "cargowatch: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cargowatch watches a port's, airport's or logistics hub's network for economic espionage.")
	fmt.Fprintln(w, "\nUsage: cargowatch COMMAND [flags] [INPUT...]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cargowatch COMMAND -h' for a command's flags.")
}

func cmdVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	fmt.Fprintf(stdout, "cargowatch %s\n", cw.Version)
	return exitOK
}

// newFlagSet makes a flag set whose -h output goes to stdout (asked for)
// and whose errors go to stderr.
func newFlagSet(name, argsUsage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cargowatch %s [flags] %s\n\nFlags:\n", name, argsUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; done is true when the command should exit with code
// (after -h, or on a flag error).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	// Allow flags after inputs ("analyze x.pcap --format jsonl"), as users
	// type them, by moving non-flag arguments to the end.
	args = interspersed(fs, args)
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout) // asked for: help is output, not an error
			break
		}
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK, true
	}
	if err != nil {
		return exitUsage, true
	}
	return 0, false
}

func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(append(flags, "--"), rest...)
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelInfo
	}
	// Messages are for the person at the terminal: no timestamps, which
	// only repeat the wall clock and push the message off screen.
	drop := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: drop}))
}

// isTerminal reports whether f is a character device, without a
// dependency: enough to decide on progress bars and tables.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
