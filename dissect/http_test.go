package dissect

import (
	"errors"
	"slices"
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

// Client streams from the shared corpus (tshark -z follow,tcp,raw). The
// expected fields are tshark's http.* readings of the same streams.
const (
	// pcap/edge/zeek-http-vlan-0.pcap
	reqVLAN = "GET /download/CHANGES.bro-aux.txt HTTP/1.1\r\nUser-Agent: Wget/1.14 (darwin12.2.0)\r\nAccept: */*\r\nHost: bro.org\r\nConnection: Keep-Alive\r\n\r\n"
	// pcap/edge/zeek-http-vlan-0.pcap, server side, body cut.
	respVLAN = "HTTP/1.1 200 OK\r\nDate: Thu, 07 Mar 2013 21:43:07 GMT\r\nServer: Apache/2.4.3 (Fedora)\r\nLast-Modified: Wed, 29 Aug 2012 23:49:27 GMT\r\nETag: \"1261-4c870358a6fc0\"\r\nAccept-Ranges: bytes\r\nContent-Length: 4705\r\nKeep-Alive: timeout=5, max=100\r\nConnection: Keep-Alive\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\n0.26 | 2012-08-24 15:10:04 -0700\n"
	// pcap/c2/ndpi-trickbot.pcap: headers of a 928-byte form POST.
	reqTrickbotHead = "POST /OK21pqJAtyyGBEo00sk HTTP/1.1\r\nReferer: http://82.118.225.196/OK21pqJAtyyGBEo00sk\r\nContent-Type: application/x-www-form-urlencoded\r\nDNT: 1\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E)\r\nHost: 82.118.225.196:7080\r\nContent-Length: 928\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n"
	// pcap/edge/zeek-tunnels-Teredo.pcap: HTTP/1.0 POST, 589-byte body.
	reqTeredoHead = "POST /cgi-bin/iavs4stats.cgi HTTP/1.0\r\nContent-Type: iavs4/stats\r\nContent-Length: 589\r\nUser-Agent: Syncer/4.80 (av_pro-1169;f)\r\nHost: download913.avast.com\r\nConnection: Keep-Alive\r\nPragma: no-cache\r\n\r\n"
)

func TestHTTPRequests(t *testing.T) {
	trickbot := reqTrickbotHead + strings.Repeat("a", 928)
	tests := []struct {
		name string
		in   string
		max  int
		want []cw.HTTP
	}{
		{"vlan wget", reqVLAN, 8, []cw.HTTP{{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"}}},
		{"trickbot post whole body", trickbot, 8, []cw.HTTP{{Method: "POST", URI: "/OK21pqJAtyyGBEo00sk", Host: "82.118.225.196:7080",
			UserAgent:   "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E)",
			ContentType: "application/x-www-form-urlencoded", RequestBodyLen: 928}}},
		{"teredo post body cut", reqTeredoHead + "statver=2.10\n", 8, []cw.HTTP{{Method: "POST", URI: "/cgi-bin/iavs4stats.cgi", Host: "download913.avast.com",
			UserAgent: "Syncer/4.80 (av_pro-1169;f)", ContentType: "iavs4/stats", RequestBodyLen: 589}}},
		{"pipelined after body", trickbot + reqVLAN + reqVLAN, 8, []cw.HTTP{
			{Method: "POST", URI: "/OK21pqJAtyyGBEo00sk", Host: "82.118.225.196:7080",
				UserAgent:   "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E)",
				ContentType: "application/x-www-form-urlencoded", RequestBodyLen: 928},
			{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"},
			{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"}}},
		{"max respected", reqVLAN + reqVLAN + reqVLAN, 2, []cw.HTTP{
			{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"},
			{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"}}},
		{"chunked then next", "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n", 8, []cw.HTTP{
			{Method: "POST", URI: "/up", Host: "h", RequestBodyLen: 31},
			{Method: "GET", URI: "/next", Host: "h"}}},
		{"chunked cut", "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n100\r\nxyz", 8, []cw.HTTP{
			{Method: "POST", URI: "/up", RequestBodyLen: 16 + 256}}},
		{"headers cut", "GET /a HTTP/1.1\r\nHost: cut.example\r\nUser-Ag", 8, []cw.HTTP{{Method: "GET", URI: "/a", Host: "cut.example"}}},
		{"bare LF and case", "get /x HTTP/1.1\n", 8, nil},
		{"garbage after request", reqVLAN + "\x16\x03\x01garbage\r\n", 8, []cw.HTTP{{Method: "GET", URI: "/download/CHANGES.bro-aux.txt", Host: "bro.org", UserAgent: "Wget/1.14 (darwin12.2.0)"}}},
		{"control bytes escaped", "GET /\x01\x7f HTTP/1.1\nHost: a\tb\n\n", 8, []cw.HTTP{{Method: "GET", URI: `/\x01\x7f`, Host: "a\\x09b"}}},
		{"zero max", reqVLAN, 0, nil},
		// pcap/edge/zeek-mixed-vlan-mpls.pcap: an HTTP/0.9 request after a 1.0 one.
		{"http/0.9 pipelined", "GET / HTTP/1.0\r\nUser-Agent: Wget/1.10\r\nAccept: */*\r\nHost: www.icir.org\r\nConnection: Keep-Alive\r\n\r\nGET /\r\n\r\n", 8, []cw.HTTP{
			{Method: "GET", URI: "/", Host: "www.icir.org", UserAgent: "Wget/1.10"},
			{Method: "GET", URI: "/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HTTPRequests([]byte(tt.in), tt.max)
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("got %+v, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("HTTPRequests: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHTTPRequestsErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"GE", ErrShort},
		{"GET /very/long/uri", ErrShort},
		{"SSH-2.0-x\r\n", ErrNotHTTP},
		{"GET / RTSP/1.0\r\n", ErrNotHTTP},
		{"\x16\x03\x01\x02\x00", ErrNotHTTP},
		{"HELLO world\r\n", ErrNotHTTP},
	}
	for _, tt := range tests {
		got, err := HTTPRequests([]byte(tt.in), 4)
		if !errors.Is(err, tt.want) || got != nil {
			t.Errorf("%q: %+v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestHTTPResponses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []HTTPResponse
	}{
		{"vlan body cut", respVLAN, []HTTPResponse{{200, 4705}}},
		{"pipelined", "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
			[]HTTPResponse{{404, 3}, {204, 0}, {200, 4}}},
		{"until close", "HTTP/1.0 200 OK\r\n\r\nhello world", []HTTPResponse{{200, 11}}},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", []HTTPResponse{{100, 0}, {201, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HTTPResponses([]byte(tt.in), 8)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := HTTPResponses([]byte("HTTP/1"), 8); !errors.Is(err, ErrShort) {
		t.Errorf("cut status line: %v", err)
	}
	if _, err := HTTPResponses([]byte("220 smtp ready\r\n"), 8); !errors.Is(err, ErrNotHTTP) {
		t.Errorf("smtp banner: %v", err)
	}
}

func TestFillResponses(t *testing.T) {
	reqs, err := HTTPRequests([]byte("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.1\r\n\r\n"), 8)
	if err != nil || len(reqs) != 3 {
		t.Fatalf("requests %+v, %v", reqs, err)
	}
	// The HEAD response declares a length but has no body; the POST gets
	// an interim 100 first.
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" +
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 302 Found\r\nContent-Length: 9\r\n\r\nmoved"
	n, err := FillResponses(reqs, []byte(resp))
	if err != nil || n != 3 {
		t.Fatalf("answered %d, %v", n, err)
	}
	got := [][2]int64{}
	for _, r := range reqs {
		got = append(got, [2]int64{int64(r.StatusCode), r.ResponseBodyLen})
	}
	want := [][2]int64{{200, 0}, {201, 5}, {302, 9}}
	if !slices.Equal(got, want) {
		t.Errorf("status/len %v, want %v", got, want)
	}
}

func FuzzHTTPRequests(f *testing.F) {
	for _, s := range []string{reqVLAN, reqTrickbotHead, reqTeredoHead + "x", respVLAN,
		"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := HTTPRequests(b, 4)
		if len(reqs) > 4 || err != nil && len(reqs) > 0 {
			t.Fatalf("%d requests with err %v", len(reqs), err)
		}
		for _, r := range reqs {
			if r.RequestBodyLen < 0 || len(r.URI) > 4*maxHTTPField {
				t.Fatalf("bad request %+v", r)
			}
		}
		rs, _ := HTTPResponses(b, 4)
		if len(rs) > 4 {
			t.Fatalf("%d responses", len(rs))
		}
		_, _ = FillResponses(reqs, b)
	})
}
