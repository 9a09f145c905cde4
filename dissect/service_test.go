package dissect

import (
	"encoding/binary"
	"testing"
)

// dhcpDiscover is a real DHCP discover (pcap/edge/zeek-tunnels-Teredo.pcap).
var dhcpDiscover = mustHex("" +
	"01010600601b69bc0000000000000000000000000000000000000000001ae99d53b7" + zeros(202) +
	"638253633501033d0701001ae99d53b73204c0a802120c0357696937060103060f1c21ff" + zeros(27))

func zeros(n int) string {
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

// tcpFramed prefixes a DNS message with its RFC 1035 4.2.2 length.
func tcpFramed(m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...)
}

// ntp builds a 48-byte NTP header with a transmit timestamp.
func ntp(version, mode, stratum, poll byte) []byte {
	b := make([]byte, 48)
	b[0] = version<<3 | mode
	b[1], b[2], b[3] = stratum, poll, 0xe9
	copy(b[40:], []byte{0xe9, 0x3a, 0x1b, 0x2c, 0x11, 0x22, 0x33, 0x44})
	return b
}

func quicInitial(version uint32, size int) []byte {
	b := []byte{0xc3}
	b = binary.BigEndian.AppendUint32(b, version)
	b = append(b, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0)
	return append(b, make([]byte, size-len(b))...)
}

func TestService(t *testing.T) {
	// mstsc's X.224 Connection Request with cookie and RDP_NEG_REQ.
	rdpCookie := append([]byte{0x03, 0x00, 0x00, 0x2b, 0x26, 0xe0, 0, 0, 0, 0, 0}, []byte("Cookie: mstshash=administr\r\n")...)
	rdpCookie = append(rdpCookie, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00)
	rdpNeg := []byte{0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x08, 0x00, 0x0b, 0x00, 0x00, 0x00}
	// SMB2 NEGOTIATE in a NetBIOS session message.
	smb2 := append([]byte{0x00, 0x00, 0x00, 0x66, 0xfe, 'S', 'M', 'B', 64, 0}, make([]byte, 0x62-4)...)
	smb1 := append([]byte{0x00, 0x00, 0x00, 0x54, 0xff, 'S', 'M', 'B', 0x72}, make([]byte, 0x50)...)
	mqtt311 := append([]byte{0x10, 0x16, 0x00, 0x04}, []byte("MQTT\x04\x02\x00\x3c\x00\x0acrane-plc1")...)
	mqtt31 := append([]byte{0x10, 0x18, 0x00, 0x06}, []byte("MQIsdp\x03\x02\x00\x3c\x00\x0acrane-plc1")...)
	sipInvite := []byte("INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n")
	dnsQueryTCP := tcpFramed(dnsExfQuery)

	tests := []struct {
		name       string
		proto      string
		orig, resp []byte
		want       string
	}{
		// DNS, from the corpus, both transports and either direction alone.
		{"dns query", "udp", dnsExfQuery, nil, "dns"},
		{"dns query+response", "udp", dnsExfQuery, dnsAppleResp, "dns"},
		{"dns response only", "udp", nil, dnsTeredoResp, "dns"},
		{"dns fragmented txt", "udp", nil, dnsFragTXT, "dns"},
		{"dns over tcp", "tcp", dnsQueryTCP, tcpFramed(dnsDnscatMX), "dns"},
		{"dns over tcp cut after question", "tcp", dnsQueryTCP[:len(dnsQueryTCP)-10], nil, "dns"},
		{"dns over tcp cut in question", "tcp", dnsQueryTCP[:40], nil, ""},
		// TLS, HTTP from the corpus.
		{"tls client hello", "tcp", helloSlips, serverSlips, "ssl"},
		{"tls hello split records", "tcp", split(helloSlips, 100), nil, "ssl"},
		{"tls server hello only", "tcp", nil, serverEmotet, "ssl"},
		{"http get", "tcp", []byte(reqVLAN), []byte(respVLAN), "http"},
		{"http post", "tcp", []byte(reqTrickbotHead), nil, "http"},
		{"http response only", "tcp", nil, []byte(respVLAN), "http"},
		// SMTP from pcap/c2/ndpi-emotet.pcap and zeek-communityid-ipv6.pcap.
		{"smtp ehlo", "tcp", []byte("EHLO [173.66.46.97]\r\n"), []byte("220 opmta1mto02nd1 smtp.orange.fr ESMTP server ready\r\n"), "smtp"},
		{"smtp blank line first", "tcp", []byte("\r\n"), []byte("220 mx.google.com ESMTP m17si1051593vck.2 - gsmtp\r\n"), "smtp"},
		{"smtp helo plain banner", "tcp", []byte("HELO client\r\n"), []byte("220 mail ready\r\n"), "smtp"},
		{"ftp", "tcp", []byte("USER anonymous\r\n"), []byte("220 (vsFTPd 3.0.3)\r\n"), "ftp"},
		{"ssh", "tcp", []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"), []byte("SSH-2.0-OpenSSH_8.9\r\n"), "ssh"},
		{"ssh server banner only", "tcp", nil, []byte("SSH-1.99-Cisco-1.25\r\n"), "ssh"},
		{"pop3", "tcp", []byte("CAPA\r\n"), []byte("+OK Dovecot ready.\r\n"), "pop3"},
		{"imap", "tcp", []byte("a001 CAPABILITY\r\n"), []byte("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n"), "imap"},
		{"imap tagged login", "tcp", []byte("A1 LOGIN joe secret\r\n"), []byte("* OK ready\r\n"), "imap"},
		{"rdp cookie", "tcp", rdpCookie, nil, "rdp"},
		{"rdp negotiation", "tcp", rdpNeg, nil, "rdp"},
		{"smb2", "tcp", smb2, nil, "smb"},
		{"smb1", "tcp", smb1, nil, "smb"},
		{"mqtt 3.1.1", "tcp", mqtt311, []byte{0x20, 0x02, 0x00, 0x00}, "mqtt"},
		{"mqtt 3.1", "tcp", mqtt31, nil, "mqtt"},
		{"sip udp", "udp", sipInvite, nil, "sip"},
		{"sip tcp", "tcp", sipInvite, nil, "sip"},
		{"sip response udp", "udp", nil, []byte("SIP/2.0 200 OK\r\n"), "sip"},
		{"ntp client/server", "udp", ntp(4, 3, 0, 6), ntp(4, 4, 2, 6), "ntp"},
		{"ntp client alone", "udp", ntp(3, 3, 0, 10), nil, "ntp"},
		{"dhcp", "udp", dhcpDiscover, nil, "dhcp"},
		{"quic v1", "udp", quicInitial(1, 1252), nil, "quic"},
		{"quic gquic Q050", "udp", quicInitial(0x51303530, 1350), nil, "quic"},

		// Conservative: none of these may be labelled.
		{"empty", "tcp", nil, nil, ""},
		{"unknown proto", "icmp", dnsExfQuery, nil, ""},
		{"dns on tcp unframed", "tcp", dnsExfQuery, nil, ""},
		{"tls on udp", "udp", helloSlips, nil, ""},
		{"http on udp", "udp", []byte(reqVLAN), nil, ""},
		{"ntp mode 0 (fragment test)", "udp", make([]byte, 48), nil, ""},
		{"ntp mode mismatch", "udp", ntp(4, 3, 0, 6), ntp(4, 3, 0, 6), ""},
		{"ntp 47 bytes", "udp", ntp(4, 3, 0, 6)[:47], nil, ""},
		{"quic initial under 1200", "udp", quicInitial(1, 600), nil, ""},
		{"quic unknown version", "udp", quicInitial(0x12345678, 1252), nil, ""},
		{"redis +OK is not pop3", "tcp", []byte("AUTH secret\r\n"), []byte("+OK\r\n"), ""},
		{"220 without client verb", "tcp", []byte("xyz\r\n"), []byte("220 ready\r\n"), ""},
		{"smb wrong magic", "tcp", append([]byte{0, 0, 0, 0x40, 0xfe, 'S', 'M', 'C'}, make([]byte, 60)...), nil, ""},
		{"rdp length mismatch", "tcp", rdpNeg[:18], nil, ""},
		{"mqtt wrong level", "tcp", append([]byte{0x10, 0x16, 0x00, 0x04}, []byte("MQTT\x09\x02\x00\x3c")...), nil, ""},
		{"random text", "tcp", []byte("hello there\r\n"), []byte("hi\r\n"), ""},
		{"http lowercase", "tcp", []byte("get / HTTP/1.1\r\n\r\n"), nil, ""},
		{"rtsp", "tcp", []byte("OPTIONS rtsp://cam/ RTSP/1.0\r\nCSeq: 1\r\n\r\n"), nil, ""},
		// Modbus/TCP read request, ENIP list identity: no OT labels here.
		{"modbus", "tcp", []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x0a}, nil, ""},
		{"enip list identity", "udp", []byte{0x63, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, ""},
		{"dns with 2 questions", "udp", func() []byte {
			b := append([]byte(nil), dnsExfQuery...)
			b[5] = 2
			return b
		}(), nil, ""},
		{"dns query with stray bytes", "udp", append(append([]byte(nil), dnsHeader(0x0100, 1, 0, 0, 0)...), 1, 'a', 0, 0, 1, 0, 1, 0xde, 0xad), nil, ""},
		{"dns bad class", "udp", append(append([]byte(nil), dnsHeader(0x0100, 1, 0, 0, 0)...), 1, 'a', 0, 0, 1, 0, 9), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Service(tt.proto, tt.orig, tt.resp); got != tt.want {
				t.Errorf("Service(%s) = %q, want %q", tt.proto, got, tt.want)
			}
		})
	}
}

func FuzzService(f *testing.F) {
	seeds := [][2][]byte{
		{dnsExfQuery, dnsAppleResp}, {tcpFramed(dnsExfQuery), nil}, {helloSlips, serverSlips},
		{[]byte(reqVLAN), []byte(respVLAN)}, {[]byte("EHLO x\r\n"), []byte("220 ESMTP\r\n")},
		{[]byte("SSH-2.0-x\r\n"), nil}, {dhcpDiscover, nil}, {ntp(4, 3, 0, 6), ntp(4, 4, 2, 6)},
		{quicInitial(1, 1200), nil}, {[]byte{0x10, 0x16, 0x00, 0x04, 'M', 'Q', 'T', 'T', 4}, nil},
	}
	for _, s := range seeds {
		f.Add(true, s[0], s[1])
		f.Add(false, s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, udp bool, orig, resp []byte) {
		proto := "tcp"
		if udp {
			proto = "udp"
		}
		_ = Service(proto, orig, resp)
	})
}

func BenchmarkService(b *testing.B) {
	cases := []struct {
		name       string
		proto      string
		orig, resp []byte
	}{
		{"dns", "udp", dnsExfQuery, dnsAppleResp},
		{"tls", "tcp", helloSlips, serverSlips},
		{"http", "tcp", []byte(reqVLAN), []byte(respVLAN)},
		{"unknown-tcp", "tcp", []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x0a}, []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x01, 0x03, 0x02, 0x00, 0x00}},
		{"unknown-udp", "udp", make([]byte, 200), make([]byte, 200)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Service(c.proto, c.orig, c.resp)
			}
		})
	}
}
