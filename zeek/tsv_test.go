package zeek

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// readConnText reads text as a directory's conn.log (with side logs
// given by name).
func readConnText(t *testing.T, conn string, side map[string]string) ([]*cw.Conn, Stats, error) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conn.log"), conn)
	for name, text := range side {
		writeFile(t, filepath.Join(dir, name), text)
	}
	conns, s, err := collect(t, []string{dir}, Options{Reorder: -1})
	return conns, s.Stats(), err
}

func TestTSVHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		check func(t *testing.T, cs []*cw.Conn)
	}{
		{
			name: "other separators and markers",
			text: "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NULL\n#path|conn\n" +
				"#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|service|orig_bytes|tunnel_parents\n" +
				"1700000000.25|CA|10.0.0.1|1|10.0.0.2|2|udp|NULL|NULL|EMPTY\n",
			check: func(t *testing.T, cs []*cw.Conn) {
				c := cs[0]
				if c.Service != "" || c.OrigBytes != 0 || c.Tunnel != "" || c.TS != time.Unix(1700000000, 250e6).UTC() {
					t.Errorf("%+v", c)
				}
			},
		},
		{
			name: "several header blocks, fields reordered",
			text: tsvHead + connLine(1700000000, "CA") + "#close\t2026-11-29-08-00-00\n" +
				"#separator \\x09\n#fields\tuid\tts\tid.resp_h\tid.orig_h\tproto\tlabel\n" +
				"CB\t1700000001.5\t192.0.2.9\t10.9.9.9\ttcp\tMalicious\n",
			check: func(t *testing.T, cs []*cw.Conn) {
				if len(cs) != 2 || cs[1].UID != "CB" || cs[1].Orig.Addr.String() != "10.9.9.9" || cs[1].Resp.Addr.String() != "192.0.2.9" {
					t.Errorf("%+v", cs[len(cs)-1])
				}
			},
		},
		{
			name: "escapes: a literal dash is not unset, tabs inside values",
			text: "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\thistory\tservice\n" +
				"1700000000\tCA\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t\\x2d\tx\\x09y\n",
			check: func(t *testing.T, cs []*cw.Conn) {
				if cs[0].History != "-" || cs[0].Service != "x\ty" {
					t.Errorf("history %q service %q", cs[0].History, cs[0].Service)
				}
			},
		},
		{
			name: "LogAscii tsv mode: one row of names",
			text: "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n1700000000\tCA\t10.0.0.1\t1\t2001:db8::1\t2\ticmp\n",
			check: func(t *testing.T, cs []*cw.Conn) {
				if cs[0].Proto != "icmp" || cs[0].Resp.Addr.String() != "2001:db8::1" {
					t.Errorf("%+v", cs[0])
				}
			},
		},
		{
			name: "icmp over IPv6, vlan, MACs, CRLF",
			text: "#separator \\x09\r\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tvlan\torig_l2_addr\tresp_l2_addr\r\n" +
				"1700000000\tCA\tfe80::1\t135\tff02::1\t136\ticmp\t42\t00:0c:29:66:c7:82\t00:90:0b:7a:15:eb\r\n",
			check: func(t *testing.T, cs []*cw.Conn) {
				c := cs[0]
				if c.Proto != "icmp6" || c.VLAN != 42 || c.Orig.MAC != "00:0c:29:66:c7:82" || c.Resp.MAC != "00:90:0b:7a:15:eb" {
					t.Errorf("%+v", c)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, st, err := readConnText(t, tc.text, nil)
			if err != nil || len(cs) == 0 || st.Malformed != 0 {
				t.Fatalf("%d Conns, stats %+v, err %v", len(cs), st, err)
			}
			tc.check(t, cs)
		})
	}
}

func TestTSVConnFields(t *testing.T) {
	cs, _, err := readConnText(t, tsvHead+
		"1601998390.892400\tCY\t147.32.83.156\t52592\t3.232.121.231\t443\ttcp\tssl,http\t0.054001\t980\t7\tSF\t3\tShADadFf\t8\t460\t6\t520\tCT1,CT2\n",
		map[string]string{"tunnel.log": "#separator \\x09\n#fields\tts\tuid\ttunnel_type\n1.0\tCT1\tTunnel::VXLAN\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := cw.Conn{
		TS: time.Unix(1601998390, 892400000).UTC(), UID: "CY",
		Proto: "tcp", Service: "ssl,http", Duration: 54001 * time.Microsecond,
		OrigBytes: 980, RespBytes: 7, MissedBytes: 3, State: "SF", History: "ShADadFf",
		OrigPkts: 8, OrigIPBytes: 460, RespPkts: 6, RespIPBytes: 520, Tunnel: "vxlan",
	}
	c := *cs[0]
	if c.Orig.Addr.String() != "147.32.83.156" || c.Orig.Port != 52592 || c.Resp.Addr.String() != "3.232.121.231" || c.Resp.Port != 443 {
		t.Errorf("endpoints %+v %+v", c.Orig, c.Resp)
	}
	c.Orig, c.Resp, c.Source = cw.Endpoint{}, cw.Endpoint{}, ""
	if c.TS != want.TS || c.UID != want.UID || c.Proto != want.Proto || c.Service != want.Service || c.Duration != want.Duration ||
		c.OrigBytes != want.OrigBytes || c.RespBytes != want.RespBytes || c.MissedBytes != want.MissedBytes || c.State != want.State ||
		c.History != want.History || c.OrigPkts != want.OrigPkts || c.OrigIPBytes != want.OrigIPBytes || c.RespPkts != want.RespPkts ||
		c.RespIPBytes != want.RespIPBytes || c.Tunnel != want.Tunnel {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestSideLogs(t *testing.T) {
	conn := tsvHead + connLine(1700000000, "CA") + connLine(1700000001, "CB")
	side := map[string]string{
		"dns.log": dnsHead +
			"1700000000.1\tCA\t10.0.0.1\t40000\t198.51.100.7\t53\tudp\t7\tex\\x2cample.test\t1\t16\t3\t-\t-\n" +
			"1700000000.2\tCA\t10.0.0.1\t40000\t198.51.100.7\t53\tudp\t8\tb.test\t1\t28\t-\t-\t-\n" +
			"1700000000.3\tCA\t10.0.0.1\t40000\t198.51.100.7\t53\tudp\t9\tc.test\t1\t1\t0\tx.test,192.0.2.1\t60.000000,30.500000\n",
		"ssl.log": "#separator \\x09\n#fields\tts\tuid\tversion\tserver_name\tnext_protocol\tja3\tja4\n" +
			"1700000000.1\tCB\tTLSv13\tsni.test\th2\tabc\tt13d1516h2_8daaf6152771_02713d6af862\n",
		"http.log": "#separator \\x09\n#fields\tts\tuid\tmethod\thost\turi\tuser_agent\trequest_body_len\tresponse_body_len\tstatus_code\tresp_mime_types\n" +
			"1700000000.1\tCB\tPOST\th.test\t/up?x=1\tcurl/8\t5000\t2\t201\t(empty)\n",
		"files.log": "#separator \\x09\n#fields\tts\tfuid\tconn_uids\tmime_type\n1700000000.1\tF1\tCB\tapplication/edifact\n",
	}
	cs, st, err := readConnText(t, conn, side)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cs[0], cs[1]
	if len(a.DNS) != 3 {
		t.Fatalf("CA DNS %+v", a.DNS)
	}
	if d := a.DNS[0]; d.Query != "ex,ample.test" || d.QType != 16 || d.RCode != 3 || d.TransID != 7 || d.RespLen == 0 {
		t.Errorf("dns 0 %+v", d)
	}
	if d := a.DNS[1]; d.RCode != -1 || d.RespLen != 0 {
		t.Errorf("dns 1 (no response) %+v", d)
	}
	if d := a.DNS[2]; strings.Join(d.Answers, " ") != "x.test 192.0.2.1" || len(d.TTLs) != 2 || d.TTLs[1] != 30 ||
		d.QueryLen != 12+len("c.test")+2+4 || d.RespLen != d.QueryLen+12+len("x.test")+12+4 {
		t.Errorf("dns 2 %+v", d)
	}
	if b.TLS == nil || b.TLS.SNI != "sni.test" || b.TLS.Version != "TLSv13" || b.TLS.JA3 != "abc" || !strings.HasPrefix(b.TLS.JA4, "t13d") || len(b.TLS.ALPN) != 1 {
		t.Errorf("CB TLS %+v", b.TLS)
	}
	if len(b.HTTP) != 1 {
		t.Fatalf("CB HTTP %+v", b.HTTP)
	}
	if h := b.HTTP[0]; h.Method != "POST" || h.Host != "h.test" || h.URI != "/up?x=1" || h.UserAgent != "curl/8" ||
		h.RequestBodyLen != 5000 || h.ResponseBodyLen != 2 || h.StatusCode != 201 || h.ContentType != "application/edifact" {
		t.Errorf("CB HTTP %+v", h)
	}
	if st.Side != 6 || st.Unmatched != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The join cap bounds memory: past it side records are dropped, counted,
// and their Conns come out without them.
func TestJoinCap(t *testing.T) {
	var conn, dns strings.Builder
	conn.WriteString(tsvHead)
	dns.WriteString(dnsHead)
	for i := 0; i < 100; i++ {
		uid := "C" + strings.Repeat("a", i%5) + string(rune('A'+i%26)) + string(rune('A'+i/26))
		conn.WriteString(connLine(1700000000+i, uid))
		dns.WriteString(dnsLine(uid, "q.test"))
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conn.log"), conn.String())
	writeFile(t, filepath.Join(dir, "dns.log"), dns.String())
	cs, s, err := collect(t, []string{dir}, Options{MaxJoin: 30})
	if err != nil {
		t.Fatal(err)
	}
	with := 0
	for _, c := range cs {
		if len(c.DNS) > 0 {
			with++
		}
	}
	if len(cs) != 100 || with != 30 || s.Stats().DroppedJoins != 70 {
		t.Errorf("%d Conns, %d with DNS, stats %+v", len(cs), with, s.Stats())
	}
}

func TestUnescapeTSV(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\x09b`, "a\tb"},
		{`\x2d`, "-"},
		{`end\x4`, `end\x4`},
		{`\xzz`, `\xzz`},
		{`C:\path`, `C:\path`},
	} {
		if got := string(unescapeTSV(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		sec, ns int64
		ok      bool
	}{
		{"1601998366.785668", 1601998366, 785668000, true},
		{"0.5273809432983398", 0, 527380943, true},
		{"-1.5", -1, -500000000, true},
		{"12", 12, 0, true},
		{"1e-05", 0, 0, false},
		{"", 0, 0, false},
		{".5", 0, 0, false},
		{"XXXXXXXXXX.XXXXXX", 0, 0, false},
	} {
		sec, ns, ok := parseDecimal([]byte(tc.in))
		if sec != tc.sec || ns != tc.ns || ok != tc.ok {
			t.Errorf("%q: %d %d %v", tc.in, sec, ns, ok)
		}
	}
}

func TestParseIPv4(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"10.0.0.1", true}, {"255.255.255.255", true}, {"0.0.0.0", true},
		{"256.0.0.1", false}, {"1.2.3", false}, {"1.2.3.4.5", false}, {"01.2.3.4", false}, {"1..3.4", false}, {"::1", false},
	} {
		a, ok := parseIPv4([]byte(tc.in))
		if ok != tc.ok || ok && a.String() != tc.in {
			t.Errorf("%q: %v %v", tc.in, a, ok)
		}
	}
}
