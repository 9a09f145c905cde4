package dissect

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	cw "github.com/cargowatch/cargowatch"
)

const (
	// MaxDNSAnswers caps the answers kept per message: a tunnel can pack
	// hundreds of records into one response and the Conn must stay small.
	MaxDNSAnswers = 32
	// maxNameWire is RFC 1035's limit on a name's wire length.
	maxNameWire = 255
	// maxPointers bounds compression jumps per name; with the
	// "pointers only go backwards" rule a loop is impossible anyway, this
	// bounds the work on a long chain of single-label hops.
	maxPointers = 64
	// maxTXT caps one TXT answer's text (a response may carry 64 KiB).
	maxTXT = 1024
)

// DNS resource record types that DNSMessage renders as text.
const (
	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typePTR   = 12
	typeMX    = 15
	typeTXT   = 16
	typeAAAA  = 28
)

// DNSMessage parses one DNS message (UDP payload, or one TCP-framed
// message without its 2-byte length prefix). isResponse tells whether it
// is a response (QR bit). Answers are rendered as Zeek's dns.log does:
// addresses for A/AAAA, names for CNAME/NS/PTR/MX, the text of TXT
// records (character-strings joined by a space, as Zeek lists them), "TYPE<n>" for anything else;
// at most MaxDNSAnswers are kept. When a fault is found after the
// question, msg holds what was parsed before it along with the error.
func DNSMessage(b []byte) (msg cw.DNS, isResponse bool, err error) {
	msg.RCode = -1
	if len(b) < 12 {
		return msg, false, fmt.Errorf("dns: header: %w", ErrShort)
	}
	msg.TransID = binary.BigEndian.Uint16(b)
	flags := binary.BigEndian.Uint16(b[2:])
	isResponse = flags&0x8000 != 0
	if isResponse {
		msg.RCode = int(flags & 0x000f)
		msg.RespLen = len(b)
	} else {
		msg.QueryLen = len(b)
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	an := int(binary.BigEndian.Uint16(b[6:]))

	off := 12
	var nameBuf [maxNameWire * 4]byte // escaped form is at most 4x the wire bytes
	for i := 0; i < qd; i++ {
		var name []byte
		name, off, err = readName(b, off, nameBuf[:0])
		if err != nil {
			return msg, isResponse, fmt.Errorf("dns: question %d: %w", i, err)
		}
		if off+4 > len(b) {
			return msg, isResponse, fmt.Errorf("dns: question %d: %w", i, ErrShort)
		}
		if i == 0 {
			msg.Query = string(name)
			msg.QType = binary.BigEndian.Uint16(b[off:])
			msg.QClass = binary.BigEndian.Uint16(b[off+2:])
		}
		off += 4
	}

	if an == 0 {
		return msg, isResponse, nil
	}
	keep := min(an, MaxDNSAnswers)
	msg.Answers = make([]string, 0, keep)
	msg.TTLs = make([]uint32, 0, keep)
	for i := 0; i < an && len(msg.Answers) < MaxDNSAnswers; i++ {
		// The owner name is not logged; skip it without decoding.
		off, err = skipName(b, off)
		if err != nil {
			return msg, isResponse, fmt.Errorf("dns: answer %d: %w", i, err)
		}
		if off+10 > len(b) {
			return msg, isResponse, fmt.Errorf("dns: answer %d: %w", i, ErrShort)
		}
		typ := binary.BigEndian.Uint16(b[off:])
		ttl := binary.BigEndian.Uint32(b[off+4:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return msg, isResponse, fmt.Errorf("dns: answer %d: rdata %d bytes: %w", i, rdlen, ErrShort)
		}
		rd := b[off : off+rdlen]
		ans, err := renderRData(b, off, typ, rd, nameBuf[:0])
		if err != nil {
			return msg, isResponse, fmt.Errorf("dns: answer %d type %d: %w", i, typ, err)
		}
		msg.Answers = append(msg.Answers, ans)
		msg.TTLs = append(msg.TTLs, ttl)
		off += rdlen
	}
	return msg, isResponse, nil
}

// renderRData turns one answer's data into the text Zeek would log.
// off is where rd starts in msg, needed because names inside rdata may
// point back into the message.
func renderRData(msg []byte, off int, typ uint16, rd []byte, buf []byte) (string, error) {
	switch typ {
	case typeA:
		if len(rd) != 4 {
			return "", fmt.Errorf("rdata of type A is %d bytes: %w", len(rd), ErrMalformed)
		}
		return netip.AddrFrom4([4]byte(rd)).String(), nil
	case typeAAAA:
		if len(rd) != 16 {
			return "", fmt.Errorf("AAAA rdata of %d bytes: %w", len(rd), ErrMalformed)
		}
		return netip.AddrFrom16([16]byte(rd)).String(), nil
	case typeCNAME, typeNS, typePTR, typeMX:
		start := off
		if typ == typeMX {
			start += 2 // preference
			if len(rd) < 3 {
				return "", fmt.Errorf("MX rdata of %d bytes: %w", len(rd), ErrMalformed)
			}
		}
		// Bound the name to the rdata so it cannot run into the next record.
		name, _, err := readName(msg[:off+len(rd)], start, buf)
		if err != nil {
			return "", err
		}
		return string(name), nil
	case typeTXT:
		for i := 0; i < len(rd); {
			n := int(rd[i])
			i++
			if i+n > len(rd) {
				return "", fmt.Errorf("TXT string of %d bytes past rdata: %w", n, ErrMalformed)
			}
			if i > 1 && len(buf) < maxTXT {
				buf = append(buf, ' ')
			}
			for _, c := range rd[i : i+n] {
				if len(buf) >= maxTXT {
					break
				}
				buf = appendEscaped(buf, c)
			}
			i += n
		}
		return string(buf), nil
	}
	buf = append(buf, "TYPE"...)
	buf = strconv.AppendUint(buf, uint64(typ), 10)
	return string(buf), nil
}

// readName decodes the (possibly compressed) name at off into dst and
// returns it with the offset just past the name's in-place bytes. Labels
// are joined with '.', bytes outside printable ASCII and '\' are escaped
// as \xNN (Zeek's convention) so a log line can never be split or forged.
// Compression pointers must point strictly backwards, which rules out
// loops; the wire length is capped at 255 bytes as RFC 1035 requires.
func readName(b []byte, off int, dst []byte) ([]byte, int, error) {
	end := -1 // offset after the name in the original position
	wire := 0
	jumps := 0
	pos := off
	for {
		if pos >= len(b) {
			return dst, 0, ErrShort
		}
		l := int(b[pos])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				if end < 0 {
					end = pos + 1
				}
				return dst, end, nil
			}
			wire += l + 1
			if wire > maxNameWire {
				return dst, 0, fmt.Errorf("name longer than %d bytes: %w", maxNameWire, ErrMalformed)
			}
			if pos+1+l > len(b) {
				return dst, 0, ErrShort
			}
			if len(dst) > 0 {
				dst = append(dst, '.')
			}
			for _, c := range b[pos+1 : pos+1+l] {
				dst = appendEscaped(dst, c)
			}
			pos += 1 + l
		case 0xc0:
			if pos+1 >= len(b) {
				return dst, 0, ErrShort
			}
			ptr := int(binary.BigEndian.Uint16(b[pos:]) & 0x3fff)
			if ptr >= pos {
				return dst, 0, fmt.Errorf("compression pointer %d at %d does not point back: %w", ptr, pos, ErrMalformed)
			}
			if jumps++; jumps > maxPointers {
				return dst, 0, fmt.Errorf("more than %d compression pointers: %w", maxPointers, ErrMalformed)
			}
			if end < 0 {
				end = pos + 2
			}
			pos = ptr
		default:
			// 0x40 (extended label types, RFC 6891 deprecated them) and
			// 0x80 are unassigned.
			return dst, 0, fmt.Errorf("label type 0x%02x: %w", l&0xc0, ErrMalformed)
		}
	}
}

// skipName returns the offset after the name at off without decoding it.
func skipName(b []byte, off int) (int, error) {
	wire := 0
	for {
		if off >= len(b) {
			return 0, ErrShort
		}
		l := int(b[off])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				return off + 1, nil
			}
			if wire += l + 1; wire > maxNameWire {
				return 0, fmt.Errorf("name longer than %d bytes: %w", maxNameWire, ErrMalformed)
			}
			off += 1 + l
		case 0xc0:
			if off+1 >= len(b) {
				return 0, ErrShort
			}
			return off + 2, nil
		default:
			return 0, fmt.Errorf("label type 0x%02x: %w", l&0xc0, ErrMalformed)
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends c, or \xNN when c would be unsafe in a log line.
func appendEscaped(dst []byte, c byte) []byte {
	if c < 0x20 || c >= 0x7f || c == '\\' {
		return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, c)
}
