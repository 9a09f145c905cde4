package zeek

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// logName is what a file name tells: the Zeek log path (conn, dns, ...),
// the rotation tag of its period ("" for the live file) and a prefix
// shared by logs of one capture ("x.zeek-" in x.zeek-conn.log).
type logName struct {
	prefix, path, tag string
}

// knownPaths are Zeek log paths recognised after a prefix, where a name
// alone cannot say it is a log path (x.zeek-conn.log, x.baseline-dns.log).
var knownPaths = map[string]bool{
	"conn": true, "open_conn": true, "dns": true, "ssl": true, "open_ssl": true,
	"http": true, "open_http": true, "files": true, "tunnel": true, "x509": true,
	"notice": true, "weird": true, "software": true, "dhcp": true, "smtp": true,
	"ssh": true, "ftp": true, "smb_files": true, "smb_mapping": true, "rdp": true,
	"ntp": true, "kerberos": true, "modbus": true, "dnp3": true, "s7comm": true,
	"bacnet": true, "enip": true, "known_hosts": true, "known_services": true,
	"quic": true, "snmp": true, "sip": true, "radius": true, "ntlm": true,
	"dce_rpc": true, "pe": true, "intel": true, "signatures": true, "stats": true,
	"capture_loss": true, "loaded_scripts": true, "packet_filter": true, "reporter": true,
}

// parseName reads Zeek's naming of logs: conn.log, the archive names
// conn.2026-11-29-07-00-00.log(.gz) and (in a dated directory)
// conn.07:00:00-08:00:00.log.gz, and PREFIX-conn.log / PREFIX.conn.log.
func parseName(base string) (logName, bool) {
	stem := strings.TrimSuffix(base, ".gz")
	stem, ok := strings.CutSuffix(stem, ".log")
	if !ok || stem == "" {
		return logName{}, false
	}
	if isWord(stem) {
		return logName{path: stem}, true
	}
	if i := strings.IndexByte(stem, '.'); i > 0 && isWord(stem[:i]) && isTag(stem[i+1:]) {
		return logName{path: stem[:i], tag: stem[i+1:]}, true
	}
	if i := strings.LastIndexAny(stem, "-."); i > 0 && knownPaths[stem[i+1:]] {
		return logName{prefix: stem[:i+1], path: stem[i+1:]}, true
	}
	return logName{}, false
}

func isWord(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isTag accepts rotation tags: digits with - : _ between them.
func isTag(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' || c == ':' || c == '_':
		default:
			return false
		}
	}
	return digits >= 4
}

// tagTime is the start of a rotation period, zero when the tag does not
// say (then groups are ordered by name, the live files last).
func tagTime(dir, tag string) time.Time {
	if tag == "" {
		return time.Time{}
	}
	if len(tag) >= 19 {
		if t, err := time.Parse("2006-01-02-15-04-05", tag[:19]); err == nil {
			return t
		}
	}
	if len(tag) >= 8 {
		if d, err := time.Parse("2006-01-02", filepath.Base(dir)); err == nil {
			for _, layout := range []string{"15:04:05", "15_04_05", "15-04-05"} {
				if t, err := time.Parse(layout, tag[:8]); err == nil {
					return d.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
				}
			}
		}
	}
	return time.Time{}
}

func isDateDir(name string) bool {
	_, err := time.Parse("2006-01-02", name)
	return err == nil
}

// LogPath returns the Zeek log path a file name says ("conn", "dns",
// "open_conn", ...), "" when the name is not one Zeek gives its logs.
// The dispatcher can use it with Sniff to decide that a directory holds
// Zeek logs.
func LogPath(path string) string {
	n, ok := parseName(filepath.Base(path))
	if !ok {
		return ""
	}
	return n.path
}

// IsLogDir reports whether dir (or one of its dated subdirectories) holds
// a conn log, by name, whose first bytes are a Zeek log's.
func IsLogDir(dir string) bool {
	var found bool
	check := func(d string) {
		ents, err := os.ReadDir(d)
		if err != nil {
			return
		}
		for _, e := range ents {
			if found {
				return
			}
			if e.IsDir() {
				continue
			}
			if n, ok := parseName(e.Name()); ok && kindOf(n.path) == kindConn {
				found = sniffFile(filepath.Join(d, e.Name()))
			}
		}
	}
	check(dir)
	if found {
		return true
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() && isDateDir(e.Name()) {
			if check(filepath.Join(dir, e.Name())); found {
				return true
			}
		}
	}
	return false
}

func sniffFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	return Sniff(head[:n])
}

// sniffMax bounds what Sniff decompresses.
const sniffMax = 8 << 10

// Sniff reports whether head, the first bytes of a file (the dispatcher
// gives up to 4 KiB; gzip is decompressed first), is a Zeek TSV header or
// a Zeek JSON log line: an object with "ts" and a Zeek connection or log
// field (uid, id.orig_h, _path, ...), which Suricata's EVE (timestamp,
// event_type) and flow exporters' JSON do not have.
func Sniff(head []byte) bool {
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return false
		}
		out, _ := io.ReadAll(io.LimitReader(zr, sniffMax))
		head = out
	}
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimRight(line, "\r")
		t := bytes.TrimLeft(line, " \t")
		switch {
		case len(t) == 0:
			continue
		case bytes.HasPrefix(t, []byte("#separator ")):
			return true
		case t[0] == '#':
			continue // comment lines before the header (btest baselines)
		case t[0] == '{':
			return sniffJSON(t)
		case bytes.HasPrefix(t, []byte("ts\t")):
			var h header
			return h.plainTSVHeader(t)
		}
		return false
	}
	return false
}

// sniffJSON accepts a line cut short by the head's end: the keys read
// before the cut decide.
func sniffJSON(line []byte) bool {
	var r record
	err := parseJSON(line, &r)
	if err != nil && err != errJSONEnd {
		return false
	}
	if !r.has(fTS) || (r.v[fTS].jk != jNumber && r.v[fTS].jk != jString) {
		return false
	}
	return r.has(fUID) || r.has(fOrigH) || r.has(fPath)
}
