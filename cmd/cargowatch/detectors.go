package main

import (
	"context"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/detect"
	"github.com/cargowatch/cargowatch/sqlite"
)

// addDetectors adds the behavioural and inventory detectors to the
// pipeline; store (nil without one) gives them history.
func addDetectors(pl *pipeline, store *sqlite.DB) {
	// A nil *sqlite.DB in the interface would not be a nil History.
	var hist detect.History
	if store != nil {
		hist = store
	}
	// pl.window is zero for files (the whole input; Expire is never
	// called) and --window for collect (the detectors' default is 24 h).
	w := pl.window
	// One pair index for the detectors that keep state per (local,
	// remote) pair: a Conn then costs one large-map lookup, not four.
	pairs := detect.NewPairIndex()
	prev := detect.NewPrevalence()
	prev.Window = w
	prev.Pairs = pairs
	pl.detectors = append(pl.detectors,
		detect.NewBeacon(detect.BeaconConfig{Window: w, Pairs: pairs}),
		detect.NewLongConn(detect.LongConnConfig{Window: w, Pairs: pairs}),
		detect.NewDNSTunnel(detect.DNSTunnelConfig{Quiet: pl.quiet, Window: w}),
		detect.NewExfil(detect.ExfilConfig{History: hist, Log: pl.log, Window: w, Prevalence: prev, Pairs: pairs}),
		prev)
	// Prevalence goes into every finding's evidence, then findings about
	// the same pair are combined (docs/DETECTIONS.md, combination).
	pl.finalize = func(ctx context.Context, fs []cw.Finding) []cw.Finding {
		if err := detect.Annotate(ctx, hist, prev, fs); err != nil {
			pl.log.Warn("prevalence from the store", "err", err)
		}
		return detect.Correlate(fs)
	}
	// The passive inventory: ot_egress, and new_asset when there is a store.
	pl.detectors = append(pl.detectors, newInventory(pl, store))
}
