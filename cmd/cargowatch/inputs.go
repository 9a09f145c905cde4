package main

import (
	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/pcap"
)

// sources are the readers for a run's inputs, chosen by content.
type sources struct {
	all     []cw.Source
	capture *flow.CaptureSource // nil when no input is a capture
}

// openSources picks a reader for each input by what it holds.
func openSources(inputs []string, pl *pipeline) *sources {
	s := &sources{}
	s.capture = flow.NewCaptureSource(inputs, pl.flow, pcap.Options{})
	s.all = append(s.all, s.capture)
	return s
}

// Progress reports bytes read of the inputs, for the progress bar.
func (s *sources) Progress() (read, total int64) {
	if s.capture != nil {
		return s.capture.Progress()
	}
	return 0, 0
}

// stats is what the run record keeps of the sources.
func (s *sources) stats() map[string]any {
	m := map[string]any{}
	if s.capture != nil {
		m["pcap"] = s.capture.Stats()
	}
	return m
}
