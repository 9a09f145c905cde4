package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
)

// DNS record types used here.
const (
	dnsA   = 1
	dnsTXT = 16
)

// dnsName appends name in wire format (labels, no compression).
func dnsName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" {
			continue
		}
		if len(l) > 63 {
			l = l[:63]
		}
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// dnsQuery builds a recursive query for name.
func dnsQuery(id uint16, name string, qtype uint16) []byte {
	b := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(b[4:], 1)
	b = dnsName(b, name)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, 1)
}

// dnsAnswer is one resource record's data for a response.
type dnsAnswer struct {
	rtype uint16
	ttl   uint32
	data  []byte
}

// dnsResponse answers query q; answers point back at the question name.
func dnsResponse(q []byte, rcode int, ans []dnsAnswer) []byte {
	b := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(b[2:], 0x8180|uint16(rcode&0xf)) // QR RD RA
	binary.BigEndian.PutUint16(b[6:], uint16(len(ans)))
	for _, a := range ans {
		b = append(b, 0xc0, 0x0c)
		b = binary.BigEndian.AppendUint16(b, a.rtype)
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint32(b, a.ttl)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.data)))
		b = append(b, a.data...)
	}
	return b
}

// txtData encodes s as TXT character-strings of at most 255 bytes.
func txtData(s string) []byte {
	var b []byte
	for len(s) > 0 {
		n := min(len(s), 255)
		b = append(b, byte(n))
		b = append(b, s[:n]...)
		s = s[n:]
	}
	if b == nil {
		b = []byte{0}
	}
	return b
}

// TLS ClientHello flavours: a browser and an embedded (mbedTLS-like) stack,
// so that fingerprints differ between office PCs and OT devices.
const (
	helloBrowser = iota
	helloEmbedded
)

var (
	browserSuites  = []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	embeddedSuites = []uint16{0x1301, 0x1302, 0xc02b, 0xc02f, 0xc0ac}
)

func u16(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }

// ext appends a TLS extension.
func ext(b []byte, typ int, body []byte) []byte {
	b = u16(b, typ)
	b = u16(b, len(body))
	return append(b, body...)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// clientHello builds a TLS 1.3 ClientHello record with SNI sni.
func clientHello(r *rand.Rand, sni string, flavour int) []byte {
	var e []byte
	// server_name
	sn := u16(nil, len(sni)+3)
	sn = append(sn, 0)
	sn = u16(sn, len(sni))
	sn = append(sn, sni...)
	e = ext(e, 0x0000, sn)
	e = ext(e, 0x0017, nil)                                     // extended_master_secret
	e = ext(e, 0xff01, []byte{0})                               // renegotiation_info
	e = ext(e, 0x000a, []byte{0, 6, 0, 0x1d, 0, 0x17, 0, 0x18}) // x25519, P-256, P-384
	e = ext(e, 0x000b, []byte{1, 0})                            // ec_point_formats: uncompressed
	suites := embeddedSuites
	if flavour == helloBrowser {
		suites = browserSuites
		e = ext(e, 0x0023, nil) // session_ticket
		alpn := []byte{0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'}
		e = ext(e, 0x0010, alpn)
		e = ext(e, 0x0005, []byte{1, 0, 0, 0, 0}) // status_request (OCSP)
		e = ext(e, 0x0012, nil)                   // signed_certificate_timestamp
	}
	e = ext(e, 0x000d, []byte{0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1})
	ks := []byte{0, 36, 0, 0x1d, 0, 32}
	ks = append(ks, randBytes(r, 32)...)
	e = ext(e, 0x0033, ks)
	e = ext(e, 0x002d, []byte{1, 1}) // psk_key_exchange_modes: psk_dhe_ke
	e = ext(e, 0x002b, []byte{4, 3, 4, 3, 3})
	if flavour == helloBrowser {
		e = ext(e, 0x001b, []byte{2, 0, 2}) // compress_certificate: brotli
	}

	var h []byte
	h = append(h, 3, 3)
	h = append(h, randBytes(r, 32)...)
	h = append(h, 32)
	h = append(h, randBytes(r, 32)...)
	h = u16(h, 2*len(suites))
	for _, s := range suites {
		h = u16(h, int(s))
	}
	h = append(h, 1, 0) // compression: null
	h = u16(h, len(e))
	h = append(h, e...)

	rec := []byte{0x16, 3, 1}
	rec = u16(rec, 4+len(h))
	rec = append(rec, 1, byte(len(h)>>16), byte(len(h)>>8), byte(len(h)))
	return append(rec, h...)
}

// serverHello builds a TLS 1.3 ServerHello record echoing the session id
// of the ClientHello ch, followed by the middlebox-compatibility
// ChangeCipherSpec.
func serverHello(r *rand.Rand, ch []byte) []byte {
	var h []byte
	h = append(h, 3, 3)
	h = append(h, randBytes(r, 32)...)
	h = append(h, 32)
	if len(ch) >= 44+32 {
		h = append(h, ch[44:76]...) // legacy_session_id echoed
	} else {
		h = append(h, randBytes(r, 32)...)
	}
	h = append(h, 0x13, 0x01, 0)
	var e []byte
	e = ext(e, 0x002b, []byte{3, 4})
	ks := []byte{0, 0x1d, 0, 32}
	ks = append(ks, randBytes(r, 32)...)
	e = ext(e, 0x0033, ks)
	h = u16(h, len(e))
	h = append(h, e...)

	rec := []byte{0x16, 3, 3}
	rec = u16(rec, 4+len(h))
	rec = append(rec, 2, byte(len(h)>>16), byte(len(h)>>8), byte(len(h)))
	rec = append(rec, h...)
	return append(rec, ccs...)
}

var ccs = []byte{0x14, 3, 3, 0, 1, 1}

// tlsExchange is one request and its response inside a TLS session.
type tlsExchange struct {
	req, resp int   // plaintext sizes
	gap       int64 // client think time before the request
	respGap   int64 // server time to produce the response
}

// tlsScript is a TLS 1.3 session: hello, server flight (encrypted
// extensions, certificate, verify and finished as one opaque record),
// client finished, then request/response pairs as application data.
func tlsScript(r *rand.Rand, sni string, flavour int, ex []tlsExchange) script {
	ch := clientHello(r, sni, flavour)
	list := []step{
		{data: bytesStream(ch)},
		{fromResp: true, data: newConcat(bytesStream(serverHello(r, ch)), newTLSData(r, 2500+r.IntN(2200)))},
	}
	fin := newTLSData(r, 53)
	for i, x := range ex {
		req := stream(newTLSData(r, x.req+17))
		if i == 0 {
			req = newConcat(bytesStream(ccs), fin, req)
		}
		list = append(list, step{data: req, gap: x.gap})
		list = append(list, step{fromResp: true, data: newTLSData(r, x.resp+17), gap: x.respGap})
	}
	return steps(list...)
}

// NTP (RFC 5905) client and server packets.
const ntpEpochOffset = 2208988800

func ntpTime(us int64) uint64 {
	sec := uint64(us/1e6) + ntpEpochOffset
	frac := uint64(us%1e6) << 32 / 1e6
	return sec<<32 | frac
}

func ntpClient(t int64) []byte {
	b := make([]byte, 48)
	b[0] = 0x23 // LI 0, version 4, mode 3 (client)
	b[2] = 10   // poll 2^10 s
	b[3] = 0xe9
	binary.BigEndian.PutUint64(b[40:], ntpTime(t))
	return b
}

func ntpServer(client []byte, recv, xmit int64) []byte {
	b := make([]byte, 48)
	b[0] = 0x24 // mode 4 (server)
	b[1] = 1    // stratum 1: PTB runs caesium clocks
	b[2] = 10
	b[3] = 0xec
	binary.BigEndian.PutUint32(b[8:], 0x00000010) // root dispersion
	copy(b[12:16], "PTB\x00")
	binary.BigEndian.PutUint64(b[16:], ntpTime(xmit-16*second))
	copy(b[24:32], client[40:48])
	binary.BigEndian.PutUint64(b[32:], ntpTime(recv))
	binary.BigEndian.PutUint64(b[40:], ntpTime(xmit))
	return b
}

// Modbus/TCP: MBAP header then PDU. Function 3, read holding registers.
func modbusReadReq(tid uint16, unit byte, addr, qty uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], tid)
	binary.BigEndian.PutUint16(b[4:], 6)
	b[6] = unit
	b[7] = 3
	binary.BigEndian.PutUint16(b[8:], addr)
	binary.BigEndian.PutUint16(b[10:], qty)
	return b
}

func modbusReadResp(tid uint16, unit byte, regs []uint16) []byte {
	b := make([]byte, 9, 9+2*len(regs))
	binary.BigEndian.PutUint16(b[0:], tid)
	binary.BigEndian.PutUint16(b[4:], uint16(3+2*len(regs)))
	b[6] = unit
	b[7] = 3
	b[8] = byte(2 * len(regs))
	for _, v := range regs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// S7comm over ISO-on-TCP (RFC 1006): TPKT, COTP, S7 PDU.

func tpkt(payload []byte) []byte {
	b := []byte{3, 0}
	b = u16(b, 4+len(payload))
	return append(b, payload...)
}

// cotpConnect is a COTP CR (request) or CC (confirm) with the TSAPs an HMI
// uses to reach rack 0, slot 1 of an S7-1500.
func cotpConnect(confirm bool) []byte {
	b := []byte{17, 0xe0, 0, 0, 0, 1, 0}
	if confirm {
		b = []byte{17, 0xd0, 0, 1, 0, 0x44, 0}
	}
	b = append(b, 0xc1, 2, 0x01, 0x00) // calling TSAP
	b = append(b, 0xc2, 2, 0x03, 0x01) // called TSAP: rack 0 slot 1
	b = append(b, 0xc0, 1, 0x0a)       // TPDU size 1024
	return tpkt(b)
}

var cotpDT = []byte{2, 0xf0, 0x80}

// s7PDU wraps an S7 header (job 1 or ack_data 3) with param and data.
func s7PDU(rosctr byte, ref uint16, param, data []byte) []byte {
	b := append([]byte(nil), cotpDT...)
	b = append(b, 0x32, rosctr, 0, 0)
	b = u16(b, int(ref))
	b = u16(b, len(param))
	b = u16(b, len(data))
	if rosctr == 3 {
		b = append(b, 0, 0) // error class, code
	}
	b = append(b, param...)
	b = append(b, data...)
	return tpkt(b)
}

func s7Setup(ack bool, ref uint16) []byte {
	p := []byte{0xf0, 0, 0, 1, 0, 1, 0x03, 0xc0} // 1 job each way, PDU 960
	if ack {
		return s7PDU(3, ref, p, nil)
	}
	return s7PDU(1, ref, p, nil)
}

// s7Item is one read of a data block range.
type s7Item struct {
	db    uint16
	start int // byte offset
	n     int // bytes
}

func s7ReadReq(ref uint16, items []s7Item) []byte {
	p := []byte{0x04, byte(len(items))}
	for _, it := range items {
		p = append(p, 0x12, 0x0a, 0x10, 0x02) // S7ANY, transport size BYTE
		p = u16(p, it.n)
		p = u16(p, int(it.db))
		p = append(p, 0x84) // area: data blocks
		addr := it.start * 8
		p = append(p, byte(addr>>16), byte(addr>>8), byte(addr))
	}
	return s7PDU(1, ref, p, nil)
}

func s7ReadResp(r *rand.Rand, ref uint16, items []s7Item) []byte {
	p := []byte{0x04, byte(len(items))}
	var d []byte
	for i, it := range items {
		d = append(d, 0xff, 0x04) // success, transport size in bits
		d = u16(d, it.n*8)
		var v uint64
		for j := 0; j < it.n; j++ {
			if j%8 == 0 {
				v = r.Uint64()
			}
			d = append(d, byte(v>>(8*(j%8)))&0x3f) // small values: counters, states
		}
		if it.n%2 == 1 && i < len(items)-1 {
			d = append(d, 0) // fill byte between items
		}
	}
	return s7PDU(3, ref, p, d)
}
