package flow

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/pcap"
)

// Builders of PROFINET DCP frames as IEC 61158-6-10 lays them out
// (FrameID, ServiceID 3 Get / 4 Set / 5 Identify / 6 Hello, ServiceType
// 0 request / 1 response, Xid, response delay, data length, blocks padded
// to even length), independent of ot.ParseDCP. TestDCPCapture checks
// them against tshark's pn_dcp dissector when tshark is installed.

func dcpPDU(frameID uint16, svc, typ byte, xid uint32, blocks ...[]byte) []byte {
	var data []byte
	for _, b := range blocks {
		data = append(data, b...)
		if len(b)%2 == 1 {
			data = append(data, 0)
		}
	}
	h := binary.BigEndian.AppendUint16(nil, frameID)
	h = append(h, svc, typ)
	h = binary.BigEndian.AppendUint32(h, xid)
	h = append(h, 0, 0)
	h = binary.BigEndian.AppendUint16(h, uint16(len(data)))
	return append(h, data...)
}

func dcpBlk(opt, sub byte, v []byte) []byte {
	b := []byte{opt, sub}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// info prefixes a response's block with BlockInfo (or a Set request's
// with BlockQualifier).
func info(q uint16, v ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, q)
	for _, x := range v {
		b = append(b, x...)
	}
	return b
}

func ipBlock(ip, mask, gw string) []byte {
	var b []byte
	for _, s := range []string{ip, mask, gw} {
		a := netip.MustParseAddr(s).As4()
		b = append(b, a[:]...)
	}
	return b
}

func mustMAC(s string) [6]byte {
	var m [6]byte
	for i, h := range strings.Split(s, ":") {
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil {
			panic(err)
		}
		m[i] = byte(v)
	}
	return m
}

// ethFrame builds an Ethernet frame, with an 802.1Q tag when vlan > 0,
// padded to the 60-byte minimum as a NIC sends it.
func ethFrame(dst, src string, vlan uint16, et uint16, payload []byte) []byte {
	d, s := mustMAC(dst), mustMAC(src)
	b := append(append([]byte{}, d[:]...), s[:]...)
	if vlan > 0 {
		b = append(b, 0x81, 0x00, byte(6<<5|vlan>>8), byte(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, et)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// pcapBytes writes a classic little-endian microsecond pcap of Ethernet frames.
func pcapBytes(start time.Time, step time.Duration, frames ...[]byte) []byte {
	var b bytes.Buffer
	hdr := []uint32{0xa1b2c3d4, 2 | 4<<16, 0, 0, 65535, 1}
	for _, v := range hdr {
		binary.Write(&b, binary.LittleEndian, v)
	}
	for i, f := range frames {
		ts := start.Add(time.Duration(i) * step)
		for _, v := range []uint32{uint32(ts.Unix()), uint32(ts.Nanosecond() / 1000), uint32(len(f)), uint32(len(f))} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(f)
	}
	return b.Bytes()
}

const (
	macCtrl  = "02:00:00:00:00:0c" // IO controller / engineering station
	macDev1  = "00:1b:1b:0a:0b:0c" // configured PLC
	macDev2  = "00:0e:8c:01:02:03" // unconfigured device
	mcIdent  = "01:0e:cf:00:00:00"
	mcHello  = "01:0e:cf:00:00:01"
	dcpVLAN  = 100
	dev1Name = "crane-plc-3"
)

// dcpScenario is an engineering station commissioning a cell: Identify
// All, two answers, a Set of name and address with its response, a Hello,
// plus cyclic real-time data, a cut DCP frame and one UDP datagram.
func dcpScenario() [][]byte {
	udp := func() []byte {
		u := make([]byte, 8, 12)
		binary.BigEndian.PutUint16(u, 40000)
		binary.BigEndian.PutUint16(u[2:], 5000)
		binary.BigEndian.PutUint16(u[4:], 12)
		u = append(u, "ping"...)
		ip := []byte{0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
		return append(ip, u...)
	}
	return [][]byte{
		ethFrame(mcIdent, macCtrl, dcpVLAN, 0x8892, dcpPDU(0xfefe, 5, 0, 0x1001, dcpBlk(0xff, 0xff, nil))),
		ethFrame(macCtrl, macDev1, dcpVLAN, 0x8892, dcpPDU(0xfeff, 5, 1, 0x1001,
			dcpBlk(2, 2, info(0, []byte(dev1Name))),
			dcpBlk(2, 1, info(0, []byte("S7-1500"))),
			dcpBlk(2, 3, info(0, []byte{0x00, 0x2a, 0x01, 0x0e})),
			dcpBlk(2, 4, info(0, []byte{2, 0})),
			dcpBlk(1, 2, info(1, ipBlock("192.168.0.10", "255.255.255.0", "192.168.0.1"))))),
		ethFrame(macCtrl, macDev2, dcpVLAN, 0x8892, dcpPDU(0xfeff, 5, 1, 0x1001,
			dcpBlk(2, 1, info(0, []byte("ET 200SP"))),
			dcpBlk(1, 2, info(0, ipBlock("0.0.0.0", "0.0.0.0", "0.0.0.0"))))),
		ethFrame(macDev2, macCtrl, dcpVLAN, 0x8892, dcpPDU(0xfefd, 4, 0, 0x1002,
			dcpBlk(2, 2, info(1, []byte("crane-io-7"))),
			dcpBlk(1, 2, info(1, ipBlock("192.168.0.20", "255.255.255.0", "192.168.0.1"))))),
		ethFrame(macCtrl, macDev2, dcpVLAN, 0x8892, dcpPDU(0xfefd, 4, 1, 0x1002,
			dcpBlk(5, 4, []byte{2, 2, 0}), dcpBlk(5, 4, []byte{1, 2, 0}))),
		ethFrame(mcHello, macDev2, dcpVLAN, 0x8892, dcpPDU(0xfefc, 6, 0, 0x1003,
			dcpBlk(2, 2, info(0, []byte("crane-io-7"))),
			dcpBlk(1, 2, info(1, ipBlock("192.168.0.20", "255.255.255.0", "192.168.0.1"))))),
		ethFrame(macDev1, macCtrl, dcpVLAN, 0x8892, []byte{0x80, 0x00, 1, 2, 3, 4}), // cyclic RT data
		ethFrame(macDev1, macCtrl, 0, 0x8892, []byte{0xfe, 0xfd, 9, 0, 0, 0}),       // no such service
		ethFrame("02:00:00:00:00:02", "02:00:00:00:00:01", 0, 0x0800, udp()),
	}
}

func TestDCPCapture(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dcp.pcap")
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := os.WriteFile(path, pcapBytes(start, 100*time.Millisecond, dcpScenario()...), 0o644); err != nil {
		t.Fatal(err)
	}
	src := NewCaptureSource([]string{path}, Config{}, pcap.Options{})
	var conns []*cw.Conn
	if err := src.Run(context.Background(), func(c *cw.Conn) { conns = append(conns, c) }); err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if st.Reader.L2 != 8 || st.Reader.IP != 1 || st.Reader.Malformed != 0 || st.Reader.NonIP != 0 {
		t.Errorf("reader stats %+v", st.Reader)
	}
	want := DCPStats{Frames: 6, Malformed: 1, Other: 1, Exchanges: 5, Emitted: 5}
	if st.Table.DCP != want {
		t.Errorf("dcp stats %+v, want %+v", st.Table.DCP, want)
	}
	if st.Table.FlowsEmitted != 1 {
		t.Errorf("IP flows emitted %d, want 1", st.Table.FlowsEmitted)
	}

	byResp := map[string]*cw.Conn{}
	uids := map[string]bool{}
	for _, c := range conns {
		uids[c.UID] = true
		if c.Proto != "profinet" {
			continue
		}
		byResp[c.Resp.MAC+" "+strconv.Itoa(int(c.OrigPkts))] = c
		if c.Service != "profinet-dcp" || c.OT == nil || c.OT.Protocol != "profinet-dcp" || c.VLAN != dcpVLAN || c.Source != path || !c.Open {
			t.Errorf("conn %+v", c)
		}
	}
	if len(uids) != len(conns) || len(conns) != 6 {
		t.Errorf("%d conns, %d distinct uids", len(conns), len(uids))
	}
	none := netip.Addr{}
	tests := []struct {
		name         string
		key          string // responder MAC and originator packets
		orig         string
		origAddr     netip.Addr
		respAddr     netip.Addr
		state        string
		functions    map[string]int
		writes       int
		device       string
		serverIsOrig bool
		names        []cw.HostName
	}{
		{name: "identify request", key: mcIdent + " 1", orig: macCtrl, state: "S0",
			functions: map[string]int{"identify": 1}},
		{name: "configured device answers", key: macDev1 + " 0", orig: macCtrl,
			respAddr: netip.MustParseAddr("192.168.0.10"), state: "SHR",
			functions: map[string]int{"identify": 1}, device: "crane-plc-3 S7-1500 vendor 0x002a device 0x010e",
			names: []cw.HostName{{Addr: netip.MustParseAddr("192.168.0.10"), MAC: macDev1, Name: dev1Name, Source: "profinet-dcp"}}},
		{name: "unconfigured device answers", key: macDev2 + " 0", orig: macCtrl, state: "SHR",
			functions: map[string]int{"identify": 1}, device: "ET 200SP"},
		{name: "set name and address", key: macDev2 + " 1", orig: macCtrl, state: "SF",
			functions: map[string]int{"set": 1, "set_name_of_station": 1, "set_ip": 1}, writes: 1},
		{name: "hello", key: mcHello + " 1", orig: macDev2, origAddr: netip.MustParseAddr("192.168.0.20"), state: "S0",
			functions: map[string]int{"hello": 1}, device: "crane-io-7", serverIsOrig: true,
			names: []cw.HostName{{Addr: netip.MustParseAddr("192.168.0.20"), MAC: macDev2, Name: "crane-io-7", Source: "profinet-dcp"}}},
	}
	for _, tc := range tests {
		c := byResp[tc.key]
		if c == nil {
			t.Errorf("%s: no conn with responder %s", tc.name, tc.key)
			continue
		}
		if c.Orig.MAC != tc.orig || c.Orig.Addr != tc.origAddr || c.Resp.Addr != tc.respAddr || c.State != tc.state {
			t.Errorf("%s: %s/%v > %s/%v state %s", tc.name, c.Orig.MAC, c.Orig.Addr, c.Resp.MAC, c.Resp.Addr, c.State)
		}
		if (tc.origAddr == none) == c.Orig.Addr.IsValid() {
			t.Errorf("%s: originator address %v", tc.name, c.Orig.Addr)
		}
		o := c.OT
		if !mapsEqual(o.Functions, tc.functions) || o.Writes != tc.writes || o.Device != tc.device || o.ServerIsOrig != tc.serverIsOrig {
			t.Errorf("%s: OT %+v", tc.name, o)
		}
		if !slices.Equal(c.HostNames, tc.names) {
			t.Errorf("%s: names %+v, want %+v", tc.name, c.HostNames, tc.names)
		}
		if c.OrigBytes+c.RespBytes == 0 || c.OrigIPBytes < c.OrigBytes || c.RespIPBytes < c.RespBytes {
			t.Errorf("%s: bytes %d/%d ip %d/%d", tc.name, c.OrigBytes, c.RespBytes, c.OrigIPBytes, c.RespIPBytes)
		}
	}

	// The same frames through tshark's pn_dcp dissector: the services,
	// types, names and addresses we read, and the frame of an unknown
	// service that we count as malformed.
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: builders not cross-checked")
		return
	}
	out, err := exec.Command("tshark", "-n", "-r", path, "-Y", "pn_dcp", "-T", "fields",
		"-e", "pn_dcp.service_id", "-e", "pn_dcp.service_type", "-e", "pn_dcp.suboption_device_nameofstation", "-e", "pn_dcp.suboption_ip_ip").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	wantRows := []string{"5\t0\t\t", "5\t1\t" + dev1Name + "\t192.168.0.10", "5\t1\t\t0.0.0.0", "4\t0\tcrane-io-7\t192.168.0.20", "4\t1\t\t", "6\t0\tcrane-io-7\t192.168.0.20", "9\t0"}
	if !slices.Equal(got, wantRows) {
		t.Errorf("tshark reads the frames as\n%q\nwant\n%q", got, wantRows)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func dcpPkt(at time.Duration, src, dst string, pdu []byte) *pcap.Packet {
	return &pcap.Packet{TS: t0.Add(at), EtherType: pcap.EtherTypePROFINET, SrcMAC: mustMAC(src), DstMAC: mustMAC(dst),
		HasMAC: true, Payload: pdu, PayloadLen: len(pdu), IPLen: len(pdu)}
}

func TestDCPTable(t *testing.T) {
	identify := func(xid uint32) []byte { return dcpPDU(0xfefe, 5, 0, xid, dcpBlk(0xff, 0xff, nil)) }
	get := dcpPDU(0xfefd, 3, 0, 7, dcpBlk(2, 2, nil))
	getResp := dcpPDU(0xfefd, 3, 1, 7, dcpBlk(2, 2, info(0, []byte(dev1Name))))
	udp := udpPkt(hostA, hostB, 40000, 50000, 0, "x")
	tests := []struct {
		name    string
		max     int // 0: default
		pkts    []*pcap.Packet
		conns   int    // DCP conns emitted
		first   string // function counts of the first DCP conn, as "name=n,..."
		beforeF int    // DCP conns emitted before Flush
		stats   DCPStats
	}{
		{name: "request and response share a conn", pkts: []*pcap.Packet{dcpPkt(0, macCtrl, macDev1, get), dcpPkt(time.Millisecond, macDev1, macCtrl, getResp)},
			conns: 1, first: "get=1", stats: DCPStats{Frames: 2, Exchanges: 1, Emitted: 1}},
		{name: "response before its request", pkts: []*pcap.Packet{dcpPkt(0, macDev1, macCtrl, getResp), dcpPkt(0, macCtrl, macDev1, get)},
			conns: 1, first: "get=1", stats: DCPStats{Frames: 2, Exchanges: 1, Emitted: 1}},
		{name: "xid tells exchanges apart", pkts: []*pcap.Packet{dcpPkt(0, macCtrl, mcIdent, identify(1)), dcpPkt(time.Second, macCtrl, mcIdent, identify(2))},
			conns: 2, first: "identify=1", stats: DCPStats{Frames: 2, Exchanges: 2, Emitted: 2}},
		{name: "idle timeout splits a reused xid", pkts: []*pcap.Packet{dcpPkt(0, macCtrl, mcIdent, identify(1)), dcpPkt(2*time.Minute, macCtrl, mcIdent, identify(1))},
			conns: 2, first: "identify=1", beforeF: 1, stats: DCPStats{Frames: 2, Exchanges: 2, Emitted: 2, TimedOut: 1}},
		{name: "ip traffic sweeps idle exchanges", pkts: []*pcap.Packet{dcpPkt(0, macCtrl, mcIdent, identify(1)), func() *pcap.Packet { p := *udp; p.TS = t0.Add(3 * time.Minute); return &p }()},
			conns: 1, first: "identify=1", beforeF: 1, stats: DCPStats{Frames: 1, Exchanges: 1, Emitted: 1, TimedOut: 1}},
		{name: "cap evicts the least recently active", max: 2, pkts: []*pcap.Packet{dcpPkt(0, macCtrl, mcIdent, identify(1)), dcpPkt(1, macCtrl, mcIdent, identify(2)), dcpPkt(2, macCtrl, mcIdent, identify(1)), dcpPkt(3, macCtrl, mcIdent, identify(3))},
			conns: 3, first: "identify=1", beforeF: 1, stats: DCPStats{Frames: 4, Exchanges: 3, Emitted: 3, Evicted: 1}},
		{name: "other ethertype ignored", pkts: []*pcap.Packet{func() *pcap.Packet { p := dcpPkt(0, macCtrl, macDev1, get); p.EtherType = 0x88cc; return p }()}},
		{name: "bad block still accounted", pkts: []*pcap.Packet{dcpPkt(0, macDev1, macCtrl, func() []byte { b := bytes.Clone(getResp); b[15] = 0xff; return b }())},
			conns: 1, first: "get=1", stats: DCPStats{Frames: 1, Malformed: 1, Exchanges: 1, Emitted: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dcp []*cw.Conn
			flushed := false
			before := 0
			tb := NewTable(Config{}, func(c *cw.Conn) {
				if c.Proto == "profinet" {
					dcp = append(dcp, c)
					if !flushed {
						before++
					}
				}
			})
			if tc.max > 0 {
				tb.dcp = &dcpTable{max: tc.max, m: map[dcpKey]*dcpExchange{}}
			}
			for _, p := range tc.pkts {
				tb.Add(p)
			}
			flushed = true
			tb.Flush()
			if len(dcp) != tc.conns || before != tc.beforeF {
				t.Fatalf("%d DCP conns (%d before Flush), want %d (%d)", len(dcp), before, tc.conns, tc.beforeF)
			}
			if st := tb.Stats(); st.DCP != tc.stats || st.FlowsCreated > 1 {
				t.Errorf("stats %+v (flows %d), want %+v", st.DCP, st.FlowsCreated, tc.stats)
			}
			if len(dcp) > 0 {
				var fs []string
				for k, v := range dcp[0].OT.Functions {
					fs = append(fs, k+"="+strconv.Itoa(v))
				}
				slices.Sort(fs)
				if got := strings.Join(fs, ","); got != tc.first {
					t.Errorf("functions %s, want %s", got, tc.first)
				}
			}
			if tc.max > 0 && (!dcp[0].Open || dcp[0].OrigPkts != 1) {
				t.Errorf("evicted conn open %v pkts %d", dcp[0].Open, dcp[0].OrigPkts)
			}
		})
	}
}

// FuzzDCPTable feeds arbitrary PROFINET payloads between a few MACs: the
// table must not panic, and every exchange it starts must be emitted.
func FuzzDCPTable(f *testing.F) {
	for _, fr := range dcpScenario() {
		if len(fr) > 18 && fr[16] == 0x88 && fr[17] == 0x92 {
			f.Add(uint8(0), fr[18:])
		}
	}
	f.Add(uint8(3), dcpPDU(0xfefd, 4, 0, 1, dcpBlk(5, 5, []byte{0, 0}), dcpBlk(3, 1, []byte{0, 0, 1})))
	macs := []string{macCtrl, macDev1, macDev2, mcIdent, mcHello}
	f.Fuzz(func(t *testing.T, sel uint8, payload []byte) {
		var n int
		tb := NewTable(Config{}, func(c *cw.Conn) {
			n++
			if c.OT == nil || c.OT.Protocol != "profinet-dcp" || c.Orig.Addr.Is6() || c.Resp.Addr.Is6() {
				t.Fatalf("conn %+v", c)
			}
		})
		tb.dcp = &dcpTable{max: 2, m: map[dcpKey]*dcpExchange{}}
		for i := range 4 {
			p := dcpPkt(time.Duration(i)*40*time.Second, macs[int(sel)%len(macs)], macs[int(sel>>3+uint8(i))%len(macs)], payload)
			tb.Add(p)
		}
		tb.Flush()
		st := tb.Stats().DCP
		if st.Emitted != st.Exchanges || int64(n) != st.Emitted || st.Frames+st.Other+st.Malformed < 4 {
			t.Fatalf("stats %+v, %d conns", st, n)
		}
	})
}

// BenchmarkDCPTable runs Identify rounds: a multicast request and the
// answers of 500 devices, a new Xid each round, so that exchanges are
// created, capped and evicted all the time.
func BenchmarkDCPTable(b *testing.B) {
	const devices = 500
	var pkts []*pcap.Packet
	for round := range 20 {
		xid := uint32(round + 1)
		at := time.Duration(round) * 10 * time.Second
		pkts = append(pkts, dcpPkt(at, macCtrl, mcIdent, dcpPDU(0xfefe, 5, 0, xid, dcpBlk(0xff, 0xff, nil))))
		for d := range devices {
			mac := [6]byte{0, 0x1b, 0x1b, 0, byte(d >> 8), byte(d)}
			resp := dcpPDU(0xfeff, 5, 1, xid,
				dcpBlk(2, 2, info(0, []byte("station-"+strconv.Itoa(d)))),
				dcpBlk(2, 3, info(0, []byte{0x00, 0x2a, 0x01, 0x0e})),
				dcpBlk(1, 2, info(1, ipBlock("192.168.0.10", "255.255.255.0", "192.168.0.1"))))
			p := dcpPkt(at+time.Duration(d)*time.Millisecond, macDev1, macCtrl, resp)
			p.SrcMAC = mac
			pkts = append(pkts, p)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		tb := NewTable(Config{}, func(*cw.Conn) { n++ })
		for _, p := range pkts {
			tb.Add(p)
		}
		tb.Flush()
		if n != 20*(devices+1) {
			b.Fatalf("%d conns", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/frame")
}

// BenchmarkProfinetCyclic is the common case on a PROFINET network:
// cyclic real-time frames every millisecond, which are counted and
// passed over.
func BenchmarkProfinetCyclic(b *testing.B) {
	p := dcpPkt(0, macCtrl, macDev1, append([]byte{0x80, 0x00}, make([]byte, 40)...))
	tb := NewTable(Config{}, nil)
	b.ReportAllocs()
	for i := range b.N {
		p.TS = t0.Add(time.Duration(i) * time.Millisecond)
		tb.Add(p)
	}
}
