package pcap

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// dcpIdentify is a PROFINET DCP Identify-All request as IEC 61158-6-10
// lays it out: FrameID 0xfefe, service 5 (identify), type 0 (request),
// Xid, response delay, data length, then the All Selector block (0xff/0xff).
var dcpIdentify = []byte{0xfe, 0xfe, 0x05, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x01, 0x00, 0x04, 0xff, 0xff, 0x00, 0x00}

func TestDecodeProfinet(t *testing.T) {
	padded := cat(dcpIdentify, make([]byte, 46-len(dcpIdentify))) // Ethernet minimum
	gre := ipv4("10.1.1.1", "10.2.2.2", 47, cat([]byte{0, 0, 0x65, 0x58}, eth(0x8892, dcpIdentify)))
	sll := cat([]byte{0, 0, 0, 1, 0, 6}, macA, []byte{0, 0, 0x88, 0x92}, dcpIdentify)
	tests := []struct {
		name    string
		link    int
		frame   []byte
		want    verdict
		payload []byte
		vlan    uint16
		tunnel  string
		hasMAC  bool
	}{
		{name: "ethernet", link: 1, frame: eth(0x8892, dcpIdentify), want: vL2, payload: dcpIdentify, hasMAC: true},
		{name: "padding kept", link: 1, frame: eth(0x8892, padded), want: vL2, payload: padded, hasMAC: true},
		{name: "vlan with priority", link: 1, frame: eth(0x8100, cat(vlanTag(0xc000|42, 0x8892), dcpIdentify)), want: vL2, payload: dcpIdentify, vlan: 42, hasMAC: true},
		{name: "qinq", link: 1, frame: eth(0x88a8, cat(vlanTag(10, 0x8100), vlanTag(20, 0x8892), dcpIdentify)), want: vL2, payload: dcpIdentify, vlan: 20, hasMAC: true},
		{name: "llc snap", link: 1, frame: cat(macB, macA, []byte{0, byte(8 + len(dcpIdentify))}, []byte{0xaa, 0xaa, 3, 0, 0, 0, 0x88, 0x92}, dcpIdentify), want: vL2, payload: dcpIdentify, hasMAC: true},
		{name: "gre transparent ethernet", link: 101, frame: gre, want: vL2, payload: dcpIdentify, tunnel: "gre", hasMAC: true},
		{name: "sll has no macs", link: 113, frame: sll, want: vL2, payload: dcpIdentify},
		{name: "runt is still a frame", link: 1, frame: eth(0x8892, []byte{0xfe}), want: vL2, payload: []byte{0xfe}, hasMAC: true},
		{name: "empty", link: 1, frame: eth(0x8892, nil), want: vL2, payload: []byte{}, hasMAC: true},
		{name: "lldp stays non-ip", link: 1, frame: eth(0x88cc, make([]byte, 30)), want: vNonIP},
		{name: "cut vlan tag", link: 1, frame: eth(0x8100, []byte{0, 42}), want: vTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st Stats
			d := decoder{frag: newReassembler(Options{MaxFragments: 8, MaxFragmentBytes: 70000, FragmentTimeout: time.Second}, &st)}
			var p Packet
			if v := d.decode(&p, tc.link, 0, tc.frame); v != tc.want {
				t.Fatalf("verdict %d, want %d", v, tc.want)
			}
			if tc.want != vL2 {
				if p.EtherType != 0 {
					t.Errorf("EtherType %#x on a frame not returned", p.EtherType)
				}
				return
			}
			if p.EtherType != EtherTypePROFINET || p.Src.IsValid() || p.Dst.IsValid() || p.Proto != 0 || p.SrcPort != 0 {
				t.Errorf("ethertype %#x src %v dst %v proto %d port %d", p.EtherType, p.Src, p.Dst, p.Proto, p.SrcPort)
			}
			if string(p.Payload) != string(tc.payload) || p.PayloadLen != len(tc.payload) || p.IPLen != len(tc.payload) {
				t.Errorf("payload % x (len %d, iplen %d), want % x", p.Payload, p.PayloadLen, p.IPLen, tc.payload)
			}
			if p.VLAN != tc.vlan || p.Tunnel != tc.tunnel || p.HasMAC != tc.hasMAC {
				t.Errorf("vlan %d tunnel %q mac %v, want %d %q %v", p.VLAN, p.Tunnel, p.HasMAC, tc.vlan, tc.tunnel, tc.hasMAC)
			}
			if tc.hasMAC && (p.SrcMAC != [6]byte(macA) || p.DstMAC != [6]byte(macB)) {
				t.Errorf("macs %x > %x", p.SrcMAC, p.DstMAC)
			}
		})
	}
}

// TestReaderProfinet reads a capture file mixing DCP, ARP and IP: the DCP
// frames come out in time order with their own counter, nothing is
// called malformed, and the IP packet is unaffected.
func TestReaderProfinet(t *testing.T) {
	dir := t.TempDir()
	u := udpFrame("10.0.0.1", "10.0.0.2", 1, "x")
	path := writeFile(t, dir, "dcp.pcap", pcapFile(binary.LittleEndian, false, 1,
		rec{ts: t0, data: eth(0x8892, dcpIdentify)},
		rec{ts: t0 + 1e6, data: eth(0x0806, make([]byte, 28))},
		rec{ts: t0 + 2e6, data: u},
		rec{ts: t0 + 3e6, data: eth(0x8100, cat(vlanTag(7, 0x8892), []byte{0x80, 0x00, 1, 2, 3}))},
	))
	r := NewReader([]string{path}, Options{})
	defer r.Close()
	var ets []uint16
	var vlans []uint16
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Input != path || p.TS.IsZero() {
			t.Errorf("input %q ts %v", p.Input, p.TS)
		}
		ets = append(ets, p.EtherType)
		vlans = append(vlans, p.VLAN)
	}
	if len(ets) != 3 || ets[0] != 0x8892 || ets[1] != 0 || ets[2] != 0x8892 || vlans[2] != 7 {
		t.Errorf("ethertypes %x vlans %v, want [8892 0 8892] with VLAN 7 last", ets, vlans)
	}
	st := r.Stats()
	if st.Packets != 4 || st.IP != 1 || st.L2 != 2 || st.NonIP != 1 || st.Malformed != 0 || st.Truncated != 0 {
		t.Errorf("stats %+v", st)
	}
	if errs := r.Errors(); len(errs) != 0 {
		t.Errorf("errors %v", errs)
	}
}
