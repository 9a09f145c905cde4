package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cargowatch/cargowatch/sim"
)

func cmdDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "", stderr)
	var o options
	o.register(fs, true)
	seed := fs.Int64("seed", 1, "simulation seed (the same seed gives the same capture)")
	dur := fs.Duration("duration", 2*time.Hour, "simulated time")
	keep := fs.String("keep", "", "write the simulated capture, truth.json and assets.csv into this folder and keep them")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	dir := *keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cargowatch-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "cargowatch demo: %v\n", err)
			return exitFail
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "cargowatch demo: %v\n", err)
		return exitFail
	}
	capture, truth, err := sim.WriteDir(dir, sim.Config{Seed: *seed, Duration: *dur})
	if err != nil {
		fmt.Fprintf(stderr, "cargowatch demo: simulating: %v\n", err)
		return exitFail
	}
	// The demo must not mix simulated traffic into the user's real store:
	// unless --db is given it keeps its store beside the capture.
	if o.db == "" && !o.noDB {
		o.db = filepath.Join(dir, "demo.db")
	}
	if o.assetsFile == "" {
		o.assetsFile = filepath.Join(dir, "assets.csv")
	}
	if o.format == "table" {
		fmt.Fprintf(stdout, "Simulated %s of a %s hub (%s, %d devices) in %s\n\n", dur, truth.Home, truth.Network, len(truth.Devices), capture)
	}
	return analyze([]string{capture}, &o, "demo", stdout, stderr, nil)
}
