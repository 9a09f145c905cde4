package engine

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// sliceSource yields fixed Conns: the engine's input contract, not a stand-in for a capture.
type sliceSource struct {
	conns []*cw.Conn
	err   error
}

func (s *sliceSource) Name() string { return "slice" }
func (s *sliceSource) Run(ctx context.Context, emit func(*cw.Conn)) error {
	for _, c := range s.conns {
		emit(c)
	}
	return s.err
}

type countDetector struct {
	seen []*cw.Conn
}

func (d *countDetector) Name() string       { return "count" }
func (d *countDetector) Observe(c *cw.Conn) { d.seen = append(d.seen, c) }
func (d *countDetector) Findings() []cw.Finding {
	return []cw.Finding{{Kind: "a", Severity: cw.Low, Score: 0.9}, {Kind: "b", Severity: cw.High, Score: 0.1}, {Kind: "c", Severity: cw.High, Score: 0.5}}
}

type localEnricher struct{ p netip.Prefix }

func (e localEnricher) Enrich(c *cw.Conn) {
	c.Orig.Local = e.p.Contains(c.Orig.Addr)
	c.Resp.Local = e.p.Contains(c.Resp.Addr)
}

// topInferrer infers the most frequent address when it was seen at least
// min times: the shape of geo.OriginatorCounter's rule, small enough to read.
type topInferrer struct {
	n   map[netip.Addr]int
	min int
}

func (t *topInferrer) Add(a netip.Addr) { t.n[a]++ }
func (t *topInferrer) Infer() []netip.Prefix {
	var best netip.Addr
	for a, n := range t.n {
		if !best.IsValid() || n > t.n[best] {
			best = a
		}
	}
	if !best.IsValid() || t.n[best] < t.min {
		return nil
	}
	return []netip.Prefix{netip.PrefixFrom(best, 32)}
}

func conn(orig, resp string, sni string) *cw.Conn {
	c := &cw.Conn{TS: time.Unix(1, 0), Orig: cw.Endpoint{Addr: netip.MustParseAddr(orig)}, Resp: cw.Endpoint{Addr: netip.MustParseAddr(resp)}}
	if sni != "" {
		c.TLS = &cw.TLS{SNI: sni}
	}
	return c
}

func TestRunInfersLocalAndNames(t *testing.T) {
	dns := conn("147.32.80.37", "8.8.8.8", "")
	dns.DNS = []cw.DNS{{Query: "example.org.", Answers: []string{"93.184.216.34"}}}
	src := &sliceSource{conns: []*cw.Conn{
		dns,
		conn("147.32.80.37", "141.193.213.20", "c2.example"),
		conn("147.32.80.37", "93.184.216.34", ""),
		conn("10.0.0.1", "1.1.1.1", ""),
	}, err: &cw.InputError{Input: "bad.pcap", Err: errors.New("truncated")}}
	det := &countDetector{}
	res, err := Run(context.Background(), []cw.Source{src}, Config{
		Enrichers: []cw.Enricher{localEnricher{netip.MustParsePrefix("10.0.0.0/8")}},
		Detectors: []cw.Detector{det},
		Infer:     &topInferrer{n: map[netip.Addr]int{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 4 || len(det.seen) != 4 {
		t.Fatalf("conns = %d, seen %d", res.Conns, len(det.seen))
	}
	if len(res.Inferred) != 1 || res.Inferred[0].String() != "147.32.80.37/32" {
		t.Fatalf("inferred %v", res.Inferred)
	}
	if res.NoLocal != 0 {
		t.Errorf("NoLocal = %d after inference", res.NoLocal)
	}
	for _, c := range det.seen {
		if !c.Orig.Local {
			t.Errorf("%v not made local", c.Orig.Addr)
		}
		switch c.Resp.Addr.String() {
		case "141.193.213.20":
			if c.Resp.Name != "c2.example" {
				t.Errorf("SNI name = %q", c.Resp.Name)
			}
		case "93.184.216.34":
			if c.Resp.Name != "example.org" {
				t.Errorf("DNS name = %q", c.Resp.Name)
			}
		}
	}
	if !cw.IsInputError(res.Err) {
		t.Errorf("input error lost: %v", res.Err)
	}
	if got := res.Findings[0].Kind + res.Findings[1].Kind + res.Findings[2].Kind; got != "cba" {
		t.Errorf("rank order %v", got)
	}
}

func TestNameCacheBounded(t *testing.T) {
	n := newNameCache(4)
	for i := 0; i < 100; i++ {
		n.put(netip.AddrFrom4([4]byte{1, 0, 0, byte(i)}), "x")
	}
	if len(n.cur)+len(n.old) > 8 {
		t.Fatalf("cache grew to %d", len(n.cur)+len(n.old))
	}
	if _, ok := n.get(netip.AddrFrom4([4]byte{1, 0, 0, 99})); !ok {
		t.Fatal("newest entry lost")
	}
}

func TestInferenceFallsBackToRespondersAndWidens(t *testing.T) {
	var conns []*cw.Conn
	// A public-address server answering many clients, and polling a
	// neighbour on its own /24.
	for i := 0; i < 30; i++ {
		conns = append(conns, conn(netip.AddrFrom4([4]byte{203, 0, byte(i), 7}).String(), "147.32.80.37", ""))
	}
	conns = append(conns, conn("147.32.80.37", "147.32.80.9", ""), conn("147.32.80.37", "47.96.12.34", ""))
	res, err := Run(context.Background(), []cw.Source{&sliceSource{conns: conns}}, Config{
		Infer:           &topInferrer{n: map[netip.Addr]int{}, min: 10},
		InferResponders: &topInferrer{n: map[netip.Addr]int{}, min: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"147.32.80.37/32", "147.32.80.0/24"}
	if len(res.Inferred) != 2 || res.Inferred[0].String() != want[0] || res.Inferred[1].String() != want[1] {
		t.Fatalf("inferred %v, want %v", res.Inferred, want)
	}
	if res.NoLocal != 0 {
		t.Errorf("NoLocal = %d", res.NoLocal)
	}
}
