// Package pcap reads pcap and pcapng captures (plain or gzip-compressed)
// and decodes them into IP packets for the flow table: link layers, VLAN,
// MPLS and PPPoE, tunnels (GRE, ERSPAN, VXLAN, Geneve, Teredo, IP-in-IP)
// and IP fragment reassembly. PROFINET frames (EtherType 0x8892), which
// carry no IP, are returned as well, marked by Packet.EtherType. Several
// captures are merged into one time-ordered stream.
package pcap

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cargowatch/cargowatch"
	"github.com/cargowatch/cargowatch/internal/minheap"
)

// Options bound the reader's memory; zero values mean defaults.
type Options struct {
	// MaxFragments is how many IP datagrams may be under reassembly at once
	// (default 1024: with MaxFragmentBytes a worst case of 64 MiB).
	MaxFragments int
	// MaxFragmentBytes bounds the payload of one reassembled datagram
	// (default 65535 plus slack for IPv4 offsets, 65536+8).
	MaxFragmentBytes int
	// FragmentTimeout is how long, in capture time, a datagram may wait for
	// its missing fragments (default 30s).
	FragmentTimeout time.Duration
}

const (
	defaultMaxFragments     = 1024
	defaultMaxFragmentBytes = 65536 + 8
	defaultFragmentTimeout  = 30 * time.Second
)

// Stats counts what the reader saw. Every frame read is counted once in
// Packets and, unless it was an IP fragment, in exactly one of IP, L2,
// NonIP, Truncated, Malformed and UnknownLink.
type Stats struct {
	Files   int64 // capture files opened
	Skipped int64 // files in input directories that were not captures
	Packets int64 // link-layer frames read
	Bytes   int64 // captured bytes of those frames

	IP          int64 // IP packets returned (reassembled datagrams count once)
	L2          int64 // layer-2 frames returned (PROFINET, Packet.EtherType set)
	NonIP       int64 // ARP, LLDP, STP, encrypted 802.11, ...
	Truncated   int64 // headers cut short by the snap length
	Malformed   int64 // header fields that contradict each other
	UnknownLink int64 // frames of link types this reader does not decode

	Fragments           int64 // IP fragments seen
	Reassembled         int64 // datagrams completed from fragments
	FragmentsDropped    int64 // fragments that never became part of a returned packet
	FragmentTimeouts    int64 // datagrams abandoned after FragmentTimeout
	FragmentsOverflow   int64 // fragments refused because MaxFragments datagrams were pending
	FragmentsOversize   int64 // fragments beyond MaxFragmentBytes
	FragmentsIncomplete int64 // datagrams still incomplete at the end of the input

	Decapsulated int64 // returned packets that came out of a tunnel
}

// Reader merges the packets of several captures by timestamp.
type Reader struct {
	heap *minheap.Heap[*source]

	// read and total are the bytes read from the capture files and their
	// size on disk: progress, safe to read from another goroutine.
	read, total atomic.Int64
	last        *source // the source whose frame was handed out last
	errs        []error
	stats       Stats
	dec         decoder
	pkt         Packet
	done        bool
}

// NewReader opens every input: files, or directories searched recursively
// for captures. It never fails; inputs that cannot be used become errors
// in Errors and the others are read.
func NewReader(inputs []string, opts Options) *Reader {
	r := newReader(opts)
	seen := make(map[string]bool)
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			r.inputError(in, pathReason(err))
			continue
		}
		if !fi.IsDir() {
			if abs, _ := filepath.Abs(in); seen[abs] {
				continue
			} else {
				seen[abs] = true
			}
			if s, err := openSource(in, &r.read); err != nil {
				r.inputError(in, err)
			} else {
				r.start(s)
			}
			continue
		}
		r.openDir(in, seen)
	}
	return r
}

func newReader(opts Options) *Reader {
	if opts.MaxFragments <= 0 {
		opts.MaxFragments = defaultMaxFragments
	}
	if opts.MaxFragmentBytes <= 0 {
		opts.MaxFragmentBytes = defaultMaxFragmentBytes
	}
	if opts.FragmentTimeout <= 0 {
		opts.FragmentTimeout = defaultFragmentTimeout
	}
	r := &Reader{heap: minheap.New(sourceLess)}
	r.dec.frag = newReassembler(opts, &r.stats)
	return r
}

func (r *Reader) openDir(dir string, seen map[string]bool) {
	found := 0
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			r.inputError(path, pathReason(err))
			return nil
		}
		if de.IsDir() {
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
		s, err := openSource(path, &r.read)
		switch {
		case err == nil:
			found++
			r.start(s)
		case errors.Is(err, errNotCapture) || isEmpty(err):
			// Logs and notes live beside captures; they are not errors.
			r.stats.Skipped++
			slog.Debug("pcap: skipping non-capture", "path", path, "reason", err)
		default:
			found++
			r.inputError(path, err)
		}
		return nil
	})
	if err != nil {
		r.inputError(dir, pathReason(err))
		return
	}
	if found == 0 {
		r.inputError(dir, errors.New("no capture files in directory"))
	}
}

func isEmpty(err error) bool {
	s := err.Error()
	return len(s) >= 10 && s[:10] == "empty file"
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

func (r *Reader) inputError(in string, err error) {
	r.errs = append(r.errs, &cargowatch.InputError{Input: in, Err: err})
}

// start reads the first frame of a freshly opened source and queues it.
func (r *Reader) start(s *source) {
	r.stats.Files++
	r.total.Add(s.size)
	s.idx = int(r.stats.Files)
	if err := s.next(); err != nil {
		r.finish(s, err)
		return
	}
	r.heap.Push(s)
}

// finish closes a source that has no more frames, reporting why if the
// end was not clean.
func (r *Reader) finish(s *source, err error) {
	if errors.Is(err, errMalformed) {
		r.stats.Malformed++
	}
	switch {
	case err != nil && err != io.EOF:
		r.inputError(s.path, err)
	case s.damage != nil:
		r.inputError(s.path, s.damage)
	}
	if cerr := s.close(); cerr != nil {
		slog.Warn("pcap: close", "path", s.path, "err", cerr)
	}
}

// Next returns the next IP packet (or layer-2 frame the flow table wants,
// see Packet.EtherType) in timestamp order, or io.EOF after the last one.
// The returned Packet and its Payload belong to the Reader and are valid
// only until the following call to Next: copy what you keep.
// Problems with the inputs never stop the stream; see Errors and Stats.
func (r *Reader) Next() (*Packet, error) {
	for {
		r.dec.frag.release()
		if s := r.last; s != nil {
			r.last = nil
			if err := s.next(); err != nil {
				r.heap.Pop()
				r.finish(s, err)
			} else {
				r.heap.FixTop()
			}
		}
		if r.heap.Len() == 0 {
			if !r.done {
				r.done = true
				r.dec.frag.flush()
			}
			return nil, io.EOF
		}
		s := r.heap.Top()
		r.last = s
		f := &s.cur
		r.stats.Packets++
		r.stats.Bytes += int64(len(f.data))
		switch v := r.dec.decode(&r.pkt, f.link, f.ts, f.data); v {
		case vIP, vL2:
			if v == vIP {
				r.stats.IP++
			} else {
				r.stats.L2++
			}
			if r.pkt.Tunnel != "" {
				r.stats.Decapsulated++
			}
			r.pkt.TS = time.Unix(0, f.ts)
			r.pkt.Input = s.path
			return &r.pkt, nil
		case vNonIP:
			r.stats.NonIP++
		case vTruncated:
			r.stats.Truncated++
		case vMalformed:
			r.stats.Malformed++
		case vUnknownLink:
			r.stats.UnknownLink++
		}
	}
}

// Errors returns one *cargowatch.InputError per input that could not be
// used or was found damaged. Damage found while reading (a truncated file)
// is only known once Next has reached it; call Errors after io.EOF.
func (r *Reader) Errors() []error { return r.errs }

// Progress returns the bytes read from the capture files so far and their
// total size. Unlike the other methods it may be called from any goroutine.
func (r *Reader) Progress() (read, total int64) { return r.read.Load(), r.total.Load() }

// Stats returns the counters so far.
func (r *Reader) Stats() Stats { return r.stats }

// Close releases every file still open.
func (r *Reader) Close() error {
	var errs []error
	for _, s := range r.heap.Items() {
		if err := s.close(); err != nil {
			errs = append(errs, fmt.Errorf("pcap: %s: %w", s.path, err))
		}
	}
	r.heap.Reset()
	r.last = nil
	return errors.Join(errs...)
}

// The heap orders sources by the timestamp of their pending frame, ties
// broken by input order so that a merge is deterministic.

func sourceLess(a, b *source) bool {
	if a.cur.ts != b.cur.ts {
		return a.cur.ts < b.cur.ts
	}
	return a.idx < b.idx
}
