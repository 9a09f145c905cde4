package dlp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// conn makes a Conn whose Content comes from a real Stream over payload.
func conn(t *testing.T, src, dst string, payload string, juris string) *cw.Conn {
	t.Helper()
	st := NewStream(StreamConfig{})
	req := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: oss.example\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload)
	st.Write(true, []byte(req))
	st.Write(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	c := &cw.Conn{
		TS: time.Unix(1700000000, 0), UID: "C" + src + dst, Duration: time.Second,
		Orig:      cw.Endpoint{Addr: netip.MustParseAddr(src), Local: true},
		Resp:      cw.Endpoint{Addr: netip.MustParseAddr(dst), Port: 443, Country: "DE", Jurisdiction: juris},
		OrigBytes: int64(len(req)), RespBytes: 38,
	}
	st.Close(c)
	return c
}

func TestDetector(t *testing.T) {
	d := NewDetector(DetectorConfig{Watched: []string{"CN"}})
	plan := sampleMessages[0]
	for range 3 {
		d.Observe(conn(t, "10.0.0.5", "47.91.0.1", plan, "CN"))
	}
	d.Observe(conn(t, "10.0.0.6", "52.1.1.1", "container OOLU4293959 shipped", ""))
	d.Observe(conn(t, "10.0.0.7", "52.1.1.1", "nothing to see 123456789012345678", "")) // a lone low hit: no finding
	d.Observe(&cw.Conn{})                                                               // no content at all

	fs := d.Findings()
	if len(fs) != 2 {
		t.Fatalf("%d findings, want 2: %+v", len(fs), fs)
	}
	f := fs[0]
	ids := f.Evidence["identifiers"].(map[string]int)
	msgs := f.Evidence["message_types"].(map[string]int)
	if f.Kind != cw.KindCargoData || f.Count != 3 || ids[TypeContainer] != 6 || msgs["EDIFACT/BAPLIE"] != 3 {
		t.Errorf("finding %+v", f)
	}
	// Three bay plans is medium; a watched jurisdiction makes it high.
	if f.Severity != cw.High {
		t.Errorf("severity %v, want high", f.Severity)
	}
	if !strings.Contains(f.Summary, "6 container") || !strings.Contains(f.Summary, "EDIFACT/BAPLIE") || !strings.Contains(f.Summary, "controlled from CN") {
		t.Errorf("summary %q", f.Summary)
	}
	for _, s := range f.Evidence["samples"].([]string) {
		if strings.Contains(s, "OOLU4293959") {
			t.Errorf("sample %q not masked", s)
		}
	}
	if fs[1].Severity != cw.Low || fs[1].Src.Addr.String() != "10.0.0.6" {
		t.Errorf("second finding %+v", fs[1])
	}
}

func TestDetectorCap(t *testing.T) {
	d := NewDetector(DetectorConfig{MaxPairs: 1})
	d.Observe(conn(t, "10.0.0.5", "47.91.0.1", sampleMessages[0], ""))
	d.Observe(conn(t, "10.0.0.6", "47.91.0.1", sampleMessages[0], ""))
	if len(d.Findings()) != 1 || d.Dropped != 1 {
		t.Errorf("findings %d, dropped %d", len(d.Findings()), d.Dropped)
	}
}

// What the local host sent decides: an upload ranks by volume and law, a
// download is only info, and a destination the policy allows stays low.
func TestDetectorDirectionAndPolicy(t *testing.T) {
	plan := sampleMessages[0]
	download := func() *cw.Conn {
		st := NewStream(StreamConfig{})
		st.Write(true, []byte("GET /plan HTTP/1.1\r\nHost: oss.example\r\n\r\n"))
		st.Write(false, []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(plan), plan)))
		c := &cw.Conn{TS: time.Unix(1700000000, 0), UID: "Cdl",
			Orig: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.5"), Local: true},
			Resp: cw.Endpoint{Addr: netip.MustParseAddr("47.91.0.1"), Country: "CN", Jurisdiction: "CN"}, RespBytes: int64(len(plan))}
		st.Close(c)
		return c
	}
	for _, tc := range []struct {
		name    string
		c       *cw.Conn
		allowed bool
		want    cw.Severity
		verb    string
	}{
		{"upload to a watched jurisdiction", conn(t, "10.0.0.5", "47.91.0.1", plan, "CN"), false, cw.High, "sent to"},
		{"download from a watched jurisdiction", download(), false, cw.Info, "received from"},
		{"upload to an allowed partner", conn(t, "10.0.0.5", "80.150.0.1", plan+plan+plan+plan+plan, "DE"), true, cw.Low, "sent to"},
		{"upload to an unlisted place", conn(t, "10.0.0.5", "52.1.1.1", plan, ""), false, cw.Medium, "sent to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(DetectorConfig{Watched: []string{"CN"},
				Allowed: func(_, _ cw.Endpoint) bool { return tc.allowed }})
			d.Observe(tc.c)
			fs := d.Findings()
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			if fs[0].Severity != tc.want || !strings.Contains(fs[0].Summary, tc.verb) {
				t.Errorf("severity %v, summary %q; want %v and %q", fs[0].Severity, fs[0].Summary, tc.want, tc.verb)
			}
		})
	}
}
