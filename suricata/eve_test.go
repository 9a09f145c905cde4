package suricata

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTCPStateFromFlags(t *testing.T) {
	const S, F, R, A = flagSYN, flagFIN, flagRST, 0x10
	for _, tc := range []struct {
		ts, tc   uint8
		respPkts uint64
		want     string
	}{
		{S, 0, 0, "S0"},
		{S, R | A, 1, "REJ"},
		{S | R, 0, 0, "RSTOS0"},
		{S | F, 0, 0, "SH"},
		{S | A, S | A, 5, "S1"},
		{S | A | F, S | A | F, 5, "SF"},
		{S | A | F, S | A, 5, "S2"},
		{S | A, S | A | F, 5, "S3"},
		{S | A | R, S | A, 5, "RSTO"},
		{S | A, S | A | R, 5, "RSTR"},
		{A, A, 5, "OTH"},
		{A, S | A | R, 2, "RSTRH"},
		{0, S | A | F, 2, "SHR"},
		{S, A, 3, "OTH"},
	} {
		if got := tcpStateFromFlags(tc.ts, tc.tc, tc.respPkts); got != tc.want {
			t.Errorf("ts %02x tc %02x resp %d: %s, want %s", tc.ts, tc.tc, tc.respPkts, got, tc.want)
		}
	}
}

func TestTCPStateFromFlow(t *testing.T) {
	for _, tc := range []struct {
		state              string
		origPkts, respPkts uint64
		origPay, respPay   int64
		want               string
	}{
		{"new", 2, 0, 0, 0, "S0"},
		{"new", 2, 12, 0, 100, "OTH"},
		{"established", 10, 8, 500, 900, "S1"},
		{"closed", 2, 0, 0, 0, "RSTOS0"},
		{"closed", 2, 2, 0, 0, "REJ"},
		{"closed", 8, 6, 300, 4000, "SF"},
		{"closed", 4, 5, 0, 0, "SF"},
		{"bypassed", 8, 6, 300, 4000, "OTH"},
	} {
		if got := tcpStateFromFlow(tc.state, tc.origPkts, tc.respPkts, tc.origPay, tc.respPay); got != tc.want {
			t.Errorf("%+v: %s", tc, got)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"TCP", "tcp"}, {"UDP", "udp"}, {"ICMP", "icmp"}, {"IPv6-ICMP", "icmp6"},
		{"GRE", "47"}, {"SCTP", "132"}, {"047", "47"}, {"weird", "weird"},
	} {
		if got, _ := protoName(flexProto(tc.in)); got != tc.want {
			t.Errorf("proto %q: %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"tls", "ssl"}, {"dcerpc", "dce_rpc"}, {"krb5", "krb"}, {"failed", ""}, {"", ""},
		{"http", "http"}, {"dns", "dns"}, {"modbus", "modbus"}, {"SMB", "smb"},
	} {
		if got := serviceName(tc.in); got != tc.want {
			t.Errorf("app_proto %q: %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"TLS 1.2", "TLSv12"}, {"TLS 1.3", "TLSv13"}, {"TLS 1.0", "TLSv10"}, {"SSLv3", "SSLv3"},
		{"UNDETERMINED", ""}, {"", ""},
	} {
		if got := tlsVersion(tc.in); got != tc.want {
			t.Errorf("tls version %q: %q, want %q", tc.in, got, tc.want)
		}
	}
	if rcode("NXDOMAIN") != 3 || rcode("noerror") != 0 || rcode("9") != 9 || rcode("") != -1 || rcode("BOGUS") != -1 {
		t.Error("rcode names")
	}
	if rrtype("A") != 1 || rrtype("aaaa") != 28 || rrtype("TXT") != 16 || rrtype("65280") != 65280 || rrtype("TYPE99") != 99 || rrtype("?") != 0 {
		t.Error("rrtype names")
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		bytes, pkts uint64
		v6          bool
		proto       int
		ip, payload int64
	}{
		// One 60-byte Ethernet frame holding a bare SYN: no payload.
		{60, 1, false, 6, 46, 0},
		// Two 1514-byte frames of TCP/IPv4 with timestamps: 1448 bytes of data each.
		{3028, 2, false, 6, 3000, 2896},
		// A DNS query over UDP/IPv6: 14+40+8 bytes of headers.
		{112, 1, true, 17, 98, 50},
		{0, 0, false, 17, 0, 0},
		// Counts that contradict each other clamp at zero.
		{10, 5, false, 6, 0, 0},
	} {
		ip, p := sizes(tc.bytes, tc.pkts, tc.v6, tc.proto)
		if ip != tc.ip || p != tc.payload {
			t.Errorf("%+v: ip %d payload %d", tc, ip, p)
		}
	}
}

func TestEventType(t *testing.T) {
	for _, tc := range []struct {
		line string
		typ  string
		ok   bool
	}{
		{`{"timestamp":"x","event_type":"flow","src_ip":"1.2.3.4"}`, "flow", true},
		{`{"event_type" : "stats"}`, "stats", true},
		{`{"event_type":"a\"b"}`, "", false},
		{`{"event_type":3}`, "", false},
		{`{"x":1}`, "", false},
		{`{"event_type":"flo`, "", false},
	} {
		typ, ok := eventType([]byte(tc.line))
		if typ != tc.typ || ok != tc.ok {
			t.Errorf("%s: %q %v", tc.line, typ, ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2021, 6, 6, 13, 57, 37, 272281000, time.UTC)
	for _, s := range []string{"2021-06-06T15:57:37.272281+0200", "2021-06-06T13:57:37.272281Z", "2021-06-06T15:57:37.272281+02:00"} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "yesterday", "2021-13-06T15:57:37+0200"} {
		if _, err := parseTime(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestFlexFields(t *testing.T) {
	var e struct {
		ID   flexUint  `json:"id"`
		P    flexProto `json:"p"`
		VLAN json.RawMessage
	}
	for _, tc := range []struct {
		in    string
		id    uint64
		proto string
		ok    bool
	}{
		{`{"id":445348883402532,"p":"TCP"}`, 445348883402532, "TCP", true},
		{`{"id":"445348883402532","p":6}`, 445348883402532, "6", true},
		{`{"id":2.0,"p":"UDP"}`, 2, "UDP", true},
		{`{"id":-1}`, 0, "", false},
		{`{"id":"abc"}`, 0, "", false},
		{`{"p":300}`, 0, "", false},
	} {
		e.ID, e.P = 0, ""
		err := json.Unmarshal([]byte(tc.in), &e)
		if (err == nil) != tc.ok || (tc.ok && (uint64(e.ID) != tc.id || string(e.P) != tc.proto)) {
			t.Errorf("%s: %+v %v", tc.in, e, err)
		}
	}
	for _, tc := range []struct {
		raw  string
		want uint16
	}{{`100`, 100}, {`[10,20]`, 10}, {`[]`, 0}, {`"x"`, 0}, {``, 0}, {`99999`, 4095}} {
		if got := vlanID(json.RawMessage(tc.raw)); got != tc.want {
			t.Errorf("vlan %s: %d", tc.raw, got)
		}
	}
}
