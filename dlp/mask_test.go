package dlp

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	tests := []struct{ typ, in, want string }{
		{TypeContainer, "OOLU4293959", "OOLU****959"},
		{TypeAWB, "933-34099074", "933-****9074"},
		{TypeIMO, "9074729", "90****9"},
		{TypeULD, "PMC98669KZ", "PMC*****KZ"},
		{TypeUNLocode, "NLRTM", "NLRTM"},
		{TypeHS, "84713001", "8471****"},
		{TypeEORI, "DE123456789012345", "DE************345"},
		{TypeSSCC, "106141412345678908", "106************908"},
		{"unknown", "ABCDEFGH", "AB****GH"},
		{TypeContainer, "ABC", "***"}, // too short to keep anything
		{TypeAWB, "", ""},
	}
	for _, tt := range tests {
		if got := Mask(tt.typ, tt.in); got != tt.want {
			t.Errorf("Mask(%s, %q) = %q, want %q", tt.typ, tt.in, got, tt.want)
		}
	}
}

// No masked identifier of 8 characters or more may equal or contain its value.
func TestMaskHides(t *testing.T) {
	for _, typ := range []string{TypeContainer, TypeAWB, TypeIMO, TypeSSCC, TypeULD, TypeHS, TypeEORI} {
		for _, v := range []string{"OOLU4293959", "933-34099074", "9074729", "106141412345678908", "PMC98669KZ", "84713001", "GB123456789000"} {
			m := Mask(typ, v)
			if strings.Contains(m, v) || strings.Count(m, "*") < 3 {
				t.Errorf("Mask(%s, %q) = %q hides too little", typ, v, m)
			}
		}
	}
}
