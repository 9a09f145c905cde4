package dlp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	cw "github.com/cargowatch/cargowatch"
)

// hitStr renders a hit for comparison: type value check confidence.
func hitStr(h cw.Hit) string {
	return fmt.Sprintf("%s %s %s %s", h.Type, h.Value, h.CheckDigit, h.Confidence)
}

func TestRecognisers(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // hitStr of every hit, in order; nil for none
	}{
		{"container alone", "shipped in OOLU4293959 today", []string{"container OOLU4293959 valid medium"}},
		{"container keyword", "Container: OOLU 429395 9", []string{"container OOLU4293959 valid high"}},
		{"container dashes", "cntr OOLU-429395-9.", []string{"container OOLU4293959 valid high"}},
		{"container bad check, no context", "ref OOLU4293958 x", nil},
		{"container bad check in EQD", "EQD+CN+OOLU4293958+4200'", []string{"container OOLU4293958 invalid low"}},
		{"container ISO example is a placeholder", "container CSQU3054383", []string{"container CSQU3054383 valid low"}},
		{"container placeholder without context", "see CSQU3054383", nil},
		{"container wrong category letter", "container OOLX4293959", nil},
		{"container glued to a word", "XOOLU4293959", nil},
		{"container lower case", "container oolu4293959", nil},
		{"awb dashed", "ship 176-40881120 now", []string{"awb 176-40881120 valid medium"}},
		{"awb keyword", "AWB 176-40881120", []string{"awb 176-40881120 valid high"}},
		{"awb into airport codes", "AWB 176-40881120FRAORD/T2K10", []string{"awb 176-40881120 valid high"}},
		{"awb plain with keyword", "MAWB: 17640881120", []string{"awb 176-40881120 valid high"}},
		{"awb plain without keyword", "id 17640881120", nil},
		{"awb bad check with keyword", "air waybill 176-40881121", []string{"awb 176-40881121 invalid low"}},
		{"awb bad check without context", "tel 176-40881121", nil},
		{"awb prefix 000", "awb 000-40881120", nil},
		{"phone-like number not awb", "call 555-1234567", nil},
		{"imo", "IMO 9074729", []string{"imo 9074729 valid high"}},
		{"imo no.", "IMO No. 9074729", []string{"imo 9074729 valid high"}},
		{"imo bad check", "IMO 9074728", []string{"imo 9074728 invalid low"}},
		{"imo keyword only", "vessel number 9074729", []string{"imo 9074729 valid medium"}},
		{"imo edifact 146", "TDT+20+1++++++9074729:146", []string{"imo 9074729 valid high"}},
		{"seven digits alone", "id 9074729", nil},
		{"sscc AI", "(00) 106141412345678908", []string{"sscc 106141412345678908 valid high"}},
		{"sscc run-in AI", "label 00106141412345678908", []string{"sscc 106141412345678908 valid high"}},
		{"sscc alone", "x 106141412345678908 y", []string{"sscc 106141412345678908 valid low"}},
		{"sscc bad check alone", "x 106141412345678907 y", nil},
		{"uld keyword", "ULD AKE12345LH", []string{"uld AKE12345LH none medium"}},
		{"uld cargo-imp", "ULD/PMC98669KZ", []string{"uld PMC98669KZ none high"}},
		{"uld common type alone", "on AKE12345LH", []string{"uld AKE12345LH none low"}},
		{"uld unknown type alone", "on XYZ12345LH", nil},
		{"hs dotted", "HS code 8471.30.01", []string{"hs 84713001 none medium"}},
		{"hs edifact", "PIA+5+847130:HS'", []string{"hs 847130 none high"}},
		{"hs no keyword", "build 847130", nil},
		{"hs chapter 99", "tariff 990130", nil},
		{"eori", "EORI: DE123456789012345", []string{"eori DE123456789012345 none medium"}},
		{"eori no keyword", "DE123456789012345", nil},
		{"eori bad country", "EORI QQ123456789", nil},
		{"nothing", "the quick brown fox 12 34 56", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, _ := Scan([]byte(tt.in))
			var got []string
			for _, h := range hits {
				got = append(got, hitStr(h))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Scan(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, h := range hits {
				if h.Offset < 0 || int(h.Offset) >= len(tt.in) {
					t.Errorf("offset %d outside input", h.Offset)
				}
			}
		})
	}
}

// scanChunks scans b written in random pieces through a small window.
func scanChunks(b []byte, window int, r *rand.Rand) ([]cw.Hit, []Message) {
	var hits []cw.Hit
	var msgs []Message
	s := NewScanner(Options{Window: window,
		OnHit:     func(h cw.Hit) { hits = append(hits, h) },
		OnMessage: func(m Message) { msgs = append(msgs, m) },
	})
	for p := b; len(p) > 0; {
		k := min(len(p), 1+r.IntN(3000))
		s.Write(p[:k])
		p = p[k:]
	}
	s.Close()
	return hits, msgs
}

// Identifiers and messages that straddle writes and windows are found as
// when the input is scanned in one piece.
func TestChunkBoundaries(t *testing.T) {
	var sb strings.Builder
	filler := strings.Repeat("ordinary text 12 345 without cargo, line after line.\n", 37)
	for i := range 40 {
		sb.WriteString(filler[:(i*131)%len(filler)])
		sb.WriteString("\n")
		sb.WriteString(sampleMessages[i%len(sampleMessages)])
	}
	in := []byte(sb.String())
	wantH, wantM := Scan(in)
	if len(wantH) < 70 || len(wantM) < 35 {
		t.Fatalf("whole scan found %d hits, %d messages: sample too weak", len(wantH), len(wantM))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, w := range []int{2048, 4096, 10000} {
		gotH, gotM := scanChunks(in, w, r)
		if !reflect.DeepEqual(gotH, wantH) {
			t.Errorf("window %d: %d hits, want %d", w, len(gotH), len(wantH))
			for i := range min(len(gotH), len(wantH)) {
				if gotH[i] != wantH[i] {
					t.Errorf("first difference: %+v, want %+v", gotH[i], wantH[i])
					break
				}
			}
		}
		if !reflect.DeepEqual(gotM, wantM) {
			t.Errorf("window %d: messages %+v\nwant %+v", w, gotM, wantM)
		}
	}
	// ReadFrom, with reads of any size, finds the same.
	var gotH []cw.Hit
	s := NewScanner(Options{Window: 4096, OnHit: func(h cw.Hit) { gotH = append(gotH, h) }})
	if _, err := s.ReadFrom(iotest.HalfReader(bytes.NewReader(in))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !reflect.DeepEqual(gotH, wantH) {
		t.Errorf("ReadFrom: %d hits, want %d", len(gotH), len(wantH))
	}
}

// sampleMessages are small messages of each syntax, written for the tests.
var sampleMessages = []string{
	"UNA:+.? '\nUNB+UNOA:2+SENDER+RECEIVER+240101:1200+1'\nUNH+1+BAPLIE:D:95B:UN:SMDG20'\nLOC+9+NLRTM:139:6'\n" +
		"EQD+CN+OOLU4293959+4200+++4'\nFTX+AAA+++SHIPPER?'S GOODS'\nEQD+CN+OOLU4293958+4200+++5'\nUNT+6+1'\nUNZ+1+1'\n",
	"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*00401*000000001*0*P*>~\n" +
		"GS*IO*SENDER*RECEIVER*20240101*1200*1*X*004010~\nST*315*0001~\nB4***A*20240101*1200**GMCU*609413*E~\n" +
		"VID*4B*HASU*5044950~\nR4*L*UN*USNYC*NEW YORK~\nSE*5*0001~\nGE*1*1~\nIEA*1*000000001~\n",
	"FWB/16\n176-40881120FRAORD/T2K10\nRTG/ORDLH\n\n",
	"FFM/8\n1/LH8400/01JAN/FRA\nULD/AKE12345LH\n176-40881120FRAORD/T2K10\n\n",
	`<rsm:Waybill xmlns:rsm="iata:waybill:1"><rsm:BusinessHeaderDocument><ID>176-40881120</ID></rsm:BusinessHeaderDocument></rsm:Waybill>` + "\n",
	`{"transportDocumentReference":"HHL71800000","equipmentReference":"APZU4812090","UNLocationCode":"USNYC"}` + "\n",
	`{"@context":{"cargo":"https://onerecord.iata.org/ns/cargo#"},"@type":"cargo:Waybill","waybillNumber":"40881120","AWB":"176-40881120"}` + "\n",
}

func FuzzScan(f *testing.F) {
	for _, m := range sampleMessages {
		f.Add([]byte(m), uint16(2048))
	}
	f.Add([]byte("EQD+CN+OOLU4293959'UNH+1+"), uint16(3000))
	f.Add([]byte("ISA*"), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, w uint16) {
		hits, msgs := Scan(b)
		for _, h := range hits {
			if h.Offset < 0 || h.Offset >= int64(len(b)) || ConfidenceRank(h.Confidence) == 0 {
				t.Fatalf("bad hit %+v for %d bytes", h, len(b))
			}
		}
		for _, m := range msgs {
			if m.Offset < 0 || m.Length < 0 || m.Offset+m.Length > int64(len(b)) {
				t.Fatalf("bad message %+v for %d bytes", m, len(b))
			}
		}
		gotH, gotM := scanChunks(b, 2048+int(w), rand.New(rand.NewPCG(uint64(len(b)), 7)))
		if len(gotH) != len(hits) || len(gotM) != len(msgs) {
			t.Fatalf("chunked scan: %d hits %d messages, whole: %d hits %d messages", len(gotH), len(gotM), len(hits), len(msgs))
		}
	})
}
