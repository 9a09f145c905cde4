package netflow_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/internal/corpus"
	"github.com/cargowatch/cargowatch/netflow"
	"github.com/cargowatch/cargowatch/netflow/nftest"
	"github.com/cargowatch/cargowatch/pcap"
)

// analyzeExports runs a capture through flow.CaptureSource with export
// decoding, as analyze does, and splits what it emits.
func analyzeExports(t *testing.T, path string) (exported, own []*cw.Conn, dec *netflow.Decoder, st flow.SourceStats) {
	t.Helper()
	dec = netflow.NewDecoder(netflow.Config{})
	src := flow.NewCaptureSource([]string{path}, flow.Config{}, pcap.Options{})
	src.DecodeExports(dec)
	err := src.Run(context.Background(), func(c *cw.Conn) {
		if strings.HasPrefix(c.Source, path+"#netflow://") {
			exported = append(exported, c)
		} else {
			own = append(own, c)
		}
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return exported, own, dec, src.Stats()
}

// tsharkFlows counts the flow records tshark's cflow dissector reads in
// a capture (records it cannot read for want of a template are not
// counted by either side) and sums their octets.
func tsharkFlows(t *testing.T, path string, port int) (records int, octets int64, noTemplate int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	decodeAs := "udp.port==" + strconv.Itoa(port) + ",cflow"
	out, err := exec.Command("tshark", "-r", path, "-d", decodeAs, "-T", "fields", "-E", "occurrence=a", "-e", "cflow.srcaddr", "-e", "cflow.srcaddrv6", "-e", "cflow.octets").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			continue
		}
		for _, c := range cols[:2] {
			if c != "" {
				records += len(strings.Split(c, ","))
			}
		}
		if cols[2] != "" {
			for _, o := range strings.Split(cols[2], ",") {
				n, err := strconv.ParseInt(o, 10, 64)
				if err != nil {
					t.Fatalf("tshark octets %q: %v", o, err)
				}
				octets += n
			}
		}
	}
	v, err := exec.Command("tshark", "-r", path, "-d", decodeAs, "-V").Output()
	if err != nil {
		t.Fatalf("tshark -V: %v", err)
	}
	noTemplate = len(regexp.MustCompile(`(?m)^\s+Data \(\d+ bytes\), no template found$`).FindAll(v, -1))
	return records, octets, noTemplate
}

func TestCaptureCorpusExports(t *testing.T) {
	tests := []struct {
		file          string
		port          int
		datagrams     int64
		wantTemplates int // templates learnt from the capture
	}{
		// Ten v9 datagrams whose exporter sent its templates before the
		// capture began: every data set is unreadable, for tshark too.
		{"ndpi-netflowv9.pcap", 2057, 10, 0},
		// One IPFIX datagram with a data template and two options
		// templates, no data.
		{"ndpi-netflow-fritz.pcap", 4739, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := corpus.Path(t, "netflow", tt.file)
			exported, own, dec, st := analyzeExports(t, path)
			records, _, noTemplate := tsharkFlows(t, path, tt.port)
			if len(exported) != records {
				t.Errorf("Conns from the exports = %d, tshark reads %d flow records", len(exported), records)
			}
			ds := dec.Stats()
			if int(ds.TemplatesMissing) != noTemplate {
				t.Errorf("data sets without template = %d, tshark says %d", ds.TemplatesMissing, noTemplate)
			}
			if st.Exports.Datagrams != tt.datagrams || ds.Datagrams != uint64(tt.datagrams) {
				t.Errorf("export datagrams = %d (decoder %d), want %d", st.Exports.Datagrams, ds.Datagrams, tt.datagrams)
			}
			if ds.Malformed != 0 || st.Exports.Errors != 0 {
				t.Errorf("malformed = %d, errors %d (%s)", ds.Malformed, st.Exports.Errors, st.Exports.FirstError)
			}
			if ds.Templates != tt.wantTemplates {
				t.Errorf("templates = %d, want %d", ds.Templates, tt.wantTemplates)
			}
			if len(own) != 1 || own[0].Proto != "udp" {
				t.Errorf("the capture's own conversations = %d, want the one export stream", len(own))
			}
		})
	}
}

// TestCaptureSoftflowdExports writes the datagrams a real exporter sent
// into a capture, as a tap between exporter and collector would hold
// them, and checks that analyze's path decodes every flow record tshark
// reads, with the same octets.
func TestCaptureSoftflowdExports(t *testing.T) {
	capture := corpus.Path(t, "pcap", "c2", "slips-test-cc-capture-2.pcap")
	for _, version := range []string{"9", "10", "5"} {
		t.Run("v"+version, func(t *testing.T) {
			dgs := nftest.Softflowd(t, capture, version)
			path := filepath.Join(t.TempDir(), "exports.pcap")
			const port = 9996
			start := time.Date(2024, 2, 13, 15, 0, 0, 0, time.UTC)
			if err := nftest.WritePcap(path, start, nftest.Addr4(10, 0, 0, 1, 40000), nftest.Addr4(10, 0, 0, 2, port), dgs); err != nil {
				t.Fatal(err)
			}
			exported, _, dec, _ := analyzeExports(t, path)
			records, octets, _ := tsharkFlows(t, path, port)
			if records == 0 {
				t.Fatal("tshark read no flow records: the comparison would prove nothing")
			}
			var sum int64
			for _, c := range exported {
				sum += c.OrigIPBytes + c.RespIPBytes
			}
			if len(exported) != records || sum != octets {
				t.Errorf("Conns %d with %d IP bytes; tshark reads %d records with %d octets", len(exported), sum, records, octets)
			}
			if s := dec.Stats(); s.Malformed != 0 || s.TemplatesMissing != 0 || s.Dropped != 0 {
				t.Errorf("decoder stats %+v", s)
			}
			for _, c := range exported {
				if c.Source != path+"#netflow://10.0.0.1:40000" {
					t.Fatalf("Source = %q, want the exporter", c.Source)
				}
			}
		})
	}
}

// TestSoftflowdBiflow: softflowd's IPFIX biflow mode (-b, RFC 5103
// reverse elements) gives one Conn per conversation carrying both
// directions; over a capture, the bytes must be those of the
// unidirectional export of the same capture.
func TestSoftflowdBiflow(t *testing.T) {
	capture := corpus.Path(t, "pcap", "c2", "slips-test-cc-capture-2.pcap")
	sum := func(dgs [][]byte) (conns, withResp int, bytes int64) {
		d := netflow.NewDecoder(netflow.Config{})
		for _, b := range dgs {
			if err := d.Decode(expA, at, b, func(c *cw.Conn) {
				conns++
				if c.RespIPBytes > 0 {
					withResp++
				}
				bytes += c.OrigIPBytes + c.RespIPBytes
			}); err != nil {
				t.Fatal(err)
			}
		}
		return conns, withResp, bytes
	}
	uni, _, uniBytes := sum(nftest.Softflowd(t, capture, "10"))
	bi, biResp, biBytes := sum(nftest.Softflowd(t, capture, "10", "-b"))
	if biBytes != uniBytes || bi >= uni || biResp == 0 {
		t.Errorf("biflow: %d conns (%d with reverse counters), %d bytes; unidirectional: %d conns, %d bytes", bi, biResp, biBytes, uni, uniBytes)
	}
}
