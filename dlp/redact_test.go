package dlp

import (
	"strings"
	"testing"

	cw "github.com/cargowatch/cargowatch"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/track?container=OOLU4293959&x=1", "/track?container=OOLU****959&x=1"},
		{"OOLU4293959.example.com", "OOLU****959.example.com"},
		{"/awb/933-34099074", "/awb/933-****9074"},
		{"/index.html?page=2", "/index.html?page=2"},
		{"www.example.com", "www.example.com"},
		{"/ports/DEHAM", "/ports/DEHAM"}, // UN/LOCODEs are public
		{"", ""},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactConn(t *testing.T) {
	c := &cw.Conn{
		HTTP: []cw.HTTP{{URI: "/c?id=OOLU4293959", Host: "api.example.com"}},
		DNS:  []cw.DNS{{Query: "OOLU4293959.t.example.net", Answers: []string{"OOLU4293959.cdn.example.net", "1.2.3.4"}}},
		TLS:  &cw.TLS{SNI: "OOLU4293959.example.org"},
		Resp: cw.Endpoint{Name: "OOLU4293959.t.example.net"},
	}
	RedactConn(c)
	all := c.HTTP[0].URI + c.DNS[0].Query + strings.Join(c.DNS[0].Answers, ",") + c.TLS.SNI + c.Resp.Name
	if strings.Contains(all, "4293959") {
		t.Errorf("identifier left: %s", all)
	}
	if c.DNS[0].Answers[1] != "1.2.3.4" || c.HTTP[0].Host != "api.example.com" {
		t.Errorf("non-identifiers changed: %+v", c)
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("/track?container=OOLU4293959&x=1")
	f.Add("933-34099074BKKORD.example")
	f.Fuzz(func(t *testing.T, s string) {
		if r := Redact(s); len(r) != len(s) {
			t.Fatalf("Redact changed the length: %q -> %q", s, r)
		}
	})
}
