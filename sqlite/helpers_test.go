package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch"
)

func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "sub", "dir", "cw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func beginRun(t testing.TB, db *DB) int64 {
	t.Helper()
	r := &cargowatch.Run{Command: "test", Args: []string{"x"}, Version: cargowatch.Version}
	if err := db.BeginRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// fullConn sets every field of Conn to a non-zero value, so a column that
// is dropped on the way in or out fails the round-trip test.
func fullConn(i int) *cargowatch.Conn {
	ts := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC).Add(time.Duration(i) * time.Second)
	return &cargowatch.Conn{
		TS:  ts,
		UID: fmt.Sprintf("C%08d", i),
		Orig: cargowatch.Endpoint{
			Addr: netip.MustParseAddr("10.1.2.3"), Port: 50123, MAC: "00:1b:1b:aa:bb:cc", Local: true,
			Name: "sts-crane-07", Country: "NL", ASN: 0, Org: "Port Authority", Jurisdiction: "NL",
			Asset: &cargowatch.Asset{Name: "STS-07", Role: "crane-plc", Zone: "quay", Owner: "ops"},
		},
		Resp: cargowatch.Endpoint{
			Addr: netip.MustParseAddr("2001:db8::8:1"), Port: 443, MAC: "00:00:5e:00:01:01",
			Name: "telemetry.example.cn", Country: "DE", ASN: 45102, Org: "Alibaba (US) Technology Co., Ltd.",
			Jurisdiction: "CN", JurisdictionSource: "curated: Alibaba Cloud (AS45102)",
		},
		Proto: "tcp", Service: "ssl", Duration: 1234567891 * time.Nanosecond,
		OrigBytes: 1000, RespBytes: 200, OrigPkts: 10, RespPkts: 8, OrigIPBytes: 1520, RespIPBytes: 616,
		MissedBytes: 3, State: "SF", History: "ShADadFf", Open: true, VLAN: 101, Tunnel: "vxlan",
		DNS: []cargowatch.DNS{{TransID: 4242, Query: "telemetry.example.cn", QType: 1, QClass: 1, RCode: 0,
			Answers: []string{"1.2.3.4"}, TTLs: []uint32{300}, QueryLen: 38, RespLen: 54},
			{TransID: 7, Query: "x.example", QType: 28, QClass: 1, RCode: -1}},
		TLS: &cargowatch.TLS{SNI: "telemetry.example.cn", Version: "TLSv13", ALPN: []string{"h2", "http/1.1"},
			JA4: "t13d1516h2_8daaf6152771_02713d6af862", JA3: "771,4865-4866,0-23,29-23,0"},
		HTTP: []cargowatch.HTTP{{Method: "POST", Host: "h.example", URI: "/up?x=1", UserAgent: "curl/8",
			ContentType: "application/edifact", RequestBodyLen: 5000, ResponseBodyLen: 12, StatusCode: 201}},
		DNSDropped: 2,
		Content: &cargowatch.Content{
			Hits: []cargowatch.Hit{{Type: "container", Value: "MSCU****565", Offset: 77, CheckDigit: "valid",
				Confidence: "high", MessageType: "EDIFACT/BAPLIE"}},
			Counts:       map[string]int{"container": 12, "awb": 1},
			MessageTypes: map[string]int{"EDIFACT/BAPLIE": 1},
			Inspected:    4096, Uninspected: 100,
		},
		Source: "/data/cap ture?.pcap",
		Alerts: []string{"ET POLICY x", "sig 2"},
		OT: &cargowatch.OT{Protocol: "modbus", ServerIsOrig: true,
			Functions: map[string]int{"read_holding_registers": 40, "write_single_register": 2},
			Writes:    2, Program: 1, Device: "Schneider Electric BMX P34 2020"},
		// A zero Addr is what a DHCP discover gives: only the MAC is known.
		HostNames: []cargowatch.HostName{{Addr: netip.MustParseAddr("10.1.2.3"), MAC: "00:1b:1b:aa:bb:cc",
			Name: "STS-07", Source: "netbios"}, {MAC: "00:1b:1b:aa:bb:cd", Name: "rtg-12", Source: "dhcp"}},
	}
}
