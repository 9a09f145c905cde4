package detect

import (
	"context"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/engine"
	"github.com/cargowatch/cargowatch/geo"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/zeek"
)

// RITA's own test logs hold a dnscat2 session (TXT queries under
// dnsc.r-1x.com): from Zeek logs alone, with no packets, the DNS-tunnel
// detector must find it.
func TestDNSTunnelZeekDnscat2(t *testing.T) {
	dir := corpus.Path(t, "zeek", "rita-json_with_all_fields")
	g, err := geo.New(geo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	d := NewDNSTunnel(DNSTunnelConfig{})
	res, err := engine.Run(context.Background(), []cw.Source{zeek.NewSource([]string{dir}, zeek.Options{})},
		engine.Config{Enrichers: []cw.Enricher{g}, Detectors: []cw.Detector{d}, IsInternet: geo.IsInternet})
	if err != nil || res.Err != nil {
		t.Fatalf("run: %v / %v", err, res.Err)
	}
	var found *cw.Finding
	for i, f := range res.Findings {
		if strings.Contains(f.Summary, "r-1x.com") || f.Dst.Name == "r-1x.com" {
			found = &res.Findings[i]
		}
		if f.Severity > cw.Low && !strings.Contains(f.Summary, "r-1x.com") {
			t.Errorf("unexpected %s finding above low: %s", f.Severity, f.Summary)
		}
	}
	if found == nil {
		t.Fatalf("no dns_tunnel finding for r-1x.com among %d findings", len(res.Findings))
	}
	if found.Kind != cw.KindDNSTunnel || found.Severity < cw.Medium {
		t.Errorf("r-1x.com: %s %s (%.2f), want dns_tunnel at medium or above", found.Kind, found.Severity, found.Score)
	}
}
