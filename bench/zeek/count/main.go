// Command count reads Zeek logs through zeek.Source and prints how many
// Conns came out and how fast: the cargowatch side of bench/zeek/run.sh,
// independent of the cmd/ wiring. -dump prints the Conns as JSON lines
// instead, for looking at what the source makes of a log.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/zeek"
)

func main() {
	dump := flag.Bool("dump", false, "print each Conn as JSON")
	reorder := flag.Int("reorder", 0, "zeek.Options.Reorder (0 default, -1 off)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	// The garbage collector as cmd/cargowatch sets it, so the numbers are
	// those of a real run.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(768 << 20)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: count [-dump] LOG|DIR...")
		os.Exit(2)
	}
	src := zeek.NewSource(flag.Args(), zeek.Options{Reorder: *reorder})
	enc := json.NewEncoder(os.Stdout)
	var n int64
	start := time.Now()
	err := src.Run(context.Background(), func(c *cw.Conn) {
		n++
		if *dump {
			enc.Encode(c)
		}
	})
	el := time.Since(start)
	st := src.Stats()
	fmt.Fprintf(os.Stderr, "records %d in %.3fs: %.0f records/s; stats %+v\n", n, el.Seconds(), float64(n)/el.Seconds(), st)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(2)
	}
}
