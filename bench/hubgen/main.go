// Command hubgen writes a simulated hub capture of a chosen size for the
// benchmarks: the same simulator as the demo, with the background scaled.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cargowatch/cargowatch/sim"
)

func main() {
	dir := flag.String("dir", "", "output folder (hub.pcap, truth.json, assets.csv)")
	scale := flag.Float64("scale", 1, "background volume multiplier")
	dur := flag.Duration("duration", 2*time.Hour, "simulated time")
	seed := flag.Int64("seed", 1, "seed")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "hubgen: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "hubgen:", err)
		os.Exit(1)
	}
	p, _, err := sim.WriteDir(*dir, sim.Config{Seed: *seed, Duration: *dur, Scale: *scale})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hubgen:", err)
		os.Exit(1)
	}
	fmt.Println(p)
}
