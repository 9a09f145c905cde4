package zeek

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/corpus"
)

// fastSame reads text line by line through the record path and through
// the fast path, and fails when the fast path takes a line that the
// record path rejects or reads into another Conn or tunnel parent. It
// returns how many lines the fast path took and how many Conns the
// record path made.
func fastSame(tb testing.TB, text []byte) (fast, good int) {
	p := newParser("diff", nil)
	cv, cvFast := newConverter(), newConverter()
	for n, line := range bytes.Split(text, []byte{'\n'}) {
		line = bytes.TrimSuffix(line, []byte{'\r'})
		var fc cw.Conn
		// Before parse, which applies header lines.
		parent, ok := p.hdr.fastConn(line, &fc, cvFast)
		r, err := p.parse(line)
		var gc cw.Conn
		var gerr error
		if err == nil && r != nil {
			if gerr = cv.fill(r, &gc); gerr == nil {
				good++
			}
		}
		if !ok {
			continue
		}
		fast++
		switch {
		case err != nil || r == nil:
			tb.Fatalf("line %d %q: fast path took a line the parser gives %v", n+1, line, err)
		case gerr != nil:
			tb.Fatalf("line %d %q: fast path took a line the record path rejects: %v", n+1, line, gerr)
		case !reflect.DeepEqual(fc, gc):
			tb.Fatalf("line %d %q:\nfast   %+v\nrecord %+v", n+1, line, fc, gc)
		case parent != tunnelParent(r):
			tb.Fatalf("line %d %q: tunnel parent %q, record path %q", n+1, line, parent, tunnelParent(r))
		}
	}
	return fast, good
}

// tsvFields is tsvHead's columns, for lines that set a few of them.
var tsvFields = strings.Fields("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes conn_state missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents")

// connWith is connLine with some columns replaced.
func connWith(set map[string]string) string {
	f := strings.Split(strings.TrimSuffix(connLine(1700000000, "CA"), "\n"), "\t")
	for k, v := range set {
		i := -1
		for j, n := range tsvFields {
			if n == k {
				i = j
			}
		}
		if i < 0 {
			panic(k)
		}
		f[i] = v
	}
	return strings.Join(f, "\t") + "\n"
}

const otherHead = "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tproto\tip_proto\tvlan\torig_l2_addr\tresp_l2_addr\tservice\tlocal_orig\n"

func TestFastConnSame(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		fast int // lines the fast path must take
		good int // Conns the record path must make
	}{
		{name: "plain", text: tsvHead + connLine(1700000000, "CA") + connLine(1700000001, "CB"), fast: 2, good: 2},
		{name: "unset and empty values", text: tsvHead + connWith(map[string]string{"service": "-", "duration": "-", "orig_bytes": "-", "history": "(empty)", "uid": "-", "proto": "(empty)"}), fast: 1, good: 1},
		{name: "IPv6, zone dropped", text: tsvHead + connWith(map[string]string{"id.orig_h": "2001:db8::1", "id.resp_h": "fe80::1%eth0"}), fast: 1, good: 1},
		{name: "ts in milliseconds", text: tsvHead + connWith(map[string]string{"ts": "1700000000123"}), fast: 1, good: 1},
		{name: "ts with 13 decimals or none", text: tsvHead + connWith(map[string]string{"ts": "1700000000.1234567891234"}) + connWith(map[string]string{"ts": "17."}), fast: 2, good: 2},
		{name: "largest count", text: tsvHead + connWith(map[string]string{"orig_bytes": "9223372036854775807", "resp_bytes": "00012"}), fast: 1, good: 1},
		{name: "tunnel parents", text: tsvHead + connWith(map[string]string{"tunnel_parents": "CT1,CT2"}) + connWith(map[string]string{"tunnel_parents": ",CT2"}) + connWith(map[string]string{"tunnel_parents": ""}), fast: 3, good: 3},
		{name: "unknown transport, vlan, MACs, suffixed service", text: otherHead +
			"1.5\tCA\t10.0.0.1\t10.0.0.2\tunknown_transport\t47\t4095\t00:0c:29:66:c7:82\t-\tdnp3_tcp\tT\n" +
			"1.5\tCB\t10.0.0.1\t10.0.0.2\tunknown_transport\t(empty)\t(empty)\t-\t-\tdnp3_udp\tF\n" +
			"1.5\tCC\t10.0.0.1\t10.0.0.2\t-\t-\t-\t-\t-\t-\t-\n" +
			"1.5\tCD\t10.0.0.1\t10.0.0.2\tunknown_transport\t300\t1\t-\t-\t-\t-\n" +
			"1.5\tCF\tfe80::1\tff02::1\ticmp\t-\t-\t-\t-\t-\t-\n" +
			"1.5\tCG\t::ffff:1.2.3.4\t10.0.0.2\ticmp\t-\t-\t-\t-\t-\t-\n", fast: 6, good: 6},
		{name: "other markers and separator", text: "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NULL\n#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|service|orig_bytes|tunnel_parents\n" +
			"1700000000.25|CA|10.0.0.1|1|10.0.0.2|2|udp|NULL|NULL|EMPTY\n1700000000.25|CA|10.0.0.1|1|10.0.0.2|2|udp|-|7|a;b\n", fast: 2, good: 2},
		{name: "markers set after fields", text: "#fields\tts\tuid\tid.orig_h\tid.resp_h\torig_bytes\n#unset_field\tNULL\n1.5\tCA\t10.0.0.1\t10.0.0.2\tNULL\n", fast: 1, good: 1},
		{name: "LogAscii tsv mode", text: "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n1700000000\tCA\t10.0.0.1\t1\t2001:db8::1\t2\ticmp\n", fast: 1, good: 1},
		{name: "CRLF", text: strings.ReplaceAll(tsvHead+connLine(1700000000, "CA"), "\n", "\r\n"), fast: 1, good: 1},
		// Left to the record path, which reads some of them.
		{name: "escapes", text: tsvHead + connWith(map[string]string{"history": "\\x2d"}) + connWith(map[string]string{"uid": "a\\x09b"}), good: 2},
		{name: "float duration, negative times", text: tsvHead + connWith(map[string]string{"duration": "1e3"}) +
			connWith(map[string]string{"ts": "-1.5"}) + connWith(map[string]string{"duration": "-1.5"}), good: 3},
		{name: "ip_proto not a number", text: otherHead + "1.5\tCE\t10.0.0.1\t10.0.0.2\tunknown_transport\tx\t1\t-\t-\t-\t-\n" +
			"1.5\tCE\t10.0.0.1\t10.0.0.2\tunknown_transport\t6x\t1\t-\t-\t-\t\n", good: 2},
		{name: "field named twice", text: "#fields\tts\tuid\tid.orig_h\tid.resp_h\tuid\n1.5\tCA\t10.0.0.1\t10.0.0.2\tCB\n", good: 1},
		{name: "separator of two bytes", text: "#separator \\x09\\x09\n#fields\t\tts\t\tid.orig_h\t\tid.resp_h\n1.5\t\t10.0.0.1\t\t10.0.0.2\n", good: 1},
		{name: "bad values", text: tsvHead +
			connWith(map[string]string{"ts": "-"}) + connWith(map[string]string{"ts": ""}) + connWith(map[string]string{"ts": "1e9"}) +
			connWith(map[string]string{"ts": "99999999999999999999"}) + connWith(map[string]string{"ts": "12345678901.5"}) +
			connWith(map[string]string{"id.orig_h": "010.0.0.1"}) + connWith(map[string]string{"id.orig_h": "1.2.3"}) + connWith(map[string]string{"id.resp_h": "(empty)"}) +
			connWith(map[string]string{"id.orig_p": "65536"}) + connWith(map[string]string{"id.orig_p": "-1"}) +
			connWith(map[string]string{"orig_bytes": "1e3"}) + connWith(map[string]string{"orig_bytes": "18446744073709551615"}) + connWith(map[string]string{"orig_bytes": "18446744073709551616"}) +
			connWith(map[string]string{"duration": "-99999999999"}) + connWith(map[string]string{"orig_pkts": ""}) +
			strings.Replace(connLine(1, "CA"), "\t", "\t\t", 1) + strings.Replace(connLine(1, "CA"), "\tCA", "", 1) +
			otherHead + "1.5\tCA\t10.0.0.1\t10.0.0.2\ttcp\t-\t4096\t-\t-\t-\t-\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast, good := fastSame(t, []byte(tc.text))
			if fast != tc.fast || good != tc.good {
				t.Errorf("fast path took %d lines, record path made %d Conns; want %d and %d", fast, good, tc.fast, tc.good)
			}
		})
	}
}

// TestFastConnCorpus: on real logs the fast path takes every line the
// record path reads, with the same result.
func TestFastConnCorpus(t *testing.T) {
	for _, parts := range [][]string{
		{"zeek", "slips-test10-mixed", "conn.log"},
		{"pcap", "ics", "automayt-modbus_test_data_part2.zeek-conn.log"},
		{"pcap", "ics", "automayt-dnp3_test_data_part1.zeek-conn.log"},
		{"pcap", "edge", "zeek-pppoe-over-qinq.baseline-conn.log"},
		{"pcap", "edge", "zeek-mpls-in-vlan.baseline-conn.log"},
	} {
		t.Run(filepath.Join(parts...), func(t *testing.T) {
			b, err := os.ReadFile(corpus.Path(t, parts...))
			if err != nil {
				t.Fatal(err)
			}
			// btest baselines mask the times.
			b = bytes.ReplaceAll(b, []byte("XXXXXXXXXX.XXXXXX"), []byte("1700000000.123456"))
			fast, good := fastSame(t, b)
			if good == 0 || fast != good {
				t.Errorf("fast path took %d lines of %d Conns", fast, good)
			}
		})
	}
}

func FuzzFastConn(f *testing.F) {
	f.Add([]byte(tsvHead + connLine(1700000000, "CA")))
	f.Add([]byte(tsvHead + connWith(map[string]string{"service": "-", "id.resp_h": "fe80::1%eth0", "tunnel_parents": "a,b", "ts": "1700000000123"})))
	f.Add([]byte(otherHead + "1.5\tCA\t10.0.0.1\t10.0.0.2\tunknown_transport\t(empty)\t4095\t00:0c:29:66:c7:82\t-\tdnp3_tcp\tT\n"))
	f.Add([]byte("#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NULL\n#fields|ts|id.orig_h|id.resp_h|tunnel_parents|vlan\n1|1.2.3.4|::1|a;b|EMPTY\n"))
	addCorpusSeeds(f, "zeek", "slips-test10-mixed", "conn.log")
	addCorpusSeeds(f, "pcap", "edge", "zeek-mpls-in-vlan.baseline-conn.log")
	f.Fuzz(func(t *testing.T, text []byte) { fastSame(t, text) })
}

// The number and address readers as they were before the fast path, to
// hold the faster ones to the same answers.

func parseUintRef(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func parseDecimalRef(b []byte) (sec, ns int64, ok bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, 0, false
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i >= 18 {
			return 0, 0, false
		}
		sec = sec*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	if i < len(b) {
		if b[i] != '.' {
			return 0, 0, false
		}
		i++
		scale := int64(1e8)
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			ns += int64(c-'0') * scale
			scale /= 10
		}
	}
	if neg {
		sec, ns = -sec, -ns
	}
	return sec, ns, true
}

func parseIPv4Ref(b []byte) (netip.Addr, bool) {
	var a [4]byte
	part, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			a[part] = byte(n)
			part++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits == 3 || (digits > 0 && n == 0) {
			return netip.Addr{}, false
		}
		n = n*10 + int(c-'0')
		if n > 255 {
			return netip.Addr{}, false
		}
		digits++
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func sameNumbers(t *testing.T, b []byte) {
	n1, ok1 := parseUint(b)
	n2, ok2 := parseUintRef(b)
	if n1 != n2 || ok1 != ok2 {
		t.Errorf("parseUint(%q) = %d, %v; was %d, %v", b, n1, ok1, n2, ok2)
	}
	s1, f1, ok1 := parseDecimal(b)
	s2, f2, ok2 := parseDecimalRef(b)
	if ok1 != ok2 || ok1 && (s1 != s2 || f1 != f2) {
		t.Errorf("parseDecimal(%q) = %d, %d, %v; was %d, %d, %v", b, s1, f1, ok1, s2, f2, ok2)
	}
	a1, ok1 := parseIPv4(b)
	a2, ok2 := parseIPv4Ref(b)
	if a1 != a2 || ok1 != ok2 {
		t.Errorf("parseIPv4(%q) = %v, %v; was %v, %v", b, a1, ok1, a2, ok2)
	}
	sameScans(t, b)
}

// sameScans: the fast path's scanners, reading b as the first field of
// a line, agree with the record path's readers of the field whenever
// they take it whole.
func sameScans(t *testing.T, b []byte) {
	for _, tail := range []string{"", "\t", "\t12345678", "\t\t\t\t\t\t\t\t", "x\t99"} {
		line := append(append([]byte(nil), b...), tail...)
		end, esc := findSep(line, 0, '\t')
		wantEnd, wantEsc := len(line), false
		for i, c := range line {
			if c == '\t' || c == '\\' {
				wantEnd, wantEsc = i, c == '\\'
				break
			}
		}
		if end != wantEnd || esc != wantEsc {
			t.Fatalf("findSep(%q) = %d, %v; want %d, %v", line, end, esc, wantEnd, wantEsc)
		}
		f := line
		if i := bytes.IndexByte(line, '\t'); i >= 0 {
			f = line[:i]
		}
		if n, i, ok := scanUint(line, 0); ok && atEnd(line, i, '\t') {
			if m, ok := parseUint(f); !ok || m != n {
				t.Fatalf("scanUint(%q) = %d; parseUint(%q) = %d, %v", line, n, f, m, ok)
			}
		}
		if sec, ns, dot, i, ok := scanDecimal(line, 0); ok && atEnd(line, i, '\t') {
			s2, n2, ok2 := parseDecimal(f)
			if !ok2 || sec != s2 || ns != n2 || dot != hasDot(f) {
				t.Fatalf("scanDecimal(%q) = %d, %d, %v; parseDecimal(%q) = %d, %d, %v", line, sec, ns, dot, f, s2, n2, ok2)
			}
		}
		if a, i, ok := scanIPv4(line, 0); ok && atEnd(line, i, '\t') {
			if a2, ok2 := parseIPv4(f); !ok2 || a != a2 {
				t.Fatalf("scanIPv4(%q) = %v; parseIPv4(%q) = %v, %v", line, a, f, a2, ok2)
			}
		}
		if v, k, ok := leadingDigits(line, 0); ok {
			var w uint64
			j := 0
			for j < len(line) && line[j] >= '0' && line[j] <= '9' {
				w = w*10 + uint64(line[j]-'0')
				j++
			}
			if k != j || v != w {
				t.Fatalf("leadingDigits(%q) = %d, %d; want %d, %d", line, v, k, w, j)
			}
		}
	}
}

var numberSeeds = []string{
	"1234567", "12345678", "123456789", "0000000", "00000000", "1.1234567", "1.12345678", "12345678.5", "1234567.5",
	"\\x41", "ab\\cd\tx", "C1234567\\", "1\x00", "1/", "1:",
	"", "0", "00", "7", "65535", "9223372036854775807", "18446744073709551615", "18446744073709551616",
	"99999999999999999999", "123456789012345678", "1234567890123456789", "1e3", "-", "-1", "-1.5", "-.5", ".5", "1.",
	"1795935600.001100", "1.123456789", "1.1234567891", "1.12345678912345", "1..2", "1.2.", "1.x",
	"10.0.0.1", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "0.0.0.0", "1.2.3.04", "1.2.3.4.", ".1.2.3",
	"1234.1.1.1", "1.2.3.400", "1.2.3.25x",
}

func TestNumbersAsBefore(t *testing.T) {
	for _, s := range numberSeeds {
		sameNumbers(t, []byte(s))
	}
	for i := range 100000 {
		sameNumbers(t, fmt.Appendf(nil, "%d.%d", i*7919, i%1000))
		sameNumbers(t, fmt.Appendf(nil, "%d.%d.%d.%d", i%300, i/300%300, 7, i%10))
		sameNumbers(t, fmt.Appendf(nil, "%d", uint64(i)*uint64(i)*uint64(i)*7919))
	}
}

func FuzzNumbers(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(sameNumbers)
}

// reorderRef is the window as it was, a heap of pointers: the one with
// slots must emit the same Conns in the same order.
type reorderRef struct {
	h []refHeld
	n int
}

type refHeld struct {
	ts int64
	c  *cw.Conn
}

func (r *reorderRef) push(c *cw.Conn, emit func(*cw.Conn)) {
	e := refHeld{ts: c.TS.UnixNano(), c: c}
	if len(r.h) < r.n {
		r.h = append(r.h, e)
		r.up(len(r.h) - 1)
		return
	}
	if e.ts <= r.h[0].ts {
		emit(c)
		return
	}
	out := r.h[0].c
	r.h[0] = e
	r.down(0)
	emit(out)
}

func (r *reorderRef) up(i int) {
	h := r.h
	for i > 0 {
		p := (i - 1) / 2
		if h[p].ts <= h[i].ts {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (r *reorderRef) down(i int) {
	h := r.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if rt := l + 1; rt < len(h) && h[rt].ts < h[l].ts {
			m = rt
		}
		if h[i].ts <= h[m].ts {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (r *reorderRef) flush(emit func(*cw.Conn)) {
	slices.SortStableFunc(r.h, func(a, b refHeld) int { return cmp.Compare(a.ts, b.ts) })
	for _, e := range r.h {
		emit(e.c)
	}
}

func TestReorderRelocates(t *testing.T) {
	const n, total = 128, 20000
	var got, want []string
	var emitted []*cw.Conn
	ro := newReorder(n, func(c *cw.Conn) {
		got = append(got, c.UID)
		emitted = append(emitted, c)
	})
	ref := &reorderRef{n: n}
	base := time.Unix(1700000000, 0)
	maxAge := int64(0)
	for i := range total {
		ts := base.Add(time.Duration(i) * time.Millisecond)
		switch {
		case i%97 == 0:
			ts = ts.Add(time.Hour) // held to the end: its slab must not stay pinned
		case i%5 == 0:
			ts = ts.Add(-time.Second) // out of order, emitted at once
		case i%7 == 0:
			ts = base.Add(time.Duration(i-i%7) * time.Millisecond) // ties
		}
		uid := fmt.Sprintf("C%d", i)
		c := ro.slot()
		c.TS, c.UID = ts, uid
		ro.commit()
		ref.push(&cw.Conn{TS: ts, UID: uid}, func(c *cw.Conn) { want = append(want, c.UID) })
		for _, e := range ro.h {
			maxAge = max(maxAge, ro.slab.serial-ro.slabs[e.i])
			if c := ro.conns[e.i]; c.TS.UnixNano() != e.ts {
				t.Fatalf("held %s: key %d, Conn %v", c.UID, e.ts, c.TS)
			}
		}
	}
	ro.flush()
	ref.flush(func(c *cw.Conn) { want = append(want, c.UID) })
	if !slices.Equal(got, want) {
		t.Fatalf("order differs from the pointer heap's: got %d, want %d Conns", len(got), len(want))
	}
	if maxAge > 2*ro.age+1 {
		t.Errorf("a held Conn sat in a slab %d slabs old; window is %d slabs", maxAge, ro.age)
	}
	seen := map[*cw.Conn]bool{}
	for i, c := range emitted {
		if seen[c] {
			t.Fatalf("Conn %s handed out twice", c.UID)
		}
		seen[c] = true
		if c.UID != got[i] {
			t.Fatalf("emitted Conn %d changed after emission: %s, was %s", i, c.UID, got[i])
		}
	}
}
