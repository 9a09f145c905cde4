package suricata

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

// eve writes lines to a file in a fresh directory and returns its path.
func eve(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "eve.json")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// quiet returns a logger into buf.
func quiet(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const (
	tlsEvent = `{"timestamp":"2024-03-01T10:00:01.000000+0000","flow_id":7,"event_type":"tls","src_ip":"10.0.0.5","src_port":50000,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","tls":{"sni":"api.example.cn","version":"TLS 1.3","ja3":{"hash":"b7202231ff2db28363c109cedc6d1642","string":"771,..."},"ja4":"t13d1516h2_8daaf6152771_02713d6af862","client_alpns":["h2","http/1.1"]}}`
	flow7    = `{"timestamp":"2024-03-01T10:05:00.000000+0000","flow_id":7,"event_type":"flow","src_ip":"10.0.0.5","src_port":50000,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","app_proto":"tls","vlan":[12],"flow":{"pkts_toserver":10,"pkts_toclient":12,"bytes_toserver":2000,"bytes_toclient":9000,"start":"2024-03-01T10:00:00.500000+0000","end":"2024-03-01T10:00:30.500000+0000","age":30,"state":"closed","reason":"timeout","alerted":true},"tcp":{"tcp_flags":"1f","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"},"ether":{"src_macs":["00:11:22:33:44:55"],"dest_macs":["66:77:88:99:AA:BB"]}}`
	alert7   = `{"timestamp":"2024-03-01T10:00:02.000000+0000","flow_id":7,"event_type":"alert","src_ip":"203.0.113.9","src_port":443,"dest_ip":"10.0.0.5","dest_port":50000,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2030000,"rev":3,"signature":"ET POLICY Observed TLS to watched domain","category":"Potential Corporate Privacy Violation","severity":3}}`
)

func TestJoinTLSAndAlert(t *testing.T) {
	var log bytes.Buffer
	conns, s, err := runSource(t, []string{eve(t, tlsEvent, alert7, alert7, flow7)}, Options{Log: quiet(&log)})
	if err != nil || len(conns) != 1 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	c := conns[0]
	if c.UID != "7" || c.Service != "ssl" || c.VLAN != 12 || c.State != "SF" || c.Duration.Seconds() != 30 {
		t.Errorf("conn %+v", c)
	}
	if c.Orig.Addr.String() != "10.0.0.5" || c.Orig.Port != 50000 || c.Resp.Port != 443 {
		t.Errorf("tuple %v:%d -> %v:%d", c.Orig.Addr, c.Orig.Port, c.Resp.Addr, c.Resp.Port)
	}
	if c.Orig.MAC != "00:11:22:33:44:55" || c.Resp.MAC != "66:77:88:99:aa:bb" {
		t.Errorf("macs %q %q", c.Orig.MAC, c.Resp.MAC)
	}
	if c.TLS == nil || c.TLS.SNI != "api.example.cn" || c.TLS.Version != "TLSv13" || c.TLS.JA3 != "b7202231ff2db28363c109cedc6d1642" ||
		c.TLS.JA4 != "t13d1516h2_8daaf6152771_02713d6af862" || len(c.TLS.ALPN) != 2 {
		t.Errorf("tls %+v", c.TLS)
	}
	want := "ET POLICY Observed TLS to watched domain [sid 1:2030000:3, Potential Corporate Privacy Violation, severity 3]"
	if len(c.Alerts) != 1 || c.Alerts[0] != want {
		t.Errorf("alerts %q (the same alert twice is kept once)", c.Alerts)
	}
	if c.OrigIPBytes != 2000-10*14 || c.RespIPBytes != 9000-12*14 || c.OrigBytes != 2000-10*(14+20+32) {
		t.Errorf("bytes %d/%d ip %d/%d", c.OrigBytes, c.RespBytes, c.OrigIPBytes, c.RespIPBytes)
	}
	if st := s.Stats(); st.Joined != 3 || st.Orphaned != 0 || st.Conns != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestJoinDNSVersions(t *testing.T) {
	head := `{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":9,"event_type":"dns","src_ip":"10.0.0.5","src_port":5353,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP",`
	flow9 := `{"timestamp":"2024-03-01T10:01:00.000000+0000","flow_id":9,"event_type":"flow","src_ip":"10.0.0.5","src_port":5353,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":80,"bytes_toclient":120,"start":"2024-03-01T10:00:00.000000+0000","end":"2024-03-01T10:00:00.010000+0000","state":"established","reason":"timeout"}}`
	for _, tc := range []struct {
		name    string
		lines   []string
		answers []string
		rcode   int
	}{
		{"v1", []string{
			head + `"dns":{"type":"query","id":4660,"rrname":"tos.example.com","rrtype":"A","tx_id":0}}`,
			head + `"dns":{"type":"answer","id":4660,"rcode":"NOERROR","rrname":"tos.example.com","rrtype":"CNAME","ttl":60,"rdata":"edge.example.net"}}`,
			head + `"dns":{"type":"answer","id":4660,"rcode":"NOERROR","rrname":"edge.example.net","rrtype":"A","ttl":30,"rdata":"198.51.100.7"}}`,
		}, []string{"edge.example.net", "198.51.100.7"}, 0},
		{"v2", []string{
			head + `"dns":{"type":"query","id":4660,"rrname":"tos.example.com","rrtype":"A","tx_id":0}}`,
			head + `"dns":{"version":2,"type":"answer","id":4660,"flags":"8180","qr":true,"rrname":"tos.example.com","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"tos.example.com","rrtype":"CNAME","ttl":60,"rdata":"edge.example.net"},{"rrname":"edge.example.net","rrtype":"A","ttl":30,"rdata":"198.51.100.7"}],"grouped":{"A":["198.51.100.7"],"CNAME":["edge.example.net"]}}}`,
		}, []string{"edge.example.net", "198.51.100.7"}, 0},
		{"v2 grouped only", []string{
			head + `"dns":{"version":2,"type":"answer","id":4660,"rrname":"tos.example.com","rrtype":"A","rcode":"NOERROR","grouped":{"A":["198.51.100.7"]}}}`,
		}, []string{"198.51.100.7"}, 0},
		{"v3", []string{
			head + `"dns":{"version":3,"type":"request","id":4660,"queries":[{"rrname":"tos.example.com","rrtype":"A"}]}}`,
			head + `"dns":{"version":3,"type":"response","id":4660,"rcode":"NXDOMAIN","queries":[{"rrname":"tos.example.com","rrtype":"A"}]}}`,
		}, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			conns, _, err := runSource(t, []string{eve(t, append(tc.lines, flow9)...)}, Options{Log: quiet(&log)})
			if err != nil || len(conns) != 1 {
				t.Fatalf("%d conns, %v", len(conns), err)
			}
			c := conns[0]
			if c.Service != "dns" || c.State != "SF" || len(c.DNS) != 1 {
				t.Fatalf("conn service %q state %q dns %+v", c.Service, c.State, c.DNS)
			}
			d := c.DNS[0]
			if d.Query != "tos.example.com" || d.QType != 1 || d.TransID != 4660 || d.RCode != tc.rcode || strings.Join(d.Answers, ",") != strings.Join(tc.answers, ",") {
				t.Errorf("dns %+v", d)
			}
			// 12 + (15+2) + 4; each answer 12 + its data.
			wantResp := 33
			for _, a := range tc.answers {
				if a == "198.51.100.7" {
					wantResp += 16
				} else {
					wantResp += 12 + len(a)
				}
			}
			if d.QueryLen != 33 || d.RespLen != wantResp {
				t.Errorf("sizes %d/%d, want 33/%d", d.QueryLen, d.RespLen, wantResp)
			}
		})
	}
}

func TestJoinHTTPFiles(t *testing.T) {
	hdr := func(typ, extra string, fromClient bool) string {
		tuple := `"src_ip":"10.0.0.5","src_port":40000,"dest_ip":"198.51.100.20","dest_port":8080`
		if !fromClient {
			tuple = `"src_ip":"198.51.100.20","src_port":8080,"dest_ip":"10.0.0.5","dest_port":40000`
		}
		return `{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":11,"event_type":"` + typ + `",` + tuple + `,"proto":"TCP",` + extra + `}`
	}
	lines := []string{
		hdr("http", `"tx_id":0,"http":{"hostname":"manifests.example.com","http_port":8080,"url":"/upload","http_user_agent":"curl/8.0","http_method":"POST","protocol":"HTTP/1.1","status":201,"length":2}`, true),
		hdr("fileinfo", `"app_proto":"http","http":{"hostname":"manifests.example.com","http_port":8080,"url":"/upload"},"fileinfo":{"filename":"/upload","size":48213,"tx_id":0}`, true),
		hdr("http", `"tx_id":1,"http":{"hostname":"manifests.example.com","http_port":8080,"url":"/bayplan","http_method":"GET","status":200,"http_content_type":"text/plain","length":0}`, true),
		hdr("fileinfo", `"app_proto":"http","http":{"hostname":"manifests.example.com","http_port":8080,"url":"/bayplan"},"fileinfo":{"filename":"/bayplan","size":9000,"tx_id":1}`, false),
		`{"timestamp":"2024-03-01T10:01:00.000000+0000","flow_id":11,"event_type":"flow","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"198.51.100.20","dest_port":8080,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":40,"pkts_toclient":30,"bytes_toserver":60000,"bytes_toclient":12000,"start":"2024-03-01T10:00:00.000000+0000","end":"2024-03-01T10:00:05.000000+0000","state":"established","reason":"shutdown"}}`,
	}
	var log bytes.Buffer
	conns, _, err := runSource(t, []string{eve(t, lines...)}, Options{Log: quiet(&log)})
	if err != nil || len(conns) != 1 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	c := conns[0]
	if len(c.HTTP) != 2 || !c.Open || c.State != "S1" {
		t.Fatalf("http %+v open %v state %s", c.HTTP, c.Open, c.State)
	}
	up, down := c.HTTP[0], c.HTTP[1]
	if up.Method != "POST" || up.Host != "manifests.example.com" || up.URI != "/upload" || up.UserAgent != "curl/8.0" ||
		up.StatusCode != 201 || up.RequestBodyLen != 48213 {
		t.Errorf("upload %+v", up)
	}
	if down.URI != "/bayplan" || down.ResponseBodyLen != 9000 || down.RequestBodyLen != 0 || down.ContentType != "text/plain" {
		t.Errorf("download %+v", down)
	}
}

func TestNetflowPairs(t *testing.T) {
	nf := func(id, src, sport, dst, dport, pkts, bytes, flags string) string {
		return `{"timestamp":"2024-03-01T10:01:00.000000+0000","flow_id":` + id + `,"event_type":"netflow","src_ip":"` + src + `","src_port":` + sport +
			`,"dest_ip":"` + dst + `","dest_port":` + dport + `,"proto":"TCP","app_proto":"http","netflow":{"pkts":` + pkts + `,"bytes":` + bytes +
			`,"start":"2024-03-01T10:00:00.000000+0000","end":"2024-03-01T10:00:09.000000+0000","age":9},"tcp":{"tcp_flags":"` + flags + `"}}`
	}
	lines := []string{
		nf("21", "10.0.0.5", "40000", "198.51.100.20", "80", "10", "1200", "1b"),
		nf("21", "198.51.100.20", "80", "10.0.0.5", "40000", "8", "9000", "1b"),
		// Unanswered: one half only.
		nf("22", "10.0.0.5", "40001", "198.51.100.21", "80", "3", "198", "02"),
	}
	// ICMP: each record has its own direction's type and code.
	icmp := func(src, dst, typ string) string {
		return `{"timestamp":"2024-03-01T10:01:00+0000","flow_id":24,"event_type":"netflow","src_ip":"` + src + `","dest_ip":"` + dst +
			`","proto":"ICMP","icmp_type":` + typ + `,"icmp_code":0,"netflow":{"pkts":1,"bytes":98,"start":"2024-03-01T10:00:00+0000","end":"2024-03-01T10:00:00+0000"}}`
	}
	lines = append(lines, icmp("10.0.0.5", "198.51.100.20", "8"), icmp("198.51.100.20", "10.0.0.5", "0"))
	// With flow logging on too, the flow event wins over its netflow records.
	flow23 := `{"timestamp":"2024-03-01T10:01:00.000000+0000","flow_id":23,"event_type":"flow","src_ip":"10.0.0.5","src_port":40002,"dest_ip":"198.51.100.22","dest_port":80,"proto":"TCP","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":60,"bytes_toclient":60,"start":"2024-03-01T10:00:00.000000+0000","end":"2024-03-01T10:00:00.100000+0000","state":"closed","reason":"timeout"},"tcp":{"tcp_flags_ts":"02","tcp_flags_tc":"14"}}`
	lines = append(lines, flow23, nf("23", "10.0.0.5", "40002", "198.51.100.22", "80", "1", "60", "02"))
	var log bytes.Buffer
	conns, s, err := runSource(t, []string{eve(t, lines...)}, Options{Log: quiet(&log)})
	if err != nil || len(conns) != 4 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	by := map[string]*cw.Conn{}
	for _, c := range conns {
		by[c.UID] = c
	}
	c := by["21"]
	if c == nil || c.OrigPkts != 10 || c.RespPkts != 8 || c.OrigIPBytes != 1200-140 || c.RespIPBytes != 9000-112 || c.State != "SF" || c.Resp.Port != 80 || c.Duration.Seconds() != 9 {
		t.Errorf("paired %+v", c)
	}
	if c := by["22"]; c == nil || c.RespPkts != 0 || c.State != "S0" || c.OrigBytes != 0 {
		t.Errorf("lone half %+v", c)
	}
	if c := by["23"]; c == nil || c.State != "REJ" {
		t.Errorf("flow event %+v", c)
	}
	if c := by["24"]; c == nil || c.Proto != "icmp" || c.Orig.Port != 8 || c.RespPkts != 1 || c.State != "OTH" {
		t.Errorf("icmp %+v", c)
	}
	if st := s.Stats(); st.Netflows != 6 || st.NetflowDuplicates != 1 || st.Flows != 1 || st.Conns != 4 {
		t.Errorf("stats %+v", st)
	}
}

// Flows whose flow event never comes, late events and the pending cap.
func TestJoinBounds(t *testing.T) {
	app := func(id string) string {
		return `{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":` + id + `,"event_type":"alert","src_ip":"10.0.0.5","src_port":1,"dest_ip":"10.0.0.6","dest_port":2,"proto":"TCP","alert":{"signature_id":1,"signature":"sig ` + id + `"}}`
	}
	flow := func(id string) string {
		return `{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":` + id + `,"event_type":"flow","src_ip":"10.0.0.5","src_port":1,"dest_ip":"10.0.0.6","dest_port":2,"proto":"TCP","flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,"start":"2024-03-01T10:00:00.000000+0000","end":"2024-03-01T10:00:00.000000+0000","state":"new","reason":"timeout"}}`
	}
	lines := []string{app("1"), app("2"), app("3"), flow("3"), app("3"), flow("1"), app("4")}
	var log bytes.Buffer
	conns, s, err := runSource(t, []string{eve(t, lines...)}, Options{MaxPending: 2, Log: quiet(&log)})
	if err != nil || len(conns) != 2 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	st := s.Stats()
	// 1 was evicted when 3 arrived (cap 2), so flow 1 has no alert; 3 has
	// its alert; the alert of 3 after its flow is late; 2 and 4 never saw
	// their flow event.
	if len(conns[0].Alerts) != 1 || len(conns[1].Alerts) != 0 {
		t.Errorf("alerts %q / %q", conns[0].Alerts, conns[1].Alerts)
	}
	if st.Evicted != 1 || st.Late != 1 || st.Orphaned != 2 || st.Joined != 1 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(log.String(), "never came") || !strings.Contains(log.String(), "oldest") {
		t.Errorf("log %s", log.String())
	}
	// The byte cap evicts too.
	big := make([]string, 0, 100)
	for i := range 100 {
		big = append(big, `{"timestamp":"2024-03-01T10:00:00.000000+0000","flow_id":`+strconv.Itoa(1000+i)+`,"event_type":"http","src_ip":"10.0.0.5","src_port":1,"dest_ip":"10.0.0.6","dest_port":80,"proto":"TCP","tx_id":0,"http":{"url":"/`+strings.Repeat("u", 3000)+`"}}`)
	}
	_, s, _ = runSource(t, []string{eve(t, big...)}, Options{MaxPendingBytes: 64 << 10, Log: quiet(&log)})
	if st := s.Stats(); st.Evicted < 70 || st.Orphaned+st.Evicted != 100 {
		t.Errorf("byte cap: %+v", st)
	}
}

// Lone netflow halves leave the table once the window has passed, not
// only at the end, and pairs still pair across it.
func TestNetflowWindow(t *testing.T) {
	var lines []string
	for i := 1; i <= 3000; i++ {
		id := strconv.Itoa(i)
		lines = append(lines, `{"timestamp":"2024-03-01T10:01:00+0000","flow_id":`+id+`,"event_type":"netflow","src_ip":"10.0.0.5","src_port":`+strconv.Itoa(1024+i%60000)+
			`,"dest_ip":"198.51.100.20","dest_port":53,"proto":"UDP","netflow":{"pkts":1,"bytes":80,"start":"2024-03-01T10:00:00+0000","end":"2024-03-01T10:00:00+0000"}}`)
		if i%3 == 0 {
			// The reverse of the previous flow, a line later.
			prev := strconv.Itoa(i - 1)
			lines = append(lines, `{"timestamp":"2024-03-01T10:01:00+0000","flow_id":`+prev+`,"event_type":"netflow","src_ip":"198.51.100.20","src_port":53,"dest_ip":"10.0.0.5","dest_port":`+
				strconv.Itoa(1024+(i-1)%60000)+`,"proto":"UDP","netflow":{"pkts":1,"bytes":120,"start":"2024-03-01T10:00:00+0000","end":"2024-03-01T10:00:00+0000"}}`)
		}
	}
	var log bytes.Buffer
	s := NewSource([]string{eve(t, lines...)}, Options{NetflowWindow: 10, Log: quiet(&log)})
	var conns []*cw.Conn
	maxHeld := 0
	err := s.Run(t.Context(), func(c *cw.Conn) { conns = append(conns, c) })
	if err != nil || len(conns) != 3000 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	answered := 0
	for i, c := range conns {
		if c.State == "SF" {
			answered++
			if c.RespPkts != 1 || c.RespIPBytes != 106 {
				t.Errorf("pair %+v", c)
			}
		}
		// Emitted within the window of their arrival: the order holds
		// to within the window.
		id, _ := strconv.Atoi(c.UID)
		maxHeld = max(maxHeld, i+1-id, id-(i+1))
	}
	if answered != 1000 || maxHeld > 20 {
		t.Errorf("%d answered, order off by up to %d", answered, maxHeld)
	}
}
