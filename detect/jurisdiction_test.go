package detect

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/policy"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func wms() cargowatch.Endpoint {
	return cargowatch.Endpoint{Addr: netip.MustParseAddr("10.1.2.3"), Port: 51000, Local: true,
		Asset: &cargowatch.Asset{Name: "wms-01", Role: "wms"}}
}

func alibaba(ip string) cargowatch.Endpoint {
	return cargowatch.Endpoint{Addr: netip.MustParseAddr(ip), Port: 443, Country: "DE", ASN: 45102,
		Org: "Alibaba Cloud", Jurisdiction: "CN", JurisdictionSource: "curated: Alibaba Group, Hangzhou"}
}

func conn(uid string, orig, resp cargowatch.Endpoint, ob, rb int64, at time.Duration) *cargowatch.Conn {
	return &cargowatch.Conn{TS: t0.Add(at), UID: uid, Orig: orig, Resp: resp, Proto: "tcp",
		Duration: 2 * time.Second, OrigBytes: ob, RespBytes: rb, State: "SF"}
}

func TestJurisdictionWatchedCloud(t *testing.T) {
	d := NewJurisdiction(policy.Default())
	c1 := conn("C1", wms(), alibaba("8.209.72.15"), 3<<20, 4000, 0)
	c1.TLS = &cargowatch.TLS{SNI: "oss-eu-central-1.aliyuncs.com"}
	c2 := conn("C2", wms(), alibaba("8.209.72.16"), 1_400_000, 1000, time.Minute)
	c2.HTTP = []cargowatch.HTTP{{Host: "upload.example.cn:8080"}}
	d.Observe(c1)
	d.Observe(c2)
	fs := d.Findings()
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1 aggregate: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Kind != cargowatch.KindJurisdiction || f.Count != 2 || f.BytesOut != 3<<20+1_400_000 || f.BytesIn != 5000 {
		t.Errorf("aggregate wrong: kind %s count %d out %d in %d", f.Kind, f.Count, f.BytesOut, f.BytesIn)
	}
	// watch CN is high; 4.3 MiB out crosses 1 MiB: one step up.
	if f.Severity != cargowatch.Critical {
		t.Errorf("severity %v, want critical (high raised by 1 MiB)", f.Severity)
	}
	want := "wms-01 (10.1.2.3) sent 4.3 MiB to Alibaba Cloud (8.209.72.15 +1 more, server in DE, controlled from CN) — watched jurisdiction CN"
	if f.Summary != want {
		t.Errorf("summary\n got %s\nwant %s", f.Summary, want)
	}
	ev := f.Evidence
	if ev["rule"] != "watch CN" || !strings.Contains(ev["legal_basis"].(string), "National Intelligence Law") {
		t.Errorf("rule %v basis %v", ev["rule"], ev["legal_basis"])
	}
	if ev["server_country"] != "DE" || ev["jurisdiction"] != "CN" || ev["jurisdiction_source"] == "" {
		t.Errorf("countries in evidence: %v %v %v", ev["server_country"], ev["jurisdiction"], ev["jurisdiction_source"])
	}
	if got := fmt.Sprint(ev["remote_ips"], ev["names"], ev["uids"]); got != "[8.209.72.15 8.209.72.16] [oss-eu-central-1.aliyuncs.com upload.example.cn] [C1 C2]" {
		t.Errorf("samples: %s", got)
	}
	if ev["connections"] != int64(2) || ev["bytes_out"] != f.BytesOut {
		t.Errorf("evidence counts: %v %v", ev["connections"], ev["bytes_out"])
	}
	if !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(time.Minute+2*time.Second)) {
		t.Errorf("first/last %v %v", f.FirstSeen, f.LastSeen)
	}
	if f.Dst.Name != "oss-eu-central-1.aliyuncs.com" || f.Src.Asset == nil || f.Src.Asset.Name != "wms-01" {
		t.Errorf("endpoints: dst name %q src %+v", f.Dst.Name, f.Src)
	}
	if f.Score <= 0.8 || f.Score > 1 {
		t.Errorf("score %v, want in (0.8, 1] for critical", f.Score)
	}
}

func TestJurisdictionNoFinding(t *testing.T) {
	customs := cargowatch.Endpoint{Addr: netip.MustParseAddr("10.1.9.9"), Local: true,
		Asset: &cargowatch.Asset{Name: "atlas-gw", Role: "customs-gateway"}}
	zoll := cargowatch.Endpoint{Addr: netip.MustParseAddr("194.25.0.60"), Port: 443, Country: "DE", Org: "Deutsche Telekom"}
	tests := []struct {
		name string
		c    *cargowatch.Conn
	}{
		{"home customs", conn("H1", customs, zoll, 50<<20, 1<<20, 0)},
		{"eea", conn("H2", wms(), cargowatch.Endpoint{Addr: netip.MustParseAddr("51.15.0.1"), Country: "FR", Org: "Scaleway"}, 9<<20, 0, 0)},
		{"local to local", conn("L1", wms(), cargowatch.Endpoint{Addr: netip.MustParseAddr("10.1.2.4"), Local: true}, 9<<20, 0, 0)},
		{"remote private but not marked local", conn("L2", wms(), cargowatch.Endpoint{Addr: netip.MustParseAddr("172.16.0.1"), Country: "CN"}, 9<<20, 0, 0)},
		{"neither local", conn("N1", alibaba("8.209.72.15"), cargowatch.Endpoint{Addr: netip.MustParseAddr("1.1.1.1"), Country: "AU"}, 9<<20, 0, 0)},
		{"inbound scan, we sent nothing", conn("S1", alibaba("8.209.72.15"), wms(), 60, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewJurisdiction(nil)
			d.Observe(tt.c)
			if fs := d.Findings(); len(fs) != 0 {
				t.Errorf("want no finding, got %s", fs[0].Summary)
			}
		})
	}
}

func TestJurisdictionTotals(t *testing.T) {
	d := NewJurisdiction(policy.Default())
	other := wms()
	other.Addr = netip.MustParseAddr("10.1.2.99")
	zoll := cargowatch.Endpoint{Addr: netip.MustParseAddr("194.25.0.60"), Country: "DE"}
	d.Observe(conn("A", wms(), zoll, 100, 10, 0))
	d.Observe(conn("B", other, zoll, 200, 20, 0))
	d.Observe(conn("C", wms(), alibaba("8.209.72.15"), 1000, 5, 0))
	d.Observe(conn("D", wms(), cargowatch.Endpoint{Addr: netip.MustParseAddr("10.9.9.9"), Local: true}, 1<<30, 0, 0))
	got := d.Totals()
	want := []JurisdictionTotal{
		{Jurisdiction: "CN", Country: "DE", BytesOut: 1000, BytesIn: 5, Conns: 1, Hosts: 1},
		{Jurisdiction: "DE", Country: "DE", BytesOut: 300, BytesIn: 30, Conns: 2, Hosts: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Totals\n got %+v\nwant %+v", got, want)
	}
}

// Severity is the rule's base raised one step per bytes-out threshold
// (defaults 1 MiB and 100 MiB), capped at critical.
func TestJurisdictionSeverityByBytes(t *testing.T) {
	sg := cargowatch.Endpoint{Addr: netip.MustParseAddr("203.0.113.7"), Country: "SG", Org: "Example SG"}
	ru := cargowatch.Endpoint{Addr: netip.MustParseAddr("203.0.113.8"), Country: "RU", Org: "Example RU"}
	tests := []struct {
		name   string
		remote cargowatch.Endpoint
		out    int64
		want   cargowatch.Severity
		rule   string
	}{
		{"not allowed small", sg, 1000, cargowatch.Low, "not in allow list"},
		{"not allowed 1 MiB", sg, 1 << 20, cargowatch.Medium, "not in allow list"},
		{"not allowed 100 MiB", sg, 100 << 20, cargowatch.High, "not in allow list"},
		{"watched small", ru, 10, cargowatch.High, "watch RU"},
		{"watched 200 MiB capped", ru, 200 << 20, cargowatch.Critical, "watch RU"},
		{"watched contact only", ru, 0, cargowatch.High, "watch RU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewJurisdiction(policy.Default())
			// Split the bytes over two conns: thresholds apply to the aggregate.
			d.Observe(conn("X1", wms(), tt.remote, tt.out/2, 0, 0))
			d.Observe(conn("X2", wms(), tt.remote, tt.out-tt.out/2, 0, time.Second))
			fs := d.Findings()
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			if fs[0].Severity != tt.want || fs[0].Evidence["rule"] != tt.rule {
				t.Errorf("severity %v rule %v, want %v %q", fs[0].Severity, fs[0].Evidence["rule"], tt.want, tt.rule)
			}
		})
	}
}

func TestJurisdictionRoleAndDirection(t *testing.T) {
	plc := cargowatch.Endpoint{Addr: netip.MustParseAddr("10.20.0.5"), Local: true,
		Asset: &cargowatch.Asset{Name: "sts-07-plc", Role: "crane-plc"}}
	vendor := cargowatch.Endpoint{Addr: netip.MustParseAddr("198.51.100.20"), Port: 1194, Country: "FI", Org: "Vendor Remote Service"}
	d := NewJurisdiction(policy.Default())
	// The vendor connects in and the PLC answers with 2 MiB: bytes out are
	// the local side's, here RespBytes.
	in := conn("R1", vendor, plc, 500, 2<<20, 0)
	d.Observe(in)
	fs := d.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings", len(fs))
	}
	f := fs[0]
	if f.BytesOut != 2<<20 || f.BytesIn != 500 {
		t.Errorf("direction: out %d in %d", f.BytesOut, f.BytesIn)
	}
	if f.Severity != cargowatch.Critical || f.Evidence["rule"] != "role crane-plc: internet deny" {
		t.Errorf("severity %v rule %v, want critical role deny", f.Severity, f.Evidence["rule"])
	}
	want := "sts-07-plc (10.20.0.5) served 2.0 MiB to a client at Vendor Remote Service (198.51.100.20, client in FI) — role crane-plc: internet deny"
	if f.Summary != want {
		t.Errorf("summary\n got %s\nwant %s", f.Summary, want)
	}
}

func TestJurisdictionSummaryForms(t *testing.T) {
	host := cargowatch.Endpoint{Addr: netip.MustParseAddr("10.0.0.8"), Local: true}
	tests := []struct {
		name   string
		remote cargowatch.Endpoint
		out    int64
		want   string
	}{
		{"bare ip, unknown country", cargowatch.Endpoint{Addr: netip.MustParseAddr("203.0.113.1")}, 512,
			"10.0.0.8 sent 512 B to 203.0.113.1 (server country unknown) — server country unknown"},
		{"name only", cargowatch.Endpoint{Addr: netip.MustParseAddr("203.0.113.2"), Country: "SG", Name: "api.example.sg"}, 0,
			"10.0.0.8 contacted api.example.sg (203.0.113.2, server in SG) — SG not in allow list"},
		{"watched server country", cargowatch.Endpoint{Addr: netip.MustParseAddr("203.0.113.3"), Country: "CN", Jurisdiction: "US", Org: "US Cloud"}, 2048,
			"10.0.0.8 sent 2.0 KiB to US Cloud (203.0.113.3, server in CN, controlled from US) — watched server country CN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewJurisdiction(nil)
			d.Observe(conn("U", host, tt.remote, tt.out, 0, 0))
			fs := d.Findings()
			if len(fs) != 1 || fs[0].Summary != tt.want {
				t.Fatalf("got %v\nwant %s", fs, tt.want)
			}
		})
	}
}

func TestJurisdictionCaps(t *testing.T) {
	d := NewJurisdiction(nil)
	d.MaxPairs = 3
	for i := range 10 {
		r := cargowatch.Endpoint{Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), Country: "SG"}
		d.Observe(conn(fmt.Sprint("P", i), wms(), r, 10, 0, 0))
	}
	if n := len(d.Findings()); n != 3 || d.Dropped() != 7 {
		t.Errorf("findings %d dropped %d, want 3 and 7", n, d.Dropped())
	}
	// Samples stay bounded however many IPs and uids one pair sees.
	d = NewJurisdiction(nil)
	for i := range 200 {
		r := alibaba(netip.AddrFrom4([4]byte{8, 209, byte(i / 250), byte(i%250 + 1)}).String())
		c := conn(fmt.Sprint("Q", i), wms(), r, 10, 0, 0)
		c.TLS = &cargowatch.TLS{SNI: fmt.Sprintf("h%d.aliyuncs.com", i)}
		d.Observe(c)
	}
	ev := d.Findings()[0].Evidence
	if len(ev["remote_ips"].([]string)) != maxSampleIPs || len(ev["uids"].([]string)) != maxSampleUIDs || len(ev["names"].([]string)) != maxSampleNames {
		t.Errorf("samples not capped: %d %d %d", len(ev["remote_ips"].([]string)), len(ev["uids"].([]string)), len(ev["names"].([]string)))
	}
	if ev["connections"] != int64(200) {
		t.Errorf("connections %v", ev["connections"])
	}
}

func TestJurisdictionScore(t *testing.T) {
	tests := []struct {
		sev   cargowatch.Severity
		bytes int64
		want  float64
	}{
		{cargowatch.Info, 0, 0},
		{cargowatch.Low, 0, 0.2},
		{cargowatch.Critical, 1 << 30, 1},
		{cargowatch.Critical, 1 << 40, 1},
		{cargowatch.High, 1 << 20, 0.733},
		{cargowatch.Medium, -5, 0.4},
	}
	for _, tt := range tests {
		if got := JurisdictionScore(tt.sev, tt.bytes); got != tt.want {
			t.Errorf("JurisdictionScore(%v, %d) = %v, want %v", tt.sev, tt.bytes, got, tt.want)
		}
	}
	if got := HumanBytes(4_404_019); got != "4.2 MiB" {
		t.Errorf("HumanBytes = %s", got)
	}
}

func BenchmarkJurisdictionObserve(b *testing.B) {
	d := NewJurisdiction(nil)
	conns := make([]*cargowatch.Conn, 1024)
	for i := range conns {
		r := cargowatch.Endpoint{Addr: netip.AddrFrom4([4]byte{203, 0, byte(i / 256), byte(i)}), Country: []string{"DE", "SG", "CN", "FR"}[i%4], Org: fmt.Sprint("org", i%50)}
		conns[i] = conn(fmt.Sprint("B", i), wms(), r, 1000, 100, 0)
		conns[i].TLS = &cargowatch.TLS{SNI: "x.example"}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Observe(conns[i%len(conns)])
	}
}
