package netflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// CollectorConfig sets up a Collector. Zero fields take the defaults.
type CollectorConfig struct {
	// Listen holds the sockets to read: "udp://HOST:PORT" or "HOST:PORT".
	Listen []string
	// QueueDatagrams and QueueBytes bound what waits between the sockets
	// and the decoder (defaults 16384 datagrams, 64 MiB); past either,
	// datagrams are dropped and counted in CollectorStats.QueueDropped.
	QueueDatagrams int
	QueueBytes     int64
	// ReadBuffer is the socket receive buffer asked of the kernel
	// (default 4 MiB; the kernel may cap it at net.core.rmem_max).
	ReadBuffer int
	Log        *slog.Logger
}

func (c CollectorConfig) withDefaults() CollectorConfig {
	if c.QueueDatagrams <= 0 {
		c.QueueDatagrams = 16384
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 64 << 20
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 4 << 20
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// CollectorStats are a Collector's counters.
type CollectorStats struct {
	// Received counts datagrams read from the sockets.
	Received uint64 `json:"received"`
	// QueueDropped counts datagrams dropped because the decoder was behind
	// (the queue was full): the sockets are never left unread for it.
	QueueDropped uint64 `json:"queue_dropped"`
	// Queued is what waits for the decoder now.
	Queued      int   `json:"queued"`
	QueuedBytes int64 `json:"queued_bytes"`
	// ReadErrors counts failed socket reads (other than closing).
	ReadErrors uint64          `json:"read_errors"`
	Decoder    Stats           `json:"decoder"`
	Exporters  []ExporterStats `json:"exporters"`
}

// Collector is a cargowatch.Source that reads flow exports from UDP
// sockets. Each socket has a reader goroutine that only copies datagrams
// into a bounded queue; Run decodes from the queue and emits the Conns,
// so a slow pipeline costs dropped (and counted) datagrams, never a
// blocked socket or growing memory.
type Collector struct {
	cfg   CollectorConfig
	dec   *Decoder
	conns []*net.UDPConn
	queue chan datagram

	received, dropped, readErrs atomic.Uint64
	queuedBytes                 atomic.Int64

	errLog errLimiter
}

type datagram struct {
	from netip.AddrPort
	at   time.Time
	b    []byte
}

// NewCollector binds the sockets of cfg.Listen, so that a bad or busy
// address is reported before anything runs. The error names the address.
func NewCollector(dec *Decoder, cfg CollectorConfig) (*Collector, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Listen) == 0 {
		return nil, errors.New("netflow: no address to listen on")
	}
	c := &Collector{cfg: cfg, dec: dec, queue: make(chan datagram, cfg.QueueDatagrams)}
	for _, l := range cfg.Listen {
		addr, err := ParseListen(l)
		if err != nil {
			c.Close()
			return nil, err
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("netflow: listen %s: %w", l, err)
		}
		if err := conn.SetReadBuffer(cfg.ReadBuffer); err != nil {
			cfg.Log.Warn("netflow: could not set the socket receive buffer", "listen", l, "bytes", cfg.ReadBuffer, "err", err)
		}
		c.conns = append(c.conns, conn)
	}
	return c, nil
}

// ParseListen reads "udp://HOST:PORT" or "HOST:PORT" (HOST an address;
// empty for every address).
func ParseListen(s string) (netip.AddrPort, error) {
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		if scheme := s[:i]; scheme != "udp" {
			return netip.AddrPort{}, fmt.Errorf("netflow: listen %q: scheme %q: only udp:// is supported", s, scheme)
		}
		rest = s[i+3:]
	}
	if strings.HasPrefix(rest, ":") {
		rest = "0.0.0.0" + rest
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("netflow: listen %q: want udp://ADDRESS:PORT: %w", s, err)
	}
	return ap, nil
}

// Addrs returns the bound socket addresses (ports chosen by the kernel
// when the configuration said 0).
func (c *Collector) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(c.conns))
	for i, conn := range c.conns {
		out[i] = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return out
}

// Decoder returns the collector's decoder.
func (c *Collector) Decoder() *Decoder { return c.dec }

// Name implements cargowatch.Source.
func (c *Collector) Name() string { return "netflow" }

// Close releases the sockets; Run closes them itself when it ends.
func (c *Collector) Close() {
	for _, conn := range c.conns {
		conn.Close()
	}
}

// Run reads until ctx is done, then decodes what is still queued, emits
// it and returns nil: stopping a collector is its normal end.
func (c *Collector) Run(ctx context.Context, emit func(*cw.Conn)) error {
	var wg sync.WaitGroup
	for _, conn := range c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(conn)
		}()
	}
	readersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(readersDone)
	}()
	for {
		select {
		case d := <-c.queue:
			c.decode(d, emit)
		case <-ctx.Done():
			c.Close()
			<-readersDone
			for {
				select {
				case d := <-c.queue:
					c.decode(d, emit)
				default:
					return nil
				}
			}
		}
	}
}

func (c *Collector) decode(d datagram, emit func(*cw.Conn)) {
	c.queuedBytes.Add(-int64(len(d.b)))
	if err := c.dec.Decode(d.from, d.at, d.b, emit); err != nil {
		c.errLog.log(c.cfg.Log, d.at, err)
	}
}

// read copies datagrams into the queue until the socket is closed. It
// never waits for the decoder.
func (c *Collector) read(conn *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.readErrs.Add(1)
			continue
		}
		c.received.Add(1)
		if c.queuedBytes.Load()+int64(n) > c.cfg.QueueBytes {
			c.dropped.Add(1)
			continue
		}
		d := datagram{from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), at: time.Now(), b: append([]byte(nil), buf[:n]...)}
		select {
		case c.queue <- d:
			c.queuedBytes.Add(int64(n))
		default:
			c.dropped.Add(1)
		}
	}
}

// Stats returns the counters; safe from any goroutine.
func (c *Collector) Stats() CollectorStats {
	return CollectorStats{
		Received:     c.received.Load(),
		QueueDropped: c.dropped.Load(),
		Queued:       len(c.queue),
		QueuedBytes:  c.queuedBytes.Load(),
		ReadErrors:   c.readErrs.Load(),
		Decoder:      c.dec.Stats(),
		Exporters:    c.dec.Exporters(),
	}
}

// errLimiter logs the first decoding error and then at most one every
// errEvery, with the count of those not shown: a broken exporter sends
// thousands of datagrams a second and the log must stay readable.
type errLimiter struct {
	last       time.Time
	suppressed int
}

const errEvery = 10 * time.Second

func (e *errLimiter) log(l *slog.Logger, now time.Time, err error) {
	if !e.last.IsZero() && now.Sub(e.last) < errEvery {
		e.suppressed++
		return
	}
	l.Warn("flow export datagram skipped", "err", err, "similar_not_shown", e.suppressed)
	e.last, e.suppressed = now, 0
}
