package netflow

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
)

// sFlow sample formats (enterprise 0) and their fixed part before the
// record count, for checkSFlow.
var sflowFixed = map[uint32]int{
	sflow.SAMPLE_FORMAT_FLOW:             32,
	sflow.SAMPLE_FORMAT_COUNTER:          12,
	sflow.SAMPLE_FORMAT_EXPANDED_FLOW:    44,
	sflow.SAMPLE_FORMAT_EXPANDED_COUNTER: 16,
	sflow.SAMPLE_FORMAT_DROP:             32,
}

// maxSFlowSamples is goflow2's own limit on samples per datagram.
const maxSFlowSamples = 1000

// checkSFlow walks the sample headers of an sFlow v5 datagram before
// goflow2 reads it: goflow2 allocates each sample's announced record
// count up front, and for expanded flow samples without any limit, so a
// few hostile bytes could ask for gigabytes. Every record takes at least
// its 8-byte header, so a count that cannot fit in its sample is a lie.
func checkSFlow(b []byte) error {
	if len(b) < 28 {
		return fmt.Errorf("sFlow datagram of %d bytes is shorter than its header", len(b))
	}
	off := 8
	switch v := be.Uint32(b[4:]); v {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return fmt.Errorf("sFlow agent address type %d is neither IPv4 (1) nor IPv6 (2)", v)
	}
	off += 12 // sub-agent id, sequence number, uptime
	if len(b) < off+4 {
		return fmt.Errorf("sFlow datagram of %d bytes is shorter than its header", len(b))
	}
	n := be.Uint32(b[off:])
	off += 4
	if n > maxSFlowSamples {
		return fmt.Errorf("sFlow datagram announces %d samples, more than %d", n, maxSFlowSamples)
	}
	for i := 0; i < int(n); i++ {
		if len(b)-off < 8 {
			return fmt.Errorf("sFlow datagram announces %d samples, holds %d", n, i)
		}
		format, length := be.Uint32(b[off:]), int(be.Uint32(b[off+4:]))
		off += 8
		if length > len(b)-off {
			return fmt.Errorf("sFlow sample %d is %d bytes, only %d remain", i, length, len(b)-off)
		}
		body := b[off : off+length]
		off += length
		fixed, ok := sflowFixed[format]
		if !ok {
			return fmt.Errorf("sFlow sample %d has format %d, not one of sFlow v5's", i, format)
		}
		if len(body) < fixed {
			return fmt.Errorf("sFlow sample %d of format %d is %d bytes, shorter than its %d-byte header", i, format, len(body), fixed)
		}
		if recs := be.Uint32(body[fixed-4:]); int64(recs) > int64((len(body)-fixed)/8) {
			return fmt.Errorf("sFlow sample %d announces %d records in %d bytes", i, recs, len(body)-fixed)
		}
	}
	return nil
}

// sflow reads an sFlow v5 datagram: each flow sample (one sampled packet)
// is one Conn, its counters multiplied by the sampling rate. sFlow
// samples carry no time: the datagram's arrival is the Conn's time.
// Counter and drop samples are not flows.
func (ex *exporter) sflow(now time.Time, b []byte, out []*cw.Conn) ([]*cw.Conn, error) {
	if err := checkSFlow(b); err != nil {
		return out, err
	}
	var p sflow.Packet
	err := sflow.DecodeMessageVersion(bytes.NewBuffer(b), &p)
	for _, s := range p.Samples {
		var rate uint32
		var recs []sflow.FlowRecord
		switch fs := s.(type) {
		case sflow.FlowSample:
			rate, recs = fs.SamplingRate, fs.Records
		case sflow.ExpandedFlowSample:
			rate, recs = fs.SamplingRate, fs.Records
		default:
			continue
		}
		r, ok := sampledPacket(recs)
		if !ok {
			ex.st.Dropped++
			ex.d.st.Dropped++
			continue
		}
		out = append(out, ex.conn(&r, now.UTC(), time.Time{}, float64(max(rate, 1))))
	}
	return out, err
}

// sampledPacket reads a flow sample's records: the raw packet header
// when there is one, else the decoded IPv4/IPv6 record.
func sampledPacket(recs []sflow.FlowRecord) (flowRec, bool) {
	var r flowRec
	var ipRec *sflow.SampledIPBase
	for i := range recs {
		switch d := recs[i].Data.(type) {
		case sflow.SampledHeader:
			if parseSampledHeader(&r, &d) {
				return r, true
			}
		case sflow.SampledIPv4:
			ipRec = &d.SampledIPBase
		case sflow.SampledIPv6:
			ipRec = &d.SampledIPBase
		}
	}
	if ipRec == nil {
		return r, false
	}
	src, ok1 := netip.AddrFromSlice(ipRec.SrcIP)
	dst, ok2 := netip.AddrFromSlice(ipRec.DstIP)
	if !ok1 || !ok2 {
		return r, false
	}
	r.src, r.dst, r.proto = src, dst, uint8(ipRec.Protocol)
	r.sport, r.dport, r.hasPorts = uint16(ipRec.SrcPort), uint16(ipRec.DstPort), true
	r.octets, r.pkts = uint64(ipRec.Length), 1
	return r, true
}

// Header protocols of sFlow's sampled_header (sFlow v5 header_protocol).
const (
	hdrEthernet = 1
	hdrIPv4     = 11
	hdrIPv6     = 12
)

// parseSampledHeader reads addresses, protocol and ports from the first
// bytes of a sampled packet (Ethernet with VLAN tags, or bare IP).
func parseSampledHeader(r *flowRec, h *sflow.SampledHeader) bool {
	b := h.HeaderData
	switch h.Protocol {
	case hdrEthernet:
		if len(b) < 14 {
			return false
		}
		et := be.Uint16(b[12:])
		b = b[14:]
		for i := 0; i < 3 && (et == 0x8100 || et == 0x88a8) && len(b) >= 4; i++ {
			if r.vlan == 0 {
				r.vlan = be.Uint16(b) & 0x0fff
			}
			et = be.Uint16(b[2:])
			b = b[4:]
		}
		switch et {
		case 0x0800:
		case 0x86dd:
		default:
			return false
		}
	case hdrIPv4, hdrIPv6:
	default:
		return false
	}
	if !parseIP(r, b) {
		return false
	}
	if r.octets == 0 && h.FrameLength > 14 {
		r.octets = uint64(h.FrameLength - 14)
	}
	r.pkts = 1
	return true
}

func parseIP(r *flowRec, b []byte) bool {
	if len(b) < 1 {
		return false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		r.octets = uint64(be.Uint16(b[2:]))
		r.proto = b[9]
		r.src = netip.AddrFrom4([4]byte(b[12:16]))
		r.dst = netip.AddrFrom4([4]byte(b[16:20]))
		if be.Uint16(b[6:])&0x1fff == 0 && ihl >= 20 && len(b) >= ihl {
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return false
		}
		r.octets = 40 + uint64(be.Uint16(b[4:]))
		r.proto = b[6]
		r.src = netip.AddrFrom16([16]byte(b[8:24]))
		r.dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return false
	}
	switch r.proto {
	case 6, 17, 132:
		if len(l4) >= 4 {
			r.sport, r.dport, r.hasPorts = be.Uint16(l4), be.Uint16(l4[2:]), true
		}
	case 1, 58:
		if len(l4) >= 2 {
			r.icmpType, r.icmpCode, r.hasICMP = uint16(l4[0]), uint16(l4[1]), true
		}
	}
	return true
}
