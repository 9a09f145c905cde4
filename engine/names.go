package engine

import (
	"net/netip"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// nameCache remembers which name a DNS answer gave an address, so a later
// conversation with that address is shown by name. Two generations of a
// bounded map: when the young one fills, the old one is dropped, which
// keeps recently used names at a fixed memory cost.
type nameCache struct {
	max      int
	cur, old map[netip.Addr]string
}

func newNameCache(max int) *nameCache {
	return &nameCache{max: max, cur: make(map[netip.Addr]string), old: map[netip.Addr]string{}}
}

func (n *nameCache) put(a netip.Addr, name string) {
	if len(n.cur) >= n.max {
		n.old, n.cur = n.cur, make(map[netip.Addr]string, n.max/4)
	}
	n.cur[a] = name
}

func (n *nameCache) get(a netip.Addr) (string, bool) {
	if s, ok := n.cur[a]; ok {
		return s, true
	}
	s, ok := n.old[a]
	return s, ok
}

// learn records A/AAAA answers under the name that was asked for (not the
// CNAME target: the asked name is what the device meant to reach).
func (n *nameCache) learn(c *cw.Conn) {
	for i := range c.DNS {
		d := &c.DNS[i]
		if d.Query == "" {
			continue
		}
		for _, ans := range d.Answers {
			if a, err := netip.ParseAddr(ans); err == nil {
				n.put(a.Unmap(), strings.TrimSuffix(d.Query, "."))
			}
		}
	}
}

// name sets the remote side's Name from what this conversation said, or
// from an earlier DNS answer.
func (n *nameCache) name(c *cw.Conn) {
	for _, ep := range []*cw.Endpoint{&c.Resp, &c.Orig} {
		if ep.Local || ep.Name != "" {
			continue
		}
		if ep == &c.Resp {
			if c.TLS != nil && c.TLS.SNI != "" {
				ep.Name = c.TLS.SNI
				continue
			}
			if len(c.HTTP) > 0 && c.HTTP[0].Host != "" {
				ep.Name = hostOnly(c.HTTP[0].Host)
				continue
			}
		}
		if s, ok := n.get(ep.Addr.Unmap()); ok {
			ep.Name = s
		}
	}
}

func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
	}
	if i := strings.LastIndexByte(h, ':'); i > 0 && strings.Count(h, ":") == 1 {
		return h[:i]
	}
	return h
}
