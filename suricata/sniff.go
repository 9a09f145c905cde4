package suricata

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
)

// sniffLen is how much of a file Sniff needs: enough for the first line
// of nearly every EVE file (alerts with payloads can be longer; their
// start is recognised without the end).
const sniffLen = 64 << 10

const bom = "\xef\xbb\xbf"

var jsonUnmarshal = json.Unmarshal

// Sniff reports whether head, the first bytes of a file (gzip-compressed
// or not), is Suricata EVE JSON: its first line is a JSON object with an
// event_type and a timestamp. A first line cut short by the end of head
// is judged by its start.
func Sniff(head []byte) bool {
	plain, err := gunzipHead(head)
	if err != nil {
		return false
	}
	plain = bytes.TrimLeft(bytes.TrimPrefix(plain, []byte(bom)), " \t\r\n")
	if len(plain) == 0 || plain[0] != '{' {
		return false
	}
	line, _, complete := bytes.Cut(plain, []byte("\n"))
	if complete {
		var h struct {
			Timestamp *string `json:"timestamp"`
			EventType *string `json:"event_type"`
		}
		if json.Unmarshal(line, &h) != nil {
			return false
		}
		return h.Timestamp != nil && h.EventType != nil && *h.EventType != ""
	}
	// Cut short: the keys Suricata writes first must be there, as keys.
	_, tsOK := keyAt(line, "timestamp")
	_, typeOK := eventType(line)
	return tsOK && typeOK
}

// keyAt finds "key" followed by a colon.
func keyAt(b []byte, key string) (int, bool) {
	k := []byte(`"` + key + `"`)
	off := 0
	for {
		i := bytes.Index(b[off:], k)
		if i < 0 {
			return 0, false
		}
		j := off + i + len(k)
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j < len(b) && b[j] == ':' {
			return off + i, true
		}
		off = off + i + 1
	}
}

// gunzipHead returns head, decompressed as far as it goes when it starts
// with the gzip magic; a stream cut by the end of head is not an error.
func gunzipHead(head []byte) ([]byte, error) {
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return head, nil
	}
	z, err := gzip.NewReader(bytes.NewReader(head))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, sniffLen)
	buf := make([]byte, 8<<10)
	for len(out) < sniffLen {
		n, err := z.Read(buf)
		out = append(out, buf[:min(n, sniffLen-len(out))]...)
		if err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || len(out) > 0 {
				break
			}
			return nil, err
		}
	}
	return out, nil
}
