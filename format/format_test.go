package format

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

func TestFindingRecordCarriesContractKeys(t *testing.T) {
	f := cw.Finding{
		Kind: cw.KindJurisdiction, Severity: cw.High, Score: 0.8123,
		Src:       cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Local: true, Asset: &cw.Asset{Name: "wms-01", Role: "wms"}},
		Dst:       cw.Endpoint{Addr: netip.MustParseAddr("8.209.72.15"), Port: 80, Country: "DE", Jurisdiction: "CN", Org: "Alibaba"},
		FirstSeen: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC),
		Count: 3, BytesOut: 4096, Summary: "s",
	}
	var buf bytes.Buffer
	j := NewJSONL(&buf)
	if err := j.Write(FindingRecord(&f)); err != nil {
		t.Fatal(err)
	}
	j.Flush()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kind", "severity", "score", "src_ip", "src_port", "src_asset", "src_role", "dst_ip", "dst_port",
		"dst_name", "dst_country", "dst_asn", "dst_org", "jurisdiction", "first_seen", "last_seen", "count", "bytes_out",
		"bytes_in", "summary", "evidence"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	if m["severity"] != "high" || m["jurisdiction"] != "CN" || m["src_asset"] != "wms-01" || m["score"] != 0.812 {
		t.Errorf("wrong values: %v", m)
	}
	if m["first_seen"] != "2026-03-02T06:00:00Z" {
		t.Errorf("first_seen = %v", m["first_seen"])
	}
}

func TestConnRecordZeekNames(t *testing.T) {
	c := &cw.Conn{TS: time.Unix(1700000000, 500000000), UID: "Cabc", Proto: "tcp", State: "SF",
		Orig: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Port: 5000, Local: true},
		Resp: cw.Endpoint{Addr: netip.MustParseAddr("1.1.1.1"), Port: 443, Country: "AU"},
		TLS:  &cw.TLS{SNI: "example.com"}}
	m := ConnRecord(c)
	if m["ts"] != 1700000000.5 || m["id.orig_h"] != "10.0.0.1" || m["id.resp_p"] != uint16(443) || m["tls_sni"] != "example.com" || m["resp_country"] != "AU" {
		t.Errorf("record: %v", m)
	}
}

func TestConnRecordOTAndHostNames(t *testing.T) {
	c := &cw.Conn{Proto: "tcp", Service: "modbus",
		OT: &cw.OT{Protocol: "modbus", Functions: map[string]int{"write_single_register": 2}, Writes: 2, Device: "Schneider M340"},
		HostNames: []cw.HostName{{Addr: netip.MustParseAddr("10.0.0.7"), MAC: "00:80:f4:00:00:01", Name: "plc-7", Source: "dhcp"},
			{Name: "station-1", Source: "profinet-dcp"}}}
	m := ConnRecord(c)
	ot, _ := m["ot"].(map[string]any)
	if ot["protocol"] != "modbus" || ot["writes"] != 2 || ot["device"] != "Schneider M340" || ot["program_transfers"] != nil {
		t.Errorf("ot = %v", ot)
	}
	names, _ := m["host_names"].([]map[string]any)
	if len(names) != 2 || names[0]["addr"] != "10.0.0.7" || names[0]["name"] != "plc-7" || names[1]["addr"] != nil {
		t.Errorf("host_names = %v", names)
	}
	if _, ok := ConnRecord(&cw.Conn{})["ot"]; ok {
		t.Error("a Conn without OT has an ot key")
	}
}

func TestTableGroupsBySeverity(t *testing.T) {
	fs := []cw.Finding{
		{Kind: "beacon", Severity: cw.Low, Summary: "low one"},
		{Kind: "jurisdiction", Severity: cw.Critical, Summary: "critical one"},
	}
	var buf bytes.Buffer
	if err := FindingsTable(&buf, fs, []JurisdictionTotal{{Jurisdiction: "CN", Country: "DE", BytesOut: 2048}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if ci, li := strings.Index(out, "CRITICAL (1)"), strings.Index(out, "LOW (1)"); ci < 0 || li < 0 || ci > li {
		t.Errorf("severity groups missing or out of order:\n%s", out)
	}
	if !strings.Contains(out, "2.0 KiB") || !strings.Contains(out, "WHERE OUR DATA GOES") {
		t.Errorf("totals missing:\n%s", out)
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestConnTableStreamsOneHeader(t *testing.T) {
	var buf bytes.Buffer
	tab := NewConnTable(&buf)
	for i := 0; i < 2500; i++ {
		c := &cw.Conn{TS: time.Unix(int64(i), 0), UID: "C1", Proto: "udp", State: "SF",
			Orig: cw.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Port: 5000},
			Resp: cw.Endpoint{Addr: netip.MustParseAddr("9.9.9.9"), Port: 53, Country: "US", Jurisdiction: "US"}}
		if err := tab.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	tab.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2501 || strings.Count(buf.String(), "TIME") != 1 {
		t.Fatalf("%d lines, %d headers", len(lines), strings.Count(buf.String(), "TIME"))
	}
	if strings.Index(lines[0], "PROTO") != strings.Index(lines[2000], "udp") {
		t.Errorf("columns drift:\n%s\n%s", lines[0], lines[2000])
	}
}
