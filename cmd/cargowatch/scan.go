package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/dlp"
)

const scanUsage = `usage: cargowatch scan [flags] PATH...

Finds cargo data (container numbers, air waybills, IMO numbers, SSCCs,
ULDs, UN/LOCODEs, tariff codes, EORI numbers) and cargo messages (EDIFACT,
X12, Cargo-IMP, Cargo-XML, DCSA/ONE Record JSON) in files, directories
(recursively), gzip and zip archives, and standard input ("-").
Values are masked unless --reveal is given.

flags:
`

// scanOpts are the scan subcommand's flags.
type scanOpts struct {
	format        string
	reveal        bool
	minConf       int
	binary        bool
	maxDecomp     int64
	stats         bool
	noMessages    bool
	stdout        *bufio.Writer
	table         *tabwriter.Writer
	msgs          []msgRow
	bytes, files  int64
	hits          int64
	skippedBinary int64
	tableRows     int
	// readers[depth] is reused for every file or archive entry read at
	// that depth: a zip of 100k small entries would otherwise allocate a
	// 256 KiB buffer per entry.
	readers [maxDepth + 2]*bufio.Reader
}

type hitRow struct {
	Path        string `json:"path"`
	Offset      int64  `json:"offset"`
	Type        string `json:"type"`
	Value       string `json:"value"`
	CheckDigit  string `json:"check_digit"`
	Confidence  string `json:"confidence"`
	MessageType string `json:"message_type"`
}

type msgRow struct {
	Path        string         `json:"path"`
	Offset      int64          `json:"offset"`
	Type        string         `json:"type"` // always "message"
	MessageType string         `json:"message_type"`
	Version     string         `json:"version,omitempty"`
	Length      int64          `json:"length"`
	Cargo       bool           `json:"cargo"`
	Counts      map[string]int `json:"counts"`
}

// cmdScan runs `cargowatch scan`. It returns the exit status: 0 when the
// run completed, 2 for bad arguments or when any input could not be read
// (the others are still scanned).
func cmdScan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := newFlagSet("scan", "PATH...", stderr)
	fl.Usage = func() { fmt.Fprint(fl.Output(), scanUsage); fl.PrintDefaults() }
	var o scanOpts
	var minConf string
	fl.StringVar(&o.format, "format", "table", "output format: table or jsonl")
	fl.BoolVar(&o.reveal, "reveal", false, "print identifiers in full instead of masked")
	fl.StringVar(&minConf, "min-confidence", "low", "report hits at or above: low, medium or high")
	fl.BoolVar(&o.binary, "binary", false, "also scan files that look binary (NUL bytes in the first 8 KiB)")
	fl.Int64Var(&o.maxDecomp, "max-decompressed", 1<<30, "bytes decoded at most from one gzip stream or zip entry")
	fl.BoolVar(&o.stats, "stats", false, "print bytes, files, hits and throughput on stderr at the end")
	fl.BoolVar(&o.noMessages, "no-messages", false, "do not report classified messages, only identifiers")
	if code, done := parse(fl, args, stdout); done {
		return code
	}
	if o.format != "table" && o.format != "jsonl" {
		fmt.Fprintf(stderr, "cargowatch scan: --format %q: want table or jsonl\n", o.format)
		return exitUsage
	}
	if o.minConf = dlp.ConfidenceRank(minConf); o.minConf == 0 {
		fmt.Fprintf(stderr, "cargowatch scan: --min-confidence %q: want low, medium or high\n", minConf)
		return exitUsage
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "cargowatch scan: no PATH given (use - for standard input)")
		fl.Usage()
		return exitUsage
	}
	o.stdout = bufio.NewWriterSize(stdout, 64<<10)
	if o.format == "table" {
		o.table = tabwriter.NewWriter(o.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(o.table, "PATH\tOFFSET\tTYPE\tVALUE\tCHECK\tCONFIDENCE\tMESSAGE")
	}
	start := time.Now()
	failed := false
	report := func(err error) {
		failed = true
		fmt.Fprintf(stderr, "cargowatch scan: %v\n", err)
	}
	for _, p := range fl.Args() {
		if p == "-" {
			if err := o.scanReader("-", stdin, 0); err != nil {
				report(err)
			}
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			report(&cw.InputError{Input: p, Err: unwrapPath(err)})
			continue
		}
		if !fi.IsDir() {
			if err := o.scanFile(p); err != nil {
				report(err)
			}
			continue
		}
		werr := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				report(&cw.InputError{Input: path, Err: unwrapPath(err)})
				return nil
			}
			if d.Type().IsRegular() {
				if err := o.scanFile(path); err != nil {
					report(err)
				}
			}
			return nil
		})
		if werr != nil {
			report(&cw.InputError{Input: p, Err: werr})
		}
	}
	if o.table != nil {
		o.table.Flush()
		if len(o.msgs) > 0 && !o.noMessages {
			fmt.Fprintln(o.stdout)
			tw := tabwriter.NewWriter(o.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "PATH\tOFFSET\tMESSAGE\tVERSION\tCARGO\tIDENTIFIERS")
			for _, m := range o.msgs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%v\t%s\n", m.Path, m.Offset, m.MessageType, m.Version, m.Cargo, countsString(m.Counts))
			}
			tw.Flush()
		}
	}
	if err := o.stdout.Flush(); err != nil {
		fmt.Fprintf(stderr, "cargowatch scan: writing output: %v\n", err)
		return exitFail
	}
	if o.stats {
		el := time.Since(start).Seconds()
		fmt.Fprintf(stderr, "scanned %d files, %d bytes in %.3fs (%.1f MB/s), %d hits, %d binary files skipped\n",
			o.files, o.bytes, el, float64(o.bytes)/1e6/max(el, 1e-9), o.hits, o.skippedBinary)
	}
	if failed {
		return exitUsage
	}
	return exitOK
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func countsString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s=%d", k, m[k])
	}
	return sb.String()
}

func (o *scanOpts) scanFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &cw.InputError{Input: path, Err: unwrapPath(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &cw.InputError{Input: path, Err: unwrapPath(err)}
	}
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if n == 4 && string(magic[:]) == "PK\x03\x04" {
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			return &cw.InputError{Input: path, Err: err}
		}
		return o.scanZip(path, zr, 0)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return &cw.InputError{Input: path, Err: err}
	}
	return o.scanReader(path, f, 0)
}

// maxDepth bounds archives inside archives.
const maxDepth = 3

func (o *scanOpts) scanZip(path string, zr *zip.Reader, depth int) error {
	var errs []error
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		name := path + "!" + zf.Name
		rc, err := zf.Open()
		if err != nil {
			errs = append(errs, &cw.InputError{Input: name, Err: err})
			continue
		}
		// Entries are decompressed like gzip streams: --max-decompressed
		// bounds each one.
		err = o.scanReader(name, &limited{r: rc, n: o.maxDecomp}, depth+1)
		rc.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scanReader scans r, decoding gzip and zip by their magic numbers.
func (o *scanOpts) scanReader(name string, r io.Reader, depth int) error {
	br := o.readers[depth]
	if br == nil {
		br = bufio.NewReaderSize(r, 256<<10)
		o.readers[depth] = br
	} else {
		br.Reset(r)
	}
	head, _ := br.Peek(8 << 10)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		if depth >= maxDepth {
			return &cw.InputError{Input: name, Err: errors.New("archives nested too deep")}
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return &cw.InputError{Input: name, Err: fmt.Errorf("gzip: %w", err)}
		}
		defer zr.Close()
		return o.scanReader(name, &limited{r: zr, n: o.maxDecomp}, depth+1)
	case len(head) >= 4 && string(head[:4]) == "PK\x03\x04":
		if depth >= maxDepth {
			return &cw.InputError{Input: name, Err: errors.New("archives nested too deep")}
		}
		// A zip inside a stream needs random access: hold it in memory, bounded.
		b, err := io.ReadAll(io.LimitReader(br, 256<<20+1))
		if err != nil {
			return &cw.InputError{Input: name, Err: err}
		}
		if len(b) > 256<<20 {
			return &cw.InputError{Input: name, Err: errors.New("zip inside an archive or stream larger than 256 MiB: not scanned")}
		}
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return &cw.InputError{Input: name, Err: err}
		}
		return o.scanZip(name, zr, depth)
	case !o.binary && bytes.IndexByte(head, 0) >= 0:
		o.skippedBinary++
		return nil
	}
	o.files++
	s := dlp.NewScanner(dlp.Options{
		OnHit:     func(h cw.Hit) { o.hit(name, h) },
		OnMessage: func(m dlp.Message) { o.message(name, m) },
	})
	n, err := s.ReadFrom(br)
	s.Close()
	o.bytes += n
	if err != nil {
		return &cw.InputError{Input: name, Err: fmt.Errorf("after %d bytes: %w", n, err)}
	}
	return nil
}

// limited stops a decoder at n bytes with an error, so that a zip bomb is
// reported rather than scanned forever.
type limited struct {
	r io.Reader
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("decompressed size over --max-decompressed: rest not scanned")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (o *scanOpts) hit(name string, h cw.Hit) {
	if dlp.ConfidenceRank(h.Confidence) < o.minConf {
		return
	}
	o.hits++
	v := h.Value
	if !o.reveal {
		v = dlp.Mask(h.Type, v)
	}
	if o.table != nil {
		mt := h.MessageType
		if mt == "" {
			mt = "-"
		}
		fmt.Fprintf(o.table, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", name, h.Offset, h.Type, v, h.CheckDigit, h.Confidence, mt)
		// A tabwriter holds every row until it flushes: flush in chunks so
		// a file with millions of hits streams (columns may shift between
		// chunks; --format jsonl is the form for volume).
		if o.tableRows++; o.tableRows%4096 == 0 {
			o.table.Flush()
		}
		return
	}
	b, _ := json.Marshal(hitRow{Path: name, Offset: h.Offset, Type: h.Type, Value: v,
		CheckDigit: h.CheckDigit, Confidence: h.Confidence, MessageType: h.MessageType})
	o.stdout.Write(b)
	o.stdout.WriteByte('\n')
}

func (o *scanOpts) message(name string, m dlp.Message) {
	if o.noMessages {
		return
	}
	if m.Counts == nil {
		m.Counts = map[string]int{}
	}
	row := msgRow{Path: name, Offset: m.Offset, Type: "message", MessageType: m.Type, Version: m.Version,
		Length: m.Length, Cargo: m.Cargo, Counts: m.Counts}
	if o.table != nil {
		if len(o.msgs) < 100000 {
			o.msgs = append(o.msgs, row)
		}
		return
	}
	b, _ := json.Marshal(row)
	o.stdout.Write(b)
	o.stdout.WriteByte('\n')
}
