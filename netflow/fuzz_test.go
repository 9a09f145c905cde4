package netflow_test

import (
	"net/netip"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/netflow"
)

// FuzzDecode throws datagrams of every version at a Decoder that already
// knows a v9 and an IPFIX template (so data sets are read, not only
// counted as missing); nothing may panic, hang or break the bounds.
func FuzzDecode(f *testing.F) {
	unix := uint32(at.Unix())
	v9tmpl := v9(1_000, unix, 1, 1, set(0, templateRec(256, v4Fields...)))
	ipfixTmpl := ipfix(unix, 1, set(2, templateRec(256, append(append([]field(nil), v4Fields...),
		field{1, 8, 29305}, field{152, 8, 0}, field{156, 8, 0}, field{27, 16, 0}, field{0xc8, 0xffff, 0})...)))
	f.Add(v9(1_000, unix, 1, 1, set(256, v4Data(hostL, hostR, 1, 2, 6, 100, 1, 1, 1))))
	f.Add(v9tmpl)
	f.Add(ipfixTmpl)
	f.Add(ipfix(unix, 1, set(3, ipfixOptionsTemplate(500, []field{{143, 4, 0}}, []field{{305, 4, 0}, {306, 4, 0}})), set(500, u32(u32(u32(nil, 1), 1), 9))))
	f.Add(v5(1, unix, 0x4000|10, 1, v5rec{src: hostL, dst: hostR, proto: 6, pkts: 1, octets: 40}))
	f.Add(sflowFlowSample(hostL, 10, 1518, ethIPv4TCP(hostL, hostR, 1, 2, 1500)))
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 2})
	f.Add([]byte{0, 10, 0, 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := netflow.NewDecoder(netflow.Config{MaxExporters: 4, MaxTemplatesPerExporter: 4, MaxTemplates: 8})
		from := netip.MustParseAddrPort("192.0.2.1:2055")
		emit := func(c *cw.Conn) {
			if !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() || c.OrigIPBytes < 0 || c.OrigBytes < 0 || c.Duration < 0 {
				t.Fatalf("bad conn %+v", c)
			}
		}
		_ = d.Decode(from, at, v9tmpl, emit)
		_ = d.Decode(from, at, ipfixTmpl, emit)
		_ = netflow.Sniff(b)
		for i := 0; i < 2; i++ { // the second pass uses templates the first one taught
			_ = d.Decode(from, at, b, emit)
		}
		if s := d.Stats(); s.Templates > 8 || s.Exporters > 4 {
			t.Fatalf("bounds broken: %+v", s)
		}
	})
}
