package suricata

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

// corpusEvents reads the corpus file with encoding/json alone, as a check
// independent of the package's reader.
func corpusEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("corpus line not JSON: %v", err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func flowID(m map[string]any) string {
	n, _ := m["flow_id"].(json.Number)
	if n != "" {
		return string(n)
	}
	f, _ := m["flow_id"].(float64)
	return strconv.FormatFloat(f, 'f', 0, 64)
}

func runSource(t *testing.T, paths []string, o Options) ([]*cw.Conn, *Source, error) {
	t.Helper()
	s := NewSource(paths, o)
	var conns []*cw.Conn
	err := s.Run(context.Background(), func(c *cw.Conn) { conns = append(conns, c) })
	return conns, s, err
}

func TestCorpusSlipsEVE(t *testing.T) {
	path := corpus.Path(t, "suricata", "slips-test6-malicious.eve.json")
	events := corpusEvents(t, path)
	// float64 loses flow ids above 2^53; these are below, and the test
	// says so rather than assumes it.
	flows := map[string]map[string]any{}
	alertsByFlow := map[string][]string{}
	dnsByFlow := map[string][]string{}
	for _, m := range events {
		id := flowID(m)
		if f, _ := m["flow_id"].(float64); f > 1<<53 {
			t.Fatalf("flow_id %v beyond float64 precision", f)
		}
		switch m["event_type"] {
		case "flow":
			flows[id] = m
		case "alert":
			a := m["alert"].(map[string]any)
			alertsByFlow[id] = append(alertsByFlow[id], a["signature"].(string))
		case "dns":
			d := m["dns"].(map[string]any)
			if d["type"] == "query" {
				dnsByFlow[id] = append(dnsByFlow[id], d["rrname"].(string))
			}
		}
	}
	conns, s, err := runSource(t, []string{path}, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(conns) != len(flows) || len(flows) == 0 {
		t.Fatalf("%d Conns, want %d (one per flow event)", len(conns), len(flows))
	}
	st := s.Stats()
	if st.Flows != int64(len(flows)) || st.Conns != int64(len(conns)) || st.Malformed != 0 || st.Lines != int64(len(events)) {
		t.Errorf("stats %+v", st)
	}
	byUID := map[string]*cw.Conn{}
	for _, c := range conns {
		if byUID[c.UID] != nil {
			t.Fatalf("uid %s twice", c.UID)
		}
		byUID[c.UID] = c
	}
	joinedAlerts, joinedDNS := 0, 0
	for id, f := range flows {
		c := byUID[id]
		if c == nil {
			t.Fatalf("flow %s: no Conn", id)
		}
		if c.Orig.Addr.String() != f["src_ip"] || c.Resp.Addr.String() != f["dest_ip"] {
			t.Errorf("flow %s: %v -> %v, want %v -> %v", id, c.Orig.Addr, c.Resp.Addr, f["src_ip"], f["dest_ip"])
		}
		if c.Proto != strings.ToLower(f["proto"].(string)) {
			t.Errorf("flow %s: proto %q", id, c.Proto)
		}
		fl := f["flow"].(map[string]any)
		if c.OrigPkts != int64(fl["pkts_toserver"].(float64)) || c.RespPkts != int64(fl["pkts_toclient"].(float64)) {
			t.Errorf("flow %s: pkts %d/%d", id, c.OrigPkts, c.RespPkts)
		}
		if c.OrigIPBytes > int64(fl["bytes_toserver"].(float64)) || c.OrigBytes > c.OrigIPBytes {
			t.Errorf("flow %s: bytes %d/%d of %v", id, c.OrigBytes, c.OrigIPBytes, fl["bytes_toserver"])
		}
		if c.State == "" || c.TS.IsZero() {
			t.Errorf("flow %s: state %q ts %v", id, c.State, c.TS)
		}
		// Alerts land on their flow: the same signatures, each once.
		want := map[string]bool{}
		for _, s := range alertsByFlow[id] {
			want[s] = true
		}
		if len(c.Alerts) != len(want) {
			t.Errorf("flow %s: %d alerts, want %d distinct: %q", id, len(c.Alerts), len(want), c.Alerts)
		}
		for _, a := range c.Alerts {
			sig, _, _ := strings.Cut(a, " [sid ")
			if !want[sig] {
				t.Errorf("flow %s: alert %q not one of its own", id, a)
			}
		}
		joinedAlerts += len(c.Alerts)
		// DNS names reach the Conn.
		for _, q := range dnsByFlow[id] {
			found := false
			for _, d := range c.DNS {
				found = found || d.Query == q
			}
			if !found {
				t.Errorf("flow %s: query %q not on the Conn (%+v)", id, q, c.DNS)
			}
			joinedDNS++
		}
	}
	if joinedAlerts == 0 || joinedDNS == 0 {
		t.Errorf("nothing joined: %d alerts, %d DNS queries", joinedAlerts, joinedDNS)
	}
	// The corpus file is the head of a longer log: events of flows whose
	// flow event lies beyond its end are counted, not attached.
	if st.Orphaned == 0 || st.Joined == 0 {
		t.Errorf("joined %d, orphaned %d", st.Joined, st.Orphaned)
	}
	if st.Joined+st.Orphaned != st.Types["alert"]+st.Types["dns"]+st.Types["http"]+st.Types["tls"]+st.Types["fileinfo"] {
		t.Errorf("app events: joined %d + orphaned %d != %v", st.Joined, st.Orphaned, st.Types)
	}
	// A DNS answer reaches the query it answers.
	answered := 0
	for _, c := range conns {
		for _, d := range c.DNS {
			if d.RCode >= 0 && len(d.Answers) > 0 {
				answered++
			}
		}
	}
	if answered == 0 {
		t.Error("no DNS answer joined to its query")
	}
}
