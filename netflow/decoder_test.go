package netflow_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/netflow"
)

var (
	expA  = netip.MustParseAddrPort("192.0.2.1:50000")
	expB  = netip.MustParseAddrPort("192.0.2.2:50000")
	hostL = netip.MustParseAddr("10.1.2.3")
	hostR = netip.MustParseAddr("203.0.113.9")
	at    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

func decode(t *testing.T, d *netflow.Decoder, from netip.AddrPort, dgs ...[]byte) (conns []*cw.Conn, errs []error) {
	t.Helper()
	for _, b := range dgs {
		if err := d.Decode(from, at, b, func(c *cw.Conn) { conns = append(conns, c) }); err != nil {
			errs = append(errs, err)
		}
	}
	return conns, errs
}

func TestDecodeV9(t *testing.T) {
	unix := uint32(at.Unix())
	tmpl := set(0, templateRec(256, v4Fields...))
	data := set(256, v4Data(hostL, hostR, 40000, 443, 6, 5200, 10, 900_000, 930_000))
	tests := []struct {
		name      string
		dgs       [][]byte
		wantConns int
		check     func(t *testing.T, c *cw.Conn)
		wantStats netflow.Stats
	}{
		{
			name: "template then data", dgs: [][]byte{v9(1_000_000, unix, 1, 2, tmpl, data)}, wantConns: 1,
			check: func(t *testing.T, c *cw.Conn) {
				// Started 100 s before the export (uptime 1,000,000 ms vs 900,000), lasted 30 s.
				if !c.TS.Equal(at.Add(-100*time.Second)) || c.Duration != 30*time.Second {
					t.Errorf("TS %v duration %v", c.TS, c.Duration)
				}
				if c.Orig.Addr != hostL || c.Resp.Addr != hostR || c.Orig.Port != 40000 || c.Resp.Port != 443 || c.Proto != "tcp" {
					t.Errorf("conn %+v", c)
				}
				if c.OrigIPBytes != 5200 || c.OrigPkts != 10 || c.OrigBytes != 5200-10*40 || c.RespIPBytes != 0 {
					t.Errorf("counters out %d/%d/%d in %d", c.OrigIPBytes, c.OrigPkts, c.OrigBytes, c.RespIPBytes)
				}
				if c.Source != "netflow://192.0.2.1:50000" || len(c.UID) != 18 || c.UID[0] != 'C' {
					t.Errorf("source %q uid %q", c.Source, c.UID)
				}
			},
			wantStats: netflow.Stats{Datagrams: 1, Records: 1, Templates: 1, Exporters: 1},
		},
		{
			name: "data before its template is counted, then read", wantConns: 1,
			dgs:       [][]byte{v9(1_000_000, unix, 1, 1, data), v9(1_000_000, unix, 1, 1, tmpl), v9(1_000_000, unix, 1, 1, data)},
			wantStats: netflow.Stats{Datagrams: 3, Records: 1, TemplatesMissing: 1, Templates: 1, Exporters: 1},
		},
		{
			name: "templates are per source id", wantConns: 0,
			dgs:       [][]byte{v9(1_000_000, unix, 1, 1, tmpl), v9(1_000_000, unix, 2, 1, data)},
			wantStats: netflow.Stats{Datagrams: 2, TemplatesMissing: 1, Templates: 1, Exporters: 1},
		},
		{
			// The uptime counter wrapped (49.7 days) between flow start and export.
			name: "uptime wrap", wantConns: 1,
			dgs: [][]byte{v9(5_000, unix, 1, 2, tmpl, set(256, v4Data(hostL, hostR, 1, 2, 17, 100, 1, 0xffffffff-4_999, 4_000)))},
			check: func(t *testing.T, c *cw.Conn) {
				if !c.TS.Equal(at.Add(-10*time.Second)) || c.Duration != 9*time.Second {
					t.Errorf("TS %v duration %v", c.TS, c.Duration)
				}
			},
			wantStats: netflow.Stats{Datagrams: 1, Records: 1, Templates: 1, Exporters: 1},
		},
		{
			name: "in-record sampling interval scales counters", wantConns: 1,
			dgs: [][]byte{v9(1_000_000, unix, 1, 2,
				set(0, templateRec(300, append(append([]field(nil), v4Fields...), field{34, 4, 0})...)),
				set(300, u32(v4Data(hostL, hostR, 1, 53, 17, 100, 2, 1, 1), 100)))},
			check: func(t *testing.T, c *cw.Conn) {
				if c.OrigIPBytes != 10000 || c.OrigPkts != 200 {
					t.Errorf("scaled %d bytes %d packets, want 10000, 200", c.OrigIPBytes, c.OrigPkts)
				}
			},
			wantStats: netflow.Stats{Datagrams: 1, Records: 1, Templates: 1, Exporters: 1},
		},
		{
			name: "records without addresses are dropped", wantConns: 0,
			dgs: [][]byte{v9(1_000_000, unix, 1, 2, set(0, templateRec(257, field{1, 4, 0}, field{2, 4, 0})),
				set(257, u32(u32(nil, 100), 1)))},
			wantStats: netflow.Stats{Datagrams: 1, Dropped: 1, Templates: 1, Exporters: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := netflow.NewDecoder(netflow.Config{})
			conns, errs := decode(t, d, expA, tt.dgs...)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if len(conns) != tt.wantConns {
				t.Fatalf("%d conns, want %d", len(conns), tt.wantConns)
			}
			if tt.check != nil {
				tt.check(t, conns[0])
			}
			if got := d.Stats(); got != tt.wantStats {
				t.Errorf("stats %+v, want %+v", got, tt.wantStats)
			}
		})
	}
}

func TestDecodeIPFIX(t *testing.T) {
	exp := uint32(at.Unix())
	ms := func(t time.Time) []byte { return u64(nil, uint64(t.UnixMilli())) }
	ntp := func(t time.Time) []byte {
		sec := uint64(t.Unix() + 2208988800)
		frac := uint64(t.Nanosecond()) << 32 / 1e9
		return u64(nil, sec<<32|frac)
	}
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:1::2")

	tests := []struct {
		name  string
		dgs   [][]byte
		check func(t *testing.T, c *cw.Conn)
	}{
		{
			name: "absolute milliseconds, biflow reverse counters (RFC 5103)",
			dgs: [][]byte{ipfix(exp, 7,
				set(2, templateRec(400, field{8, 4, 0}, field{12, 4, 0}, field{7, 2, 0}, field{11, 2, 0}, field{4, 1, 0},
					field{1, 8, 0}, field{2, 8, 0}, field{1, 8, 29305}, field{2, 8, 29305}, field{152, 8, 0}, field{153, 8, 0})),
				set(400, append(append(append(append(append(
					append(hostL.AsSlice(), hostR.AsSlice()...), u16(u16(nil, 5555), 22)...), 6),
					u64(u64(u64(u64(nil, 4000), 40), 90000), 60)...), ms(at.Add(-time.Minute))...), ms(at.Add(-time.Second))...)))},
			check: func(t *testing.T, c *cw.Conn) {
				if !c.TS.Equal(at.Add(-time.Minute)) || c.Duration != 59*time.Second {
					t.Errorf("TS %v duration %v", c.TS, c.Duration)
				}
				if c.OrigIPBytes != 4000 || c.RespIPBytes != 90000 || c.RespPkts != 60 || c.RespBytes != 90000-60*40 {
					t.Errorf("orig %d resp %d/%d/%d", c.OrigIPBytes, c.RespIPBytes, c.RespPkts, c.RespBytes)
				}
			},
		},
		{
			name: "IPv6, NTP nanoseconds, ICMPv6 type and code",
			dgs: [][]byte{ipfix(exp, 7,
				set(2, templateRec(401, field{27, 16, 0}, field{28, 16, 0}, field{4, 1, 0}, field{139, 2, 0},
					field{1, 4, 0}, field{2, 4, 0}, field{156, 8, 0}, field{157, 8, 0})),
				set(401, append(append(append(append(append(
					append(v6a.AsSlice(), v6b.AsSlice()...), 58), u16(nil, 128<<8)...),
					u32(u32(nil, 104), 1)...), ntp(at.Add(-1500*time.Millisecond))...), ntp(at.Add(-500*time.Millisecond))...)))},
			check: func(t *testing.T, c *cw.Conn) {
				if d := c.TS.Sub(at.Add(-1500 * time.Millisecond)); d > time.Microsecond || d < -time.Microsecond {
					t.Errorf("TS %v off by %v", c.TS, d)
				}
				if c.Proto != "icmp6" || c.Orig.Port != 128 || c.Resp.Port != 0 || c.Orig.Addr != v6a || c.OrigBytes != 104-48 {
					t.Errorf("conn %v %d %d %v %d", c.Proto, c.Orig.Port, c.Resp.Port, c.Orig.Addr, c.OrigBytes)
				}
			},
		},
		{
			name: "sampling from an options record (packet interval and space)",
			dgs: [][]byte{ipfix(exp, 7,
				set(3, ipfixOptionsTemplate(500, []field{{143, 4, 0}}, []field{{305, 4, 0}, {306, 4, 0}})),
				set(500, u32(u32(u32(nil, 1), 1), 99)),
				set(2, templateRec(402, field{8, 4, 0}, field{12, 4, 0}, field{4, 1, 0}, field{1, 4, 0}, field{2, 4, 0})),
				set(402, u32(u32(append(append(hostL.AsSlice(), hostR.AsSlice()...), 17), 300), 3)))},
			check: func(t *testing.T, c *cw.Conn) {
				if c.OrigIPBytes != 30000 || c.OrigPkts != 300 {
					t.Errorf("scaled %d bytes, %d packets; want 30000, 300", c.OrigIPBytes, c.OrigPkts)
				}
				if !c.TS.Equal(at) {
					t.Errorf("a record without times is placed at the export: %v", c.TS)
				}
			},
		},
		{
			name: "uptime stamps against systemInitTimeMilliseconds from options",
			dgs: [][]byte{ipfix(exp, 7,
				set(3, ipfixOptionsTemplate(501, []field{{144, 4, 0}}, []field{{160, 8, 0}})),
				set(501, append(u32(nil, 1), ms(at.Add(-time.Hour))...)),
				set(2, templateRec(403, field{8, 4, 0}, field{12, 4, 0}, field{22, 4, 0}, field{21, 4, 0})),
				set(403, u32(u32(append(hostL.AsSlice(), hostR.AsSlice()...), 60_000), 61_000)))},
			check: func(t *testing.T, c *cw.Conn) {
				if !c.TS.Equal(at.Add(-time.Hour+time.Minute)) || c.Duration != time.Second {
					t.Errorf("TS %v duration %v", c.TS, c.Duration)
				}
			},
		},
		{
			name: "delta microseconds before the export",
			dgs: [][]byte{ipfix(exp, 7,
				set(2, templateRec(404, field{8, 4, 0}, field{12, 4, 0}, field{158, 4, 0}, field{159, 4, 0})),
				set(404, u32(u32(append(hostL.AsSlice(), hostR.AsSlice()...), 3_000_000), 1_000_000)))},
			check: func(t *testing.T, c *cw.Conn) {
				if !c.TS.Equal(at.Add(-3*time.Second)) || c.Duration != 2*time.Second {
					t.Errorf("TS %v duration %v", c.TS, c.Duration)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := netflow.NewDecoder(netflow.Config{})
			conns, errs := decode(t, d, expA, tt.dgs...)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if len(conns) != 1 {
				t.Fatalf("%d conns, want 1 (stats %+v)", len(conns), d.Stats())
			}
			tt.check(t, conns[0])
		})
	}
}

func TestDecodeV5(t *testing.T) {
	unix := uint32(at.Unix())
	r := v5rec{src: hostL, dst: hostR, sport: 1234, dport: 80, proto: 6, pkts: 4, octets: 400, first: 95_000, last: 99_000}
	icmp := v5rec{src: hostL, dst: hostR, dport: 3<<8 | 1, proto: 1, pkts: 1, octets: 56, first: 99_000, last: 99_000}

	d := netflow.NewDecoder(netflow.Config{})
	conns, errs := decode(t, d, expA, v5(100_000, unix, 0x4000|10, 2, r, icmp))
	if len(errs) > 0 || len(conns) != 2 {
		t.Fatalf("conns %d errs %v", len(conns), errs)
	}
	c := conns[0]
	if !c.TS.Equal(at.Add(-5*time.Second)) || c.Duration != 4*time.Second || c.OrigIPBytes != 4000 || c.OrigPkts != 40 {
		t.Errorf("v5 record: TS %v dur %v bytes %d pkts %d (sampling 1 in 10)", c.TS, c.Duration, c.OrigIPBytes, c.OrigPkts)
	}
	if c := conns[1]; c.Orig.Port != 3 || c.Resp.Port != 1 || c.Proto != "icmp" {
		t.Errorf("ICMP type/code from the destination port: %d/%d %s", c.Orig.Port, c.Resp.Port, c.Proto)
	}

	// A header announcing more records than the datagram holds: the
	// records there are read, the missing ones counted.
	d = netflow.NewDecoder(netflow.Config{})
	conns, errs = decode(t, d, expA, v5(100_000, unix, 0, 30, r))
	if len(conns) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "192.0.2.1:50000") {
		t.Fatalf("conns %d errs %v", len(conns), errs)
	}
	if s := d.Stats(); s.Dropped != 29 || s.Malformed != 1 || s.Records != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestDecodeSFlow(t *testing.T) {
	agent := netip.MustParseAddr("192.0.2.7")
	hdr := ethIPv4TCP(hostL, hostR, 40001, 443, 1500)
	d := netflow.NewDecoder(netflow.Config{})
	conns, errs := decode(t, d, netip.AddrPortFrom(agent, 6343), sflowFlowSample(agent, 512, 1518, hdr))
	if len(errs) > 0 || len(conns) != 1 {
		t.Fatalf("conns %d errs %v", len(conns), errs)
	}
	c := conns[0]
	if c.Orig.Addr != hostL || c.Resp.Port != 443 || c.OrigIPBytes != 1500*512 || c.OrigPkts != 512 || !c.TS.Equal(at) {
		t.Errorf("sample: %v:%d → %v:%d bytes %d pkts %d ts %v", c.Orig.Addr, c.Orig.Port, c.Resp.Addr, c.Resp.Port, c.OrigIPBytes, c.OrigPkts, c.TS)
	}

	// An expanded flow sample claiming four billion records: goflow2
	// alone would try to allocate them.
	sample := make([]byte, 40)
	sample = u32(sample, 0xffffffff)
	_, errs = decode(t, d, netip.AddrPortFrom(agent, 6343), sflowDatagram(agent, 3, sample))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "announces 4294967295 records") {
		t.Errorf("errs %v", errs)
	}
}

func TestDecodeMalformed(t *testing.T) {
	unix := uint32(at.Unix())
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than any"},
		{"unknown version", []byte{0, 7, 0, 1, 0, 0, 0, 0}, "version 7"},
		{"short v9", []byte{0, 9, 0, 1, 0, 0, 0, 0}, "shorter than its 20-byte header"},
		{"IPFIX length beyond the datagram", append(ipfix(unix, 1)[:2], 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "truncated"},
		{"template of zero-byte records", v9(1, unix, 1, 1, set(0, templateRec(256, field{1, 0, 0}))), "zero bytes"},
		{"template id below 256", v9(1, unix, 1, 1, set(0, templateRec(12, field{1, 4, 0}))), "numbered from 256"},
		{"set length shorter than its header", append(v9(1, unix, 1, 1), 1, 0, 0, 2), "negative length"},
	}
	d := netflow.NewDecoder(netflow.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Decode(expB, at, tt.b, func(*cw.Conn) { t.Error("emitted a conn") })
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "exporter 192.0.2.2:50000") {
				t.Errorf("err = %v, want %q naming the exporter", err, tt.want)
			}
		})
	}
	if s := d.Stats(); s.Malformed != uint64(len(tests)) || s.Templates != 0 {
		t.Errorf("stats %+v", s)
	}
	ex := d.Exporters()
	if len(ex) != 1 || ex[0].Malformed != uint64(len(tests)) || ex[0].LastError == "" {
		t.Errorf("exporter stats %+v", ex)
	}
	// Good datagrams after bad ones are read.
	conns, errs := decode(t, d, expB, v9(1_000, unix, 1, 2, set(0, templateRec(256, v4Fields...)),
		set(256, v4Data(hostL, hostR, 1, 2, 17, 100, 1, 1000, 1000))))
	if len(conns) != 1 || len(errs) != 0 {
		t.Errorf("after garbage: conns %d errs %v", len(conns), errs)
	}
}

func TestDecodeBounds(t *testing.T) {
	unix := uint32(at.Unix())
	d := netflow.NewDecoder(netflow.Config{MaxExporters: 2, MaxTemplatesPerExporter: 2, MaxTemplates: 3})
	tmpl := func(id uint16) []byte { return v9(1, unix, 1, 1, set(0, templateRec(id, v4Fields...))) }
	data := func(id uint16) []byte {
		return v9(1, unix, 1, 1, set(id, v4Data(hostL, hostR, 1, 2, 6, 1, 1, 1, 1)))
	}
	decode(t, d, expA, tmpl(256), tmpl(257), tmpl(258)) // 256 is evicted: A holds 2
	if conns, _ := decode(t, d, expA, data(256), data(258)); len(conns) != 1 {
		t.Errorf("per-exporter cap: %d conns, want only template 258's", len(conns))
	}
	decode(t, d, expB, tmpl(300), tmpl(301)) // global cap 3: A's least recently used goes
	if s := d.Stats(); s.Templates != 3 || s.TemplatesEvicted != 2 {
		t.Errorf("stats %+v", s)
	}
	third := netip.MustParseAddrPort("192.0.2.3:1")
	decode(t, d, third, tmpl(400)) // exporter cap 2: A, heard least recently, is forgotten
	s := d.Stats()
	if s.Exporters != 2 || s.ExportersEvicted != 1 || s.Templates != 3 {
		t.Errorf("stats %+v", s)
	}
	for _, e := range d.Exporters() {
		if e.Exporter == expA.String() {
			t.Errorf("exporter A still held: %+v", e)
		}
	}

	// IPFIX template withdrawal (a template record without fields).
	d = netflow.NewDecoder(netflow.Config{})
	decode(t, d, expA, ipfix(unix, 1, set(2, templateRec(256, v4Fields...))))
	decode(t, d, expA, ipfix(unix, 1, set(2, templateRec(256))))
	if s := d.Stats(); s.Templates != 0 {
		t.Errorf("withdrawn template still held: %+v", s)
	}
}

func TestSniff(t *testing.T) {
	unix := uint32(at.Unix())
	dns := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"v5", v5(1, unix, 0, 1, v5rec{src: hostL, dst: hostR}), true},
		{"v5 length disagrees", append(v5(1, unix, 0, 1, v5rec{src: hostL, dst: hostR}), 0), false},
		{"v9", v9(1, unix, 1, 1, set(0, templateRec(256, v4Fields...))), true},
		{"v9 set id 5", v9(1, unix, 1, 1, set(5, []byte{1, 2, 3, 4})), false},
		{"IPFIX", ipfix(unix, 1, set(2, templateRec(256, v4Fields...))), true},
		{"IPFIX length disagrees", append(ipfix(unix, 1, set(2, templateRec(256, v4Fields...))), 0, 0), false},
		{"sFlow", sflowFlowSample(hostL, 1, 64, ethIPv4TCP(hostL, hostR, 1, 2, 40)), true},
		{"DNS query", dns, false},
		{"zeros", make([]byte, 100), false},
	}
	for _, tt := range tests {
		if got := netflow.Sniff(tt.b); got != tt.want {
			t.Errorf("%s: Sniff = %v, want %v", tt.name, got, tt.want)
		}
	}
}
