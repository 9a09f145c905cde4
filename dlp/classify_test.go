package dlp

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		types []string // message types found, in order
		hits  []string // hitStr of the hits, in order
	}{
		{"edifact with UNA and release character", sampleMessages[0], []string{"EDIFACT/BAPLIE"},
			[]string{"unlocode NLRTM none high", "container OOLU4293959 valid high", "container OOLU4293958 invalid low"}},
		{"x12 315 joins split container numbers", sampleMessages[1], []string{"X12/315"},
			[]string{"container GMCU609413 none medium", "container HASU5044950 valid high", "unlocode USNYC none high"}},
		{"cargo-imp fwb", sampleMessages[2], []string{"CARGO-IMP/FWB"}, []string{"awb 176-40881120 valid high"}},
		{"cargo-imp ffm", sampleMessages[3], []string{"CARGO-IMP/FFM"},
			[]string{"uld AKE12345LH none high", "awb 176-40881120 valid high"}},
		{"cargo-xml xfwb", sampleMessages[4], []string{"CARGO-XML/XFWB"}, []string{"awb 176-40881120 valid high"}},
		{"dcsa json", sampleMessages[5], []string{"JSON/DCSA"},
			[]string{"container APZU4812090 valid high", "unlocode USNYC none high"}},
		{"one record json", sampleMessages[6], []string{"JSON/ONE-RECORD"}, []string{"awb 176-40881120 valid high"}},
		{"edifact, other separators", "UNA*~.# !\nUNB~UNOC*3~X~Y~240101*1200~7!UNH~7~IFTSTA*D*01B*UN!EQD~CN~OOLU4293959!UNT~3~7!",
			[]string{"EDIFACT/IFTSTA"}, []string{"container OOLU4293959 valid high"}},
		{"edifact not cargo", "UNH+1+PAORES:93:1:IA'IFT+3+NO MORE'UNT+3+1'", []string{"EDIFACT/PAORES"}, nil},
		{"x12 purchase order is not cargo", strings.Replace(sampleMessages[1], "ST*315*", "ST*850*", 1), []string{"X12/850"},
			[]string{"container GMCU609413 none medium", "container HASU5044950 valid high", "unlocode USNYC none high"}},
		{"cargo-imp header without awb", "FWB/16\nNO NUMBER HERE\n", nil, nil},
		{"mvt is not cargo-imp", "MVT\nKZ7147/28.N406KZ.ORD\nAD282009 EA0924 NRT\n", nil, nil},
		{"cargo-imp not at line start", "see FWB/16\n176-40881120FRAORD\n", nil, []string{"awb 176-40881120 valid medium"}},
		{"unh in prose", "The UNH segment starts a message.", nil, nil},
		{"xml without iata namespace", `<Order xmlns="urn:example"><ID>176-40881120</ID></Order>`, nil, []string{"awb 176-40881120 valid medium"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, msgs := Scan([]byte(tt.in))
			var types, got []string
			for _, m := range msgs {
				types = append(types, m.Type)
			}
			for _, h := range hits {
				got = append(got, hitStr(h))
			}
			if !reflect.DeepEqual(types, tt.types) {
				t.Errorf("types %q, want %q", types, tt.types)
			}
			if !reflect.DeepEqual(got, tt.hits) {
				t.Errorf("hits %q, want %q", got, tt.hits)
			}
			// Each message counts the hits inside it.
			for _, m := range msgs {
				n := 0
				for _, c := range m.Counts {
					n += c
				}
				in := 0
				for _, h := range hits {
					if h.Offset >= m.Offset && h.Offset < m.Offset+m.Length {
						in++
						if h.MessageType != m.Type {
							t.Errorf("hit %+v inside %s carries %q", h, m.Type, h.MessageType)
						}
					}
				}
				if n != in {
					t.Errorf("%s counts %v, but %d hits lie inside it", m.Type, m.Counts, in)
				}
			}
		})
	}
}

func TestMessageCargoFlag(t *testing.T) {
	_, msgs := Scan([]byte(sampleMessages[0] + sampleMessages[1]))
	var got []string
	for _, m := range msgs {
		if m.Cargo {
			got = append(got, m.Type+" "+m.Version)
		}
	}
	sort.Strings(got)
	want := []string{"EDIFACT/BAPLIE D95B", "X12/315 "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cargo messages %q, want %q", got, want)
	}
}

func FuzzClassify(f *testing.F) {
	for _, m := range sampleMessages {
		f.Add([]byte(m))
	}
	f.Add([]byte("UNA:+.? 'UNH+1+BAPLIE:D:95B:UN'UNT"))
	f.Add([]byte("ISA*00*          *00*          *ZZ*A*ZZ*B*1*1*U*1*1*0*P*>~ST*310*1~SE"))
	f.Add([]byte("FFM/1\n1-1\n933-34099074\n"))
	f.Add([]byte(`{"x":{"equipmentReference":"A`))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs := Classify(b)
		last := int64(-1)
		for _, m := range msgs {
			if m.Offset < last || m.Offset < 0 || m.Length < 0 || m.Offset+m.Length > int64(len(b)) {
				t.Fatalf("message %+v out of order or outside %d bytes", m, len(b))
			}
			if !strings.Contains(m.Type, "/") {
				t.Fatalf("message type %q", m.Type)
			}
			last = m.Offset + m.Length
		}
	})
}
