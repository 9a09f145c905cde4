package detect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/sqlite"
)

// The store is the History of a real run.
var _ History = (*sqlite.DB)(nil)

// hiFake is a History from a table, for tests that need no database.
type hiFake struct {
	first map[netip.Addr]time.Time
	prev  map[netip.Addr]int
	err   error
}

func (h *hiFake) FirstSeen(_ context.Context, a netip.Addr) (time.Time, bool, error) {
	t, ok := h.first[a]
	return t, ok, h.err
}

func (h *hiFake) Prevalence(_ context.Context, a netip.Addr) (int, error) { return h.prev[a], h.err }

func (h *hiFake) DailyBytesOut(context.Context, time.Time, time.Time, func(netip.Addr, time.Time, int64) error) error {
	return h.err
}

func hiConn(local, remote, name string, ts time.Time) *cw.Conn {
	return &cw.Conn{TS: ts,
		Orig: cw.Endpoint{Addr: netip.MustParseAddr(local), Local: true},
		Resp: cw.Endpoint{Addr: netip.MustParseAddr(remote), Port: 443, Name: name}}
}

func TestRarityScore(t *testing.T) {
	tests := []struct {
		hosts int
		want  float64
	}{{0, 1}, {1, 1}, {2, 0.8}, {4, 0.6}, {8, 0.4}, {32, 0}, {1000, 0}}
	for _, tt := range tests {
		if got := RarityScore(tt.hosts); dtAbs(got-tt.want) > 1e-9 {
			t.Errorf("RarityScore(%d) = %v, want %v", tt.hosts, got, tt.want)
		}
	}
}

func TestPrevalence(t *testing.T) {
	p := NewPrevalence()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		p.Observe(hiConn(fmt.Sprintf("10.0.0.%d", i), "203.0.113.1", "api.cloud.example.com", t0))
	}
	p.Observe(hiConn("10.0.0.1", "203.0.113.2", "www.cloud.example.com", t0))
	p.Observe(hiConn("10.0.0.1", "203.0.113.2", "", t0)) // same host again
	// Local-to-local and inbound from the Internet.
	p.Observe(&cw.Conn{TS: t0, Orig: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Local: true},
		Resp: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.2"), Local: true}})
	in := hiConn("10.0.0.9", "203.0.113.2", "", t0)
	in.Orig, in.Resp = in.Resp, in.Orig
	p.Observe(in)
	tests := []struct {
		addr string
		want int
	}{{"203.0.113.1", prevalenceHosts}, {"203.0.113.2", 2}, {"10.0.0.2", 0}, {"198.51.100.1", 0}}
	for _, tt := range tests {
		if got := p.Hosts(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Hosts(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
	// Names count by registrable domain.
	if got := p.HostsByName("cdn.cloud.example.com"); got != prevalenceHosts {
		t.Errorf("HostsByName = %d, want %d", got, prevalenceHosts)
	}
	p.Window = time.Hour
	p.Observe(hiConn("10.0.0.1", "203.0.113.3", "", t0.Add(2*time.Hour)))
	p.Expire(t0.Add(2 * time.Hour))
	if p.Hosts(netip.MustParseAddr("203.0.113.1")) != 0 || p.Hosts(netip.MustParseAddr("203.0.113.3")) != 1 {
		t.Error("Expire kept the old remote or dropped the new one")
	}
	// The cap stops counting new remotes and says so.
	q := NewPrevalence()
	q.MaxRemotes = 2
	for i := range 5 {
		q.Observe(hiConn("10.0.0.1", fmt.Sprintf("203.0.113.%d", 10+i), "", t0))
	}
	if len(q.byAddr) != 2 || q.Dropped() != 3 {
		t.Errorf("cap: %d remotes, %d dropped; want 2, 3", len(q.byAddr), q.Dropped())
	}
}

func TestAnnotate(t *testing.T) {
	r := netip.MustParseAddr("203.0.113.1")
	first := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	p := NewPrevalence()
	p.Observe(hiConn("10.0.0.1", "203.0.113.1", "", first))
	p.Observe(hiConn("10.0.0.2", "203.0.113.1", "", first))
	mkf := func() []cw.Finding {
		return []cw.Finding{{Kind: cw.KindBeacon, Score: 0.7, Src: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1")}, Dst: cw.Endpoint{Addr: r}}}
	}
	tests := []struct {
		name      string
		h         History
		p         *Prevalence
		wantHosts int
		rarity    float64
		wantFirst bool
	}{
		{"input only", nil, p, 2, 0.8, false},
		{"history larger", &hiFake{first: map[netip.Addr]time.Time{r: first}, prev: map[netip.Addr]int{r: 8}}, p, 8, 0.4, true},
		{"history only", &hiFake{prev: map[netip.Addr]int{r: 1}}, nil, 1, 1, false},
	}
	for _, tt := range tests {
		fs := mkf()
		if err := Annotate(context.Background(), tt.h, tt.p, fs); err != nil {
			t.Fatal(err)
		}
		ev, _ := fs[0].Evidence["prevalence"].(map[string]any)
		if ev == nil {
			t.Fatalf("%s: no prevalence evidence", tt.name)
		}
		if ev["rarity"] != tt.rarity {
			t.Errorf("%s: rarity %v, want %v (%v)", tt.name, ev["rarity"], tt.rarity, ev)
		}
		if _, ok := ev["first_seen"]; ok != tt.wantFirst {
			t.Errorf("%s: first_seen present %v, want %v", tt.name, ok, tt.wantFirst)
		}
		if fs[0].Score != 0.7 {
			t.Errorf("%s: Annotate changed the score", tt.name)
		}
	}
	fs := mkf()
	if err := Annotate(context.Background(), nil, nil, fs); err != nil || fs[0].Evidence != nil {
		t.Errorf("nothing to add: evidence %v, err %v", fs[0].Evidence, err)
	}
	boom := errors.New("disk gone")
	if err := Annotate(context.Background(), &hiFake{err: boom}, nil, mkf()); !errors.Is(err, boom) {
		t.Errorf("store error: got %v", err)
	}
}
