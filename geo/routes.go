package geo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// jurisdiction_prefixes.gz maps the ASNs of jurisdictions.yaml to the
// prefixes they announce, so the table matches by address when the user has
// no ASN database. It is written by `go generate` (gen.go); its header names
// the dataset and version it came from.
//
//go:embed jurisdiction_prefixes.gz
var routesGz []byte

// routes is an address → origin ASN table over sorted, non-overlapping ranges.
type routes struct {
	v4     []route4
	v6     []route6
	header []string          // comment lines of the file: provenance
	orgs   map[uint32]string // the dataset's name of each AS, when the file gives it
}

// org is the dataset's name of an AS, "" when unknown.
func (rt *routes) org(asn uint32) string {
	if rt == nil {
		return ""
	}
	return rt.orgs[asn]
}

type route4 struct{ lo, hi, asn uint32 }

type route6 struct {
	lo, hi u128
	asn    uint32
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func addrU128(a netip.Addr) u128 {
	b := a.As16()
	var x u128
	for i := 0; i < 8; i++ {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

var (
	builtinRoutesOnce sync.Once
	builtinRoutes     *routes
	builtinRoutesErr  error
)

// loadBuiltinRoutes parses the embedded file once, on first use, so
// programs that never enrich do not pay for it.
func loadBuiltinRoutes() (*routes, error) {
	builtinRoutesOnce.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(routesGz))
		if err != nil {
			builtinRoutesErr = fmt.Errorf("jurisdiction_prefixes.gz: %w", err)
			return
		}
		builtinRoutes, builtinRoutesErr = parseRoutes(zr)
		if builtinRoutesErr != nil {
			builtinRoutesErr = fmt.Errorf("jurisdiction_prefixes.gz: %w", builtinRoutesErr)
		}
	})
	return builtinRoutes, builtinRoutesErr
}

// maxRoutes bounds what parseRoutes accepts.
const maxRoutes = 1 << 21

// parseRoutes reads the text layout gen.go writes: "#" comment lines, an
// "AS<number> [organisation]" line, then that AS's prefixes one per line.
func parseRoutes(r io.Reader) (*routes, error) {
	rt := &routes{}
	sc := bufio.NewScanner(r)
	var asn uint32
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "#"):
			if len(rt.header) < 32 {
				rt.header = append(rt.header, strings.TrimSpace(strings.TrimPrefix(s, "#")))
			}
			continue
		case strings.HasPrefix(s, "AS"):
			// "AS<number>" or "AS<number> <organisation name>".
			num, name, _ := strings.Cut(s[2:], " ")
			n, err := strconv.ParseUint(num, 10, 32)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("line %d: bad AS line %q", line, s)
			}
			asn = uint32(n)
			if name = strings.TrimSpace(name); name != "" {
				if rt.orgs == nil {
					rt.orgs = map[uint32]string{}
				}
				if len(rt.orgs) < maxRoutes {
					rt.orgs[asn] = name
				}
			}
			continue
		}
		if asn == 0 {
			return nil, fmt.Errorf("line %d: prefix before any AS line", line)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rt.v4)+len(rt.v6) >= maxRoutes {
			return nil, fmt.Errorf("line %d: more than %d prefixes", line, maxRoutes)
		}
		p = p.Masked()
		if p.Addr().Is4() {
			lo := v4int(p.Addr())
			hi := lo
			if p.Bits() < 32 {
				hi = lo | ^uint32(0)>>p.Bits()
			}
			rt.v4 = append(rt.v4, route4{lo, hi, asn})
		} else {
			lo := addrU128(p.Addr())
			hi := lo
			if b := p.Bits(); b < 64 {
				hi.hi |= ^uint64(0) >> b
				hi.lo = ^uint64(0)
			} else if b < 128 {
				hi.lo |= ^uint64(0) >> (b - 64)
			}
			rt.v6 = append(rt.v6, route6{lo, hi, asn})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if err := rt.finish(); err != nil {
		return nil, err
	}
	return rt, nil
}

// finish sorts the ranges and rejects overlaps, which would make a lookup
// ambiguous.
func (rt *routes) finish() error {
	slices.SortFunc(rt.v4, func(a, b route4) int {
		if a.lo < b.lo {
			return -1
		} else if a.lo > b.lo {
			return 1
		}
		return 0
	})
	for i := 1; i < len(rt.v4); i++ {
		if rt.v4[i].lo <= rt.v4[i-1].hi {
			return fmt.Errorf("overlapping prefixes at %s (AS%d and AS%d)", v4addr(rt.v4[i].lo), rt.v4[i-1].asn, rt.v4[i].asn)
		}
	}
	slices.SortFunc(rt.v6, func(a, b route6) int {
		if a.lo.less(b.lo) {
			return -1
		} else if b.lo.less(a.lo) {
			return 1
		}
		return 0
	})
	for i := 1; i < len(rt.v6); i++ {
		if !rt.v6[i-1].hi.less(rt.v6[i].lo) {
			return fmt.Errorf("overlapping IPv6 prefixes (AS%d and AS%d)", rt.v6[i-1].asn, rt.v6[i].asn)
		}
	}
	return nil
}

// lookup returns the origin ASN of a, 0 when none is known.
func (rt *routes) lookup(a netip.Addr) uint32 {
	if rt == nil {
		return 0
	}
	if a.Is4() || a.Is4In6() {
		n := v4int(a.Unmap())
		i, j := 0, len(rt.v4)
		for i < j {
			h := int(uint(i+j) >> 1)
			if rt.v4[h].lo <= n {
				i = h + 1
			} else {
				j = h
			}
		}
		if i > 0 && n <= rt.v4[i-1].hi {
			return rt.v4[i-1].asn
		}
		return 0
	}
	x := addrU128(a)
	i, j := 0, len(rt.v6)
	for i < j {
		h := int(uint(i+j) >> 1)
		if !x.less(rt.v6[h].lo) {
			i = h + 1
		} else {
			j = h
		}
	}
	if i > 0 && !rt.v6[i-1].hi.less(x) {
		return rt.v6[i-1].asn
	}
	return 0
}
