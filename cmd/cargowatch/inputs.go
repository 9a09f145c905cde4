package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	cw "github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/flow"
	"github.com/cargowatch/cargowatch/netflow"
	"github.com/cargowatch/cargowatch/pcap"
	"github.com/cargowatch/cargowatch/suricata"
	"github.com/cargowatch/cargowatch/zeek"
)

// sources are the readers for a run's inputs, chosen by content.
type sources struct {
	all      []cw.Source
	capture  *flow.CaptureSource // nil when no input is a capture
	zeek     *zeek.Source        // nil when no input is a Zeek log
	suricata *suricata.Source    // nil when no input is Suricata EVE
	// skipped counts files in input directories that are none of the
	// kinds above (notes, scripts, empty files): passed over quietly.
	skipped int
}

// kind is what a file holds, by its first bytes.
type kind int

const (
	kindOther kind = iota
	kindCapture
	kindZeek
	kindEVE
)

// headLen is how much of a file the sniffers see: the first line of
// nearly every EVE file; Zeek and capture headers need far less.
const headLen = 64 << 10

// openSources picks a reader for each input by what it holds, not by its
// name. A file is a capture (pcap, pcapng, gzip'd or not), Zeek logs or
// Suricata EVE; a named file that is none of these goes to the capture
// reader, which says why it is not a capture. Directories are walked:
// files that are none of them are skipped, and a directory with nothing
// usable is an input error. Zeek logs go to one zeek.Source as their
// directories, so it can join conn with dns, ssl, http and files logs by
// uid across a rotation period.
func openSources(inputs []string, pl *pipeline) *sources {
	s := &sources{}
	var capture, zeeks, eves []string
	var errs []error
	seen := map[string]bool{}
	zeekDirs := map[string]bool{}
	addZeek := func(path string, inDir bool) {
		// By directory when the file is named the way Zeek names its
		// logs, so its period's siblings come along; else by itself.
		if inDir && zeek.LogPath(path) != "" {
			d := filepath.Dir(path)
			if !zeekDirs[d] {
				zeekDirs[d] = true
				zeeks = append(zeeks, d)
			}
			return
		}
		zeeks = append(zeeks, path)
	}
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil || !fi.IsDir() {
			// Missing, unreadable or special files: the capture reader
			// reports them as it always has.
			if err == nil && fi.Mode().IsRegular() {
				if abs, _ := filepath.Abs(in); seen[abs] {
					continue
				} else {
					seen[abs] = true
				}
				switch sniffFile(in) {
				case kindZeek:
					addZeek(in, false)
					continue
				case kindEVE:
					eves = append(eves, in)
					continue
				}
			}
			capture = append(capture, in)
			continue
		}
		found := 0
		werr := filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == in {
					return err
				}
				errs = append(errs, &cw.InputError{Input: path, Err: pathReason(err)})
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			if abs, _ := filepath.Abs(path); seen[abs] {
				return nil
			} else {
				seen[abs] = true
			}
			switch sniffFile(path) {
			case kindCapture:
				capture = append(capture, path)
			case kindZeek:
				addZeek(path, true)
			case kindEVE:
				eves = append(eves, path)
			default:
				s.skipped++
				pl.log.Debug("skipping a file that is no capture, Zeek log or Suricata EVE", "path", path)
				return nil
			}
			found++
			return nil
		})
		switch {
		case werr != nil:
			errs = append(errs, &cw.InputError{Input: in, Err: pathReason(werr)})
		case found == 0:
			errs = append(errs, &cw.InputError{Input: in, Err: errors.New("no capture files in directory (nor Zeek logs or Suricata EVE)")})
		}
	}
	if len(capture) > 0 {
		s.capture = flow.NewCaptureSource(capture, pl.flow, pcap.Options{})
		// A capture of flow-export traffic holds flows of its own: decode
		// them too (docs/SOURCES.md).
		s.capture.DecodeExports(netflow.NewDecoder(netflow.Config{}))
		s.all = append(s.all, s.capture)
	}
	if len(zeeks) > 0 {
		s.zeek = zeek.NewSource(zeeks, zeek.Options{Logger: pl.log})
		s.all = append(s.all, s.zeek)
	}
	if len(eves) > 0 {
		s.suricata = suricata.NewSource(eves, suricata.Options{Log: pl.log})
		s.all = append(s.all, s.suricata)
	}
	if len(errs) > 0 {
		s.all = append(s.all, failed(errs))
	}
	if s.skipped > 0 {
		pl.log.Info("files in input directories that are no capture, Zeek log or Suricata EVE were skipped", "files", s.skipped)
	}
	return s
}

// sniffFile says what path holds from its first bytes, decompressing
// gzip. A gzip file that cannot be opened is given to the capture reader,
// which reports the damage.
func sniffFile(path string) kind {
	f, err := os.Open(path)
	if err != nil {
		return kindCapture // the capture reader names the reason
	}
	defer f.Close()
	head := make([]byte, headLen)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if n == 0 {
		return kindOther
	}
	plain := head
	if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return kindCapture
		}
		plain, _ = io.ReadAll(io.LimitReader(zr, 8))
		if len(plain) == 0 {
			return kindOther
		}
	}
	if isCaptureMagic(plain) {
		return kindCapture
	}
	// Sniffers take the raw head: they decompress what they need.
	switch {
	case suricata.Sniff(head):
		return kindEVE
	case zeek.Sniff(head):
		return kindZeek
	}
	return kindOther
}

// isCaptureMagic recognises the pcap (µs and ns, both byte orders) and
// pcapng magic numbers, as package pcap reads them.
func isCaptureMagic(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch binary.BigEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a:
		return true
	}
	return false
}

// pathReason strips the path that os errors repeat, since InputError
// already names the input.
func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// failed is a Source that yields nothing and reports the inputs that the
// dispatcher could not use, so they reach the run's input errors with
// the sources' own.
type failed []error

func (f failed) Name() string { return "inputs" }

func (f failed) Run(ctx context.Context, emit func(*cw.Conn)) error { return errors.Join(f...) }

// Progress reports bytes read of the inputs, for the progress bar.
func (s *sources) Progress() (read, total int64) {
	add := func(r, t int64) { read, total = read+r, total+t }
	if s.capture != nil {
		add(s.capture.Progress())
	}
	if s.zeek != nil {
		add(s.zeek.Progress())
	}
	if s.suricata != nil {
		add(s.suricata.Progress())
	}
	return read, total
}

// stats is what the run record keeps of the sources.
func (s *sources) stats() map[string]any {
	m := map[string]any{}
	if s.capture != nil {
		m["pcap"] = s.capture.Stats()
	}
	if s.zeek != nil {
		m["zeek"] = s.zeek.Stats()
	}
	if s.suricata != nil {
		m["suricata"] = s.suricata.Stats()
	}
	if s.skipped > 0 {
		m["skipped_files"] = s.skipped
	}
	return m
}
