package sim

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestISO6346(t *testing.T) {
	tests := []struct {
		in    string
		check int
		valid bool
	}{
		{"CSQU3054383", 3, true}, // the example in ISO 6346 itself
		{"OOLU4293959", 9, true}, // from the corpus BAPLIE
		{"MOEU0710945", 5, true},
		{"MSKU1234565", 5, true},
		{"CSQU3054384", 3, false},
		{"CSQU305438", 3, false}, // too short for a full number
		{"csqu3054383", -1, false},
		{"1SQU3054383", -1, false},
		{"CSQUX054383", -1, false},
		{"", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := iso6346Check(tt.in); got != tt.check {
				t.Errorf("check digit %d, want %d", got, tt.check)
			}
			if got := validContainer(tt.in); got != tt.valid {
				t.Errorf("valid %v, want %v", got, tt.valid)
			}
		})
	}
}

func TestNewContainer(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	owners := map[string]bool{}
	for i := 0; i < 5000; i++ {
		c := newContainer(r)
		if !validContainer(c) || checkDigit(c) != int(c[10]-'0') {
			t.Fatalf("%s: invalid", c)
		}
		owners[c[:4]] = true
	}
	if len(owners) != len(ownerCodes) {
		t.Errorf("%d owner codes used, want %d", len(owners), len(ownerCodes))
	}
}

func TestBayplanMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 20, 60} {
		msg, boxes := bayplan(r, DefaultStart.Add(time.Hour), 1042, n)
		if len(boxes) != n || strings.Count(msg, "EQD+CN+") != n {
			t.Fatalf("n=%d: %d boxes, %d EQD", n, len(boxes), strings.Count(msg, "EQD+CN+"))
		}
		for _, b := range boxes {
			if !strings.Contains(msg, "EQD+CN+"+b+"+") {
				t.Errorf("%s not in the message", b)
			}
		}
		if !strings.Contains(msg, "UNB+UNOA:2+ELBKAI:ZZ+") || !strings.HasSuffix(msg, "UNZ+1+1042'\n") {
			t.Errorf("bad envelope:\n%s", msg)
		}
		checkUNT(t, msg)
	}
}

// FuzzISO6346: arbitrary strings never panic, and a digit computed by the
// checker always validates.
func FuzzISO6346(f *testing.F) {
	for _, s := range []string{"CSQU3054383", "OOLU4293959", "", "ZZZZ999999", "AAAA00000000", "MSKU12345\xff5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := iso6346Check(s)
		v := validContainer(s)
		if v && (c < 0 || len(s) != 11) {
			t.Fatalf("%q valid with check %d", s, c)
		}
		if c >= 0 && len(s) >= 10 {
			full := s[:10] + string(rune('0'+c))
			if !validContainer(full) {
				t.Fatalf("%q: computed digit does not validate", full)
			}
		}
	})
}
