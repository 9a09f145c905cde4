package dissect

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// Real DNS messages extracted with tshark (udp.payload) from the shared
// corpus. The expected values below are tshark's and Zeek's readings of
// the same packets, not this parser's output.
var (
	// pcap/edge/zeek-tunnels-Teredo.pcap: AAAA ipv6.google.com answered by
	// a CNAME and an AAAA, then 7 NS and 7 glue records.
	dnsTeredoResp = mustHex("" +
		"426381800001000200070007046970763606676f6f676c6503636f6d00001c0001046970763606676f6f676c6503636f" +
		"6d0000050001000021cf00090469707636016cc026c03c001c00010000012c0010200148600000200100000000000000" +
		"68c041000200010001306300040161c041c041000200010001306300040162c041c041000200010001306300040163c0" +
		"41c041000200010001306300040164c041c041000200010001306300040165c041c041000200010001306300040166c0" +
		"41c041000200010001306300040167c041c06d000100010000258f0004d1558b09c07d000100010000266c000440e9b3" +
		"09c08d000100010001248f000440e9a109c09d0001000100012649000442f95d09c0ad00010001000026690004d15589" +
		"09c0bd00010001000126490004480eeb09c0cd0001000100010a56000440e9a709")
	// pcap/edge/zeek-pcapng-multi-interface.pcapng: a CNAME chain to an A,
	// with an EDNS OPT record.
	dnsAppleResp = mustHex("" +
		"4fe88180000100040000000103777777056170706c6503636f6d0000010001c00c000500010000010f001a0d7777772d" +
		"6170706c652d636f6d0176076161706c696d67c016c02b000500010000010f001b03777777056170706c6503636f6d07" +
		"656467656b6579036e657400c051000500010000010f00190565363835380564736365390a616b616d616965646765c0" +
		"67c0780001000100000009000417c2651800002904d0000000000000")
	// pcap/dns/ndpi-dns-exf.pcap: a base64 exfiltration query.
	dnsExfQuery = mustHex("" +
		"ffd5012000010000000000013a48347349434e30332a3251414133526c63335175644868304141764a79437857414b4a" +
		"4568654c55354b4c55456f57307a4a78554c674167652d0c3453324667414141413d3d2d047465737403747874000001" +
		"0001000029100000000000000c000a000881b62daae7b17645")
	// pcap/dns/ndpi-dns_exfiltration.pcap: dnscat2 CNAME and MX replies.
	dnsDnscatCNAME = mustHex("" +
		"7d1a8180000100010000000006646e736361743c39316630303366353030663631323231383130616561303030303034" +
		"383633633639313538306563616436366636346163376464623837623839633726393230303832316535323764346531" +
		"37363332353363323565323937653261613431313364300000050001c00c000500010000003c006c06646e736361743f" +
		"396236313033663530306565653230623135313566646666666662353538326462636238633630383838373639323161" +
		"346236313364643932343232356435233334623833643336663262356265343963333334646233333033326164363138" +
		"65373500")
	dnsDnscatMX = mustHex("" +
		"391d8180000100010000000006646e736361743c35343662303366353030303030303030303061363032336564346466" +
		"31383464366163356332363238623437373134666465653538346665643733393c356130336235623165316161386638" +
		"6664623162626538643565303439353231343166376434663832633765336230366463633862383766616437611a3139" +
		"65346430393864633863363138663864383163666562303200000f0001c00c000f00010000003c009f000a06646e7363" +
		"61743f323031663033663530303030303030303030373133623932373166303131646337363432336461623339326333" +
		"3263313862666339366236643236393561323f3661393131633934343732663539343039613566353236303133653736" +
		"303139333636613037373932396533343830666265366437633465646136663930381466326263393961363031653161" +
		"3832323133333600")
	// pcap/edge/zeek-ipv6-fragmented-dns.pcap (reassembled): TXT padding;
	// Zeek's baseline dns.log lists its strings and TTL 1.
	dnsFragTXT = mustHex("" +
		"0f3f850000010001000100020e74787470616464696e675f333233026e31086e6574616c797a72046963736908626572" +
		"6b656c6579036564750000100001c00c001000010000000100c1215468697320545854207265636f72642073686f756c" +
		"642062652069676e6f726564154173206974206973206a7573742070616464696e678858585858585858585858585858" +
		"585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858" +
		"585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858585858" +
		"585858585858585858585858585858585858585858585858585858c01b0002000100000064001106726f6c616e640469" +
		"636972036f7267000000291000000080000000c11700010001000000640004c096bb1f")
	// pcap/c2/slips-test-cc-capture-2.pcap: NOERROR without answers (SOA in
	// the authority section).
	dnsNoAnswer = mustHex("" +
		"42cb818000010000000100010774657374696e6703636f6d00001c0001c00c00060001000006ed002f046b61726c026e" +
		"730a636c6f7564666c617265c01403646e73c0318afc0889000027100000096000093a800000070800002904d0000000" +
		"000000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDNSMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		resp    bool
		id      uint16
		query   string
		qtype   uint16
		rcode   int
		answers []string
		ttls    []uint32
	}{
		{"teredo aaaa", dnsTeredoResp, true, 0x4263, "ipv6.google.com", 28, 0,
			[]string{"ipv6.l.google.com", "2001:4860:0:2001::68"}, []uint32{8655, 300}},
		{"apple cname chain", dnsAppleResp, true, 0x4fe8, "www.apple.com", 1, 0,
			[]string{"www-apple-com.v.aaplimg.com", "www.apple.com.edgekey.net", "e6858.dsce9.akamaiedge.net", "23.194.101.24"},
			[]uint32{271, 271, 271, 9}},
		{"exfil query", dnsExfQuery, false, 0xffd5,
			"H4sICN03*2QAA3Rlc3QudHh0AAvJyCxWAKJEheLU5KLUEoW0zJxULgAge-.4S2FgAAAA==-.test.txt", 1, -1, nil, nil},
		{"dnscat cname", dnsDnscatCNAME, true, 0x7d1a,
			"dnscat.91f003f500f61221810aea000004863c691580ecad66f64ac7ddb87b89c7.9200821e527d4e1763253c25e297e2aa4113d0", 5, 0,
			[]string{"dnscat.9b6103f500eee20b1515fdffffb5582dbcb8c6088876921a4b613dd924225d5.34b83d36f2b5be49c334db33032ad618e75"},
			[]uint32{60}},
		{"dnscat mx", dnsDnscatMX, true, 0x391d,
			"dnscat.546b03f50000000000a6023ed4df184d6ac5c2628b47714fdee584fed739.5a03b5b1e1aa8f8fdb1bbe8d5e04952141f7d4f82c7e3b06dcc8b87fad7a.19e4d098dc8c618f8d81cfeb02", 15, 0,
			[]string{"dnscat.201f03f50000000000713b9271f011dc76423dab392c32c18bfc96b6d2695a2.6a911c94472f59409a5f526013e76019366a077929e3480fbe6d7c4eda6f908.f2bc99a601e1a8221336"},
			[]uint32{60}},
		{"fragmented txt", dnsFragTXT, true, 3903, "txtpadding_323.n1.netalyzr.icsi.berkeley.edu", 16, 0,
			[]string{"This TXT record should be ignored As it is just padding " + strings.Repeat("X", 136)}, []uint32{1}},
		{"no answer", dnsNoAnswer, true, 0x42cb, "testing.com", 28, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, resp, err := DNSMessage(tt.in)
			if err != nil {
				t.Fatalf("DNSMessage: %v", err)
			}
			if resp != tt.resp || m.TransID != tt.id || m.Query != tt.query || m.QType != tt.qtype || m.QClass != 1 || m.RCode != tt.rcode {
				t.Errorf("got resp=%v id=%#x query=%q qtype=%d qclass=%d rcode=%d", resp, m.TransID, m.Query, m.QType, m.QClass, m.RCode)
			}
			if !slices.Equal(m.Answers, tt.answers) || !slices.Equal(m.TTLs, tt.ttls) {
				t.Errorf("answers %q ttls %v, want %q %v", m.Answers, m.TTLs, tt.answers, tt.ttls)
			}
			wantQ, wantR := len(tt.in), 0
			if resp {
				wantQ, wantR = 0, len(tt.in)
			}
			if m.QueryLen != wantQ || m.RespLen != wantR {
				t.Errorf("QueryLen %d RespLen %d, want %d %d", m.QueryLen, m.RespLen, wantQ, wantR)
			}
		})
	}
}

// dnsHeader builds a header with the given flags and counts.
func dnsHeader(flags uint16, qd, an, ns, ar uint16) []byte {
	return []byte{0x12, 0x34, byte(flags >> 8), byte(flags), byte(qd >> 8), byte(qd), byte(an >> 8), byte(an), byte(ns >> 8), byte(ns), byte(ar >> 8), byte(ar)}
}

func TestDNSMessageHostile(t *testing.T) {
	q := func(name []byte) []byte { return append(append(dnsHeader(0x0100, 1, 0, 0, 0), name...), 0, 1, 0, 1) }
	long := []byte{}
	for range 5 {
		long = append(long, 63)
		long = append(long, strings.Repeat("a", 63)...)
	}
	long = append(long, 0)
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		query   string
	}{
		{"empty", nil, ErrShort, ""},
		{"short header", dnsHeader(0, 1, 0, 0, 0)[:11], ErrShort, ""},
		{"self pointer", q([]byte{0xc0, 12}), ErrMalformed, ""},
		{"forward pointer", q([]byte{0xc0, 40}), ErrMalformed, ""},
		{"pointer loop via label", q([]byte{1, 'a', 0xc0, 12}), ErrMalformed, ""},
		{"name over 255", q(long), ErrMalformed, ""},
		{"label type 0x40", q([]byte{0x41, 'a', 0}), ErrMalformed, ""},
		{"label past end", dnsHeader(0, 1, 0, 0, 0), ErrShort, ""},
		{"question cut", append(dnsHeader(0, 1, 0, 0, 0), 1, 'a', 0, 0), ErrShort, ""},
		{"odd bytes escaped", q([]byte{3, 'a', 0x00, '.', 2, '\\', 0xff, 0}), nil, `a\x00..\x5c\xff`},
		{"root", q([]byte{0}), nil, ""},
		{"no question", dnsHeader(0x0100, 0, 0, 0, 0), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := DNSMessage(tt.in)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if m.Query != tt.query {
				t.Errorf("query %q, want %q", m.Query, tt.query)
			}
			if m.RCode != -1 {
				t.Errorf("RCode %d for a query", m.RCode)
			}
		})
	}
}

func TestDNSMessageAnswerCap(t *testing.T) {
	b := append(dnsHeader(0x8180, 1, 1000, 0, 0), 1, 'x', 0, 0, 1, 0, 1)
	for i := range 1000 {
		b = append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, byte(i), 0, 4, 10, 0, byte(i>>8), byte(i))
	}
	m, resp, err := DNSMessage(b)
	if err != nil || !resp {
		t.Fatalf("err %v resp %v", err, resp)
	}
	if len(m.Answers) != MaxDNSAnswers || len(m.TTLs) != MaxDNSAnswers {
		t.Fatalf("%d answers %d TTLs, want %d", len(m.Answers), len(m.TTLs), MaxDNSAnswers)
	}
	if m.Answers[31] != "10.0.0.31" || m.TTLs[31] != 31 {
		t.Errorf("answer 31 = %q ttl %d", m.Answers[31], m.TTLs[31])
	}
}

func TestDNSMessageBadRData(t *testing.T) {
	base := append(dnsHeader(0x8180, 1, 2, 0, 0), 1, 'x', 0, 0, 1, 0, 1)
	good := []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 192, 0, 2, 1}
	tests := []struct {
		name string
		rr   []byte
		want error
		kept int
	}{
		{"A of 3 bytes", []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 3, 1, 2, 3}, ErrMalformed, 1},
		{"rdata past end", []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 9, 1}, ErrShort, 1},
		{"TXT string past rdata", []byte{0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 2, 5, 'a'}, ErrMalformed, 1},
		{"CNAME escaping rdata", []byte{0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 3, 'a', 'b', 'c', 0}, ErrShort, 1},
		{"unknown type", []byte{0xc0, 12, 0, 99, 0, 1, 0, 0, 0, 5, 0, 1, 0}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append(append(slices.Clone(base), good...), tt.rr...)
			m, _, err := DNSMessage(b)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if len(m.Answers) != tt.kept || m.Answers[0] != "192.0.2.1" {
				t.Fatalf("answers %q, want %d starting with 192.0.2.1", m.Answers, tt.kept)
			}
			if tt.kept == 2 && m.Answers[1] != "TYPE99" {
				t.Errorf("unknown type rendered %q", m.Answers[1])
			}
		})
	}
}

func FuzzDNSMessage(f *testing.F) {
	for _, s := range [][]byte{dnsTeredoResp, dnsAppleResp, dnsExfQuery, dnsDnscatCNAME, dnsDnscatMX, dnsFragTXT, dnsNoAnswer} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, resp, err := DNSMessage(b)
		if len(m.Answers) > MaxDNSAnswers || len(m.Answers) != len(m.TTLs) {
			t.Fatalf("%d answers %d TTLs", len(m.Answers), len(m.TTLs))
		}
		if err == nil && !resp && m.RCode != -1 {
			t.Fatalf("query with rcode %d", m.RCode)
		}
		if strings.ContainsAny(m.Query, "\t\n\r\x00") {
			t.Fatalf("unescaped control byte in %q", m.Query)
		}
	})
}

func BenchmarkDNSMessage(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(dnsAppleResp)))
	for b.Loop() {
		if _, _, err := DNSMessage(dnsAppleResp); err != nil {
			b.Fatal(err)
		}
	}
}
