package pcap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

// TestCorpusEdge reads each parser edge case from Zeek's test traces.
// Expected numbers come from what the captures hold (checked with tshark
// and against Zeek's baselines where present), not from this reader.
func TestCorpusEdge(t *testing.T) {
	dir := corpus.Path(t, "pcap/edge")
	tests := []struct {
		file                        string
		ip, nonIP, trunc, malformed int64
		reassembled                 int64
		tunnel                      string
		tunneled                    int64
	}{
		{file: "zeek-chksums-ip4-tcp-bad-chksum.pcap", ip: 1}, // bad checksum still returned
		{file: "zeek-communityid-ipv6.pcap", ip: 17},
		{file: "zeek-erspanII.pcap", ip: 4, tunnel: "erspan", tunneled: 4},
		{file: "zeek-http-qinq-0.pcap", ip: 14},
		{file: "zeek-http-vlan-0.pcap", ip: 14},
		// Two overlapping first fragments and a last one: one NTP datagram.
		{file: "zeek-ipv4-fragmented-1.pcap", ip: 1, reassembled: 1},
		// Five fragments all with MF set: never complete.
		{file: "zeek-ipv4-fragmented-3.pcap", ip: 0},
		// 4 plain DNS packets plus one 3-fragment response; a lone last
		// fragment of another response stays incomplete.
		{file: "zeek-ipv6-fragmented-dns.pcap", ip: 5, reassembled: 1},
		{file: "zeek-ipv6-http-atomic-frag.pcap", ip: 38},
		{file: "zeek-linux_dlt_sll2.pcap", ip: 4, nonIP: 2},
		{file: "zeek-linuxsll-arp.pcap", nonIP: 12},
		{file: "zeek-mixed-vlan-mpls.pcap", ip: 47},
		{file: "zeek-mpls-in-vlan.pcap", ip: 3},
		{file: "zeek-nflog-http.pcap", ip: 13},
		{file: "zeek-pcapng-multi-interface.pcapng", ip: 6},
		{file: "zeek-pppoe-over-qinq.pcap", ip: 86},
		{file: "zeek-radiotap.pcap", ip: 3},
		{file: "zeek-raw_packets.pcap", ip: 26, nonIP: 7},
		{file: "zeek-snap-tcp.pcap", ip: 8},
		{file: "zeek-tcp-truncated-header.pcap", ip: 24},
		{file: "zeek-ticks-dns-1hr.pcap", ip: 10},
		{file: "zeek-trunc-icmp-payload-trunc.pcap", ip: 4},
		{file: "zeek-trunc-ip4-trunc.pcap", trunc: 1},
		{file: "zeek-trunc-ip6-trunc.pcap", trunc: 1},
		{file: "zeek-trunc-ipv4-truncated-broken-header.pcap", malformed: 1},
		{file: "zeek-trunc-trunc-hdr.pcap", trunc: 1},
		// Only the 4 packets on UDP 3544 are Teredo; the rest is plain IPv4.
		{file: "zeek-tunnels-Teredo.pcap", ip: 78, tunnel: "teredo", tunneled: 4},
		{file: "zeek-tunnels-gre-aruba.pcap", ip: 2407, tunnel: "gre", tunneled: 2407},
		{file: "zeek-tunnels-vxlan-encapsulated-http.pcap", ip: 12, tunnel: "vxlan", tunneled: 12},
		{file: "zeek-vlan-pcp-dei.pcapng", ip: 9},
		{file: "zeek-vlan-qinqinq.pcap", ip: 14},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			pkts, r := readAll(t, []string{filepath.Join(dir, tc.file)}, Options{})
			if errs := r.Errors(); len(errs) != 0 {
				t.Errorf("errors: %v", errs)
			}
			s := r.Stats()
			if s.IP != tc.ip || s.NonIP != tc.nonIP || s.Truncated != tc.trunc || s.Malformed != tc.malformed || s.Reassembled != tc.reassembled {
				t.Errorf("ip %d nonip %d trunc %d malformed %d reassembled %d, want %d %d %d %d %d",
					s.IP, s.NonIP, s.Truncated, s.Malformed, s.Reassembled, tc.ip, tc.nonIP, tc.trunc, tc.malformed, tc.reassembled)
			}
			var tun int64
			for _, p := range pkts {
				if p.Tunnel != "" {
					if p.Tunnel != tc.tunnel {
						t.Errorf("tunnel %q, want %q", p.Tunnel, tc.tunnel)
					}
					tun++
				}
			}
			if tun != tc.tunneled || s.Decapsulated != tc.tunneled {
				t.Errorf("%d packets (stats %d) from tunnels, want %d", tun, s.Decapsulated, tc.tunneled)
			}
		})
	}
}

// The inner conversations must be what Zeek saw. Zeek's conn.log gives
// packets and IP bytes per connection; sum ours by connection and compare.
func TestCorpusZeekConnBaseline(t *testing.T) {
	dir := corpus.Path(t, "pcap/edge")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.baseline-conn.log"))
	if len(logs) == 0 {
		t.Skip("no conn.log baselines in corpus")
	}
	for _, log := range logs {
		capture := strings.TrimSuffix(log, ".baseline-conn.log") + ".pcap"
		t.Run(filepath.Base(capture), func(t *testing.T) {
			want := zeekConns(t, log)
			pkts, _ := readAll(t, []string{capture}, Options{})
			type agg struct{ pkts, ipBytes int64 }
			have := map[string]*agg{}
			r := NewReader([]string{capture}, Options{})
			defer r.Close()
			for {
				p, err := r.Next()
				if err == io.EOF {
					break
				}
				k := connKey(p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto)
				if have[k] == nil {
					have[k] = &agg{}
				}
				have[k].pkts++
				have[k].ipBytes += int64(p.IPLen)
			}
			if len(pkts) == 0 {
				t.Fatal("no packets")
			}
			for k, w := range want {
				h := have[k]
				if h == nil {
					t.Errorf("conn %s in Zeek's log not seen", k)
					continue
				}
				if h.pkts != w[0] || h.ipBytes != w[1] {
					t.Errorf("conn %s: %d packets %d IP bytes, Zeek %d and %d", k, h.pkts, h.ipBytes, w[0], w[1])
				}
			}
			if len(have) != len(want) {
				t.Errorf("%d conns, Zeek has %d", len(have), len(want))
			}
		})
	}
}

func connKey(a netip.Addr, ap uint16, b netip.Addr, bp uint16, proto uint8) string {
	x, y := fmt.Sprintf("%s/%d", a, ap), fmt.Sprintf("%s/%d", b, bp)
	if y < x {
		x, y = y, x
	}
	return fmt.Sprintf("%d %s %s", proto, x, y)
}

// zeekConns reads a Zeek TSV conn.log: key -> {packets, ip bytes}.
func zeekConns(t *testing.T, path string) map[string][2]int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][2]int64{}
	var fields []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		rec := map[string]string{}
		for i, v := range strings.Split(line, "\t") {
			if i < len(fields) {
				rec[fields[i]] = v
			}
		}
		n := func(k string) int64 { v, _ := strconv.ParseInt(rec[k], 10, 64); return v }
		proto := map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1}[rec["proto"]]
		k := connKey(netip.MustParseAddr(rec["id.orig_h"]), uint16(n("id.orig_p")), netip.MustParseAddr(rec["id.resp_h"]), uint16(n("id.resp_p")), proto)
		out[k] = [2]int64{n("orig_pkts") + n("resp_pkts"), n("orig_ip_bytes") + n("resp_ip_bytes")}
	}
	return out
}

// Zeek's dns.log for this capture has the answer to query 40849, which
// only exists once its three IPv6 fragments are put back together.
func TestCorpusIPv6FragmentedDNS(t *testing.T) {
	path := filepath.Join(corpus.Path(t, "pcap/edge"), "zeek-ipv6-fragmented-dns.pcap")
	pkts, _ := readAll(t, []string{path}, Options{})
	found := false
	for _, p := range pkts {
		if p.SrcPort == 53 && p.DstPort == 51851 && len(p.Payload) >= 2 && binary.BigEndian.Uint16([]byte(p.Payload)) == 40849 {
			found = true
			if p.PayloadLen != len(p.Payload) || p.PayloadLen < 3000 {
				t.Errorf("reassembled DNS answer: %d of %d bytes", len(p.Payload), p.PayloadLen)
			}
		}
	}
	if !found {
		t.Error("no reassembled answer to DNS transaction 40849")
	}
}

// Against tshark: frames tshark sees as IP are our returned non-fragment
// packets plus every fragment, plus those we refuse as truncated or
// malformed when tshark still shows their IP layer.
func TestCorpusTshark(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the tshark comparison starts tshark once per capture")
	}
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: skipping the comparison with tshark")
	}
	root := corpus.Path(t, "pcap")
	files := corpusCaptures(t, root)
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, root), func(t *testing.T) {
			out, err := exec.Command(tshark, "-r", f, "-Y", "ip || ipv6", "-T", "fields", "-e", "frame.number").Output()
			if err != nil {
				t.Skipf("tshark: %v", err)
			}
			ts := int64(bytes.Count(out, []byte("\n")))
			_, r := readAll(t, []string{f}, Options{})
			s := r.Stats()
			low := s.IP - s.Reassembled + s.Fragments
			if ts < low || ts > low+s.Truncated+s.Malformed {
				t.Errorf("tshark sees %d IP frames; we see %d (+ up to %d truncated/malformed): %+v", ts, low, s.Truncated+s.Malformed, s)
			}
		})
	}
}

func corpusCaptures(t *testing.T, root string) []string {
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".pcapng")) {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// Every capture of the corpus is read without panic or error, one by one
// and merged, and the merge returns exactly the sum of the parts.
func TestCorpusAll(t *testing.T) {
	root := corpus.Path(t)
	dirs := []string{filepath.Join(root, "pcap"), filepath.Join(root, "netflow")}
	var sum int64
	for _, d := range dirs {
		for _, f := range corpusCaptures(t, d) {
			_, r := readAll(t, []string{f}, Options{})
			if len(r.Errors()) != 0 {
				t.Errorf("%s: %v", f, r.Errors())
			}
			sum += r.Stats().IP
		}
	}
	pkts, r := readAll(t, dirs, Options{})
	if len(r.Errors()) != 0 {
		t.Errorf("merged: %v", r.Errors())
	}
	if int64(len(pkts)) != sum {
		t.Errorf("merged run returned %d packets, files one by one %d", len(pkts), sum)
	}
	for i := 1; i < len(pkts); i++ {
		if pkts[i].TS < pkts[i-1].TS && pkts[i].Input != pkts[i-1].Input {
			t.Errorf("packet %d (%s) is older than packet %d (%s) from another file", i, pkts[i].Input, i-1, pkts[i-1].Input)
			break
		}
	}
	if s := r.Stats(); s.Skipped == 0 {
		t.Errorf("the .log/.out files beside captures should be skipped: %+v", s)
	}
}
