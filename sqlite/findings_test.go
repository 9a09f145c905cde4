package sqlite

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func finding(kind string, sev cargowatch.Severity, first time.Time) cargowatch.Finding {
	c := fullConn(0)
	return cargowatch.Finding{
		Kind: kind, Severity: sev, Score: 0.875, Src: c.Orig, Dst: c.Resp,
		FirstSeen: first, LastSeen: first.Add(time.Hour + 7), Count: 42, BytesOut: 1 << 40, BytesIn: 9,
		Summary: "STS-07 beacons to telemetry.example.cn every 60 s",
		Evidence: map[string]any{
			"interval_s": 60.5, "uids": []any{"C1", "C2"}, "rule": "beacon", "samples": []any{"MSCU****565"},
		},
	}
}

func TestFindingsRoundTripAndQuery(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run1, run2 := beginRun(t, db), beginRun(t, db)
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 999, time.UTC)
	fs := []cargowatch.Finding{
		finding(cargowatch.KindBeacon, cargowatch.High, t0.Add(2*time.Hour)),
		finding(cargowatch.KindJurisdiction, cargowatch.Medium, t0),
		finding(cargowatch.KindCargoData, cargowatch.Critical, t0.Add(time.Hour)),
		{Kind: cargowatch.KindNewAsset}, // everything else zero
	}
	if err := db.WriteFindings(ctx, run1, fs); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteFindings(ctx, run2, fs[:1]); err != nil {
		t.Fatal(err)
	}
	collect := func(q cargowatch.FindingQuery) []*cargowatch.Finding {
		var out []*cargowatch.Finding
		if err := db.Findings(ctx, q, func(f *cargowatch.Finding) error { out = append(out, f); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := collect(cargowatch.FindingQuery{RunID: run1})
	// Ordered by first_seen; the zero time (NULL) sorts first.
	want := []cargowatch.Finding{fs[3], fs[1], fs[2], fs[0]}
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(*got[i], want[i]) {
			t.Errorf("finding %d round trip:\n got %+v\nwant %+v", i, *got[i], want[i])
		}
	}

	tests := []struct {
		name  string
		q     cargowatch.FindingQuery
		kinds []string
	}{
		{"all", cargowatch.FindingQuery{}, []string{"new_asset", "jurisdiction", "cargo_data", "beacon", "beacon"}},
		{"run2", cargowatch.FindingQuery{RunID: run2}, []string{"beacon"}},
		{"kind", cargowatch.FindingQuery{Kind: "cargo_data"}, []string{"cargo_data"}},
		{"min high", cargowatch.FindingQuery{RunID: run1, MinSeverity: cargowatch.High}, []string{"cargo_data", "beacon"}},
		// The range is on last_seen: t0+1h+7ns is the jurisdiction finding's.
		{"to exclusive", cargowatch.FindingQuery{To: t0.Add(time.Hour + 7)}, nil},
		{"window", cargowatch.FindingQuery{From: t0.Add(time.Hour + 7), To: t0.Add(2 * time.Hour)}, []string{"jurisdiction"}},
		{"limit", cargowatch.FindingQuery{Limit: 2}, []string{"new_asset", "jurisdiction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kinds []string
			for _, f := range collect(tt.q) {
				kinds = append(kinds, f.Kind)
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("kinds %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

func TestWriteFindingsBadValues(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	run := beginRun(t, db)
	f := finding("beacon", cargowatch.Severity(17), time.Unix(1, 0))
	f.Score = math.NaN()
	if err := db.WriteFindings(ctx, run, []cargowatch.Finding{f}); err != nil {
		t.Fatalf("NaN score / bad severity should be stored sanitised: %v", err)
	}
	var got *cargowatch.Finding
	if err := db.Findings(ctx, cargowatch.FindingQuery{}, func(x *cargowatch.Finding) error { got = x; return nil }); err != nil {
		t.Fatal(err)
	}
	if got.Score != 0 || got.Severity != cargowatch.Info {
		t.Errorf("sanitised score %v severity %v, want 0 info", got.Score, got.Severity)
	}
	if err := db.WriteFindings(ctx, run, []cargowatch.Finding{{Kind: ""}}); err == nil {
		t.Errorf("finding without kind accepted")
	}
	// Unencodable evidence keeps the finding with a note instead.
	if err := db.WriteFindings(ctx, run, []cargowatch.Finding{{Kind: "nan", Evidence: map[string]any{"rate": math.Inf(1)}}}); err != nil {
		t.Fatalf("finding with unencodable evidence lost: %v", err)
	}
	var note any
	if err := db.Findings(ctx, cargowatch.FindingQuery{Kind: "nan"}, func(x *cargowatch.Finding) error { note = x.Evidence["_unencodable"]; return nil }); err != nil {
		t.Fatal(err)
	}
	if s, _ := note.(string); !strings.Contains(s, "unsupported value") {
		t.Errorf("evidence note = %v, want the encoding error", note)
	}
	if err := db.WriteFindings(ctx, 999, []cargowatch.Finding{f}); err == nil {
		t.Error("WriteFindings with an unknown run succeeded")
	}
}
