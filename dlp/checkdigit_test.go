package dlp

import "testing"

// Published values: the ISO 6346 standard's own example (CSQU3054383),
// the IMO number Wikipedia uses (9074729), a GTIN-13 from a retail
// package (4006381333931) for the GS1 mod-10 rule.
func TestCheckDigits(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"iso6346 ISO example", iso6346OK, "CSQU3054383", true},
		{"iso6346 wrong check", iso6346OK, "CSQU3054384", false},
		{"iso6346 corpus", iso6346OK, "OOLU4293959", true},
		{"iso6346 remainder 10 is 0", iso6346OK, "CSQU0000010", iso6346Check([]byte("CSQU000001")) == 0},
		{"awb mod 7", func(s string) bool { return awbCheck([]byte(s)) }, "40881120", true},
		{"awb mod 7 wrong", func(s string) bool { return awbCheck([]byte(s)) }, "40881121", false},
		{"awb 34099074", func(s string) bool { return awbCheck([]byte(s)) }, "34099074", true},
		{"imo", func(s string) bool { return imoCheck([]byte(s)) }, "9074729", true},
		{"imo wrong", func(s string) bool { return imoCheck([]byte(s)) }, "9074728", false},
		{"gs1 gtin13", func(s string) bool { return gs1Check([]byte(s)) }, "4006381333931", true},
		{"gs1 gtin13 wrong", func(s string) bool { return gs1Check([]byte(s)) }, "4006381333932", false},
		{"gs1 sscc", func(s string) bool { return gs1Check([]byte(s)) }, "106141412345678908", true},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("%s(%s) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func iso6346OK(s string) bool { return iso6346Check([]byte(s)) == int(s[10]-'0') }

// The letter table skips 11, 22 and 33 (ISO 6346 Annex A).
func TestISO6346Letters(t *testing.T) {
	want := map[byte]int{'A': 10, 'B': 12, 'K': 21, 'L': 23, 'U': 32, 'V': 34, 'Z': 38}
	for c, v := range want {
		if got := iso6346Letter[c-'A']; got != v {
			t.Errorf("value of %c = %d, want %d", c, got, v)
		}
	}
}

func TestExportedCheckDigits(t *testing.T) {
	if got := ContainerCheckDigit("OOLU429395"); got != 9 {
		t.Errorf("ContainerCheckDigit(OOLU429395) = %d, want 9", got)
	}
	if got := ContainerCheckDigit("OOLX429395"); got != -1 {
		t.Errorf("category X accepted: %d", got)
	}
	if got := AWBCheckDigit("3409907"); got != 4 {
		t.Errorf("AWBCheckDigit(3409907) = %d, want 4", got)
	}
	if got := AWBCheckDigit("34099"); got != -1 {
		t.Errorf("short serial accepted: %d", got)
	}
}
