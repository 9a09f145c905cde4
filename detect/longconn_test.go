package detect

import (
	"net/netip"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

func longConn(local, remote string, start time.Time, d time.Duration, open bool) *cw.Conn {
	c := outConn(local, remote, start, "", 1000)
	c.Duration, c.Open = d, open
	return c
}

func TestLongConnUnion(t *testing.T) {
	tests := []struct {
		name    string
		spans   [][2]time.Duration // start offset, duration
		open    bool
		want    time.Duration
		sev     cw.Severity
		reports bool
	}{
		{"one 13 h session", [][2]time.Duration{{0, 13 * time.Hour}}, false, 13 * time.Hour, cw.High, true},
		{"parallel sessions count once", [][2]time.Duration{{0, 5 * time.Hour}, {time.Hour, 5 * time.Hour}, {2 * time.Hour, time.Hour}}, false, 6 * time.Hour, cw.Low, true},
		{"back to back", [][2]time.Duration{{0, 3 * time.Hour}, {3 * time.Hour, 6 * time.Hour}}, false, 9 * time.Hour, cw.Medium, true},
		{"still open at the end", [][2]time.Duration{{0, 2 * time.Hour}}, true, 2 * time.Hour, cw.Info, true},
		{"short", [][2]time.Duration{{0, 50 * time.Minute}}, false, 0, cw.Info, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLongConn(LongConnConfig{})
			// Flows arrive when they end: feed in reverse to test ordering.
			for i := len(tt.spans) - 1; i >= 0; i-- {
				s := tt.spans[i]
				l.Observe(longConn("10.0.0.9", "91.2.3.4", bt0.Add(s[0]), s[1], tt.open))
			}
			fs := l.Findings()
			if !tt.reports {
				if len(fs) != 0 {
					t.Errorf("reported %s", fs[0].Summary)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			f := fs[0]
			if got := f.Evidence["connected_s"].(float64); got != tt.want.Seconds() || f.Severity != tt.sev {
				t.Errorf("connected %v s %s, want %v s %s", got, f.Severity, tt.want.Seconds(), tt.sev)
			}
			if tt.open && f.Evidence["open_connections"].(int64) != 1 {
				t.Errorf("open_connections %v", f.Evidence["open_connections"])
			}
		})
	}
}

func TestLongConnInboundAndIgnored(t *testing.T) {
	l := NewLongConn(LongConnConfig{})
	c := longConn("10.0.0.9", "91.2.3.4", bt0, 5*time.Hour, false)
	c.Orig, c.Resp = c.Resp, c.Orig // the remote side opened it
	l.Observe(c)
	internal := longConn("10.0.0.9", "10.0.0.10", bt0, 20*time.Hour, false)
	internal.Resp.Local = true
	l.Observe(internal)
	fs := l.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want the inbound one only", len(fs))
	}
	if fs[0].Src.Addr != netip.MustParseAddr("10.0.0.9") || fs[0].Evidence["inbound_connections"].(int64) != 1 {
		t.Errorf("src %v inbound %v", fs[0].Src.Addr, fs[0].Evidence["inbound_connections"])
	}
}

func TestLongConnIntervalCap(t *testing.T) {
	l := NewLongConn(LongConnConfig{})
	// 200 separate 30-minute sessions: 100 h connected, more intervals
	// than the cap keeps.
	for i := range 200 {
		l.Observe(longConn("10.0.0.9", "91.2.3.4", bt0.Add(time.Duration(i)*time.Hour), 30*time.Minute, false))
	}
	p := l.pair(netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("91.2.3.4"))
	if len(p.iv) > maxLongIntervals {
		t.Errorf("%d intervals kept, cap %d", len(p.iv), maxLongIntervals)
	}
	fs := l.Findings()
	if len(fs) != 1 || fs[0].Evidence["connected_s"].(float64) != 100*3600 {
		t.Errorf("connected %v, want 360000 s", fs[0].Evidence["connected_s"])
	}
}

func TestLongConnExpire(t *testing.T) {
	l := NewLongConn(LongConnConfig{Window: 24 * time.Hour})
	l.Observe(longConn("10.0.0.9", "91.2.3.4", bt0, 30*time.Hour, false))
	l.Expire(bt0.Add(40 * time.Hour)) // keeps 16:00..30:00 of it
	fs := l.Findings()
	if len(fs) != 1 || fs[0].Evidence["connected_s"].(float64) != 14*3600 {
		t.Fatalf("after expiry: %v", fs)
	}
	l.Expire(bt0.Add(60 * time.Hour))
	if l.n != 0 {
		t.Errorf("%d pairs left after the window passed", l.n)
	}
}

func TestLongConnSeverityAndScore(t *testing.T) {
	for _, tt := range []struct {
		d     time.Duration
		sev   cw.Severity
		score float64
	}{{time.Hour, cw.Info, 0.042}, {4 * time.Hour, cw.Low, 0.167}, {8 * time.Hour, cw.Medium, 0.333}, {12 * time.Hour, cw.High, 0.5}, {48 * time.Hour, cw.High, 1}} {
		if s, sc := LongConnSeverity(tt.d), LongConnScore(tt.d); s != tt.sev || sc != tt.score {
			t.Errorf("%v: %s %v, want %s %v", tt.d, s, sc, tt.sev, tt.score)
		}
	}
}
