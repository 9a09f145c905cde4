package flow

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

func TestCaptureSourceErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pcap")
	src := NewCaptureSource([]string{missing}, Config{}, pcap.Options{})
	n := 0
	err := src.Run(context.Background(), func(*cw.Conn) { n++ })
	if !cw.IsInputError(err) || n != 0 {
		t.Errorf("missing input: err %v, %d conns", err, n)
	}
	if src.Name() != "pcap" {
		t.Errorf("name %q", src.Name())
	}
}

func TestCaptureSourceCorpus(t *testing.T) {
	f := corpus.Path(t, "pcap/c2/slips-test-cc-capture-2.pcap")
	src := NewCaptureSource([]string{f}, Config{}, pcap.Options{})
	var conns []*cw.Conn
	if err := src.Run(context.Background(), func(c *cw.Conn) { conns = append(conns, c) }); err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if st.Reader.IP == 0 || st.Table.Packets != st.Reader.IP || st.Table.FlowsEmitted != int64(len(conns)) || st.Table.Active != 0 {
		t.Errorf("stats %+v", st)
	}
	for _, c := range conns {
		if c.Source != f {
			t.Fatalf("source %q", c.Source)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewCaptureSource([]string{f}, Config{}, pcap.Options{}).Run(ctx, func(*cw.Conn) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}
