package dlp

import (
	"net/netip"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func TestInspectorCapsOpenStreams(t *testing.T) {
	in := NewInspector(StreamConfig{}, 2)
	a, b := in.Stream(), in.Stream()
	if a == nil || b == nil {
		t.Fatal("the first two streams must open")
	}
	if in.Stream() != nil || in.Skipped != 1 {
		t.Fatalf("third stream opened past the cap (skipped %d)", in.Skipped)
	}
	a.Close(nil)
	if in.Stream() == nil {
		t.Fatal("a closed stream did not give its place back")
	}
	if in.Bound() <= 0 {
		t.Fatal("no memory bound")
	}
}

func TestDetectorIgnoresInternalCargo(t *testing.T) {
	content := &cw.Content{Counts: map[string]int{TypeContainer: 3}, Inspected: 100}
	local := func(s string) cw.Endpoint { return cw.Endpoint{Addr: netip.MustParseAddr(s), Local: true} }
	remote := cw.Endpoint{Addr: netip.MustParseAddr("8.209.72.15"), Country: "DE", Jurisdiction: "CN"}
	for _, tc := range []struct {
		name string
		c    cw.Conn
		want int
	}{
		{"scanner to wms", cw.Conn{Orig: local("10.0.0.7"), Resp: local("10.0.0.11"), Content: content}, 0},
		{"wms to cloud", cw.Conn{Orig: local("10.0.0.11"), Resp: remote, Content: content, OrigBytes: 100}, 1},
		{"cloud pushes to us", cw.Conn{Orig: remote, Resp: local("10.0.0.11"), Content: content}, 1},
		{"no content", cw.Conn{Orig: local("10.0.0.11"), Resp: remote, OrigBytes: 500}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(DetectorConfig{Watched: []string{"CN"}})
			d.Observe(&tc.c)
			if got := len(d.Findings()); got != tc.want {
				t.Fatalf("findings = %d, want %d", got, tc.want)
			}
			if tc.c.Content == nil && d.Uninspected != 500 {
				t.Errorf("uninspected = %d, want the flow's 500 bytes", d.Uninspected)
			}
		})
	}
}

// Encrypted flows and UDP flows hold no buffers, so they must not use up
// the places of flows whose cleartext is inspected.
func TestInspectorPlacesGoToCleartext(t *testing.T) {
	in := NewInspector(StreamConfig{}, 1)
	tls := in.Stream()
	tls.Write(true, []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0})
	httpFlow := in.Stream()
	if httpFlow == nil {
		t.Fatal("a TLS flow kept its place after it was found encrypted")
	}
	for i := 0; i < 3; i++ {
		u := in.Datagrams()
		u.Write(true, []byte("EQD+CN+OOLU4293959+4500'"))
		c := &cw.Conn{OrigBytes: 24}
		u.Close(c)
		if c.Content.Counts[TypeContainer] != 1 {
			t.Fatalf("datagram %d: counts %v", i, c.Content.Counts)
		}
	}
	if in.Skipped != 0 {
		t.Errorf("skipped %d", in.Skipped)
	}
}
