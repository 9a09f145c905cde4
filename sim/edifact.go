package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// ISO 6346 letter values: A=10 upwards, skipping multiples of 11.
var iso6346Letter = func() [26]int {
	var v [26]int
	n := 10
	for i := range v {
		if n%11 == 0 {
			n++
		}
		v[i] = n
		n++
	}
	return v
}()

// iso6346Check returns the check digit of the first ten characters of a
// container number (four letters, six digits), or -1 when they are not of
// that form. A remainder of 10 yields 0, as the standard's table does.
func iso6346Check(s string) int {
	if len(s) < 10 {
		return -1
	}
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		var v int
		switch {
		case i < 4 && c >= 'A' && c <= 'Z':
			v = iso6346Letter[c-'A']
		case i >= 4 && c >= '0' && c <= '9':
			v = int(c - '0')
		default:
			return -1
		}
		sum += v << i
	}
	return sum % 11 % 10
}

// validContainer reports whether s is an 11-character container number
// with a correct check digit.
func validContainer(s string) bool {
	if len(s) != 11 || s[10] < '0' || s[10] > '9' {
		return false
	}
	c := iso6346Check(s)
	return c >= 0 && int(s[10]-'0') == c
}

// Owner codes of carriers and lessors calling at a Hamburg terminal
// (the fourth letter U marks freight containers).
var ownerCodes = []string{"MSKU", "MAEU", "OOLU", "HLXU", "HLBU", "CMAU", "CSNU", "MSCU", "TGHU", "TCLU", "EGHU", "ONEU"}

// newContainer returns a random container number with a valid check digit.
// Serials whose remainder is 10 are skipped: owners avoid them because
// the digit 0 would then be ambiguous.
func newContainer(r *rand.Rand) string {
	for {
		s := fmt.Sprintf("%s%06d", ownerCodes[r.IntN(len(ownerCodes))], r.IntN(1000000))
		sum := 0
		for i := 0; i < 10; i++ {
			if i < 4 {
				sum += iso6346Letter[s[i]-'A'] << i
			} else {
				sum += int(s[i]-'0') << i
			}
		}
		if sum%11 == 10 {
			continue
		}
		return s + string(rune('0'+sum%11))
	}
}

var (
	dischargePorts = []string{"CNSHA", "CNNGB", "CNYTN", "SGSIN", "NLRTM", "BEANR", "USNYC", "GBFXT", "PLGDN", "SEGOT"}
	isoTypes       = []string{"22G1", "42G1", "45G1", "45R1", "22T6", "L5G1"}
	vessels        = []struct{ callSign, name, carrier string }{
		{"9V7965", "MSC GULSUN", "MSC"},
		{"DHBN", "HAMBURG EXPRESS", "HLC"},
		{"VRIB3", "OOCL BEIJING", "OOL"},
		{"OZDY2", "MAERSK ELBA", "MSK"},
		{"9HA4567", "CMA CGM JULES VERNE", "CMA"},
	}
)

// bayplan builds a BAPLIE D.95B (SMDG 2.0) message for n containers and
// returns it with the container numbers it carries.
func bayplan(r *rand.Rand, at time.Time, ref int, n int) (string, []string) {
	v := vessels[r.IntN(len(vessels))]
	voyage := fmt.Sprintf("%03d%c", r.IntN(999)+1, "EW"[r.IntN(2)])
	var b strings.Builder
	seg := 0
	add := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("'\n")
		seg++
	}
	b.WriteString("UNA:+.? '\n")
	fmt.Fprintf(&b, "UNB+UNOA:2+ELBKAI:ZZ+%s:ZZ+%s+%d'\n", v.carrier, at.Format("060102:1504"), ref)
	seg = 0 // UNT counts from UNH
	add("UNH+%d+BAPLIE:D:95B:UN:SMDG20", ref)
	add("BGM++%d+9", 100000000+r.IntN(900000000))
	add("DTM+137:%s:201", at.Format("0601021504"))
	add("TDT+20+%s+++%s:172:20+++%s:103::%s", voyage, v.carrier, v.callSign, v.name)
	add("LOC+5+DEHAM:139:6")
	add("LOC+61+%s:139:6", dischargePorts[r.IntN(len(dischargePorts))])
	add("DTM+178:%s:203", at.Add(-3*time.Hour).Format("200601021504"))
	add("DTM+133:%s:203", at.Add(14*time.Hour).Format("200601021504"))
	add("RFF+VON:%s", voyage)
	var boxes []string
	for i := 0; i < n; i++ {
		c := newContainer(r)
		boxes = append(boxes, c)
		bay := 1 + 2*r.IntN(40)
		row := r.IntN(20)
		tier := []int{2, 4, 6, 8, 82, 84, 86, 88}[r.IntN(8)]
		add("LOC+147+%03d%02d%02d::5", bay, row, tier)
		add("MEA+WT++KGM:%d", 2200+r.IntN(28000))
		add("LOC+9+DEHAM:139:6")
		add("LOC+11+%s:139:6", dischargePorts[r.IntN(len(dischargePorts))])
		add("RFF+BM:1")
		add("EQD+CN+%s+%s+++5", c, isoTypes[r.IntN(len(isoTypes))])
		add("NAD+CA+%s:172:20", v.carrier)
	}
	seg++ // UNT itself
	fmt.Fprintf(&b, "UNT+%d+%d'\n", seg, ref)
	fmt.Fprintf(&b, "UNZ+1+%d'\n", ref)
	return b.String(), boxes
}
