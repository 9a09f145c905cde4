package suricata

import (
	"bytes"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

// FuzzEVE feeds one line through the parser and the joiner, and the same
// bytes through Sniff: nothing may panic, and a Conn that comes out must
// be whole.
func FuzzEVE(f *testing.F) {
	for _, s := range []string{tlsEvent, flow7, alert7,
		flowLine(1, "2024-03-01T10:00:00.000000+0000"),
		`{"timestamp":"2024-03-01T10:01:00+0000","flow_id":21,"event_type":"netflow","src_ip":"10.0.0.5","src_port":1,"dest_ip":"::1","dest_port":80,"proto":"IPv6-ICMP","icmp_type":128,"icmp_code":0,"netflow":{"pkts":1,"bytes":9,"start":"2024-03-01T10:00:00+0000","end":"2024-03-01T09:00:00+0000"},"tcp":{"tcp_flags":"zz"}}`,
		`{"timestamp":"2024-03-01T10:00:00+0000","flow_id":"9","event_type":"dns","dns":{"version":2,"type":"answer","id":70000,"rrname":"a","rcode":"NOERROR","grouped":{"A":["1.2.3.4",{"x":1}],"TXT":[3]}}}`,
		`{"timestamp":"2024-03-01T10:00:00+0000","flow_id":3,"event_type":"fileinfo","http":{"http_port":0},"fileinfo":{"size":1e30}}`,
		`{"event_type":"alert","flow_id":1,"alert":{}}`,
		`{"event_type":"flow","flow_id":1,"vlan":[4096,1],"flow":{"start":"2024-03-01T10:00:00Z"},"src_ip":"1.1.1.1","dest_ip":"2.2.2.2","proto":300}`,
		"", "{", "null", `{"event_type":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		Sniff(line)
		var st Stats
		var out []*cw.Conn
		j := newJoiner(Options{MaxPending: 4, MaxPendingBytes: 1 << 16, NetflowWindow: 2}, &st, func(c *cw.Conn) { out = append(out, c) })
		for _, l := range bytes.Split(line, []byte("\n")) {
			eventType(l)
			e, err := parseEvent(l)
			if err != nil {
				continue
			}
			j.event(e, "fuzz")
			j.event(e, "fuzz") // twice: pairing and late paths
		}
		j.finish()
		for _, c := range out {
			if c.Proto == "" || !c.Orig.Addr.IsValid() || !c.Resp.Addr.IsValid() || c.OrigBytes < 0 || c.RespIPBytes < 0 || c.Duration < 0 {
				t.Fatalf("bad conn %+v", c)
			}
		}
	})
}
