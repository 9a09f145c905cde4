package netflow

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	cw "github.com/cargowatch/cargowatch"
	nf "github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Information elements read (IANA IPFIX registry; NetFlow v9 shares the
// numbers below 128). Names follow IPFIX.
const (
	ieOctetDelta            = 1
	iePacketDelta           = 2
	ieProtocol              = 4
	ieSourcePort            = 7
	ieSourceIPv4            = 8
	ieDestinationPort       = 11
	ieDestinationIPv4       = 12
	ieFlowEndSysUpTime      = 21
	ieFlowStartSysUpTime    = 22
	ieSourceIPv6            = 27
	ieDestinationIPv6       = 28
	ieICMPTypeCodeIPv4      = 32
	ieSamplingInterval      = 34
	ieSamplerID             = 48 // NetFlow v9 FLOW_SAMPLER_ID
	ieSamplerRandomInterval = 50
	ieVLAN                  = 58
	ieOctetTotal            = 85
	iePacketTotal           = 86
	ieICMPTypeCodeIPv6      = 139
	ieFlowStartSeconds      = 150
	ieFlowEndSeconds        = 151
	ieFlowStartMillis       = 152
	ieFlowEndMillis         = 153
	ieFlowStartMicros       = 154 // NTP format
	ieFlowEndMicros         = 155
	ieFlowStartNanos        = 156 // NTP format
	ieFlowEndNanos          = 157
	ieFlowStartDeltaMicros  = 158 // before the export time
	ieFlowEndDeltaMicros    = 159
	ieSystemInitTimeMillis  = 160
	ieFlowDurationMillis    = 161
	ieFlowDurationMicros    = 162
	ieICMPTypeIPv4          = 176
	ieICMPCodeIPv4          = 177
	ieICMPTypeIPv6          = 178
	ieICMPCodeIPv6          = 179
	ieUDPSourcePort         = 180
	ieUDPDestinationPort    = 181
	ieTCPSourcePort         = 182
	ieTCPDestinationPort    = 183
	ieInitiatorOctets       = 231
	ieResponderOctets       = 232
	ieDot1qVLAN             = 243
	ieInitiatorPackets      = 298
	ieResponderPackets      = 299
	ieSelectorID            = 302
	ieSamplingPacketIntvl   = 305
	ieSamplingPacketSpace   = 306
	ieSamplingSize          = 309
	ieSamplingPopulation    = 310

	// penReverse is RFC 5103's enterprise number for reverse elements
	// (biflow): the element numbers are the forward ones.
	penReverse = 29305
)

// ntpEpoch is 1900-01-01 in Unix seconds (RFC 7011 dateTimeMicroseconds).
const ntpEpoch = 2208988800

// flowRec gathers what one data record says, before it becomes a Conn.
type flowRec struct {
	src, dst     netip.Addr
	sport, dport uint16
	hasPorts     bool
	proto        uint8

	octets, pkts   uint64
	rOctets, rPkts uint64
	hasReverse     bool

	icmpType, icmpCode uint16
	hasICMP            bool
	vlan               uint16

	// Times: the most precise absolute start/end the record carries
	// (rank 0 none, 1 seconds, 2 ms, 3 µs, 4 ns), else relative forms.
	start, end                 time.Time
	startRank, endRank         int
	firstUp, lastUp            uint32
	hasFirstUp, hasLastUp      bool
	startDelta, endDelta       uint64
	hasStartDelta, hasEndDelta bool
	durMicros                  uint64
	hasDur                     bool
	sysInitMs                  int64

	rate      float64 // in-record sampling rate, 0 none
	samplerID uint64
	hasSamp   bool
}

// uintOf reads an unsigned integer of any reduced-size encoding (RFC 7011
// 6.2): 1 to 8 bytes, big-endian.
func uintOf(v any) uint64 {
	b, _ := v.([]byte)
	if len(b) > 8 {
		b = b[len(b)-8:]
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

func bytesOf(v any) []byte { b, _ := v.([]byte); return b }

func ntpTime(v any) (time.Time, bool) {
	b := bytesOf(v)
	if len(b) != 8 {
		return time.Time{}, false
	}
	sec := int64(binary.BigEndian.Uint32(b)) - ntpEpoch
	frac := uint64(binary.BigEndian.Uint32(b[4:]))
	return time.Unix(sec, int64(frac*1e9>>32)).UTC(), true
}

func (r *flowRec) setStart(t time.Time, rank int) {
	if rank > r.startRank {
		r.start, r.startRank = t, rank
	}
}

func (r *flowRec) setEnd(t time.Time, rank int) {
	if rank > r.endRank {
		r.end, r.endRank = t, rank
	}
}

// field reads one data field into r. Fields of enterprises other than
// RFC 5103's reverse are skipped.
func (r *flowRec) field(f *nf.DataField) {
	if f.PenProvided {
		if f.Pen != penReverse {
			return
		}
		switch f.Type {
		case ieOctetDelta, ieOctetTotal:
			r.rOctets, r.hasReverse = uintOf(f.Value), true
		case iePacketDelta, iePacketTotal:
			r.rPkts, r.hasReverse = uintOf(f.Value), true
		}
		return
	}
	v := f.Value
	switch f.Type {
	case ieOctetDelta:
		r.octets = uintOf(v)
	case ieOctetTotal:
		if r.octets == 0 {
			r.octets = uintOf(v)
		}
	case iePacketDelta:
		r.pkts = uintOf(v)
	case iePacketTotal:
		if r.pkts == 0 {
			r.pkts = uintOf(v)
		}
	case ieInitiatorOctets:
		r.octets = uintOf(v)
	case ieResponderOctets:
		r.rOctets, r.hasReverse = uintOf(v), true
	case ieInitiatorPackets:
		r.pkts = uintOf(v)
	case ieResponderPackets:
		r.rPkts, r.hasReverse = uintOf(v), true
	case ieProtocol:
		r.proto = uint8(uintOf(v))
	case ieSourcePort, ieUDPSourcePort, ieTCPSourcePort:
		if p := uint16(uintOf(v)); p != 0 || !r.hasPorts {
			r.sport, r.hasPorts = p, true
		}
	case ieDestinationPort, ieUDPDestinationPort, ieTCPDestinationPort:
		if p := uint16(uintOf(v)); p != 0 || !r.hasPorts {
			r.dport, r.hasPorts = p, true
		}
	case ieSourceIPv4, ieSourceIPv6:
		if a, ok := netip.AddrFromSlice(bytesOf(v)); ok && (!r.src.IsValid() || r.src.IsUnspecified()) {
			r.src = a
		}
	case ieDestinationIPv4, ieDestinationIPv6:
		if a, ok := netip.AddrFromSlice(bytesOf(v)); ok && (!r.dst.IsValid() || r.dst.IsUnspecified()) {
			r.dst = a
		}
	case ieICMPTypeCodeIPv4, ieICMPTypeCodeIPv6:
		x := uintOf(v)
		r.icmpType, r.icmpCode, r.hasICMP = uint16(x>>8&0xff), uint16(x&0xff), true
	case ieICMPTypeIPv4, ieICMPTypeIPv6:
		r.icmpType, r.hasICMP = uint16(uintOf(v)), true
	case ieICMPCodeIPv4, ieICMPCodeIPv6:
		r.icmpCode, r.hasICMP = uint16(uintOf(v)), true
	case ieVLAN, ieDot1qVLAN:
		if x := uint16(uintOf(v)); x != 0 {
			r.vlan = x
		}
	case ieFlowStartSysUpTime:
		r.firstUp, r.hasFirstUp = uint32(uintOf(v)), true
	case ieFlowEndSysUpTime:
		r.lastUp, r.hasLastUp = uint32(uintOf(v)), true
	case ieFlowStartSeconds:
		r.setStart(time.Unix(int64(uintOf(v)), 0).UTC(), 1)
	case ieFlowEndSeconds:
		r.setEnd(time.Unix(int64(uintOf(v)), 0).UTC(), 1)
	case ieFlowStartMillis:
		r.setStart(time.UnixMilli(int64(uintOf(v))).UTC(), 2)
	case ieFlowEndMillis:
		r.setEnd(time.UnixMilli(int64(uintOf(v))).UTC(), 2)
	case ieFlowStartMicros, ieFlowStartNanos:
		if t, ok := ntpTime(v); ok {
			r.setStart(t, 3+int(f.Type-ieFlowStartMicros)/2)
		}
	case ieFlowEndMicros, ieFlowEndNanos:
		if t, ok := ntpTime(v); ok {
			r.setEnd(t, 3+int(f.Type-ieFlowEndMicros)/2)
		}
	case ieFlowStartDeltaMicros:
		r.startDelta, r.hasStartDelta = uintOf(v), true
	case ieFlowEndDeltaMicros:
		r.endDelta, r.hasEndDelta = uintOf(v), true
	case ieFlowDurationMillis:
		r.durMicros, r.hasDur = uintOf(v)*1000, true
	case ieFlowDurationMicros:
		r.durMicros, r.hasDur = uintOf(v), true
	case ieSystemInitTimeMillis:
		r.sysInitMs = int64(uintOf(v))
	case ieSamplingInterval, ieSamplerRandomInterval:
		if x := uintOf(v); x > 1 {
			r.rate = float64(x)
		}
	case ieSamplerID, ieSelectorID:
		r.samplerID, r.hasSamp = uintOf(v), true
	}
}

// upTime places a v9 sysUpTime stamp (ms) relative to the export: the
// difference is taken in 32 bits so that an uptime counter that wrapped
// between the flow and the export still gives the right answer.
func upTime(h *header, at uint32) time.Time {
	ago := int64(int32(h.uptimeMs - at))
	return h.export.Add(-time.Duration(ago) * time.Millisecond)
}

// record turns one v9/IPFIX data record into a Conn, or counts it as
// dropped when it lacks addresses.
func (ex *exporter) record(h *header, vals []nf.DataField) *cw.Conn {
	var r flowRec
	for i := range vals {
		r.field(&vals[i])
	}
	if !r.src.IsValid() || !r.dst.IsValid() {
		ex.st.Dropped++
		ex.d.st.Dropped++
		return nil
	}
	start, end := ex.times(h, &r)
	rate := r.rate
	if rate == 0 {
		rate = ex.rate(h.version, h.domain, r.samplerID, r.hasSamp)
	}
	return ex.conn(&r, start, end, rate)
}

// times makes the record's start and end absolute: absolute fields win;
// then microseconds before the export; then sysUpTime stamps, against
// the v9 header's uptime or IPFIX's systemInitTimeMilliseconds. An IPFIX
// record stamped in uptime without a known init time is taken to have
// ended at the export. A record with no time at all is placed at the
// export time.
func (ex *exporter) times(h *header, r *flowRec) (start, end time.Time) {
	start, end = r.start, r.end
	sysInit := r.sysInitMs
	if sysInit == 0 && h.version == 10 {
		sysInit = ex.sysInit[h.domain]
	}
	if start.IsZero() {
		switch {
		case r.hasStartDelta:
			start = h.export.Add(-time.Duration(r.startDelta) * time.Microsecond)
		case r.hasFirstUp && h.hasUptime:
			start = upTime(h, r.firstUp)
		case r.hasFirstUp && sysInit != 0:
			start = time.UnixMilli(sysInit + int64(r.firstUp)).UTC()
		}
	}
	if end.IsZero() {
		switch {
		case r.hasEndDelta:
			end = h.export.Add(-time.Duration(r.endDelta) * time.Microsecond)
		case r.hasLastUp && h.hasUptime:
			end = upTime(h, r.lastUp)
		case r.hasLastUp && sysInit != 0:
			end = time.UnixMilli(sysInit + int64(r.lastUp)).UTC()
		}
	}
	if start.IsZero() && end.IsZero() && r.hasFirstUp && r.hasLastUp {
		end = h.export
		start = end.Add(-time.Duration(r.lastUp-r.firstUp) * time.Millisecond)
	}
	if r.hasDur {
		d := time.Duration(r.durMicros) * time.Microsecond
		switch {
		case start.IsZero() && !end.IsZero():
			start = end.Add(-d)
		case end.IsZero() && !start.IsZero():
			end = start.Add(d)
		}
	}
	if start.IsZero() {
		start = end
	}
	if start.IsZero() {
		start = h.export
	}
	return start, end
}

// rate is the sampling rate an options record announced for the
// record's sampler, or for its observation domain, else 1.
func (ex *exporter) rate(version uint16, domain uint32, id uint64, hasID bool) float64 {
	if len(ex.sampling) == 0 {
		return 1
	}
	if hasID {
		if r, ok := ex.sampling[skey{version, domain, id}]; ok {
			return r
		}
	}
	if r, ok := ex.sampling[skey{version, domain, anySampler}]; ok {
		return r
	}
	return 1
}

// options learns sampling rates and the system init time from an options
// data record. NetFlow v9 scope fields are typed in their own small
// namespace (system, interface, ...), so only IPFIX scopes are read as
// information elements.
func (ex *exporter) options(h *header, rec *nf.OptionsDataRecord) {
	ex.d.st.Options++
	var interval, space, size, population, rate float64
	id := anySampler
	var sysInit int64
	read := func(vals []nf.DataField) {
		for i := range vals {
			f := &vals[i]
			if f.PenProvided {
				continue
			}
			x := uintOf(f.Value)
			switch f.Type {
			case ieSamplingInterval, ieSamplerRandomInterval:
				if x > 1 {
					rate = float64(x)
				}
			case ieSamplingPacketIntvl:
				interval = float64(x)
			case ieSamplingPacketSpace:
				space = float64(x)
			case ieSamplingSize:
				size = float64(x)
			case ieSamplingPopulation:
				population = float64(x)
			case ieSamplerID, ieSelectorID:
				id = x
			case ieSystemInitTimeMillis:
				sysInit = int64(x)
			}
		}
	}
	if h.version == 10 {
		read(rec.ScopesValues)
	}
	read(rec.OptionsValues)
	if rate == 0 && interval > 0 {
		rate = (interval + space) / interval
	}
	if rate == 0 && size > 0 && population > size {
		rate = population / size
	}
	if rate > 1 {
		k := skey{h.version, h.domain, id}
		if _, ok := ex.sampling[k]; ok || len(ex.sampling) < maxPerExporterMaps {
			ex.sampling[k] = rate
		}
	}
	if sysInit != 0 {
		if _, ok := ex.sysInit[h.domain]; ok || len(ex.sysInit) < maxPerExporterMaps {
			ex.sysInit[h.domain] = sysInit
		}
	}
}

// conn builds the Conn of a unidirectional (or biflow) record.
func (ex *exporter) conn(r *flowRec, start, end time.Time, rate float64) *cw.Conn {
	c := &cw.Conn{
		TS:     start,
		Orig:   cw.Endpoint{Addr: r.src, Port: r.sport},
		Resp:   cw.Endpoint{Addr: r.dst, Port: r.dport},
		Proto:  cw.ProtoName(r.proto),
		VLAN:   r.vlan,
		Source: ex.source,
	}
	if !end.IsZero() && end.After(start) {
		c.Duration = end.Sub(start)
	}
	if (r.proto == 1 || r.proto == 58) && (r.hasICMP || r.sport == 0) {
		// Zeek's conn.log puts the ICMP type in orig_p and the code in
		// resp_p; exporters without ICMP fields (v5, many v9) put
		// type<<8|code in the destination port.
		typ, code := r.icmpType, r.icmpCode
		if !r.hasICMP {
			typ, code = r.dport>>8, r.dport&0xff
		}
		c.Orig.Port, c.Resp.Port = typ, code
	}
	c.OrigPkts, c.OrigIPBytes = scale(r.pkts, rate), scale(r.octets, rate)
	c.OrigBytes = payloadEstimate(c.OrigIPBytes, c.OrigPkts, r.src.Is6() && !r.src.Is4In6(), r.proto)
	if r.hasReverse {
		c.RespPkts, c.RespIPBytes = scale(r.rPkts, rate), scale(r.rOctets, rate)
		c.RespBytes = payloadEstimate(c.RespIPBytes, c.RespPkts, r.src.Is6() && !r.src.Is4In6(), r.proto)
	}
	ex.d.uidCounter++
	c.UID = makeUID(ex.addr, c, ex.d.uidCounter)
	return c
}

// scale multiplies a sampled counter by the sampling rate, saturating.
func scale(x uint64, rate float64) int64 {
	if rate <= 1 {
		if x > math.MaxInt64 {
			return math.MaxInt64
		}
		return int64(x)
	}
	f := float64(x) * rate
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(f))
}

// payloadEstimate takes the smallest IP and transport headers off each
// packet: flow records count IP bytes, Conn.OrigBytes is payload.
func payloadEstimate(ipBytes, pkts int64, v6 bool, proto uint8) int64 {
	hdr := int64(20)
	if v6 {
		hdr = 40
	}
	switch proto {
	case 6:
		hdr += 20
	case 17, 1, 58:
		hdr += 8
	}
	if pkts > math.MaxInt64/hdr {
		return 0
	}
	return max(ipBytes-pkts*hdr, 0)
}

// makeUID derives a Zeek-looking uid ("C" + 17 base62 characters) from the
// exporter, the flow's start, addresses and ports, and the decoder's
// record counter, so the same exports always yield the same uids. The
// 128 bits come from two chains of a 64-bit finaliser (MurmurHash3's):
// a uid needs to be unique and stable, not cryptographic, and FNV-128
// was a fifth of the decoding time.
func makeUID(exp netip.AddrPort, c *cw.Conn, counter uint64) string {
	ea, oa, ra := exp.Addr().As16(), c.Orig.Addr.As16(), c.Resp.Addr.As16()
	words := [...]uint64{
		binary.BigEndian.Uint64(ea[:8]), binary.BigEndian.Uint64(ea[8:]),
		uint64(exp.Port())<<32 | uint64(c.Orig.Port)<<16 | uint64(c.Resp.Port),
		uint64(c.TS.UnixNano()), counter,
		binary.BigEndian.Uint64(oa[:8]), binary.BigEndian.Uint64(oa[8:]),
		binary.BigEndian.Uint64(ra[:8]), binary.BigEndian.Uint64(ra[8:]),
		uint64(len(c.Proto))<<8 | uint64(c.Proto[0]),
	}
	hi, lo := uint64(0x9e3779b97f4a7c15), uint64(0xc2b2ae3d27d4eb4f)
	for _, w := range words {
		hi = fmix64(hi ^ w)
		lo = fmix64(lo + w*0xff51afd7ed558ccd)
	}
	return cw.FormatUID(hi, lo)
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
