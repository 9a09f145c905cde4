package zeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
)

// maxWarnPerFile is how many malformed lines of one file are logged one
// by one; the rest are counted and summed up once.
const maxWarnPerFile = 5

// DefaultMaxLine is the longest line read; longer ones are skipped as
// malformed, so one runaway line cannot take the memory.
const DefaultMaxLine = 1 << 20

// lineReader returns lines without their newline, bounded in length.
type lineReader struct {
	br      *bufio.Reader
	long    []byte
	maxLine int
	err     error // the read error met while skipping a long line
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10), maxLine: maxLine}
}

var errLineTooLong = errors.New("line too long")

// next returns the next line without its newline (valid until the
// following call). At the end of input it returns the last unterminated
// line, if any, with the read error (io.EOF at a clean end). A line over
// maxLine is skipped and reported as errLineTooLong.
func (lr *lineReader) next() (line []byte, err error) {
	b, err := lr.br.ReadSlice('\n')
	if err == nil {
		return trimEOL(b), nil
	}
	if err != bufio.ErrBufferFull {
		return b, err
	}
	lr.long = append(lr.long[:0], b...)
	for {
		b, err = lr.br.ReadSlice('\n')
		if len(lr.long)+len(b) > lr.maxLine {
			for err == bufio.ErrBufferFull {
				_, err = lr.br.ReadSlice('\n')
			}
			if err != nil {
				lr.err = err
			}
			return nil, errLineTooLong
		}
		lr.long = append(lr.long, b...)
		if err == nil {
			return trimEOL(lr.long), nil
		}
		if err != bufio.ErrBufferFull {
			return lr.long, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// countingReader counts the bytes read from the file itself (compressed
// bytes for .gz), for progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openLog opens a log, decompressing it when it starts with gzip's magic
// (whatever its name).
func openLog(path string, counter *atomic.Int64) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = f
	if counter != nil {
		r = countingReader{r: f, n: counter}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, f.Close, nil
	}
	return br, f.Close, nil
}

// parser reads the lines of one log: header state, malformed-line
// counting and the rate-limited warnings. It is shared by Source (whole
// files) and Follower (appended bytes).
type parser struct {
	name      string
	hdr       header
	rec       record
	line      int64
	malformed int64
	firstBad  string
	log       *slog.Logger
}

func newParser(name string, log *slog.Logger) *parser {
	return &parser{name: name, hdr: newHeader(), log: log}
}

// parse reads one line; it returns the record for a data line, nil for
// header, comment and blank lines, or the reason the line is malformed.
func (p *parser) parse(b []byte) (*record, error) {
	p.line++
	if len(b) == 0 {
		return nil, nil
	}
	switch c := b[0]; {
	case c == '#':
		return nil, p.hdr.headerLine(b)
	case c == '{':
		if err := parseJSON(b, &p.rec); err != nil {
			return nil, err
		}
		return &p.rec, nil
	case c == ' ' || c == '\t':
		// Tolerated before a header line (one Slips file starts with a tab).
		if t := bytes.TrimLeft(b, " \t"); len(t) > 0 && t[0] == '#' {
			return nil, p.hdr.headerLine(t)
		}
	}
	if !p.hdr.ready() && p.hdr.plainTSVHeader(b) {
		return nil, nil
	}
	if err := p.hdr.parseTSV(b, &p.rec); err != nil {
		return nil, err
	}
	return &p.rec, nil
}

// bad counts a malformed line and logs the first few of the file.
func (p *parser) bad(err error) {
	p.malformed++
	if p.malformed == 1 {
		p.firstBad = fmt.Sprintf("line %d: %v", p.line, err)
	}
	if p.malformed <= maxWarnPerFile && p.log != nil {
		p.log.Warn("zeek: malformed line skipped", "file", p.name, "line", p.line, "err", err)
	}
}

// summary logs the count past the first few and returns the file's error
// for InputError, nil when every line was read.
func (p *parser) summary() error {
	if p.malformed == 0 {
		return nil
	}
	if p.malformed > maxWarnPerFile && p.log != nil {
		p.log.Warn("zeek: more malformed lines skipped", "file", p.name, "count", p.malformed-maxWarnPerFile)
	}
	return fmt.Errorf("%d malformed line(s) skipped of %d, first at %s", p.malformed, p.line, p.firstBad)
}
