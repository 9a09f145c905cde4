package asset

import (
	"net/netip"
	"strings"

	cw "github.com/cargowatch/cargowatch"
)

// learnNames collects the names a Conn tells for local addresses: what
// hosts gave themselves (DHCP, NetBIOS, mDNS, from dissect.HostNames),
// PTR answers, A/AAAA answers that name private addresses, NetBIOS name
// responses and mDNS host records in Conn.DNS.
func (d *Discovery) learnNames(c *cw.Conn) {
	for _, hn := range c.HostNames {
		switch {
		case hn.Addr.IsValid():
			d.addName(hn.Addr, hn.Name, hn.Source)
		case hn.MAC != "":
			d.addMACName(hn.MAC, hn.Name, hn.Source)
		}
	}
	if len(c.DNS) == 0 || c.Proto != "udp" && c.Proto != "tcp" {
		return
	}
	nbns := c.Proto == "udp" && (c.Orig.Port == 137 || c.Resp.Port == 137)
	mdns := c.Proto == "udp" && (c.Orig.Port == 5353 || c.Resp.Port == 5353)
	for i := range c.DNS {
		m := &c.DNS[i]
		switch {
		case nbns:
			// A response in a flow that carried no query is the owner
			// answering a broadcast query from its own port 137: the
			// name is the flow originator's. (A unicast query's answer
			// may come from a WINS server, which names someone else.)
			if m.QueryLen == 0 && m.RespLen > 0 && m.RCode == 0 && len(m.Answers) > 0 {
				label, _, _ := strings.Cut(m.Query, ".")
				if name, suffix, ok := DecodeNetBIOS(label); ok && (suffix == 0x00 || suffix == 0x20) {
					d.addName(c.Orig.Addr, name, "netbios")
				}
			}
		case mdns:
			if m.RespLen == 0 {
				continue
			}
			// A multicast response comes from the originator; a unicast
			// one answers the originator's query.
			sender := c.Resp.Addr
			if c.Resp.Addr.IsMulticast() {
				sender = c.Orig.Addr
			}
			for _, a := range m.Answers {
				if isHostLocalName(a) {
					d.addName(sender, strings.TrimSuffix(a, "."), "mdns")
				}
			}
		case m.QType == 12 && m.RCode == 0:
			if a, ok := reverseAddr(m.Query); ok && len(m.Answers) > 0 && d.wantName(a) {
				if _, err := netip.ParseAddr(m.Answers[0]); err != nil {
					d.addName(a, strings.TrimSuffix(m.Answers[0], "."), "dns")
				}
			}
		case (m.QType == 1 || m.QType == 28) && m.RCode == 0 && m.Query != "":
			for _, ans := range m.Answers {
				if a, err := netip.ParseAddr(ans); err == nil && d.wantName(a.Unmap()) {
					d.addName(a, m.Query, "dns")
				}
			}
		}
	}
}

// wantName reports whether names of a are worth keeping: a host we track
// as local, or a private address (the Internet's names are the engine's
// business, not the inventory's).
func (d *Discovery) wantName(a netip.Addr) bool {
	if h, ok := d.hosts[a]; ok && h.local {
		return true
	}
	return a.IsPrivate() || a.IsLinkLocalUnicast()
}

// isHostLocalName accepts "name.local" but not service instance names
// ("Printer._ipp._tcp.local") or reverse names.
func isHostLocalName(s string) bool {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	return strings.HasSuffix(s, ".local") && !strings.Contains(s, "._") && !strings.HasSuffix(s, ".arpa") &&
		len(s) > len(".local") && !strings.ContainsAny(s, " \\")
}

func (d *Discovery) addName(a netip.Addr, name, source string) {
	a = a.Unmap()
	if !hostAddr(a) || name == "" || len(name) > maxNameLen {
		return
	}
	ns := d.names[a]
	for _, n := range ns {
		if strings.EqualFold(n.name, name) {
			return
		}
	}
	if len(ns) >= maxNames || (ns == nil && len(d.names) >= d.cfg.MaxHosts) {
		d.stats.NamesDropped++
		return
	}
	d.names[a] = append(ns, nameSrc{name, source})
}

func (d *Discovery) addMACName(mac, name, source string) {
	if !unicastMAC(mac) || name == "" || len(name) > maxNameLen {
		return
	}
	ns := d.macNames[mac]
	for _, n := range ns {
		if strings.EqualFold(n.name, name) {
			return
		}
	}
	if len(ns) >= maxNames || (ns == nil && len(d.macNames) >= d.cfg.MaxHosts) {
		d.stats.NamesDropped++
		return
	}
	d.macNames[mac] = append(ns, nameSrc{name, source})
}

// reverseAddr reads the address of a PTR query name (in-addr.arpa with
// four octets, ip6.arpa with 32 nibbles).
func reverseAddr(q string) (netip.Addr, bool) {
	q = strings.TrimSuffix(strings.ToLower(q), ".")
	switch {
	case strings.HasSuffix(q, ".in-addr.arpa"):
		parts := strings.Split(strings.TrimSuffix(q, ".in-addr.arpa"), ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
		return a, err == nil
	case strings.HasSuffix(q, ".ip6.arpa"):
		parts := strings.Split(strings.TrimSuffix(q, ".ip6.arpa"), ".")
		if len(parts) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, p := range parts {
			if len(p) != 1 {
				return netip.Addr{}, false
			}
			v := strings.IndexByte("0123456789abcdef", p[0])
			if v < 0 {
				return netip.Addr{}, false
			}
			n := 31 - i // the last label is the first nibble
			if n%2 == 0 {
				b[n/2] |= byte(v) << 4
			} else {
				b[n/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// DecodeNetBIOS undoes NetBIOS first-level encoding (RFC 1001 section
// 14.1) of a 32-letter label such as Conn.DNS holds for port 137 flows:
// every byte is two letters 'A'+high nibble, 'A'+low nibble. It returns
// the name (15 bytes, space padding removed) and the suffix byte that
// says which service registered it (0x00 workstation, 0x20 server, 0x1c
// domain controllers...). ok is false for anything else, or a name with
// bytes that are not printable ASCII.
func DecodeNetBIOS(label string) (name string, suffix byte, ok bool) {
	if len(label) != 32 {
		return "", 0, false
	}
	var raw [16]byte
	for i := range raw {
		hi, lo := label[2*i]-'A', label[2*i+1]-'A'
		if hi > 15 || lo > 15 {
			return "", 0, false
		}
		raw[i] = hi<<4 | lo
	}
	n := strings.TrimRight(string(raw[:15]), " ")
	if n == "" {
		return "", 0, false
	}
	for i := 0; i < len(n); i++ {
		if n[i] <= ' ' || n[i] >= 0x7f {
			return "", 0, false
		}
	}
	return n, raw[15], true
}
