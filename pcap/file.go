package pcap

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync/atomic"
)

const (
	// maxCaplen bounds one record: anything larger is a damaged file, and
	// refusing it keeps a corrupt length field from becoming an allocation.
	maxCaplen = 256 << 10
	// maxMetaBlock bounds pcapng blocks we must parse whole (SHB, IDB).
	maxMetaBlock = 64 << 10
	// readBufSize must exceed maxCaplen plus block overhead, since records
	// are peeked whole out of the bufio buffer instead of being copied.
	readBufSize = 1 << 20
	// maxIfaces bounds the interface table of one pcapng section.
	maxIfaces = 1024
)

// errNotCapture marks files that are not captures at all, so a directory
// walk can pass over them quietly while a named file is still reported.
var errNotCapture = errors.New("not a capture")

// errMalformed marks a damaged record that stops the reading of a file.
var errMalformed = errors.New("malformed")

const (
	formatPcap = iota + 1
	formatPcapng
)

// frame is one link-layer record as stored in a capture file.
type frame struct {
	ts      int64 // Unix nanoseconds
	link    int
	data    []byte // aliases the source's bufio buffer
	origLen int
}

type iface struct {
	link        int
	snap        uint32
	unitsPerSec uint64
	offset      int64 // seconds
}

// source is one open capture file, read record by record.
type source struct {
	path   string
	idx    int // input order, breaks timestamp ties so merges are stable
	f      *os.File
	gz     *gzip.Reader
	br     *bufio.Reader
	size   int64 // of the file on disk (compressed size for gzip)
	format int
	be     bool
	nsec   bool
	link   int
	ifaces []iface
	n      int64 // records returned
	cur    frame
	// damage is a non-fatal problem seen in this file (first one wins);
	// it is reported once the file ends.
	damage error
}

// openSource opens path and reads its file header, counting the bytes
// read from the file in read (for progress). The error is the bare
// reason; the caller wraps it with the path.
func openSource(path string, read *atomic.Int64) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	s, err := newSource(path, countingReader{f, read})
	if err != nil {
		f.Close()
		return nil, err
	}
	s.f, s.size = f, size
	return s, nil
}

// countingReader adds what it reads to n; one atomic add per buffer fill.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}

// newSource reads the file header from rd.
func newSource(path string, rd io.Reader) (*source, error) {
	s := &source{path: path, br: bufio.NewReaderSize(rd, readBufSize)}
	if err := s.init(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *source) close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

func (s *source) u16(b []byte) uint16 {
	if s.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *source) u32(b []byte) uint32 {
	if s.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// init detects the format by magic number, unwrapping gzip once.
func (s *source) init() error {
	b, err := s.br.Peek(4)
	if len(b) == 0 {
		if err == io.EOF {
			if s.gz != nil {
				return errors.New("empty file (inside gzip)")
			}
			return errors.New("empty file")
		}
		return fmt.Errorf("read: %w", err)
	}
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b && s.gz == nil {
		gz, err := gzip.NewReader(s.br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		// Captures are often concatenations of members; read them as one.
		gz.Multistream(true)
		s.gz = gz
		s.br = bufio.NewReaderSize(gz, readBufSize)
		return s.init()
	}
	if len(b) < 4 {
		return fmt.Errorf("%w: too short (%d bytes)", errNotCapture, len(b))
	}
	switch m := binary.BigEndian.Uint32(b); m {
	case 0xa1b2c3d4:
		s.be = true
	case 0xd4c3b2a1:
	case 0xa1b23c4d:
		s.be, s.nsec = true, true
	case 0x4d3cb2a1:
		s.nsec = true
	case 0x0a0d0d0a:
		s.format = formatPcapng
		return s.ngInit()
	default:
		return fmt.Errorf("%w: unknown magic 0x%08x", errNotCapture, m)
	}
	s.format = formatPcap
	var hdr [24]byte
	if n, err := io.ReadFull(s.br, hdr[:]); err != nil {
		return fmt.Errorf("truncated file header (%d of 24 bytes)", n)
	}
	// The upper bits of the link-type field carry FCS information.
	s.link = int(s.u32(hdr[20:]) & 0xffff)
	return nil
}

// ngInit checks that a pcapng file starts with a readable section header.
func (s *source) ngInit() error {
	h, _ := s.br.Peek(12)
	if len(h) < 12 {
		return fmt.Errorf("truncated section header (%d of 12 bytes)", len(h))
	}
	switch binary.BigEndian.Uint32(h[8:]) {
	case 0x1a2b3c4d, 0x4d3c2b1a:
	default:
		return fmt.Errorf("%w: pcapng magic with bad byte-order magic 0x%x", errNotCapture, h[8:12])
	}
	return nil
}

// next reads the following record into s.cur. io.EOF means a clean end;
// any other error ends the file and is reported as its InputError reason.
func (s *source) next() error {
	if s.format == formatPcapng {
		return s.ngNext()
	}
	hdr, err := s.br.Peek(16)
	if len(hdr) < 16 {
		if len(hdr) == 0 && err == io.EOF {
			return io.EOF
		}
		return s.truncated(err)
	}
	caplen := s.u32(hdr[8:])
	if caplen > maxCaplen {
		return fmt.Errorf("%w: record %d: captured length %d exceeds %d bytes", errMalformed, s.n+1, caplen, maxCaplen)
	}
	sec, frac := int64(s.u32(hdr[0:])), int64(s.u32(hdr[4:]))
	orig := int(s.u32(hdr[12:]))
	if _, err := s.br.Discard(16); err != nil {
		return s.truncated(err)
	}
	data, err := s.br.Peek(int(caplen))
	if len(data) < int(caplen) {
		return s.truncated(err)
	}
	s.br.Discard(int(caplen))
	if !s.nsec {
		frac *= 1000
	}
	s.cur = frame{ts: sec*1e9 + frac, link: s.link, data: data, origLen: orig}
	s.n++
	return nil
}

func (s *source) truncated(err error) error {
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		// A gzip checksum or read error is more telling than "truncated".
		return fmt.Errorf("truncated after packet %d: %w", s.n, err)
	}
	return fmt.Errorf("truncated after packet %d", s.n)
}

const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 1
	blockOPB = 2
	blockSPB = 3
	blockEPB = 6
)

func (s *source) ngNext() error {
	for {
		h, err := s.br.Peek(12)
		if len(h) < 8 {
			if len(h) == 0 && err == io.EOF {
				return io.EOF
			}
			return s.truncated(err)
		}
		btype := binary.LittleEndian.Uint32(h) // SHB type is a palindrome
		if btype == blockSHB {
			if len(h) < 12 {
				return s.truncated(err)
			}
			switch binary.BigEndian.Uint32(h[8:]) {
			case 0x1a2b3c4d:
				s.be = true
			case 0x4d3c2b1a:
				s.be = false
			default:
				return fmt.Errorf("%w: section header after packet %d: bad byte-order magic", errMalformed, s.n)
			}
			s.ifaces = s.ifaces[:0]
		} else {
			btype = s.u32(h)
		}
		blen := s.u32(h[4:])
		if blen < 12 || blen%4 != 0 {
			return fmt.Errorf("%w: block after packet %d: bad block length %d", errMalformed, s.n, blen)
		}
		switch btype {
		case blockEPB, blockOPB, blockSPB:
			if blen > maxCaplen+maxMetaBlock {
				return fmt.Errorf("%w: packet block after packet %d: length %d exceeds %d bytes", errMalformed, s.n, blen, maxCaplen+maxMetaBlock)
			}
		case blockSHB, blockIDB:
			if blen > maxMetaBlock {
				return fmt.Errorf("%w: header block after packet %d: length %d exceeds %d bytes", errMalformed, s.n, blen, maxMetaBlock)
			}
		default:
			// Name resolution, statistics, custom and unknown blocks: skip
			// without buffering them, whatever their size.
			if n, err := s.br.Discard(int(blen)); n < int(blen) {
				return s.truncated(err)
			}
			continue
		}
		b, err := s.br.Peek(int(blen))
		if len(b) < int(blen) {
			return s.truncated(err)
		}
		s.br.Discard(int(blen))
		if s.u32(b[blen-4:]) != blen {
			return fmt.Errorf("%w: block after packet %d: trailing length does not match %d", errMalformed, s.n, blen)
		}
		body := b[8 : blen-4]
		switch btype {
		case blockSHB:
			continue
		case blockIDB:
			if err := s.ngIDB(body); err != nil {
				return err
			}
			continue
		}
		ok, err := s.ngPacket(btype, body)
		if err != nil {
			return err
		}
		if ok {
			s.n++
			return nil
		}
	}
}

func (s *source) ngIDB(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("%w: interface block after packet %d: too short", errMalformed, s.n)
	}
	if len(s.ifaces) >= maxIfaces {
		return fmt.Errorf("%w: more than %d interfaces in one section", errMalformed, maxIfaces)
	}
	ifc := iface{link: int(s.u16(b)), snap: s.u32(b[4:]), unitsPerSec: 1e6}
	for o := b[8:]; len(o) >= 4; {
		code, l := s.u16(o), int(s.u16(o[2:]))
		if code == 0 {
			break
		}
		if 4+l > len(o) {
			return fmt.Errorf("%w: interface %d: option %d overruns its block", errMalformed, len(s.ifaces), code)
		}
		v := o[4 : 4+l]
		switch {
		case code == 9 && l >= 1: // if_tsresol
			r := v[0]
			if r&0x80 != 0 {
				e := r & 0x7f
				if e > 63 {
					return fmt.Errorf("%w: interface %d: timestamp resolution 2^-%d", errMalformed, len(s.ifaces), e)
				}
				ifc.unitsPerSec = 1 << e
			} else {
				if r > 19 {
					return fmt.Errorf("%w: interface %d: timestamp resolution 10^-%d", errMalformed, len(s.ifaces), r)
				}
				ifc.unitsPerSec = 1
				for range r {
					ifc.unitsPerSec *= 10
				}
			}
		case code == 14 && l >= 8: // if_tsoffset
			if s.be {
				ifc.offset = int64(binary.BigEndian.Uint64(v))
			} else {
				ifc.offset = int64(binary.LittleEndian.Uint64(v))
			}
		}
		o = o[4+(l+3)&^3:]
	}
	s.ifaces = append(s.ifaces, ifc)
	return nil
}

// ngPacket fills s.cur from an EPB, SPB or OPB body. A packet naming an
// interface that was never described cannot be decoded: it is skipped and
// the file marked damaged, since the block structure itself is still sound.
func (s *source) ngPacket(btype uint32, b []byte) (bool, error) {
	var (
		ifid          int
		tsHi, tsLo    uint32
		caplen, orig  uint32
		hdrLen        int
		simple        = btype == blockSPB
		needIfaceZero = simple
	)
	switch btype {
	case blockEPB:
		if len(b) < 20 {
			return false, fmt.Errorf("%w: packet block after packet %d: too short", errMalformed, s.n)
		}
		ifid = int(s.u32(b))
		tsHi, tsLo, caplen, orig = s.u32(b[4:]), s.u32(b[8:]), s.u32(b[12:]), s.u32(b[16:])
		hdrLen = 20
	case blockOPB:
		if len(b) < 20 {
			return false, fmt.Errorf("%w: packet block after packet %d: too short", errMalformed, s.n)
		}
		ifid = int(s.u16(b))
		tsHi, tsLo, caplen, orig = s.u32(b[4:]), s.u32(b[8:]), s.u32(b[12:]), s.u32(b[16:])
		hdrLen = 20
	case blockSPB:
		if len(b) < 4 {
			return false, fmt.Errorf("%w: simple packet block after packet %d: too short", errMalformed, s.n)
		}
		orig = s.u32(b)
		caplen = uint32(len(b) - 4)
		caplen = min(caplen, orig)
		hdrLen = 4
	}
	if ifid >= len(s.ifaces) || (needIfaceZero && len(s.ifaces) == 0) {
		s.markDamaged(fmt.Errorf("%w: packet %d: interface %d not described", errMalformed, s.n+1, ifid))
		return false, nil
	}
	ifc := &s.ifaces[ifid]
	if simple && ifc.snap > 0 {
		caplen = min(caplen, ifc.snap)
	}
	if caplen > maxCaplen || int(caplen) > len(b)-hdrLen {
		return false, fmt.Errorf("%w: packet %d: captured length %d exceeds its block", errMalformed, s.n+1, caplen)
	}
	var ts int64
	if !simple {
		ts = ifc.nanos(uint64(tsHi)<<32 | uint64(tsLo))
	} else if s.n > 0 {
		// SPBs carry no time; keep the stream ordered behind the last one.
		ts = s.cur.ts
	}
	s.cur = frame{ts: ts, link: ifc.link, data: b[hdrLen : hdrLen+int(caplen)], origLen: int(orig)}
	return true, nil
}

func (s *source) markDamaged(err error) {
	if s.damage == nil {
		s.damage = err
	}
}

// nanos converts a timestamp in the interface's units to Unix nanoseconds.
// The 128-bit multiply keeps sub-nanosecond resolutions from overflowing.
func (i *iface) nanos(units uint64) int64 {
	sec := units / i.unitsPerSec
	rem := units % i.unitsPerSec
	hi, lo := bits.Mul64(rem, 1e9)
	ns, _ := bits.Div64(hi, lo, i.unitsPerSec)
	return (int64(sec)+i.offset)*1e9 + int64(ns)
}
