package dlp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func chunked(b []byte, size int) []byte {
	var buf bytes.Buffer
	for len(b) > 0 {
		k := min(size, len(b))
		fmt.Fprintf(&buf, "%x\r\n%s\r\n", k, b[:k])
		b = b[k:]
	}
	buf.WriteString("0\r\n\r\n")
	return buf.Bytes()
}

// feed writes orig and resp into a Stream in random pieces, interleaved.
func feed(st *Stream, orig, resp []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 3))
	for len(orig) > 0 || len(resp) > 0 {
		if len(orig) > 0 && (len(resp) == 0 || r.IntN(2) == 0) {
			k := min(len(orig), 1+r.IntN(200))
			st.Write(true, orig[:k])
			orig = orig[k:]
		} else {
			k := min(len(resp), 1+r.IntN(200))
			st.Write(false, resp[:k])
			resp = resp[k:]
		}
	}
}

func runStream(t *testing.T, cfg StreamConfig, orig, resp []byte, seed uint64) *cw.Content {
	t.Helper()
	st := NewStream(cfg)
	feed(st, orig, resp, seed)
	c := &cw.Conn{OrigBytes: int64(len(orig)), RespBytes: int64(len(resp))}
	st.Close(c)
	if c.Content == nil {
		t.Fatal("Close left Content nil")
	}
	for _, h := range c.Content.Hits {
		if h.Type == TypeContainer && !strings.Contains(h.Value, "*") {
			t.Errorf("hit value %q not masked", h.Value)
		}
	}
	return c.Content
}

func TestStream(t *testing.T) {
	bay := []byte(sampleMessages[0])
	gzBay := gz(t, bay)
	var zl bytes.Buffer
	zw, _ := flate.NewWriter(&zl, 5)
	zw.Write(bay)
	zw.Close()
	tests := []struct {
		name       string
		orig, resp []byte
		containers int
		msgType    string
		uninsp     bool // some bytes must be left uninspected
	}{
		{"http content-length", append([]byte(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(bay))), bay...),
			[]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 2, "EDIFACT/BAPLIE", false},
		{"http chunked gzip", append([]byte("PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"), chunked(gzBay, 7)...),
			nil, 2, "EDIFACT/BAPLIE", false},
		{"http raw deflate response", []byte("GET /plan HTTP/1.1\r\n\r\n"),
			append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n", zl.Len())), zl.Bytes()...), 2, "EDIFACT/BAPLIE", false},
		{"http pipelined, second carries the plan", []byte("GET /a HTTP/1.1\r\n\r\n" + fmt.Sprintf("POST /b HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(bay), bay)),
			nil, 2, "EDIFACT/BAPLIE", false},
		{"head response has no body", []byte("HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
			[]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(bay), bay)), 2, "EDIFACT/BAPLIE", false},
		{"raw edi link", bay, []byte("ACK\n"), 2, "EDIFACT/BAPLIE", false},
		{"smtp", []byte("EHLO a\r\nMAIL FROM:<a@b>\r\nDATA\r\nSubject: plan\r\n\r\n" + string(bay) + "\r\n.\r\nQUIT\r\n"),
			[]byte("220 mx\r\n250 ok\r\n354 go\r\n250 queued\r\n"), 2, "EDIFACT/BAPLIE", false},
		{"tls is not inspected", append([]byte{0x16, 3, 1, 0, 200}, bay...), []byte{0x16, 3, 3, 0, 10, 1, 2}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(5) {
				c := runStream(t, StreamConfig{}, tt.orig, tt.resp, seed)
				if c.Counts[TypeContainer] != tt.containers {
					t.Fatalf("seed %d: %d containers, want %d (counts %v)", seed, c.Counts[TypeContainer], tt.containers, c.Counts)
				}
				if tt.msgType != "" && c.MessageTypes[tt.msgType] != 1 {
					t.Fatalf("seed %d: message types %v, want one %s", seed, c.MessageTypes, tt.msgType)
				}
				total := int64(len(tt.orig) + len(tt.resp))
				if c.Inspected+c.Uninspected != total {
					t.Fatalf("inspected %d + uninspected %d != %d", c.Inspected, c.Uninspected, total)
				}
				if tt.uninsp != (c.Uninspected > 0) {
					t.Fatalf("uninspected %d", c.Uninspected)
				}
			}
		})
	}
}

// A zip bomb decodes to MaxDecoded bytes at most; a flow over MaxBytes is
// inspected up to there and the rest counted.
func TestStreamBounds(t *testing.T) {
	bomb := gz(t, bytes.Repeat([]byte("A"), 16<<20))
	body := append([]byte(fmt.Sprintf("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", len(bomb))), bomb...)
	st := NewStream(StreamConfig{MaxDecoded: 1 << 20})
	st.Write(true, body)
	c := &cw.Conn{OrigBytes: int64(len(body))}
	st.Close(c)
	if d := st.dir[0].decoded; d > 1<<20 {
		t.Errorf("decoded %d bytes of a bomb, cap 1 MiB", d)
	}

	plan := []byte(strings.Repeat("x", 5000) + sampleMessages[0])
	ct := runStream(t, StreamConfig{MaxBytes: 4096}, plan, nil, 1)
	if ct.Inspected != 4096 || ct.Uninspected != int64(len(plan))-4096 || ct.Counts[TypeContainer] != 0 {
		t.Errorf("over the cap: inspected %d, uninspected %d, counts %v", ct.Inspected, ct.Uninspected, ct.Counts)
	}

	many := []byte(strings.Repeat(sampleMessages[0], 50))
	ct = runStream(t, StreamConfig{Samples: 4}, many, nil, 1)
	if len(ct.Hits) != 4 || ct.Counts[TypeContainer] != 100 {
		t.Errorf("samples %d (want 4), containers %d (want 100)", len(ct.Hits), ct.Counts[TypeContainer])
	}
}

// A Stream keeps its Scanners for the life of a flow; a window dense with
// identifiers must not leave its candidate list's room behind (with 1024
// directions open that was ~300 MiB beyond the documented bound).
func TestStreamDenseWindowReleased(t *testing.T) {
	for _, unit := range []string{"MSCU4829172 ", "HLXU8301928, "} {
		st := NewStream(StreamConfig{Window: 32 << 10})
		st.Write(true, []byte(strings.Repeat(unit, (256<<10)/len(unit))))
		sc := st.dir[0].sc
		if sc.Bytes == 0 {
			t.Fatalf("%q: nothing scanned", unit)
		}
		if cap(sc.cands) > 256 || cap(sc.spans) > 256 {
			t.Errorf("%q: scanner keeps room for %d candidates, %d spans between windows (cap %d)", unit, cap(sc.cands), cap(sc.spans), 256)
		}
		c := &cw.Conn{OrigBytes: 256 << 10}
		st.Close(c)
		if c.Content.Counts[TypeContainer] == 0 {
			t.Errorf("%q: no hits: %v", unit, c.Content.Counts)
		}
	}
}

func FuzzStream(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nEQD+C\r\n0\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n"), uint64(1))
	f.Add([]byte(sampleMessages[0]), []byte{0x16, 3, 1}, uint64(2))
	f.Add(append([]byte("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 40\r\n\r\n"), gz(f, []byte(sampleMessages[2]))...), []byte(nil), uint64(3))
	f.Fuzz(func(t *testing.T, orig, resp []byte, seed uint64) {
		st := NewStream(StreamConfig{MaxBytes: 1 << 16, MaxBody: 1 << 12, MaxDecoded: 1 << 16})
		feed(st, orig, resp, seed)
		c := &cw.Conn{OrigBytes: int64(len(orig)), RespBytes: int64(len(resp))}
		st.Close(c)
		if c.Content.Inspected < 0 || c.Content.Inspected > int64(len(orig)+len(resp)) || c.Content.Uninspected < 0 {
			t.Fatalf("inspected %d uninspected %d of %d", c.Content.Inspected, c.Content.Uninspected, len(orig)+len(resp))
		}
		for _, d := range st.dir {
			if d != nil && (len(d.hdr) > maxHeader || len(d.zbuf) > 1<<12) {
				t.Fatalf("buffers over their caps: hdr %d zbuf %d", len(d.hdr), len(d.zbuf))
			}
		}
	})
}
