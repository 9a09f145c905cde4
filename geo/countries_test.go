package geo

import (
	"slices"
	"testing"
)

func TestCountryName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"DE", "Germany"},
		{"de", "Germany"},
		{"GB", "United Kingdom"},
		{"CN", "China"},
		{"KR", "South Korea"},
		{"XK", "Kosovo"},
		{"QQ", "QQ"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := CountryName(tt.in); got != tt.want {
			t.Errorf("CountryName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCountrySets(t *testing.T) {
	if len(EU) != 27 || len(EEA) != 30 {
		t.Errorf("EU has %d, EEA %d members; want 27 and 30", len(EU), len(EEA))
	}
	for _, set := range [][]string{EU, EEA, Adequacy, AdequacyPartial} {
		seen := map[string]bool{}
		for _, c := range set {
			if _, ok := countryNames[c]; !ok {
				t.Errorf("%q is not a country code", c)
			}
			if seen[c] {
				t.Errorf("%q listed twice", c)
			}
			seen[c] = true
		}
	}
	for _, c := range Adequacy {
		if IsEEA(c) {
			t.Errorf("%s has an adequacy decision but is in the EEA", c)
		}
	}
	for _, c := range AdequacyPartial {
		if !slices.Contains(Adequacy, c) {
			t.Errorf("partial %s missing from Adequacy", c)
		}
	}
	tests := []struct {
		cc            string
		eu, eea, adeq bool
	}{
		{"DE", true, true, false},
		{"gr", true, true, false},
		{"NO", false, true, false},
		{"CH", false, false, true},
		{"GB", false, false, true},
		{"BR", false, false, true},
		{"CN", false, false, false},
		{"", false, false, false},
	}
	for _, tt := range tests {
		if IsEU(tt.cc) != tt.eu || IsEEA(tt.cc) != tt.eea || IsAdequate(tt.cc) != tt.adeq {
			t.Errorf("%q: EU=%v EEA=%v adequate=%v", tt.cc, IsEU(tt.cc), IsEEA(tt.cc), IsAdequate(tt.cc))
		}
	}
}

func TestNormCountry(t *testing.T) {
	for in, want := range map[string]string{"de": "DE", "-": "", "ZZ": "", "": "", "D1": "", "DEU": ""} {
		if got := normCountry(in); got != want {
			t.Errorf("normCountry(%q) = %q, want %q", in, got, want)
		}
	}
}
