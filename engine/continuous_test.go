package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// windowDetector holds the start of every Conn within its window and
// reports one finding counting them: the smallest detector with the
// cargowatch.Expirer contract.
type windowDetector struct {
	window  time.Duration
	held    []time.Time
	expires []time.Time
}

func (d *windowDetector) Name() string       { return "window" }
func (d *windowDetector) Observe(c *cw.Conn) { d.held = append(d.held, c.TS) }
func (d *windowDetector) Findings() []cw.Finding {
	if len(d.held) == 0 {
		return nil
	}
	return []cw.Finding{{Kind: "seen", Count: int64(len(d.held))}}
}
func (d *windowDetector) Expire(now time.Time) {
	d.expires = append(d.expires, now)
	cut := now.Add(-d.window)
	kept := d.held[:0]
	for _, t := range d.held {
		if !t.Before(cut) {
			kept = append(kept, t)
		}
	}
	d.held = kept
}

// memStore records what the engine writes, and refuses writes under a
// cancelled context as sqlite would.
type memStore struct {
	mu       sync.Mutex
	conns    int
	findings [][]cw.Finding
}

func (s *memStore) BeginRun(context.Context, *cw.Run) error                      { return nil }
func (s *memStore) FinishRun(context.Context, *cw.Run) error                     { return nil }
func (s *memStore) HasInput(context.Context, string) (bool, error)               { return false, nil }
func (s *memStore) AddInput(context.Context, int64, string, string, int64) error { return nil }
func (s *memStore) Conns(context.Context, cw.ConnQuery, func(*cw.Conn) error) error {
	return nil
}
func (s *memStore) Findings(context.Context, cw.FindingQuery, func(*cw.Finding) error) error {
	return nil
}
func (s *memStore) Close() error { return nil }
func (s *memStore) WriteConns(ctx context.Context, _ int64, cs []*cw.Conn) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	s.conns += len(cs)
	s.mu.Unlock()
	return nil
}
func (s *memStore) WriteFindings(ctx context.Context, _ int64, fs []cw.Finding) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	s.findings = append(s.findings, fs)
	s.mu.Unlock()
	return nil
}

func TestContinuousRecordTimeWindows(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var conns []*cw.Conn
	for _, m := range []int{10, 50, 80, 150} {
		c := conn("10.0.0.1", "203.0.113.1", "")
		c.TS = base.Add(time.Duration(m) * time.Minute)
		conns = append(conns, c)
	}
	det := &windowDetector{window: 30 * time.Minute}
	store := &memStore{}
	wall := base.Add(30 * 24 * time.Hour) // record time ignores the wall clock
	var ends []time.Time
	var counts []int64
	res, err := Run(context.Background(), []cw.Source{&sliceSource{conns: conns}}, Config{
		Detectors: []cw.Detector{det}, Store: store,
		Every: time.Hour, RecordTime: true, Now: func() time.Time { return wall },
		OnWindow: func(e time.Time, fs []cw.Finding) {
			ends = append(ends, e)
			var n int64
			for _, f := range fs {
				n += f.Count
			}
			counts = append(counts, n)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Windows close at 01:00 (00:10, 00:50 held), 02:00 (00:50 and 01:20:
	// 00:10 fell out at the first expiry), and at the last Conn (02:30 only).
	wantEnds := []time.Time{base.Add(time.Hour), base.Add(2 * time.Hour), base.Add(150 * time.Minute)}
	wantCounts := []int64{2, 2, 1}
	if len(ends) != 3 || res.Windows != 3 {
		t.Fatalf("windows %v (%d), want %v", ends, res.Windows, wantEnds)
	}
	for i := range ends {
		if !ends[i].Equal(wantEnds[i]) || counts[i] != wantCounts[i] {
			t.Errorf("window %d: end %v count %d, want %v %d", i, ends[i], counts[i], wantEnds[i], wantCounts[i])
		}
	}
	if len(det.expires) != 2 {
		t.Errorf("Expire called %d times (%v), want at the two full windows only", len(det.expires), det.expires)
	}
	if store.conns != 4 || len(store.findings) != 3 {
		t.Errorf("store: %d conns, %d finding batches", store.conns, len(store.findings))
	}
}

// liveSource emits its Conns, one every gap, then waits for ctx, as a
// collector's socket does.
type liveSource struct {
	conns []*cw.Conn
	gap   time.Duration
}

func (s *liveSource) Name() string { return "live" }
func (s *liveSource) Run(ctx context.Context, emit func(*cw.Conn)) error {
	for _, c := range s.conns {
		emit(c)
		time.Sleep(s.gap)
	}
	<-ctx.Done()
	return nil
}

func TestContinuousWallClock(t *testing.T) {
	mk := func(orig string, n int) []*cw.Conn {
		var out []*cw.Conn
		for i := 0; i < n; i++ {
			c := conn(orig, "203.0.113.1", "")
			c.TS = time.Now()
			out = append(out, c)
		}
		return out
	}
	// Two sources that never end on their own: they must run together.
	a := &liveSource{conns: mk("10.0.0.1", 5), gap: 5 * time.Millisecond}
	b := &liveSource{conns: mk("10.0.0.2", 7), gap: 3 * time.Millisecond}
	det := &windowDetector{window: time.Hour}
	store := &memStore{}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	windows := 0
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(ctx, []cw.Source{a, b}, Config{
			Detectors: []cw.Detector{det}, Store: store,
			Every: 30 * time.Millisecond, FlushAfter: 5 * time.Millisecond,
			OnWindow: func(time.Time, []cw.Finding) { mu.Lock(); windows++; mu.Unlock() },
		})
	}()
	// Every Conn reaches the store within a window or two, though no
	// batch of 512 ever fills.
	deadline := time.Now().Add(5 * time.Second)
	for {
		store.mu.Lock()
		n := store.conns
		store.mu.Unlock()
		if n == 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store holds %d of 12 conns after 5 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if err != nil {
		t.Fatalf("cancelled continuous run failed: %v", err)
	}
	if !errors.Is(res.Err, context.Canceled) || res.Conns != 12 {
		t.Errorf("res %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if windows < 2 || len(det.expires) < 1 || res.Windows != windows {
		t.Errorf("windows %d (res %d), expiries %d", windows, res.Windows, len(det.expires))
	}
	// The last window's findings were stored although ctx was cancelled.
	if last := store.findings[len(store.findings)-1]; len(last) != 1 || last[0].Count != 12 {
		t.Errorf("last stored findings %+v", last)
	}
}

func TestCancelledRunStillStores(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &liveSource{conns: []*cw.Conn{conn("10.0.0.1", "203.0.113.1", "")}}
	store := &memStore{}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := Run(ctx, []cw.Source{src}, Config{Store: store, Detectors: []cw.Detector{&countDetector{}}, Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if store.conns != 1 || len(store.findings) != 1 {
		t.Errorf("after cancellation the store got %d conns, %d finding batches", store.conns, len(store.findings))
	}
}
