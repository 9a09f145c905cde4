package format

import (
	"bufio"
	"encoding/json"
	"io"
	"time"

	cw "github.com/cargowatch/cargowatch"
)

// findingJSON is the flat record of DESIGN.md's finding contract. Field
// order is the contract's order, so a person reading the line finds
// kind and severity first.
type findingJSON struct {
	Kind         string         `json:"kind"`
	Severity     string         `json:"severity"`
	Score        float64        `json:"score"`
	SrcIP        string         `json:"src_ip"`
	SrcPort      uint16         `json:"src_port"`
	SrcAsset     string         `json:"src_asset"`
	SrcRole      string         `json:"src_role"`
	DstIP        string         `json:"dst_ip"`
	DstPort      uint16         `json:"dst_port"`
	DstName      string         `json:"dst_name"`
	DstCountry   string         `json:"dst_country"`
	DstASN       uint32         `json:"dst_asn"`
	DstOrg       string         `json:"dst_org"`
	Jurisdiction string         `json:"jurisdiction"`
	FirstSeen    string         `json:"first_seen"`
	LastSeen     string         `json:"last_seen"`
	Count        int64          `json:"count"`
	BytesOut     int64          `json:"bytes_out"`
	BytesIn      int64          `json:"bytes_in"`
	Summary      string         `json:"summary"`
	Evidence     map[string]any `json:"evidence"`
}

// FindingRecord flattens a Finding into the contract's record.
func FindingRecord(f *cw.Finding) any {
	r := findingJSON{
		Kind:         f.Kind,
		Severity:     f.Severity.String(),
		Score:        round3(f.Score),
		SrcIP:        addrString(f.Src.Addr),
		SrcPort:      f.Src.Port,
		DstIP:        addrString(f.Dst.Addr),
		DstPort:      f.Dst.Port,
		DstName:      f.Dst.Name,
		DstCountry:   f.Dst.Country,
		DstASN:       f.Dst.ASN,
		DstOrg:       f.Dst.Org,
		Jurisdiction: f.Dst.Jurisdiction,
		FirstSeen:    rfc3339(f.FirstSeen),
		LastSeen:     rfc3339(f.LastSeen),
		Count:        f.Count,
		BytesOut:     f.BytesOut,
		BytesIn:      f.BytesIn,
		Summary:      f.Summary,
		Evidence:     f.Evidence,
	}
	if f.Src.Asset != nil {
		r.SrcAsset, r.SrcRole = f.Src.Asset.Name, f.Src.Asset.Role
	}
	if r.Evidence == nil {
		r.Evidence = map[string]any{}
	}
	return r
}

// JSONL writes one JSON object per line. It buffers; call Flush at the end.
type JSONL struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewJSONL returns a JSON-lines writer on w.
func NewJSONL(w io.Writer) *JSONL {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONL{w: bw, enc: enc}
}

// Write encodes v on its own line.
func (j *JSONL) Write(v any) error { return j.enc.Encode(v) }

// Flush writes what is buffered.
func (j *JSONL) Flush() error { return j.w.Flush() }

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func round3(x float64) float64 {
	return float64(int64(x*1000+0.5)) / 1000
}
