// Package netflow turns flow exports — NetFlow v5, NetFlow v9, IPFIX and
// sFlow v5 datagrams — into cargowatch Conns, through goflow2's decoders
// (github.com/netsampler/goflow2/v2/decoders), and collects them from UDP
// sockets as a cargowatch.Source.
//
// A Decoder keeps, per exporter (address and port, the transport session
// of RFC 7011) and observation domain (v9 source id), the templates, the
// sampling rates announced in options records and the IPFIX system init
// time, so that data records can be read and their times and counters
// made absolute. The same Decoder serves the live Collector and the
// decoding of export datagrams found in a packet capture.
//
// Mapping (docs/SOURCES.md has the full table): a flow record is
// one Conn, source → destination. NetFlow and IPFIX records are
// unidirectional, so a conversation is usually two Conns, one per
// direction; only biflow records (RFC 5103 reverse elements, or
// initiator/responder counters) fill the Resp counters. The record's
// octets are IP bytes (OrigIPBytes); OrigBytes estimates the payload by
// taking the smallest IP and transport headers off each packet. Counters
// are multiplied by the sampling rate when the exporter sampled.
//
// Bounds: Config.MaxExporters exporters (default 1024), each with at most
// Config.MaxTemplatesPerExporter templates (default 256), Config.MaxTemplates
// templates in all (default 8192), each of at most 256 fields (16 bytes a
// field): 32 MiB of templates at worst. Past a cap the least recently used
// exporter or template is forgotten and counted. Per exporter at most 64
// sampler rates and 64 system init times are kept. A Collector queues at
// most CollectorConfig.QueueDatagrams datagrams (default 16384) and
// QueueBytes bytes (default 64 MiB) between its sockets and the decoder;
// past either, datagrams are dropped and counted, never waited for.
//
// goflow2's decoders trust some lengths they read; the Decoder checks
// those before handing a datagram over (templates whose records would be
// empty, which would make goflow2 loop forever; sFlow expanded flow
// samples claiming more records than fit; v5 counts beyond the datagram),
// so that hostile datagrams are counted as malformed and cost nothing.
package netflow
