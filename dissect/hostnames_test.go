package dissect

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

// dhcpMsg builds a BOOTP/DHCP message: op, message type, ciaddr, yiaddr,
// chaddr and extra raw options (code, len, value...).
func dhcpMsg(op, msgType byte, ciaddr, yiaddr string, mac []byte, opts ...[]byte) []byte {
	b := make([]byte, dhcpOptions)
	b[0], b[1], b[2] = op, 1, 6
	copy(b[dhcpCIAddr:], netip.MustParseAddr(ciaddr).AsSlice())
	copy(b[dhcpYIAddr:], netip.MustParseAddr(yiaddr).AsSlice())
	copy(b[dhcpCHAddr:], mac)
	binary.BigEndian.PutUint32(b[dhcpCookie:], 0x63825363)
	if msgType != 0 {
		b = append(b, dhcpOptMsgType, 1, msgType)
	}
	for _, o := range opts {
		b = append(b, o...)
	}
	return append(b, 255)
}

func opt(code byte, v []byte) []byte { return append([]byte{code, byte(len(v))}, v...) }

var mac1 = []byte{0x00, 0x1b, 0x1b, 0x12, 0x34, 0x56}

// nbEncode is RFC 1001 first-level encoding of a 15-character name and suffix.
func nbEncode(name string, suffix byte) []byte {
	raw := []byte(fmt.Sprintf("%-15s", name))
	raw = append(raw[:15], suffix)
	out := []byte{nbnsLabelLen}
	for _, c := range raw {
		out = append(out, 'A'+c>>4, 'A'+c&0xf)
	}
	return append(out, 0)
}

// nbns builds a NetBIOS name service message with one question and one NB
// record (in the answer section for responses, additional for requests).
func nbns(flags uint16, name string, suffix byte, nbFlags uint16, addr string) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, 0x1234)
	binary.BigEndian.PutUint16(b[2:], flags)
	resp := flags&0x8000 != 0
	if resp {
		binary.BigEndian.PutUint16(b[6:], 1) // answer, no question
	} else {
		binary.BigEndian.PutUint16(b[4:], 1)
		binary.BigEndian.PutUint16(b[10:], 1)
		b = append(b, nbEncode(name, suffix)...)
		b = append(b, 0, typeNB, 0, 1)
	}
	if resp {
		b = append(b, nbEncode(name, suffix)...)
	} else {
		b = append(b, 0xc0, 12) // pointer to the question's name
	}
	b = append(b, 0, typeNB, 0, 1, 0, 0, 0x0e, 0x10, 0, 6)
	b = binary.BigEndian.AppendUint16(b, nbFlags)
	return append(b, netip.MustParseAddr(addr).AsSlice()...)
}

// mdnsResp builds an mDNS response with an A record for name.
func mdnsResp(id, flags uint16, name, addr string) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[6:], 1)
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0, 0, typeA, 0x80, 1, 0, 0, 0, 120, 0, 4)
	return append(b, netip.MustParseAddr(addr).AsSlice()...)
}

func TestHostNames(t *testing.T) {
	const (
		regFlags  = opRegister<<11 | 0x0110 // registration, RD, broadcast
		respFlags = 0x8000 | 0x0400 | 0x0100
	)
	for _, tc := range []struct {
		name       string
		proto      string
		orig, resp []byte
		want       []string // "addr|mac|name|source"
	}{
		{"dhcp request: requested address", "udp",
			dhcpMsg(1, dhcpTypeRequest, "0.0.0.0", "0.0.0.0", mac1, opt(dhcpOptRequested, []byte{10, 20, 32, 11}), opt(dhcpOptHostName, []byte("crane-plc-01"))), nil,
			[]string{"10.20.32.11|00:1b:1b:12:34:56|crane-plc-01|dhcp"}},
		{"dhcp renew: ciaddr", "udp",
			dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("hmi\x00"))), nil,
			[]string{"10.0.0.7|00:1b:1b:12:34:56|hmi|dhcp"}},
		{"dhcp discover: MAC only", "udp",
			dhcpMsg(1, dhcpTypeDiscover, "0.0.0.0", "0.0.0.0", mac1, opt(dhcpOptRequested, []byte{10, 0, 0, 9}), opt(dhcpOptHostName, []byte("laptop"))), nil,
			[]string{"invalid IP|00:1b:1b:12:34:56|laptop|dhcp"}},
		{"dhcp ack: assigned address, reply direction", "udp", nil,
			dhcpMsg(2, dhcpTypeAck, "0.0.0.0", "192.168.1.50", mac1, opt(dhcpOptHostName, []byte("scanner"))),
			[]string{"192.168.1.50|00:1b:1b:12:34:56|scanner|dhcp"}},
		{"dhcp fqdn wire form besides host name", "udp",
			dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("ews")),
				opt(dhcpOptFQDN, append([]byte{0x05, 0, 0}, "\x03ews\x04corp\x00"...))), nil,
			[]string{"10.0.0.7|00:1b:1b:12:34:56|ews|dhcp", "10.0.0.7|00:1b:1b:12:34:56|ews.corp|dhcp"}},
		{"dhcp split host name option (RFC 3396)", "udp",
			dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("crane-")), opt(dhcpOptHostName, []byte("hmi"))), nil,
			[]string{"10.0.0.7|00:1b:1b:12:34:56|crane-hmi|dhcp"}},
		{"dhcp name with control bytes refused", "udp",
			dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("evil\nname"))), nil, nil},
		{"dhcp without names", "udp", dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1), nil, nil},
		{"dhcp cut option keeps earlier ones", "udp",
			append(dhcpMsg(1, dhcpTypeInform, "10.0.0.8", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("wms")))[:dhcpOptions+3+5], dhcpOptFQDN, 40, 1), nil,
			[]string{"10.0.0.8|00:1b:1b:12:34:56|wms|dhcp"}},
		{"not over tcp", "tcp", dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptHostName, []byte("x"))), nil, nil},
		{"netbios registration", "udp", nbns(regFlags, "CRANE-HMI-01", 0x00, 0x6000, "10.20.32.21"), nil,
			[]string{"10.20.32.21||CRANE-HMI-01|netbios"}},
		{"netbios positive response", "udp", nil, nbns(respFlags, "EWS01", 0x20, 0, "10.0.5.5"),
			[]string{"10.0.5.5||EWS01|netbios"}},
		{"netbios group name skipped", "udp", nbns(regFlags, "WORKGROUP", 0x00, 0x8000, "10.0.5.5"), nil, nil},
		{"netbios domain-controller suffix skipped", "udp", nbns(regFlags, "CORP", 0x1c, 0, "10.0.5.5"), nil, nil},
		{"netbios query is not the sender's name", "udp", func() []byte {
			b := nbns(regFlags, "IPV6.GOOGLE.COM", 0, 0, "0.0.0.0")
			binary.BigEndian.PutUint16(b[2:], 0x0110) // opcode query
			return b
		}(), nil, nil},
		{"mdns response", "udp", mdnsResp(0, 0x8400, "Art-Teachers-iPad.local", "172.17.156.80"), nil,
			[]string{"172.17.156.80||Art-Teachers-iPad.local|mdns"}},
		{"unicast dns answer for a .local name is not mdns", "udp", nil, mdnsResp(0x4d2, 0x8580, "wms-01.elbkai.local", "10.20.0.11"), nil},
		{"mdns non-local name skipped", "udp", mdnsResp(0, 0x8400, "example.com", "1.2.3.4"), nil, nil},
		{"short", "udp", []byte{0, 0, 0x84}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := HostNames(tc.proto, tc.orig, tc.resp)
			var gs []string
			for _, h := range got {
				gs = append(gs, fmt.Sprintf("%s|%s|%s|%s", h.Addr, h.MAC, h.Name, h.Source))
			}
			if strings.Join(gs, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("HostNames =\n%s\nwant\n%s", strings.Join(gs, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeNetBIOS(t *testing.T) {
	for _, tc := range []struct {
		enc    string
		name   string
		suffix byte
		ok     bool
	}{
		{"EJFAFGDGCOEHEPEPEHEMEFCOEDEPENAA", "IPV6.GOOGLE.COM", 0x00, true}, // from the Teredo corpus capture
		{"FHEPFCELEHFCEPFFFACACACACACACAAA", "WORKGROUP", 0x00, true},
		{"EDFCEBEOEFCNEIENEJCNDADBCACACACA", "CRANE-HMI-01", 0x20, true},
		{"EJFAFGDGCOEHEPEPEHEMEFCOEDEPENA", "", 0, false},  // 31 letters
		{"EJFAFGDGCOEHEPEPEHEMEFCOEDEPENAZ", "", 0, false}, // Z is no nibble
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", 0, false}, // NUL bytes: no name
	} {
		name, suffix, ok := decodeNetBIOS([]byte(tc.enc))
		if name != tc.name || ok != tc.ok || (ok && suffix != tc.suffix) {
			t.Errorf("decodeNetBIOS(%s) = %q %#x %v, want %q %#x %v", tc.enc, name, suffix, ok, tc.name, tc.suffix, tc.ok)
		}
	}
}

// TestHostNamesCorpus checks the names against tshark's dissection of the
// DHCP, NetBIOS and mDNS packets in the corpus: the Wii's DHCP request in
// the Teredo capture (with three NetBIOS name queries, which name nobody)
// and an iPad's mDNS announcement in the radiotap one.
func TestHostNamesCorpus(t *testing.T) {
	root := corpus.Path(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: the corpus cross-check needs it")
	}
	var got []string
	for _, f := range []string{"pcap/edge/zeek-tunnels-Teredo.pcap", "pcap/edge/zeek-radiotap.pcap"} {
		out, err := exec.Command(tshark, "-n", "-r", filepath.Join(root, f), "-Y", "dhcp || nbns || mdns",
			"-T", "fields", "-e", "udp.payload").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", f, err)
		}
		for _, ln := range strings.Fields(string(out)) {
			b, err := hex.DecodeString(strings.ReplaceAll(ln, ":", ""))
			if err != nil {
				t.Fatalf("%s: payload %q: %v", f, ln, err)
			}
			for _, h := range HostNames("udp", b, nil) {
				got = append(got, fmt.Sprintf("%s|%s|%s|%s", h.Addr, h.MAC, h.Name, h.Source))
			}
		}
	}
	// tshark: frame 26 dhcp.option.hostname=Wii, dhcp.hw.mac_addr=00:1a:e9:9d:53:b7,
	// requested 192.168.2.18, type Request; radiotap frame 3: A record
	// Art-Teachers-iPad.local -> 172.17.156.80 (its other records are PTR
	// and AAAA of fe80::a667:6ff:fef7:ec54).
	want := []string{
		"192.168.2.18|00:1a:e9:9d:53:b7|Wii|dhcp",
		"fe80::a667:6ff:fef7:ec54||Art-Teachers-iPad.local|mdns",
		"172.17.156.80||Art-Teachers-iPad.local|mdns",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("corpus host names:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func FuzzHostNames(f *testing.F) {
	f.Add(dhcpMsg(1, dhcpTypeRequest, "0.0.0.0", "0.0.0.0", mac1, opt(dhcpOptRequested, []byte{10, 20, 32, 11}), opt(dhcpOptHostName, []byte("plc"))), true)
	f.Add(dhcpMsg(1, dhcpTypeRequest, "10.0.0.7", "0.0.0.0", mac1, opt(dhcpOptFQDN, append([]byte{0x05, 0, 0}, "\x03ews\x04corp\x00"...))), true)
	f.Add(nbns(opRegister<<11, "HMI", 0, 0, "10.0.0.1"), true)
	f.Add(nbns(0x8500, "HMI", 0x20, 0, "10.0.0.1"), false)
	f.Add(mdnsResp(0, 0x8400, "a.local", "10.0.0.2"), true)
	f.Fuzz(func(t *testing.T, b []byte, asOrig bool) {
		var hs []cw.HostName
		if asOrig {
			hs = HostNames("udp", b, nil)
		} else {
			hs = HostNames("udp", nil, b)
		}
		if len(hs) > maxHostNames {
			t.Fatalf("%d names, cap %d", len(hs), maxHostNames)
		}
		for _, h := range hs {
			if h.Name == "" || strings.ContainsAny(h.Name, " \n\r\t\x00") {
				t.Fatalf("bad name %q", h.Name)
			}
		}
	})
}
