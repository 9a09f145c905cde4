package zeek

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

func TestJSONLines(t *testing.T) {
	want := time.Unix(1517422326, 539915000).UTC()
	for _, tc := range []struct {
		name, line string
		check      func(t *testing.T, c *cw.Conn)
	}{
		{"epoch float", `{"ts":1517422326.539915,"uid":"CA","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp"}`, nil},
		{"ISO 8601", `{"ts":"2018-01-31T18:12:06.539915Z","uid":"CA","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp"}`, nil},
		{"millis", `{"ts":1517422326539,"uid":"CA","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2}`,
			func(t *testing.T, c *cw.Conn) {
				if !c.TS.Equal(time.UnixMilli(1517422326539)) {
					t.Errorf("ts %v", c.TS)
				}
			}},
		{"nested id, unknown fields of every shape", `{"ts":1517422326.539915,"uid":"CA","id":{"orig_h":"10.0.0.1","orig_p":1,"resp_h":"10.0.0.2","resp_p":2},` +
			`"labels":{"a":[1,{"b":null}]},"community_id":"1:x","ja3":null,"tags":[],"proto":"udp","duration":1.5e-05,"orig_bytes":1.0e3}`,
			func(t *testing.T, c *cw.Conn) {
				if c.Resp.Addr.String() != "10.0.0.2" || c.Resp.Port != 2 || c.Duration != 15*time.Microsecond || c.OrigBytes != 1000 {
					t.Errorf("%+v", c)
				}
			}},
		{"escapes", `{"ts":1517422326.539915,"uid":"C\u0041","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"history":"Sh\"\\\/","service":"\ud83d\ude00"}`,
			func(t *testing.T, c *cw.Conn) {
				if c.UID != "CA" || c.History != `Sh"\/` || c.Service != "😀" {
					t.Errorf("uid %q history %q service %q", c.UID, c.History, c.Service)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, st, err := readConnText(t, tc.line+"\n", nil)
			if err != nil || len(cs) != 1 || st.Malformed != 0 {
				t.Fatalf("%d Conns, %+v, %v", len(cs), st, err)
			}
			if tc.check != nil {
				tc.check(t, cs[0])
			} else if !cs[0].TS.Equal(want) || cs[0].UID != "CA" || cs[0].Orig.Port != 1 {
				t.Errorf("%+v", cs[0])
			}
		})
	}
}

func TestJSONMalformed(t *testing.T) {
	for _, line := range []string{
		`{"ts":1.0,"uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"`,   // cut
		`{"ts":1.0,"uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"}x`, // trailing
		`{"ts":"yesterday","uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"}`,
		`{"ts":1.0,"uid":"CA","id.orig_h":"10.0.0.1"}`,
		`{"ts":1.0,"uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2","orig_bytes":-5}`,
		`{"ts":1.0,"uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2","x":[[[[` + strings.Repeat("[", 64) + `]]]]}`,
		`{"ts":1.0 "uid":"CA"}`,
	} {
		cs, st, err := readConnText(t, line+"\n", nil)
		if len(cs) != 0 || st.Malformed != 1 || err == nil {
			t.Errorf("%s: %d Conns, %+v, %v", line, len(cs), st, err)
		}
	}
}

// tsvToJSON converts a Zeek TSV log to Zeek JSON lines by its #types,
// independently of the reader: encoding/json writes the values.
func tsvToJSON(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields, types []string
	var out strings.Builder
	// Zeek's JSON writer escapes bytes that are not UTF-8 as \xHH.
	unesc := func(s string) string {
		b := unescapeTSV(nil, []byte(s))
		var out strings.Builder
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			if r == utf8.RuneError && n == 1 {
				fmt.Fprintf(&out, "\\x%02x", b[0])
			} else {
				out.Write(b[:n])
			}
			b = b[n:]
		}
		return out.String()
	}
	value := func(typ, v string) any {
		switch typ {
		case "count", "port", "int", "double", "interval", "time":
			return json.RawMessage(v)
		case "bool":
			return v == "T"
		}
		return unesc(v)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
		}
		if strings.HasPrefix(line, "#types\t") {
			types = strings.Split(line, "\t")[1:]
		}
		if line == "" || line[0] == '#' {
			continue
		}
		m := map[string]any{}
		for i, v := range strings.Split(line, "\t") {
			typ := types[i]
			switch {
			case v == "-":
				continue
			case strings.HasPrefix(typ, "set[") || strings.HasPrefix(typ, "vector["):
				elems := []any{}
				if v != "(empty)" {
					inner := typ[strings.IndexByte(typ, '[')+1 : len(typ)-1]
					for _, e := range strings.Split(v, ",") {
						elems = append(elems, value(inner, e))
					}
				}
				m[fields[i]] = elems
			case v == "(empty)":
				m[fields[i]] = ""
			default:
				m[fields[i]] = value(typ, v)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.String()
}

func TestTSVAndJSONAgree(t *testing.T) {
	src := corpus.Path(t, "zeek", "slips-test10-mixed")
	dir := t.TempDir()
	for _, n := range []string{"conn.log", "dns.log", "ssl.log"} {
		writeFile(t, filepath.Join(dir, n), tsvToJSON(t, filepath.Join(src, n)))
	}
	a, _, err := collect(t, []string{src}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := collect(t, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("TSV %d Conns, JSON %d", len(a), len(b))
	}
	named := 0
	for i := range a {
		x, y := *a[i], *b[i]
		x.Source, y.Source = "", ""
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("Conn %d differs:\nTSV  %+v\nJSON %+v", i, x, y)
		}
		if len(x.DNS) > 0 || x.TLS != nil {
			named++
		}
	}
	if named == 0 {
		t.Error("no Conn with DNS or TLS to compare")
	}
}

func TestSniff(t *testing.T) {
	tsv, _ := os.ReadFile(corpus.Path(t, "zeek", "slips-test10-mixed", "conn.log"))
	rita, _ := os.ReadFile(corpus.Path(t, "zeek", "rita-json_with_all_fields", "dns.log"))
	base, _ := os.ReadFile(corpus.Path(t, "pcap", "edge", "zeek-mpls-in-vlan.baseline-conn.log"))
	eve := `{"timestamp":"2021-06-06T15:57:33.262012+0200","flow_id":1,"event_type":"flow","src_ip":"10.0.0.1"}`
	head := func(b []byte) []byte { return b[:min(len(b), 4096)] }
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"TSV with a leading tab", head(tsv), true},
		{"JSON cut mid-line", rita[:100], true},
		{"gzip TSV", head(gzipBytes(t, string(tsv))), true},
		{"btest baseline", head(base), true},
		{"plain tsv mode", []byte("ts\tuid\tid.orig_h\tid.orig_p\n1\tC\t1.2.3.4\t5\n"), true},
		{"Suricata EVE", []byte(eve), false},
		{"pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, false},
		{"CSV", []byte("ts,uid,src\n1,2,3\n"), false},
		{"empty", nil, false},
		{"cut gzip", gzipBytes(t, string(tsv))[:10], false},
	} {
		if got := Sniff(tc.in); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLogPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/zeek/logs/current/conn.log", "conn"},
		{"conn.2026-11-29-07-00-00.log.gz", "conn"},
		{"2026-11-29/dns.07:00:00-08:00:00.log.gz", "dns"},
		{"open_conn.log", "open_conn"},
		{"automayt-dnp3_test_data_part1.zeek-conn.log", "conn"},
		{"zeek-ipv6-fragmented-dns.baseline-dns.log", "dns"},
		{"syslog.log.1", ""},
		{"capture.pcap", ""},
		{"eve.json", ""},
		{"Conn.log", ""},
	} {
		if got := LogPath(tc.in); got != tc.want {
			t.Errorf("LogPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !IsLogDir(corpus.Path(t, "zeek", "rita-json_with_all_fields")) || IsLogDir(t.TempDir()) {
		t.Error("IsLogDir")
	}
}

func TestTagTime(t *testing.T) {
	if got := tagTime("/x", "2026-11-29-07-00-00"); !got.Equal(time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("archive tag: %v", got)
	}
	if got := tagTime("/x/2026-11-29", "07:00:00-08:00:00"); !got.Equal(time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("dated dir tag: %v", got)
	}
	if !tagTime("/x", "07:00:00-08:00:00").IsZero() {
		t.Error("a time without a date must not be ordered as one")
	}
}

// scanStringRef is scanString as it was, a byte at a time.
func scanStringRef(line []byte, i int) (start, end int, esc bool, err error) {
	start = i + 1
	for j := start; j < len(line); j++ {
		switch line[j] {
		case '"':
			return start, j, esc, nil
		case '\\':
			esc = true
			j++
		}
	}
	return 0, 0, false, errJSONEnd
}

func sameScan(t *testing.T, b []byte) {
	for i := range b {
		if b[i] != '"' {
			continue
		}
		s1, e1, x1, err1 := scanString(b, i)
		s2, e2, x2, err2 := scanStringRef(b, i)
		if s1 != s2 || e1 != e2 || x1 != x2 || err1 != err2 {
			t.Fatalf("scanString(%q, %d) = %d, %d, %v, %v; byte loop %d, %d, %v, %v", b, i, s1, e1, x1, err1, s2, e2, x2, err2)
		}
	}
}

var scanSeeds = []string{
	`""`, `"a"`, `"abcdefgh"`, `"abcdefghi"`, `"abcdefg\"hij"`, `"\\"`, `"\\\\"`, `"abcdefg\\"`, `"abcdefgh\\"x"`,
	`"0123456\"`, `"01234567\"`, `"\u00e9\x00 CiqvYWc1qDPxPSN3IR"`, `"unterminated`, `"ends with backslash\`,
	`{"ts":1795935600.001100,"uid":"CiqvYWc1qDPxPSN3IR","id.orig_h":"10.1.84.61"}`,
}

func TestScanStringAsBefore(t *testing.T) {
	for _, s := range scanSeeds {
		sameScan(t, []byte(s))
	}
	// Every placement of a quote and a backslash around the word edges.
	for n := range 20 {
		for q := range n {
			for e := -1; e < n; e++ {
				b := []byte(`"` + strings.Repeat("x", n))
				b[1+q] = '"'
				if e >= 0 {
					b[1+e] = '\\'
				}
				sameScan(t, b)
			}
		}
	}
}

func FuzzScanString(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(sameScan)
}

// TestJSONLinesDoNotLeak: a field of one JSON line is gone on the next
// line that lacks it, and on a TSV line after JSON ones.
func TestJSONLinesDoNotLeak(t *testing.T) {
	p := newParser("x", nil)
	r, err := p.parse([]byte(`{"ts":1.5,"uid":"CA","id":{"orig_h":"10.0.0.1","resp_h":"10.0.0.2"},"service":"dns","vlan":7}`))
	if err != nil || !r.has(fService) || !r.has(fVLAN) || !r.has(fOrigH) {
		t.Fatalf("first line: %v", err)
	}
	r, err = p.parse([]byte(`{"ts":2.5,"uid":"CB","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"}`))
	if err != nil || r.has(fService) || r.has(fVLAN) || r.str(fUID) != "CB" {
		t.Fatalf("second line kept the first's fields: service %v vlan %v uid %q, %v", r.has(fService), r.has(fVLAN), r.str(fUID), err)
	}
	for _, l := range strings.Split(strings.TrimSpace(tsvHead), "\n") {
		p.parse([]byte(l))
	}
	p.parse([]byte(`{"ts":1.5,"uid":"CA","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2","query":"x.test"}`))
	r, err = p.parse([]byte(strings.TrimSuffix(connLine(1700000000, "CC"), "\n")))
	if err != nil || r.has(fQuery) || r.str(fUID) != "CC" {
		t.Fatalf("TSV line after JSON kept query: %v, %v", r.has(fQuery), err)
	}
	r, err = p.parse([]byte(`{"ts":3.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"}`))
	if err != nil || r.has(fUID) || r.has(fService) || r.has(fOrigBytes) {
		t.Fatalf("JSON line after TSV kept its fields: uid %v service %v, %v", r.has(fUID), r.has(fService), err)
	}
}

// samePredicted parses each line of text with one record, as a file is
// read (keys predicted from the lines before), and with a fresh one, and
// fails when they differ.
func samePredicted(t *testing.T, text []byte) {
	var kept record
	for _, line := range bytes.Split(text, []byte{'\n'}) {
		var fresh record
		err1 := parseJSON(line, &kept)
		err2 := parseJSON(line, &fresh)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: %v with keys remembered, %v without", line, err1, err2)
		}
		if err1 != nil {
			continue
		}
		for s := range nSlots {
			a, b := kept.v[s], fresh.v[s]
			if a.st != b.st || a.jk != b.jk || a.esc != b.esc || !bytes.Equal(a.b, b.b) {
				t.Fatalf("%q: %s is %+v with keys remembered, %+v without", line, slotNames[s], a, b)
			}
		}
	}
}

var predictSeeds = []string{
	string(benchJSONLine) + "\n" + string(benchJSONLine),
	// An unset field left out shifts the keys after it.
	`{"ts":1.5,"uid":"CA","service":"dns","id.orig_h":"10.0.0.1"}` + "\n" + `{"ts":1.5,"uid":"CB","id.orig_h":"10.0.0.2","service":"ssl"}`,
	// Same key bytes, other values; whitespace; escaped and nested keys.
	`{"ts":1,"uid":"CA"}` + "\n" + `{"ts" : 2, "uid":"CB"}` + "\n" + `{"ts":3,"u\u0069d":"CC"}` + "\n" + `{"ts":4,"uid":"CD"}`,
	`{"id":{"orig_h":"10.0.0.1","resp_h":"10.0.0.2"},"ts":1}` + "\n" + `{"id":{"orig_h":"10.0.0.3"},"ts":2}` + "\n" + `{"id.orig_h":"10.0.0.4","ts":3}`,
	// A key that is a prefix of the remembered one, and the reverse.
	`{"ts":1,"uid_x":"CA"}` + "\n" + `{"ts":1,"uid":"CA"}` + "\n" + `{"ts":1,"uid":"CA","uid":"CB"}`,
	`{"ts":1,"uid":` + "\n" + `{"ts":1,"uid"` + "\n" + `{"ts":1}`,
}

func TestJSONKeysPredicted(t *testing.T) {
	for _, s := range predictSeeds {
		samePredicted(t, []byte(s))
	}
	// The predicted path is taken: after the first line, no key of the
	// bench line is scanned.
	var r record
	parseJSON(benchJSONLine, &r)
	if len(r.jkeys) != 20 {
		t.Fatalf("%d keys remembered, want 20", len(r.jkeys))
	}
	var hits int
	for nk := range r.jkeys {
		rest := benchJSONLine[bytes.Index(benchJSONLine, r.jkeys[nk].raw):]
		if r.predictKey(nil, nk, rest) != nil {
			hits++
		}
	}
	if hits != 20 {
		t.Errorf("%d of 20 keys predicted", hits)
	}
}

func FuzzJSONKeys(f *testing.F) {
	for _, s := range predictSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(samePredicted)
}
