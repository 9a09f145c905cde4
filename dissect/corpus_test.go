package dissect

import (
	"bytes"
	"encoding/hex"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corpusFiles are the captures that hold DNS, TLS or HTTP (tshark costs
// ~1.5 s per file here, so the test does not walk the whole corpus).
var corpusFiles = []string{
	"pcap/c2/ndpi-emotet.pcap", "pcap/c2/ndpi-trickbot.pcap", "pcap/c2/slips-test-cc-capture-2.pcap",
	"pcap/dns/ndpi-dns-exf.pcap", "pcap/dns/ndpi-dns2tcp_tunnel.pcap", "pcap/dns/ndpi-dns_exfiltration.pcap",
	"pcap/edge/zeek-ipv6-fragmented-dns.pcap", "pcap/edge/zeek-ticks-dns-1hr.pcap", "pcap/edge/zeek-tunnels-Teredo.pcap",
	"pcap/edge/zeek-pcapng-multi-interface.pcapng", "pcap/edge/zeek-pppoe-over-qinq.pcap", "pcap/edge/zeek-mixed-vlan-mpls.pcap",
	"pcap/edge/zeek-tunnels-gre-aruba.pcap", "pcap/edge/zeek-http-vlan-0.pcap",
}

// tsharkFields runs tshark over the corpus captures and returns the rows
// of the given fields for packets matching filter, the file name first.
// It compares this package against an independent dissector on real
// traffic.
func tsharkFields(t *testing.T, filter string, fields ...string) [][]string {
	t.Helper()
	if testing.Short() {
		t.Skip("corpus cross-check runs tshark; skipped with -short")
	}
	root := corpus.Path(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: the corpus cross-check needs it")
	}
	var rows [][]string
	for _, f := range corpusFiles {
		p := filepath.Join(root, f)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("corpus file %s: %v", f, err)
			continue
		}
		args := []string{"-n", "-r", p, "-Y", filter, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"}
		for _, fl := range fields {
			args = append(args, "-e", fl)
		}
		out, err := exec.Command(tshark, args...).Output()
		if err != nil && len(out) == 0 {
			continue
		}
		for _, ln := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			if ln != "" {
				rows = append(rows, append([]string{filepath.Base(f)}, strings.Split(ln, "|")...))
			}
		}
	}
	return rows
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] >= 0x7f || s[i] == '\\' {
			return false
		}
	}
	return true
}

func TestCorpusDNS(t *testing.T) {
	rows := tsharkFields(t, "dns && udp && !icmp && !icmpv6", "udp.payload", "dns.id", "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.count.answers")
	var n, labelled int
	for _, r := range rows {
		b, err := hex.DecodeString(r[1])
		if err != nil || len(b) == 0 {
			continue
		}
		n++
		m, resp, err := DNSMessage(b)
		if err != nil {
			t.Errorf("%s id %s: %v", r[0], r[2], err)
			continue
		}
		id, _ := strconv.ParseUint(strings.TrimPrefix(r[2], "0x"), 16, 16)
		qtype, _ := strconv.Atoi(r[5])
		if m.TransID != uint16(id) || resp != (r[3] == "1" || r[3] == "True") || int(m.QType) != qtype {
			t.Errorf("%s id %s: got id %#x resp %v qtype %d; tshark %v", r[0], r[2], m.TransID, resp, m.QType, r[1:])
		}
		if printable(r[4]) && m.Query != r[4] {
			t.Errorf("%s id %s: query %q, tshark %q", r[0], r[2], m.Query, r[4])
		}
		if resp {
			rc, _ := strconv.Atoi(r[6])
			an, _ := strconv.Atoi(r[7])
			if m.RCode != rc || len(m.Answers) != min(an, MaxDNSAnswers) {
				t.Errorf("%s id %s: rcode %d answers %d, tshark %s %s", r[0], r[2], m.RCode, len(m.Answers), r[6], r[7])
			}
		}
		var svc string
		if resp {
			svc = Service("udp", nil, b)
		} else {
			svc = Service("udp", b, nil)
		}
		if svc == "dns" {
			labelled++
		} else {
			t.Logf("%s id %s: Service %q for %x", r[0], r[2], svc, b)
		}
	}
	t.Logf("%d DNS messages parsed, %d labelled dns by Service", n, labelled)
	if n == 0 {
		t.Fatal("no DNS messages found in the corpus")
	}
	if labelled != n {
		t.Errorf("Service labelled %d of %d DNS messages", labelled, n)
	}
}

func TestCorpusTLS(t *testing.T) {
	rows := tsharkFields(t, "tls.handshake.type==1 && tcp", "tcp.payload", "tls.handshake.ja3", "tls.handshake.extensions_server_name")
	n := 0
	for _, r := range rows {
		b, err := hex.DecodeString(r[1])
		if err != nil || len(b) < 5 || b[0] != 0x16 {
			continue // the hello starts in an earlier segment
		}
		got, err := ClientHello(b)
		if err != nil {
			if !bytes.Equal(b[:1], []byte{0x16}) || err != ErrShort {
				t.Errorf("%s: %v", r[0], err)
			}
			continue
		}
		n++
		if got.JA3 != r[2] || got.SNI != r[3] {
			t.Errorf("%s: ja3 %s sni %q, tshark %s %q", r[0], got.JA3, got.SNI, r[2], r[3])
		}
		if s := Service("tcp", b, nil); s != "ssl" {
			t.Errorf("%s: Service %q", r[0], s)
		}
	}
	t.Logf("%d ClientHellos matched tshark's JA3 and SNI", n)
	if n == 0 {
		t.Fatal("no ClientHello found in the corpus")
	}
}

func TestCorpusHTTP(t *testing.T) {
	rows := tsharkFields(t, "http.request && tcp", "tcp.payload", "http.request.method", "http.request.uri", "http.host", "http.user_agent")
	n := 0
	for _, r := range rows {
		b, err := hex.DecodeString(r[1])
		if err != nil || knownMethod(b) == "" {
			continue // reassembled over several segments
		}
		reqs, err := HTTPRequests(b, 4)
		if err != nil || len(reqs) == 0 {
			t.Errorf("%s: %v", r[0], err)
			continue
		}
		n++
		q := reqs[0]
		if q.Method != r[2] || q.URI != r[3] || q.Host != r[4] || q.UserAgent != r[5] {
			t.Errorf("%s: %+v, tshark %q", r[0], q, r[2:])
		}
		// HTTP/0.9's bare "GET /" is parsed but deliberately not labelled.
		if s := Service("tcp", b, nil); s != "http" && bytes.Contains(firstLine(b), []byte(" HTTP/1.")) {
			t.Errorf("%s: Service %q", r[0], s)
		}
	}
	t.Logf("%d HTTP requests matched tshark", n)
	if n == 0 {
		t.Fatal("no HTTP request found in the corpus")
	}
}
