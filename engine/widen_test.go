package engine

import (
	"context"
	"net/netip"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func TestWidenAddsSubnetOnce(t *testing.T) {
	a, b := netip.MustParsePrefix("147.32.80.37/32"), netip.MustParsePrefix("147.32.80.9/32")
	conns := []*cw.Conn{conn("147.32.80.37", "147.32.80.9", ""), conn("147.32.80.9", "147.32.80.37", "")}
	got := widen([]netip.Prefix{a, b}, conns)
	if len(got) != 3 || got[2].String() != "147.32.80.0/24" {
		t.Errorf("widen = %v, want both hosts and their /24 once", got)
	}
}

func TestFinalizeSeesAllFindingsBeforeRanking(t *testing.T) {
	var seen int
	res, err := Run(context.Background(), []cw.Source{&sliceSource{conns: []*cw.Conn{conn("10.0.0.1", "1.1.1.1", "")}}}, Config{
		Detectors: []cw.Detector{&countDetector{}, &countDetector{}},
		Finalize: func(_ context.Context, fs []cw.Finding) []cw.Finding {
			seen = len(fs)
			return fs[:1] // combination may shorten the list
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 6 || len(res.Findings) != 1 {
		t.Errorf("Finalize saw %d findings, result has %d", seen, len(res.Findings))
	}
}
