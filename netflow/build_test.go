package netflow_test

import (
	"encoding/binary"
	"net/netip"
)

// Builders of export datagrams for the tests: the byte layouts of RFC
// 3954 (v9), RFC 7011 (IPFIX), Cisco's v5 and sFlow v5, written out by
// hand so that the tests do not trust the decoder's own library.

type field struct {
	typ, length uint16
	pen         uint32 // IPFIX enterprise number, 0 none
}

func u16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// set wraps a set body with its id and length, padded to 4 bytes.
func set(id uint16, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b := u16(nil, id)
	b = u16(b, uint16(4+len(body)))
	return append(b, body...)
}

// templateRec is one template record: id, field count, fields.
func templateRec(id uint16, fs ...field) []byte {
	b := u16(nil, id)
	b = u16(b, uint16(len(fs)))
	for _, f := range fs {
		if f.pen != 0 {
			b = u16(b, f.typ|0x8000)
			b = u16(b, f.length)
			b = u32(b, f.pen)
			continue
		}
		b = u16(b, f.typ)
		b = u16(b, f.length)
	}
	return b
}

// ipfixOptionsTemplate is an IPFIX options template record.
func ipfixOptionsTemplate(id uint16, scopes, opts []field) []byte {
	b := u16(nil, id)
	b = u16(b, uint16(len(scopes)+len(opts)))
	b = u16(b, uint16(len(scopes)))
	for _, f := range append(append([]field(nil), scopes...), opts...) {
		b = u16(b, f.typ)
		b = u16(b, f.length)
	}
	return b
}

// v9 is a NetFlow v9 datagram: count is the number of records (RFC 3954
// 5.1); goflow2 reads it as a bound on sets, so it is at least that.
func v9(uptimeMs, unixSecs, sourceID uint32, count uint16, sets ...[]byte) []byte {
	b := u16(nil, 9)
	b = u16(b, count)
	b = u32(b, uptimeMs)
	b = u32(b, unixSecs)
	b = u32(b, 1) // sequence
	b = u32(b, sourceID)
	for _, s := range sets {
		b = append(b, s...)
	}
	return b
}

// ipfix is an IPFIX message.
func ipfix(exportSecs, domain uint32, sets ...[]byte) []byte {
	var body []byte
	for _, s := range sets {
		body = append(body, s...)
	}
	b := u16(nil, 10)
	b = u16(b, uint16(16+len(body)))
	b = u32(b, exportSecs)
	b = u32(b, 1)
	b = u32(b, domain)
	return append(b, body...)
}

// v5rec is one NetFlow v5 record.
type v5rec struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	pkts, octets uint32
	first, last  uint32
}

func v5(uptimeMs, unixSecs uint32, sampling uint16, count uint16, recs ...v5rec) []byte {
	b := u16(nil, 5)
	b = u16(b, count)
	b = u32(b, uptimeMs)
	b = u32(b, unixSecs)
	b = u32(b, 0) // nsecs
	b = u32(b, 1) // sequence
	b = append(b, 0, 0)
	b = u16(b, sampling)
	for _, r := range recs {
		s, d := r.src.As4(), r.dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		b = u32(b, 0)      // next hop
		b = u32(b, 0)      // input, output
		b = u32(b, r.pkts) // dPkts
		b = u32(b, r.octets)
		b = u32(b, r.first)
		b = u32(b, r.last)
		b = u16(b, r.sport)
		b = u16(b, r.dport)
		b = append(b, 0, 0x18, r.proto, 0) // pad, flags, proto, tos
		b = u32(b, 0)                      // src/dst AS
		b = append(b, 24, 24, 0, 0)        // masks, pad
	}
	return b
}

// ethIPv4TCP is an Ethernet frame header with IPv4 and TCP headers.
func ethIPv4TCP(src, dst netip.Addr, sport, dport uint16, ipLen uint16) []byte {
	b := make([]byte, 12)
	b = u16(b, 0x0800)
	b = append(b, 0x45, 0)
	b = u16(b, ipLen)
	b = append(b, 0, 0, 0, 0, 64, 6, 0, 0)
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = u16(b, sport)
	b = u16(b, dport)
	return append(b, make([]byte, 16)...)
}

// sflowFlowSample is an sFlow v5 datagram with one flow sample holding a
// raw packet header record.
func sflowFlowSample(agent netip.Addr, rate uint32, frameLen uint32, hdr []byte) []byte {
	rec := u32(nil, 1) // header protocol: Ethernet
	rec = u32(rec, frameLen)
	rec = u32(rec, 4) // stripped
	rec = u32(rec, uint32(len(hdr)))
	rec = append(rec, hdr...)
	for len(rec)%4 != 0 {
		rec = append(rec, 0)
	}
	sample := u32(nil, 7)      // sequence
	sample = u32(sample, 3)    // source id
	sample = u32(sample, rate) // sampling rate
	sample = u32(sample, 1000) // pool
	sample = u32(sample, 0)    // drops
	sample = u32(sample, 1)    // input
	sample = u32(sample, 2)    // output
	sample = u32(sample, 1)    // records
	sample = u32(sample, 1)    // record format: raw header
	sample = u32(sample, uint32(len(rec)))
	sample = append(sample, rec...)
	return sflowDatagram(agent, 1, sample)
}

func sflowDatagram(agent netip.Addr, format uint32, sample []byte) []byte {
	a := agent.As4()
	b := u32(nil, 5)
	b = u32(b, 1)
	b = append(b, a[:]...)
	b = u32(b, 0)    // sub-agent
	b = u32(b, 1)    // sequence
	b = u32(b, 5000) // uptime
	b = u32(b, 1)    // samples
	b = u32(b, format)
	b = u32(b, uint32(len(sample)))
	return append(b, sample...)
}

// Field sets used by the tests.
var (
	v4Fields = []field{
		{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0},
		{1, 4, 0}, {2, 4, 0}, {22, 4, 0}, {21, 4, 0},
	}
)

// v4Data is one record of v4Fields.
func v4Data(src, dst netip.Addr, sport, dport uint16, proto uint8, octets, pkts, first, last uint32) []byte {
	s, d := src.As4(), dst.As4()
	b := append([]byte(nil), s[:]...)
	b = append(b, d[:]...)
	b = u16(b, sport)
	b = u16(b, dport)
	b = append(b, proto)
	b = u32(b, octets)
	b = u32(b, pkts)
	b = u32(b, first)
	return u32(b, last)
}
