package zeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// dataLines counts a log's records the plain way: lines that are not
// headers or blank.
func dataLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

func collect(t *testing.T, paths []string, opts Options) ([]*cw.Conn, *Source, error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s := NewSource(paths, opts)
	var out []*cw.Conn
	err := s.Run(context.Background(), func(c *cw.Conn) { out = append(out, c) })
	return out, s, err
}

func TestCorpusConnCounts(t *testing.T) {
	for _, tc := range []struct {
		dir       string
		connFiles []string
	}{
		{"zeek/slips-test10-mixed", []string{"conn.log"}},
		{"zeek/slips-test15-malicious", []string{"conn.log"}},
		{"zeek/rita-json_with_all_fields", []string{"conn.log", "open_conn.log"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := corpus.Path(t, strings.Split(tc.dir, "/")...)
			want := 0
			for _, f := range tc.connFiles {
				want += dataLines(t, filepath.Join(dir, f))
			}
			conns, s, err := collect(t, []string{dir}, Options{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(conns) != want {
				t.Errorf("%d Conns, want %d (conn log lines)", len(conns), want)
			}
			st := s.Stats()
			if st.Records != int64(want) || st.Malformed != 0 {
				t.Errorf("stats %+v", st)
			}
			for i := 1; i < len(conns); i++ {
				if conns[i].TS.Before(conns[i-1].TS) {
					t.Errorf("Conn %d at %v before Conn %d at %v", i, conns[i].TS, i-1, conns[i-1].TS)
					break
				}
			}
		})
	}
}

// The ICS captures' conn logs, named PREFIX.zeek-conn.log beside their
// modbus and dnp3 logs: each file given alone yields its own lines.
func TestCorpusICSConnLogs(t *testing.T) {
	dir := corpus.Path(t, "pcap", "ics")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.zeek-conn.log"))
	if len(logs) == 0 {
		t.Skip("no ICS conn logs")
	}
	for _, l := range logs {
		conns, _, err := collect(t, []string{l}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if want := dataLines(t, l); len(conns) != want {
			t.Errorf("%s: %d Conns, want %d", l, len(conns), want)
		}
		for _, c := range conns {
			if c.Proto != "tcp" || !c.Orig.Addr.IsValid() || c.Resp.Port == 0 || c.Source != l {
				t.Errorf("%s: odd Conn %+v", l, c)
				break
			}
		}
	}
	// The whole directory: the same Conns, the dnp3/modbus logs not joined.
	conns, _, err := collect(t, []string{dir}, Options{})
	if err != nil {
		t.Fatalf("dir: %v", err)
	}
	want := 0
	for _, l := range logs {
		want += dataLines(t, l)
	}
	if len(conns) != want {
		t.Errorf("dir: %d Conns, want %d", len(conns), want)
	}
	for _, c := range conns {
		if strings.Contains(c.Source, "dnp3") && c.Service != "dnp3" {
			t.Errorf("service %q, want dnp3 (Zeek's dnp3_tcp)", c.Service)
			break
		}
	}
}

// btest baselines have their timestamps replaced by X's: every line is
// reported malformed, with the file and line, and nothing is made up.
func TestCorpusBaselineCanonifiedTimes(t *testing.T) {
	l := corpus.Path(t, "pcap", "edge", "zeek-mpls-in-vlan.baseline-conn.log")
	conns, s, err := collect(t, []string{l}, Options{})
	if len(conns) != 0 {
		t.Errorf("%d Conns from canonified times", len(conns))
	}
	var ie *cw.InputError
	if !errors.As(err, &ie) || ie.Input != l || !strings.Contains(err.Error(), "line 10") || !strings.Contains(err.Error(), "XXXXXXXXXX") {
		t.Errorf("err = %v, want InputError naming %s line 10 and the value", err, l)
	}
	if got, want := s.Stats().Malformed, int64(dataLines(t, l)); got != want {
		t.Errorf("malformed %d, want %d", got, want)
	}
}

func TestCorpusNamesReachConns(t *testing.T) {
	rita := corpus.Path(t, "zeek", "rita-json_with_all_fields")
	conns, _, err := collect(t, []string{rita}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var dnscat, sni, http, open, ja3 int
	for _, c := range conns {
		for _, d := range c.DNS {
			if strings.HasSuffix(d.Query, ".dnsc.r-1x.com") {
				dnscat++
				if d.QType != 16 || d.QueryLen <= len(d.Query) || len(d.TTLs) != len(d.Answers) {
					t.Errorf("dnscat2 query %+v", d)
				}
			}
		}
		if c.TLS != nil && c.TLS.SNI != "" {
			sni++
			if c.TLS.JA3 != "" {
				ja3++
			}
		}
		for _, h := range c.HTTP {
			if h.Host != "" && h.Method != "" && h.StatusCode > 0 {
				http++
			}
		}
		if c.Open {
			open++
		}
	}
	if dnscat == 0 {
		t.Error("no Conn carries a DNS query under dnsc.r-1x.com")
	}
	if sni == 0 || ja3 == 0 {
		t.Errorf("%d Conns with SNI, %d with JA3", sni, ja3)
	}
	if http == 0 {
		t.Error("no Conn carries an HTTP request")
	}
	if want := dataLines(t, filepath.Join(rita, "open_conn.log")); open != want {
		t.Errorf("%d open Conns, want %d", open, want)
	}

	slips := corpus.Path(t, "zeek", "slips-test10-mixed")
	conns, _, err = collect(t, []string{slips}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, c := range conns {
		if c.TLS != nil {
			found[c.TLS.SNI] = true
		}
		for _, d := range c.DNS {
			found[d.Query] = true
		}
	}
	for _, name := range []string{"virtual.secai.com", "mail.google.com", "clients6.google.com"} {
		if !found[name] {
			t.Errorf("%s does not reach any Conn", name)
		}
	}
}

// A single log given alone brings its siblings of the same period.
func TestFileFindsSiblings(t *testing.T) {
	slips := corpus.Path(t, "zeek", "slips-test10-mixed")
	a, _, err := collect(t, []string{filepath.Join(slips, "ssl.log")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := collect(t, []string{slips, filepath.Join(slips, "conn.log")}, Options{})
	if len(a) == 0 || len(a) != len(b) {
		t.Errorf("via ssl.log: %d Conns; via dir and conn.log: %d", len(a), len(b))
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gzipBytes(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(text))
	zw.Close()
	return b.Bytes()
}

const tsvHead = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"

func connLine(ts int, uid string) string {
	return strings.Join([]string{
		strconv.Itoa(ts) + ".000001", uid, "10.0.0.1", "40000", "198.51.100.7", "443", "tcp", "ssl", "1.5", "100", "2000", "SF", "0", "ShADadFf", "5", "300", "6", "2300", "(empty)",
	}, "\t") + "\n"
}

// Rotated archives in dated directories and Zeek's own archive names are
// read in time order, each joined with its own period's side logs.
func TestRotatedDirectory(t *testing.T) {
	dir := t.TempDir()
	sslHead := "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tserver_name\n"
	// 07:00 period, gzipped in a dated subdirectory (zeekctl's layout).
	d := filepath.Join(dir, "2026-11-29")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "conn.07:00:00-08:00:00.log.gz"), gzipBytes(t, tsvHead+connLine(1795935600, "CA")+connLine(1795935601, "CB")), 0o644)
	os.WriteFile(filepath.Join(d, "ssl.07:00:00-08:00:00.log.gz"), gzipBytes(t, sslHead+"1795935600.1\tCA\t10.0.0.1\t40000\t198.51.100.7\t443\tTLSv13\ta.example\n"), 0o644)
	// 08:00 period, Zeek's archive name beside the live logs.
	writeFile(t, filepath.Join(dir, "conn.2026-11-29-08-00-00.log"), tsvHead+connLine(1795939200, "CC"))
	writeFile(t, filepath.Join(dir, "ssl.2026-11-29-08-00-00.log"), sslHead+"1795939200.1\tCC\t10.0.0.1\t40000\t198.51.100.7\t443\tTLSv12\tc.example\n"+
		"1795939200.1\tCA\t10.0.0.1\t40000\t198.51.100.7\t443\tTLSv12\twrong-period.example\n")
	// Live logs: the current period.
	writeFile(t, filepath.Join(dir, "conn.log"), tsvHead+connLine(1795942800, "CD"))
	writeFile(t, filepath.Join(dir, "loaded_scripts.log"), "#separator \\x09\n#fields\tname\n/x.zeek\n")

	conns, s, err := collect(t, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range conns {
		sni := ""
		if c.TLS != nil {
			sni = c.TLS.SNI
		}
		got = append(got, c.UID+":"+sni)
	}
	want := "CA:a.example CB: CC:c.example CD:"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	if st := s.Stats(); st.Unmatched != 1 || st.Files != 5 {
		t.Errorf("stats %+v: want the 08:00 ssl line for CA unmatched, 5 files read", st)
	}
}

func TestMalformedLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "conn.log")
	bad := []string{
		"1795935600.5\tCX\t10.0.0.1\t40000\t198.51.100.7\n",                                                        // too few fields
		strings.Replace(connLine(1795935601, "CY"), "10.0.0.1", "10.0.0.300", 1),                                   // address
		strings.Replace(connLine(1795935602, "CZ"), "\t2000\t", "\t20x0\t", 1),                                     // count
		strings.Replace(connLine(1795935603, "CW"), "\t443\t", "\t70000\t", 1),                                     // port
		"{\"ts\": 1795935604.0, \"uid\": \"CJ\", \"id.orig_h\": \"10.0.0.1\", \"id.resp_h\": \"198.51.100.7\", \n", // cut JSON
	}
	text := tsvHead + connLine(1795935590, "C1") + strings.Join(bad, "") + connLine(1795935610, "C2")
	writeFile(t, p, text)
	var logs bytes.Buffer
	conns, s, err := collect(t, []string{p}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if len(conns) != 2 || conns[0].UID != "C1" || conns[1].UID != "C2" {
		t.Fatalf("got %d Conns, want C1 and C2", len(conns))
	}
	if s.Stats().Malformed != int64(len(bad)) {
		t.Errorf("malformed %d, want %d", s.Stats().Malformed, len(bad))
	}
	// Good lines beside the bad ones: the file is usable, so a warning,
	// not an input error.
	if err != nil {
		t.Errorf("err = %v, want nil: the file had good lines", err)
	}
	for _, w := range []string{"line=9", "line=10", "10.0.0.300", "20x0", "70000", "cut short", "5 malformed line(s) skipped of 14, first at line 9"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("warnings lack %q:\n%s", w, logs.String())
		}
	}
	if strings.Count(logs.String(), "malformed line skipped\"") != maxWarnPerFile {
		t.Errorf("want %d warnings one by one, then a count:\n%s", maxWarnPerFile, logs.String())
	}
}

// A log's type comes from its name only when Zeek gave the name; a conn
// log saved as "capture1.log" is read by its #path header, and a log
// cargowatch does not read is an error naming it, never silently nothing.
func TestLogTypeFromContent(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "capture1.log")
	writeFile(t, own, tsvHead+connLine(1795935590, "C1")+connLine(1795935591, "C2"))
	conns, _, err := collect(t, []string{own}, Options{})
	if err != nil || len(conns) != 2 {
		t.Errorf("capture1.log: %d Conns, err %v; want 2 and no error", len(conns), err)
	}
	notice := filepath.Join(t.TempDir(), "alerts1.log")
	writeFile(t, notice, strings.Replace(tsvHead, "#path\tconn", "#path\tnotice", 1))
	conns, _, err = collect(t, []string{notice}, Options{})
	var ie *cw.InputError
	if len(conns) != 0 || !errors.As(err, &ie) || ie.Input != notice || !strings.Contains(err.Error(), "notice log") {
		t.Errorf("alerts1.log (a notice log): %d Conns, err %v; want an InputError naming it", len(conns), err)
	}
}

func TestAllLinesMalformed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "conn.log")
	writeFile(t, p, tsvHead+"1795935600.5\tCX\t10.0.0.1\n")
	conns, _, err := collect(t, []string{p}, Options{})
	var ie *cw.InputError
	if len(conns) != 0 || !errors.As(err, &ie) || ie.Input != p || !strings.Contains(err.Error(), "line 8") {
		t.Errorf("got %d Conns, err = %v; want an InputError for %s naming line 8", len(conns), err, p)
	}
}

func TestTruncatedGzip(t *testing.T) {
	dir := t.TempDir()
	var text strings.Builder
	text.WriteString(tsvHead)
	for i := 0; i < 2000; i++ {
		text.WriteString(connLine(1795935600+i, "C"+strings.Repeat("x", i%7)))
	}
	z := gzipBytes(t, text.String())
	p := filepath.Join(dir, "conn.2026-11-29-07-00-00.log.gz")
	os.WriteFile(p, z[:len(z)*2/3], 0o644)
	conns, _, err := collect(t, []string{p}, Options{})
	var ie *cw.InputError
	if !errors.As(err, &ie) || ie.Input != p || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("err = %v, want InputError naming %s and the cut", err, p)
	}
	if len(conns) < 500 || len(conns) >= 2000 {
		t.Errorf("%d Conns before the cut", len(conns))
	}
	for i, c := range conns {
		if c.TS.Unix() != 1795935600+int64(i) {
			t.Fatalf("Conn %d: %v, the records before the cut must all be there in order", i, c.TS)
		}
	}
}

func TestMissingAndEmptyInputs(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	writeFile(t, filepath.Join(dir, "side", "dns.log"), "#separator \\x09\n#fields\tts\tuid\tquery\n1.0\tCA\tx.example\n")
	_, _, err := collect(t, []string{filepath.Join(dir, "nope"), empty, filepath.Join(dir, "side")}, Options{})
	for _, w := range []string{"nope", "no Zeek logs", "no conn log"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err %v lacks %q", err, w)
		}
	}
	if !cw.IsInputError(err) {
		t.Errorf("err %v is not an InputError", err)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	var text strings.Builder
	text.WriteString(tsvHead)
	for i := 0; i < 20000; i++ {
		text.WriteString(connLine(1795935600+i, "C"))
	}
	writeFile(t, filepath.Join(dir, "conn.log"), text.String())
	ctx, cancel := context.WithCancel(context.Background())
	s := NewSource([]string{dir}, Options{Logger: quiet, Reorder: -1})
	n := 0
	err := s.Run(ctx, func(*cw.Conn) {
		if n++; n == 10 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n > 10+checkEvery {
		t.Errorf("err %v after %d Conns", err, n)
	}
}
