// Package flow turns decoded packets into cargowatch.Conn records with
// Zeek conn.log semantics, and provides CaptureSource, the Source that
// reads pcap/pcapng inputs through it.
//
// # Semantics
//
// The TCP endpoint state machine, history letters, conn_state, byte counts
// from sequence space and content gaps follow Zeek's TCPSessionAdapter and
// conn_state() (base/protocols/conn/main.zeek). The originator is the
// sender of the first packet, except that a SYN-ACK makes its receiver the
// originator, and midstream TCP or UDP from a likely server port to one
// that is not is flipped as Zeek's WantConnection does ('^' in history).
// A SYN with a new ISN, or any SYN on a finished connection, starts a new
// Conn (Zeek's IsReuse); an attempt with no reply ends TCPAttemptTimeout
// after its first SYN; closed or reset connections linger TCPCloseLinger.
// Timeouts run on packet time, never the wall clock. UIDs are derived from
// the first timestamp, the tuple and a counter: the same input gives the
// same uids.
//
// # Bounds
//
// A flow without payload costs one struct (560 bytes), its history string
// and a map entry;
// MaxFlows caps their number, evicting the least recently active one
// (Stats.Evicted). Per flow and direction, payload is held only:
//   - the first DissectBytes of the in-order stream, released once both
//     directions are dissected or the flow ends;
//   - at most MaxOutOfOrder out-of-order segments (more are dropped and
//     counted; their bytes become a gap for the parsers);
//   - one partial DNS-over-TCP message (at most 64 KiB, only once the flow
//     proved to be DNS).
//
// The sum over all flows is capped by MaxBufferBytes; past it bytes are
// not kept (Stats.BufferCapHits). Conn.DNS and Conn.HTTP are capped by
// MaxDNSPerFlow and MaxHTTPPerFlow, the history string by 64 letters.
// Inspector sinks get at most InspectBytes per direction and nothing of a
// TLS connection after its ClientHello.
package flow
