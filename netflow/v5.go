package netflow

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	cw "github.com/cargowatch/cargowatch"
	legacy "github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
)

const (
	v5Header = 24
	v5Record = 48
)

// v5 reads a NetFlow v5 datagram: a fixed header and fixed records.
func (ex *exporter) v5(b []byte, out []*cw.Conn) ([]*cw.Conn, error) {
	if len(b) < v5Header {
		return out, fmt.Errorf("NetFlow v5 datagram of %d bytes is shorter than its 24-byte header", len(b))
	}
	count := int(be.Uint16(b[2:]))
	fits := (len(b) - v5Header) / v5Record
	var err error
	if count > fits {
		// goflow2 allocates the announced count before reading: give it
		// only what is there, and count the rest as lost.
		err = fmt.Errorf("NetFlow v5 header announces %d records, the datagram holds %d", count, fits)
		ex.st.Dropped += uint64(count - fits)
		ex.d.st.Dropped += uint64(count - fits)
		cp := make([]byte, v5Header+fits*v5Record)
		copy(cp, b)
		be.PutUint16(cp[2:], uint16(fits))
		b, count = cp, fits
	}
	var p legacy.PacketNetFlowV5
	if derr := legacy.DecodeMessage(bytes.NewBuffer(b[2:]), &p); derr != nil {
		return out, derr
	}
	h := header{version: 5, export: time.Unix(int64(p.UnixSecs), int64(p.UnixNSecs%1e9)).UTC(),
		uptimeMs: p.SysUptime, hasUptime: true}
	// The low 14 bits are the interval, the top two the sampling mode;
	// some exporters set the interval without the mode.
	rate := float64(p.SamplingInterval & 0x3fff)
	for i := range p.Records[:min(count, len(p.Records))] {
		rec := &p.Records[i]
		r := flowRec{
			src: addr4(uint32(rec.SrcAddr)), dst: addr4(uint32(rec.DstAddr)),
			sport: rec.SrcPort, dport: rec.DstPort, hasPorts: true, proto: rec.Proto,
			octets: uint64(rec.DOctets), pkts: uint64(rec.DPkts),
		}
		start, end := upTime(&h, rec.First), upTime(&h, rec.Last)
		out = append(out, ex.conn(&r, start, end, rate))
	}
	return out, err
}

func addr4(x uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}
