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
	prev := detect.NewPrevalence()
	pl.detectors = append(pl.detectors,
		detect.NewBeacon(detect.BeaconConfig{}),
		detect.NewLongConn(detect.LongConnConfig{}),
		detect.NewDNSTunnel(detect.DNSTunnelConfig{Quiet: pl.quiet}),
		detect.NewExfil(detect.ExfilConfig{History: hist, Log: pl.log}),
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
