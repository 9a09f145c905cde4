package dlp

// Inspector hands out Streams for flows, at most MaxOpen at once. A Stream
// holds up to two scan windows and one compressed body, so the cap on open
// Streams is what bounds content inspection's memory, whatever the number
// of concurrent flows: MaxOpen × (2 × (Window + 512) + MaxBody) bytes.
// Flows that find no free Stream are not inspected and count as Skipped
// (their bytes show up as uninspected).
type Inspector struct {
	cfg     StreamConfig
	max     int
	open    int
	Skipped int64
	Opened  int64
}

// DefaultMaxOpen bounds concurrently inspected flows.
const DefaultMaxOpen = 1024

// NewInspector returns an Inspector; maxOpen <= 0 means DefaultMaxOpen.
// It is not safe for concurrent use (the flow table is single-threaded).
func NewInspector(cfg StreamConfig, maxOpen int) *Inspector {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpen
	}
	cfg.defaults()
	return &Inspector{cfg: cfg, max: maxOpen}
}

// Stream returns a Stream for a new flow, or nil when MaxOpen are open.
// The Stream gives its place back when it closes or finds the flow
// encrypted.
func (in *Inspector) Stream() *Stream {
	if in.open >= in.max {
		in.Skipped++
		return nil
	}
	in.open++
	in.Opened++
	s := NewStream(in.cfg)
	s.release = func() { in.open-- }
	return s
}

// Datagrams returns a Stream for a UDP flow: it scans each datagram as it
// comes and holds nothing between them, so it takes no place among the
// MaxOpen.
func (in *Inspector) Datagrams() *Stream {
	cfg := in.cfg
	cfg.Datagrams = true
	return NewStream(cfg)
}

// Bound is the worst-case memory of the open Streams, in bytes.
func (in *Inspector) Bound() int64 {
	return int64(in.max) * (2*int64(in.cfg.Window+margin) + int64(in.cfg.MaxBody))
}
