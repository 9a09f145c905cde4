// Command gen writes a large Zeek conn.log, TSV or JSON, for
// bench/zeek/run.sh: a hub's mix of TCP, UDP and ICMP conversations with
// Zeek's field set, unset fields where Zeek leaves them unset, and
// timestamps that advance as a live sensor's would. The same seed gives
// the same records in both formats.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	format := flag.String("format", "tsv", "tsv or json")
	size := flag.Int64("size", 1<<30, "stop once the file has this many bytes")
	out := flag.String("o", "conn.log", "output file")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := gen{rnd: rand.New(rand.NewPCG(*seed, 7)), ts: 1795935600_000000, json: *format == "json"}
	if !g.json {
		w.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-29-07-00-00\n" +
			"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
			"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n")
	}
	var n, written int64
	var line []byte
	for written < *size {
		line = g.line(line[:0])
		w.Write(line)
		written += int64(len(line))
		n++
	}
	if !g.json {
		w.WriteString("#close\t2026-11-29-08-00-00\n")
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f.Close()
	fmt.Println(n)
}

type gen struct {
	rnd  *rand.Rand
	ts   int64 // microseconds
	json bool
}

var (
	services = []string{"dns", "ssl", "http", "-", "-", "ssl", "modbus", "ntp"}
	states   = []string{"SF", "SF", "SF", "S0", "REJ", "RSTO", "S1", "OTH", "SH"}
	history  = []string{"ShADadFf", "Dd", "S", "ShR", "ShADadfF", "D", "ShAdDaFf", "^dA"}
)

const uidChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (g *gen) line(b []byte) []byte {
	r := g.rnd
	g.ts += int64(r.IntN(2000))
	proto := "tcp"
	switch x := r.IntN(10); {
	case x < 3:
		proto = "udp"
	case x == 9:
		proto = "icmp"
	}
	svc := services[r.IntN(len(services))]
	orig := [4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(1 + r.IntN(254))}
	resp := [4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))}
	oport, rport := 1024+r.IntN(64000), []int{443, 80, 53, 502, 123, 8443}[r.IntN(6)]
	unset := r.IntN(8) == 0 // S0 and the like: no duration or sizes
	dur := r.IntN(5_000_000)
	ob, rb := r.IntN(5000), r.IntN(200000)
	op, rp := 1+r.IntN(50), r.IntN(200)
	state := states[r.IntN(len(states))]
	hist := history[r.IntN(len(history))]

	field := func(name string, quote bool, v []byte, first bool) {
		if g.json {
			if !first {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			if quote {
				b = append(b, '"')
			}
			b = append(b, v...)
			if quote {
				b = append(b, '"')
			}
			return
		}
		if !first {
			b = append(b, '\t')
		}
		b = append(b, v...)
	}
	var tmp [64]byte
	num := func(v int64) []byte { return strconv.AppendInt(tmp[:0], v, 10) }
	ip := func(a [4]byte) []byte {
		t := strconv.AppendUint(tmp[:0], uint64(a[0]), 10)
		for _, x := range a[1:] {
			t = append(t, '.')
			t = strconv.AppendUint(t, uint64(x), 10)
		}
		return t
	}
	if g.json {
		b = append(b, '{')
	}
	ts := strconv.AppendInt(tmp[:0], g.ts/1e6, 10)
	ts = append(ts, '.')
	ts = append(ts, fmt.Sprintf("%06d", g.ts%1e6)...)
	field("ts", false, ts, true)
	var uid [18]byte
	uid[0] = 'C'
	for i := 1; i < len(uid); i++ {
		uid[i] = uidChars[r.IntN(len(uidChars))]
	}
	field("uid", true, uid[:], false)
	field("id.orig_h", true, ip(orig), false)
	field("id.orig_p", false, num(int64(oport)), false)
	field("id.resp_h", true, ip(resp), false)
	field("id.resp_p", false, num(int64(rport)), false)
	field("proto", true, []byte(proto), false)
	if svc != "-" || !g.json {
		field("service", true, []byte(svc), false)
	}
	if unset {
		if !g.json {
			for range 3 {
				field("", false, []byte("-"), false)
			}
		}
	} else {
		d := strconv.AppendInt(tmp[:0], int64(dur/1e6), 10)
		d = append(d, '.')
		d = append(d, fmt.Sprintf("%06d", dur%1e6)...)
		field("duration", false, d, false)
		field("orig_bytes", false, num(int64(ob)), false)
		field("resp_bytes", false, num(int64(rb)), false)
	}
	field("conn_state", true, []byte(state), false)
	if g.json {
		field("local_orig", false, []byte("true"), false)
		field("local_resp", false, []byte("false"), false)
	} else {
		field("", false, []byte("T"), false)
		field("", false, []byte("F"), false)
	}
	field("missed_bytes", false, []byte("0"), false)
	field("history", true, []byte(hist), false)
	field("orig_pkts", false, num(int64(op)), false)
	field("orig_ip_bytes", false, num(int64(ob+40*op)), false)
	field("resp_pkts", false, num(int64(rp)), false)
	field("resp_ip_bytes", false, num(int64(rb+40*rp)), false)
	if g.json {
		b = append(b, '}')
	} else {
		field("", false, []byte("(empty)"), false)
	}
	return append(b, '\n')
}
