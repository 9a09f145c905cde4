package flow

import (
	"net/netip"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// Config bounds the flow table. Zero values take the defaults below, which
// follow Zeek's (tcp_inactivity_timeout, udp_inactivity_timeout,
// tcp_close_delay, tcp_attempt_delay) so that records line up with conn.log.
type Config struct {
	TCPTimeout  time.Duration // idle TCP flows end after this (default 5m)
	UDPTimeout  time.Duration // idle UDP and other-protocol flows (default 1m)
	ICMPTimeout time.Duration // idle ICMP flows (default 1m)
	// TCPCloseLinger keeps a closed or reset TCP connection this long after
	// its last packet, so that trailing ACKs and retransmitted FINs join it
	// instead of starting a partial connection (default 5s, Zeek's
	// tcp_close_delay).
	TCPCloseLinger time.Duration
	// TCPAttemptTimeout ends a connection attempt (SYN, no reply) this long
	// after its first SYN (default 5s, Zeek's tcp_attempt_delay); a later SYN
	// on the same ports starts a new Conn, as in Zeek.
	TCPAttemptTimeout time.Duration

	// MaxFlows caps the table; past it the least recently active flow is
	// emitted early and counted in Stats.Evicted (default 500000).
	MaxFlows int
	// DissectBytes is how much of each direction's in-order stream is kept
	// for service detection and the TLS/HTTP parsers (default 8 KiB).
	DissectBytes int
	// MaxDNSPerFlow and MaxHTTPPerFlow bound Conn.DNS and Conn.HTTP
	// (defaults 64 and 32).
	MaxDNSPerFlow  int
	MaxHTTPPerFlow int
	// MaxOutOfOrder is how many out-of-order TCP segments one direction may
	// hold while waiting for a hole to fill (default 16).
	MaxOutOfOrder int
	// MaxBufferBytes caps the payload bytes held by the whole table
	// (dissection buffers, out-of-order segments, partial DNS messages).
	// Past it new bytes are not kept and Stats.BufferCapHits counts them
	// (default 256 MiB).
	MaxBufferBytes int64

	// Inspector, when set, sees each flow's in-order payload up to
	// InspectBytes per direction (default 1 MiB when Inspector is set).
	Inspector    Inspector
	InspectBytes int64

	// UDPTap, when set, sees the payload of every UDP datagram the
	// capture holds whole (not cut by the snap length), with its capture
	// time and addresses as sent, in capture order; payload is valid only
	// during the call. CaptureSource uses it to decode flow exports.
	UDPTap func(ts time.Time, src, dst netip.AddrPort, payload []byte)
}

// Inspector sees the in-order payload of each direction of each flow, up to
// Config.InspectBytes per direction (0 = no inspection).
type Inspector interface {
	// Open is called once per flow that carries payload; the returned
	// StreamSink receives bytes. It may return nil to skip the flow.
	Open(c *cw.Conn) StreamSink
}

// StreamSink receives one flow's payload. Bytes after a TCP content gap
// follow without notice; bytes of a TLS connection after its handshake are
// not delivered (they are ciphertext), so the sink should derive
// Content.Uninspected from the Conn's byte counts.
type StreamSink interface {
	Write(fromOrig bool, b []byte)
	Close(c *cw.Conn) // called when the Conn is emitted; may set c.Content
}

func (c Config) withDefaults() Config {
	if c.TCPTimeout <= 0 {
		c.TCPTimeout = 5 * time.Minute
	}
	if c.UDPTimeout <= 0 {
		c.UDPTimeout = time.Minute
	}
	if c.ICMPTimeout <= 0 {
		c.ICMPTimeout = time.Minute
	}
	if c.TCPCloseLinger <= 0 {
		c.TCPCloseLinger = 5 * time.Second
	}
	if c.TCPAttemptTimeout <= 0 {
		c.TCPAttemptTimeout = 5 * time.Second
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = 500000
	}
	if c.DissectBytes <= 0 {
		c.DissectBytes = 8 << 10
	}
	if c.MaxDNSPerFlow <= 0 {
		c.MaxDNSPerFlow = 64
	}
	if c.MaxHTTPPerFlow <= 0 {
		c.MaxHTTPPerFlow = 32
	}
	if c.MaxOutOfOrder <= 0 {
		c.MaxOutOfOrder = 16
	}
	if c.MaxBufferBytes <= 0 {
		c.MaxBufferBytes = 256 << 20
	}
	if c.Inspector != nil && c.InspectBytes <= 0 {
		c.InspectBytes = 1 << 20
	}
	if c.Inspector == nil {
		c.InspectBytes = 0
	}
	return c
}
