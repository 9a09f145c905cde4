package detect

import (
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

func TestStrobeThreshold(t *testing.T) {
	b := NewBeacon(BeaconConfig{})
	tests := []struct {
		window time.Duration
		want   int64
	}{
		{time.Minute, DefaultStrobeMin},      // a short capture: the floor
		{2 * time.Hour, 7200},                // one a second on average
		{24 * time.Hour, 86400},              // RITA's daily figure
		{-time.Hour, DefaultStrobeMin},       // nonsense windows take the floor
		{15 * time.Minute, DefaultStrobeMin}, // 900 < floor
	}
	for _, tt := range tests {
		if got := b.strobeThreshold(tt.window.Seconds()); got != tt.want {
			t.Errorf("window %v: threshold %d, want %d", tt.window, got, tt.want)
		}
	}
}

func TestStrobeScore(t *testing.T) {
	tests := []struct {
		conns, thr int64
		want       float64
		sev        cw.Severity
	}{
		{999, 1000, 0, cw.Info},
		{1000, 1000, 0.6, cw.Low},
		{2000, 1000, 0.7, cw.Medium},
		{6000, 1000, 0.858, cw.High},
		{1 << 40, 1000, 1, cw.High},
		{5, 0, 0, cw.Info},
	}
	for _, tt := range tests {
		got := StrobeScore(tt.conns, tt.thr)
		if got != tt.want || BeaconSeverity(got) != tt.sev {
			t.Errorf("StrobeScore(%d, %d) = %v (%s), want %v (%s)", tt.conns, tt.thr, got, BeaconSeverity(got), tt.want, tt.sev)
		}
	}
}

// A host hammering one destination is a strobe, reported instead of a
// beacon, once (by name), with counts that include what was not retained.
func TestStrobeReportedInsteadOfBeacon(t *testing.T) {
	b := NewBeacon(BeaconConfig{MaxPerPair: 500})
	at := bt0
	for range 3000 { // every 0.4 s for 20 minutes: 3000 ≥ the 1000 floor
		c := outConn("10.0.0.7", "52.1.2.3", at, "api.example.com", 120)
		b.Observe(c)
		at = at.Add(400 * time.Millisecond)
	}
	// A quiet periodic pair beside it stays a beacon.
	for i := range 20 {
		b.Observe(outConn("10.0.0.7", "52.1.2.4", bt0.Add(time.Duration(i)*time.Minute), "", 700))
	}
	fs := b.Findings()
	kinds := map[string]int{}
	for _, f := range fs {
		kinds[f.Kind]++
		if f.Kind == cw.KindStrobe {
			if f.Count != 3000 || f.Dst.Name != "api.example.com" || f.BytesOut != 3000*120 {
				t.Errorf("strobe count %d name %q bytes %d", f.Count, f.Dst.Name, f.BytesOut)
			}
			if f.Evidence["timestamps_dropped"].(int64) != 2500 {
				t.Errorf("timestamps_dropped %v, want 2500", f.Evidence["timestamps_dropped"])
			}
		}
	}
	if kinds[cw.KindStrobe] != 1 || kinds[cw.KindBeacon] != 1 {
		t.Errorf("kinds %v, want one strobe and one beacon", kinds)
	}
}

// Expiry ages out overflow counts too, so a strobe ends with its window.
func TestStrobeExpires(t *testing.T) {
	b := NewBeacon(BeaconConfig{Window: time.Hour, MaxPerPair: 100})
	for i := range 2000 {
		b.Observe(outConn("10.0.0.7", "52.1.2.3", bt0.Add(time.Duration(i)*time.Second), "", 100))
	}
	if fs := b.Findings(); len(fs) != 1 || fs[0].Kind != cw.KindStrobe {
		t.Fatalf("findings %v, want one strobe", fs)
	}
	b.Expire(bt0.Add(3 * time.Hour))
	if fs := b.Findings(); len(fs) != 0 {
		t.Errorf("%d findings after the window passed", len(fs))
	}
	if b.pairCount() != 0 {
		t.Errorf("%d pairs kept", b.pairCount())
	}
}
