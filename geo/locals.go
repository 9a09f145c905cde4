package geo

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Locals is the set of address ranges that belong to the monitored network.
// The zero value holds nothing; DefaultLocals holds the private, shared and
// link-local ranges. Locals is not safe for concurrent mutation; the
// Enricher serialises its own copy.
type Locals struct {
	// IPv4 ranges are kept as sorted, merged [lo,hi] pairs so a lookup is a
	// binary search over a handful of integers: a few ns, no allocation.
	v4 []rng4
	v6 []netip.Prefix
	// first[o] says what the ranges hold of o.0.0.0/8, so most addresses
	// are decided by one array load.
	first [256]uint8
}

const (
	octetNone = iota
	octetAll
	octetSome
)

type rng4 struct{ lo, hi uint32 }

// defaultLocalPrefixes are local by default: RFC 1918, RFC 6598 (CGNAT
// shared space), loopback, link-local, RFC 4193 unique-local.
var defaultLocalPrefixes = []string{
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
	"100.64.0.0/10",  // RFC 6598
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local
	"::1/128",        // loopback
	"fe80::/10",      // link-local
	"fc00::/7",       // RFC 4193
}

// DefaultLocals returns a fresh set holding the default local ranges.
func DefaultLocals() *Locals {
	l := &Locals{}
	for _, s := range defaultLocalPrefixes {
		l.Add(netip.MustParsePrefix(s))
	}
	return l
}

// ParseCIDRs reads a comma-separated list of prefixes or bare addresses
// (as given to --local) into a new set that does not include the defaults.
// The error names the offending entry.
func ParseCIDRs(s string) (*Locals, error) {
	l := &Locals{}
	if err := l.AddCIDRs(s); err != nil {
		return nil, err
	}
	return l, nil
}

// AddCIDRs adds a comma-separated list of prefixes or bare addresses.
// Nothing is added when any entry is bad.
func (l *Locals) AddCIDRs(s string) error {
	var ps []netip.Prefix
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return fmt.Errorf("local networks: entry %d %q: %w", i+1, f, err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		l.Add(p)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR prefix (want e.g. 10.0.0.0/8): %w", err)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zones are not allowed in prefixes")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR prefix: %w", err)
	}
	a = a.WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Add puts a prefix into the set. IPv4-mapped IPv6 prefixes count as IPv4.
func (l *Locals) Add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	p = p.Masked()
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		a = p.Addr()
	}
	if a.Is4() {
		lo := v4int(a)
		hi := lo | (^uint32(0) >> p.Bits())
		if p.Bits() == 0 {
			hi = ^uint32(0)
		}
		l.v4 = mergeRanges4(append(l.v4, rng4{lo, hi}))
		l.index()
		return
	}
	for _, q := range l.v6 {
		if q.Bits() <= p.Bits() && q.Contains(a) {
			return
		}
	}
	l.v6 = append(l.v6, p)
}

// Merge adds every range of o to l.
func (l *Locals) Merge(o *Locals) {
	if o == nil {
		return
	}
	l.v4 = mergeRanges4(append(l.v4, o.v4...))
	l.index()
	for _, p := range o.v6 {
		l.Add(p)
	}
}

// Clone returns an independent copy.
func (l *Locals) Clone() *Locals {
	if l == nil {
		return &Locals{}
	}
	return &Locals{v4: slices.Clone(l.v4), v6: slices.Clone(l.v6), first: l.first}
}

func (l *Locals) index() {
	l.first = [256]uint8{}
	for _, r := range l.v4 {
		for o := r.lo >> 24; o <= r.hi>>24; o++ {
			if r.lo <= o<<24 && r.hi >= o<<24|0xFFFFFF {
				l.first[o] = octetAll
			} else if l.first[o] != octetAll {
				l.first[o] = octetSome
			}
		}
	}
}

func mergeRanges4(rs []rng4) []rng4 {
	slices.SortFunc(rs, func(a, b rng4) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (r.lo <= out[n-1].hi || out[n-1].hi != ^uint32(0) && r.lo == out[n-1].hi+1) {
			if r.hi > out[n-1].hi {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Contains reports whether a is in the set. IPv4-mapped IPv6 addresses are
// looked up as IPv4. Small enough to inline: the common IPv4 case is one
// array load.
func (l *Locals) Contains(a netip.Addr) bool {
	if l != nil && a.Is4() {
		b := a.As4()
		if f := l.first[b[0]]; f != octetSome {
			return f == octetAll
		}
	}
	return l.containsSlow(a)
}

func (l *Locals) containsSlow(a netip.Addr) bool {
	if l == nil {
		return false
	}
	if a.Is4() || a.Is4In6() {
		n := v4int(a.Unmap())
		switch l.first[n>>24] {
		case octetNone:
			return false
		case octetAll:
			return true
		}
		rs := l.v4
		// Upper-bound binary search: the last range with lo <= n.
		i, j := 0, len(rs)
		for i < j {
			h := int(uint(i+j) >> 1)
			if rs[h].lo <= n {
				i = h + 1
			} else {
				j = h
			}
		}
		return i > 0 && n <= rs[i-1].hi
	}
	for _, p := range l.v6 {
		if p.Contains(a.WithZone("")) {
			return true
		}
	}
	return false
}

// Prefixes lists the set as CIDR prefixes (IPv4 first).
func (l *Locals) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range l.v4 {
		out = append(out, rangeToPrefixes4(r.lo, r.hi)...)
	}
	return append(out, l.v6...)
}

// String lists the set comma-separated, the form ParseCIDRs reads.
func (l *Locals) String() string {
	ps := l.Prefixes()
	ss := make([]string, len(ps))
	for i, p := range ps {
		ss[i] = p.String()
	}
	return strings.Join(ss, ",")
}

// rangeToPrefixes4 splits an inclusive IPv4 range into the fewest prefixes.
func rangeToPrefixes4(lo, hi uint32) []netip.Prefix {
	var out []netip.Prefix
	for {
		// Largest block aligned at lo that does not pass hi.
		bits := 32
		for bits > 0 {
			size := uint64(1) << (32 - (bits - 1))
			if uint64(lo)%size != 0 || uint64(lo)+size-1 > uint64(hi) {
				break
			}
			bits--
		}
		out = append(out, netip.PrefixFrom(v4addr(lo), bits))
		end := uint64(lo) + (uint64(1) << (32 - bits)) - 1
		if end >= uint64(hi) {
			return out
		}
		lo = uint32(end + 1)
	}
}

func v4int(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func v4addr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// IsInternet reports whether a can be a destination on the public Internet:
// not private, shared, loopback, link-local, unique-local, multicast,
// broadcast, unspecified or reserved (0/8, 240/4). Documentation ranges
// count as Internet so simulated traffic that uses them is still "remote".
func IsInternet(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		n := v4int(a)
		switch {
		case n>>24 == 0, n>>24 == 10, n>>24 == 127: // this-network, RFC 1918, loopback
			return false
		case n>>28 >= 0xE: // 224/4 multicast, 240/4 reserved and broadcast
			return false
		case n>>20 == 0xAC1: // 172.16/12
			return false
		case n>>16 == 0xC0A8, n>>16 == 0xA9FE: // 192.168/16, 169.254/16
			return false
		case n>>22 == 0x191: // 100.64/10
			return false
		}
		return true
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsPrivate() {
		return false
	}
	return true
}
