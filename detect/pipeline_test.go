package detect

import (
	"context"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/engine"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/geo"
	"github.com/cargowatch/cargowatch/pcap"
)

// runCaptures runs captures through the real pipeline (pcap → flow table →
// geo → engine, with the monitored network inferred as analyze does) into
// the given detectors, and returns what they found.
func runCaptures(t *testing.T, ds []cw.Detector, paths ...string) []cw.Finding {
	t.Helper()
	g, err := geo.New(geo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	src := flow.NewCaptureSource(paths, flow.Config{}, pcap.Options{})
	res, err := engine.Run(context.Background(), []cw.Source{src}, engine.Config{
		Enrichers:       []cw.Enricher{g},
		Detectors:       ds,
		IsInternet:      geo.IsInternet,
		Infer:           geo.NewOriginatorCounter(),
		InferResponders: geo.NewOriginatorCounter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err != nil {
		t.Fatalf("reading %v: %v", paths, res.Err)
	}
	return res.Findings
}
