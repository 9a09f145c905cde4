package suricata

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func flowLine(id int, start string) string {
	return `{"timestamp":"` + start + `","flow_id":` + strconv.Itoa(id) + `,"event_type":"flow","src_ip":"10.0.0.5","src_port":` + strconv.Itoa(1000+id) +
		`,"dest_ip":"192.0.2.1","dest_port":53,"proto":"UDP","app_proto":"dns","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":80,"bytes_toclient":100,"start":"` +
		start + `","end":"` + start + `","state":"established","reason":"timeout"}}`
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func inputErrors(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ie *cw.InputError
		if errors.As(e, &ie) {
			out[ie.Input] = ie.Err.Error()
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestSourceFiles(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 1; i <= 200; i++ {
		lines = append(lines, flowLine(i, "2024-03-01T10:00:00.000000+0000"))
	}
	text := []byte(strings.Join(lines, "\n") + "\n")
	plain := write(t, dir, "plain/eve.json", text)
	zipped := write(t, dir, "gz/eve.json.gz", gz(t, text))
	z := gz(t, text)
	cut := write(t, dir, "cut/eve.json.gz", z[:len(z)*2/3])
	var log bytes.Buffer

	for _, tc := range []struct {
		name    string
		path    string
		conns   int // at least, for the cut file
		errPart string
	}{
		{"plain", plain, 200, ""},
		{"gzip", zipped, 200, ""},
		{"truncated gzip", cut, 1, "damaged after line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, s, err := runSource(t, []string{tc.path}, Options{Log: quiet(&log)})
			errs := inputErrors(err)
			if tc.errPart == "" {
				if err != nil || len(conns) != tc.conns {
					t.Fatalf("%d conns, %v", len(conns), err)
				}
				return
			}
			if !strings.Contains(errs[tc.path], tc.errPart) || len(conns) < tc.conns || len(conns) >= 200 || s.Stats().Truncated != 1 {
				t.Errorf("%d conns, errors %v", len(conns), errs)
			}
			if !strings.Contains(errs[tc.path], strconv.Itoa(len(conns))+" events") {
				t.Errorf("message does not say how much was kept: %s", errs[tc.path])
			}
		})
	}
}

func TestSourceBadLines(t *testing.T) {
	var lines []string
	for i := 1; i <= 20; i++ {
		lines = append(lines, flowLine(i, "2024-03-01T10:00:00.000000+0000"))
		switch i {
		case 3:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00.000000+0000","event_type":"flow",`) // cut
		case 5:
			lines = append(lines, `not json at all`)
		case 7:
			lines = append(lines, strings.Replace(flowLine(99, "2024-03-01T10:00:00+0000"), `"10.0.0.5"`, `"10.0.0.500"`, 1))
		case 9:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00+0000","event_type":"flow","src_port":"http"}`)
		case 11:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00+0000","event_type":"dns","flow_id":1,"pad":"`+strings.Repeat("x", 5000)+`"}`)
		case 13:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00+0000","event_type":"stats","stats":{"uptime":1}}`, ``, `  `)
		case 15:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00+0000"}`)
		case 17:
			lines = append(lines, `{"timestamp":"2024-03-01T10:00:00+0000","event_type":"flow","flow_id":5,"src_ip":"10.0.0.1","dest_ip":"10.0.0.2","proto":"TCP"}`)
		}
	}
	var log bytes.Buffer
	path := eve(t, lines...)
	conns, s, err := runSource(t, []string{path}, Options{MaxLine: 4096, MaxLogged: 3, Log: quiet(&log)})
	if err != nil || len(conns) != 20 {
		t.Fatalf("%d conns, %v", len(conns), err)
	}
	st := s.Stats()
	if st.Malformed != 7 || st.Ignored != 1 || st.Types["stats"] != 1 || st.Flows != 20 {
		t.Errorf("stats %+v", st)
	}
	out := log.String()
	// The first three are named with file:line, the rest summed up.
	for _, want := range []string{path + ":4: not JSON", path + ":7: not JSON", path + ":10: flow event: src_ip: bad address", "4 more malformed lines"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, path+":13:") {
		t.Errorf("more than MaxLogged lines logged:\n%s", out)
	}
}

func TestSourceInputs(t *testing.T) {
	dir := t.TempDir()
	// Rotated files: the newer one has the older name.
	older := write(t, dir, "logs/eve.json.1", []byte(flowLine(1, "2024-03-01T09:00:00.000000+0000")+"\n"))
	write(t, dir, "logs/eve.json", []byte(flowLine(2, "2024-03-01T10:00:00.000000+0000")+"\n"))
	write(t, dir, "logs/notes.txt", []byte("operator notes\n"))
	write(t, dir, "logs/empty.json", nil)
	notEVE := write(t, dir, "zeek.json", []byte(`{"ts":1700000000.1,"uid":"CAbc","id.orig_h":"10.0.0.1"}`+"\n"))
	garbage := write(t, dir, "garbage.json", []byte("{\"event_type\":\"flow\",\"timestamp\":\"x\"}\n{{{\n"))
	empty := write(t, dir, "empty.json", nil)
	emptyDir := filepath.Join(dir, "none")
	os.Mkdir(emptyDir, 0o755)
	var log bytes.Buffer
	conns, s, err := runSource(t, []string{filepath.Join(dir, "logs"), notEVE, empty, emptyDir, garbage, filepath.Join(dir, "missing.json")}, Options{Log: quiet(&log)})
	if len(conns) != 2 || conns[0].UID != "1" || conns[1].UID != "2" {
		t.Fatalf("conns %v (want flow 1 from %s first)", conns, older)
	}
	if conns[0].Source != older {
		t.Errorf("source %q", conns[0].Source)
	}
	errs := inputErrors(err)
	for in, want := range map[string]string{
		notEVE:                             "not Suricata EVE",
		empty:                              "empty file",
		emptyDir:                           "no Suricata EVE files",
		garbage:                            "no EVE events in 2 lines",
		filepath.Join(dir, "missing.json"): "no such file",
	} {
		if !strings.Contains(errs[in], want) {
			t.Errorf("%s: error %q, want %q", in, errs[in], want)
		}
	}
	if st := s.Stats(); st.Skipped != 2 || st.Files != 3 {
		t.Errorf("stats %+v", st)
	}
	if read, total := s.Progress(); read == 0 || read < total {
		t.Errorf("progress %d/%d", read, total)
	}
}

func TestSourceCancel(t *testing.T) {
	var lines []string
	for i := 1; i <= 10000; i++ {
		lines = append(lines, flowLine(i, "2024-03-01T10:00:00.000000+0000"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewSource([]string{eve(t, lines...)}, Options{})
	n := 0
	err := s.Run(ctx, func(*cw.Conn) {
		if n++; n == 10 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n >= 10000 {
		t.Errorf("%d conns, %v", n, err)
	}
}

func TestLineReader(t *testing.T) {
	in := "short\n" + strings.Repeat("y", 100) + "\nlast"
	l := newLineReader(strings.NewReader(in), 50)
	var got []string
	for {
		b, err := l.next()
		if err == errLineTooLong {
			got = append(got, "<long>")
			continue
		}
		if err != nil {
			break
		}
		got = append(got, string(b))
	}
	if strings.Join(got, "|") != "short|<long>|last" {
		t.Errorf("%q", got)
	}
}

func TestSniff(t *testing.T) {
	line := flowLine(1, "2024-03-01T10:00:00.000000+0000") + "\n"
	for _, tc := range []struct {
		name string
		head []byte
		want bool
	}{
		{"flow line", []byte(line), true},
		{"with BOM and blank lines", []byte("\xef\xbb\xbf\n\n" + line), true},
		{"gzip", gz(t, []byte(line)), true},
		{"gzip cut", gz(t, []byte(strings.Repeat(line, 200)))[:300], true},
		{"first line cut", []byte(line[:120]), true},
		{"zeek json", []byte(`{"ts":1700000000.1,"uid":"CAbc","id.orig_h":"10.0.0.1"}` + "\n"), false},
		{"zeek tsv", []byte("#separator \\x09\n#fields\tts\tuid\n"), false},
		{"pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, false},
		{"text", []byte("shipping notes\n"), false},
		{"event_type as a value", []byte(`{"timestamp":"x","note":"\"event_type\""}` + "\n"), false},
		{"empty", nil, false},
		{"json array", []byte(`[{"event_type":"flow"}]`), false},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}
