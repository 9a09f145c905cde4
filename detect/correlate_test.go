package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func crF(kind string, sev cw.Severity, score float64, src, dst, name string) cw.Finding {
	f := cw.Finding{Kind: kind, Severity: sev, Score: score, Summary: kind + " " + dst,
		Evidence: map[string]any{"k": kind}}
	if src != "" {
		f.Src.Addr = netip.MustParseAddr(src)
	}
	if dst != "" {
		f.Dst.Addr = netip.MustParseAddr(dst)
	}
	f.Dst.Name = name
	return f
}

func TestScoreSeverity(t *testing.T) {
	tests := []struct {
		s    float64
		want cw.Severity
	}{{0, cw.Info}, {0.249, cw.Info}, {0.25, cw.Low}, {0.45, cw.Medium}, {0.649, cw.Medium}, {0.65, cw.High}, {1, cw.High}}
	for _, tt := range tests {
		if got := ScoreSeverity(tt.s); got != tt.want {
			t.Errorf("ScoreSeverity(%v) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestCorrelate(t *testing.T) {
	const h, h2, r, r2 = "10.0.0.5", "10.0.0.6", "47.96.12.34", "47.96.12.35"
	tests := []struct {
		name      string
		in        []cw.Finding
		wantScore []float64
		wantSev   []cw.Severity
		corr      []bool
	}{
		{"beacon + jurisdiction + cargo on one pair",
			[]cw.Finding{
				crF(cw.KindBeacon, cw.High, 0.8, h, r, ""),
				crF(cw.KindJurisdiction, cw.High, 0.7, h, r, ""),
				crF(cw.KindCargoData, cw.Medium, 0.5, h, r, ""),
			},
			[]float64{0.97, 0.97, 0.97}, // 1 − 0.2·0.3·0.5
			[]cw.Severity{cw.Critical, cw.Critical, cw.Critical},
			[]bool{true, true, true}},
		{"two kinds, only one at medium: no step up",
			[]cw.Finding{crF(cw.KindBeacon, cw.High, 0.7, h, r, ""), crF(cw.KindExfiltration, cw.Low, 0.3, h, r, "")},
			[]float64{0.79, 0.79},
			[]cw.Severity{cw.High, cw.High},
			[]bool{true, true}},
		{"joined by registrable domain across addresses",
			[]cw.Finding{crF(cw.KindDNSTunnel, cw.High, 0.8, h, "10.0.0.53", "cargo-sync-cdn.net"),
				crF(cw.KindBeacon, cw.Medium, 0.5, h, r, "x.cargo-sync-cdn.net")},
			[]float64{0.9, 0.9},
			[]cw.Severity{cw.Critical, cw.Critical},
			[]bool{true, true}},
		{"transitive: name links one, address the other",
			[]cw.Finding{crF(cw.KindDNSTunnel, cw.Medium, 0.5, h, "10.0.0.53", "evil.example"),
				crF(cw.KindBeacon, cw.Medium, 0.5, h, r, "c2.evil.example"),
				crF(cw.KindJurisdiction, cw.Medium, 0.5, h, r, "")},
			[]float64{0.875, 0.875, 0.875},
			[]cw.Severity{cw.High, cw.High, cw.High},
			[]bool{true, true, true}},
		{"same kind twice is one kind",
			[]cw.Finding{crF(cw.KindBeacon, cw.High, 0.8, h, r, ""), crF(cw.KindBeacon, cw.Medium, 0.6, h, r, "")},
			[]float64{0.8, 0.6},
			[]cw.Severity{cw.High, cw.Medium},
			[]bool{false, false}},
		{"other host or other remote stay apart",
			[]cw.Finding{crF(cw.KindBeacon, cw.High, 0.8, h, r, ""), crF(cw.KindExfiltration, cw.High, 0.8, h2, r, ""),
				crF(cw.KindJurisdiction, cw.High, 0.8, h, r2, "")},
			[]float64{0.8, 0.8, 0.8},
			[]cw.Severity{cw.High, cw.High, cw.High},
			[]bool{false, false, false}},
		{"critical stays critical",
			[]cw.Finding{crF(cw.KindBeacon, cw.Critical, 0.9, h, r, ""), crF(cw.KindJurisdiction, cw.High, 0.9, h, r, "")},
			[]float64{0.99, 0.99},
			[]cw.Severity{cw.Critical, cw.Critical},
			[]bool{true, true}},
		{"no source address: left alone",
			[]cw.Finding{crF(cw.KindBeacon, cw.High, 0.8, "", r, ""), crF(cw.KindJurisdiction, cw.High, 0.8, "", r, "")},
			[]float64{0.8, 0.8},
			[]cw.Severity{cw.High, cw.High},
			[]bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.in)
			out := Correlate(tt.in)
			if fmt.Sprint(tt.in) != before {
				t.Error("Correlate modified its input")
			}
			if len(out) != len(tt.in) {
				t.Fatalf("%d findings out, %d in", len(out), len(tt.in))
			}
			for i, f := range out {
				if f.Kind != tt.in[i].Kind || f.Summary != tt.in[i].Summary {
					t.Errorf("#%d: order or kind changed: %s", i, f.Kind)
				}
				if dtAbs(f.Score-tt.wantScore[i]) > 1e-9 || f.Severity != tt.wantSev[i] {
					t.Errorf("#%d %s: %s %.4f, want %s %.4f", i, f.Kind, f.Severity, f.Score, tt.wantSev[i], tt.wantScore[i])
				}
				c, ok := f.Evidence["correlated"].(map[string]any)
				if ok != tt.corr[i] {
					t.Errorf("#%d: correlated evidence %v, want %v", i, ok, tt.corr[i])
					continue
				}
				if !ok {
					continue
				}
				if c["rule"] != CorrelateRule || c["own_score"] != tt.in[i].Score || c["own_severity"] != tt.in[i].Severity.String() {
					t.Errorf("#%d: evidence %v", i, c)
				}
				for _, w := range c["with"].([]map[string]any) {
					if w["kind"] == f.Kind {
						t.Errorf("#%d: lists its own kind under with", i)
					}
				}
				if f.Evidence["k"] != f.Kind {
					t.Errorf("#%d: original evidence lost", i)
				}
			}
		})
	}
}

// Adding a finding never lowers the score or severity of any other.
func TestCorrelateMonotonic(t *testing.T) {
	kinds := []string{cw.KindBeacon, cw.KindJurisdiction, cw.KindExfiltration, cw.KindDNSTunnel, cw.KindCargoData}
	hosts := []string{"10.0.0.1", "10.0.0.2", ""}
	remotes := []string{"203.0.113.1", "203.0.113.2", "198.51.100.3", ""}
	names := []string{"", "a.evil.example", "b.evil.example", "cdn.example.net"}
	r := rand.New(rand.NewPCG(9, 9))
	rnd := func() cw.Finding {
		s := float64(r.IntN(1001)) / 1000
		return crF(kinds[r.IntN(len(kinds))], cw.Severity(r.IntN(5)), s, hosts[r.IntN(len(hosts))],
			remotes[r.IntN(len(remotes))], names[r.IntN(len(names))])
	}
	for trial := range 2000 {
		fs := make([]cw.Finding, 1+r.IntN(8))
		for i := range fs {
			fs[i] = rnd()
		}
		a := Correlate(fs)
		b := Correlate(append(append([]cw.Finding{}, fs...), rnd()))
		for i := range a {
			if b[i].Score < a[i].Score || b[i].Severity < a[i].Severity {
				t.Fatalf("trial %d: adding a finding lowered #%d from %s %.3f to %s %.3f", trial, i,
					a[i].Severity, a[i].Score, b[i].Severity, b[i].Score)
			}
			if a[i].Score < fs[i].Score || a[i].Severity < fs[i].Severity {
				t.Fatalf("trial %d: Correlate lowered #%d", trial, i)
			}
		}
		// The engine calls it once; a second pass must still never lower.
		c := Correlate(a)
		for i := range a {
			if c[i].Score < a[i].Score {
				t.Fatalf("trial %d: second pass lowered #%d", trial, i)
			}
		}
	}
	if got := Correlate(nil); len(got) != 0 {
		t.Errorf("Correlate(nil) = %v", got)
	}
	one := []cw.Finding{crF(cw.KindBeacon, cw.High, 0.8, "10.0.0.1", "203.0.113.1", "")}
	if got := Correlate(one); !reflect.DeepEqual(got, one) {
		t.Errorf("single finding changed: %v", got)
	}
}
