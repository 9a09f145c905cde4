package zeek

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cargowatch/cargowatch/internal/corpus"
)

// fuzzLines runs text through the parser and every consumer of records,
// as Source does; nothing may panic, whatever the bytes.
func fuzzLines(text []byte) {
	p := newParser("fuzz", nil)
	cv := newConverter()
	idx := newJoinIndex(64, cv.in)
	for _, line := range bytes.Split(text, []byte{'\n'}) {
		r, err := p.parse(line)
		if err != nil || r == nil {
			continue
		}
		for k := kindDNS; k <= kindTunnel; k++ {
			idx.add(k, r)
		}
		if c, err := cv.conn(r); err == nil {
			idx.attach(c, tunnelParent(r))
			if !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() {
				panic("Conn without addresses")
			}
		}
	}
	p.summary()
}

func addCorpusSeeds(f *testing.F, parts ...string) {
	if corpus.Root() == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(append([]string{corpus.Root()}, parts...)...))
	if err == nil {
		f.Add(b[:min(len(b), 8192)])
	}
}

func FuzzTSV(f *testing.F) {
	f.Add([]byte(tsvHead + connLine(1700000000, "CA")))
	f.Add([]byte("#separator \\x7c\n#set_separator|;\n#fields|ts|uid|id.orig_h|id.resp_h|tunnel_parents\n1|C|1.2.3.4|::1|a;b\n"))
	f.Add([]byte(dnsHead + dnsLine("CA", "a\\x09b.test")))
	f.Add([]byte("ts\tuid\tid.orig_h\tid.resp_h\n1.5\tC\t1.2.3.4\t5.6.7.8\n"))
	f.Add([]byte("#separator \n#fields\n\n#separator \\x\n1\t2\n"))
	addCorpusSeeds(f, "zeek", "slips-test10-mixed", "conn.log")
	addCorpusSeeds(f, "zeek", "slips-test10-mixed", "dns.log")
	addCorpusSeeds(f, "pcap", "ics", "automayt-modbus_test_data_part2.zeek-conn.log")
	f.Fuzz(func(t *testing.T, text []byte) { fuzzLines(text) })
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"ts":1517422326.539915,"uid":"CA","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp"}`))
	f.Add([]byte(`{"ts":"2018-01-31T18:12:06.539915Z","uid":"C\u0041","id":{"orig_h":"::1","resp_h":"::2"},"answers":["a\\x00",1,null,[2]],"TTLs":[1e3]}`))
	f.Add([]byte(`{"ts":1517422326539,"uid":"CA","conn_uids":["CA","CB"],"mime_type":"text/plain","tunnel_parents":"CT"}`))
	f.Add([]byte(`{"a":[[[[{"b":"\ud83d\ude00"}]]]],"ts":null}`))
	addCorpusSeeds(f, "zeek", "rita-json_with_all_fields", "conn.log")
	addCorpusSeeds(f, "zeek", "rita-json_with_all_fields", "http.log")
	addCorpusSeeds(f, "zeek", "slips-test15-malicious", "ssl.log")
	f.Fuzz(func(t *testing.T, line []byte) {
		var r record
		parseJSON(line, &r)
		fuzzLines(line)
		Sniff(line)
	})
}
