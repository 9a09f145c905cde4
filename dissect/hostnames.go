package dissect

import cw "github.com/cargowatch/cargowatch"

// HostNames returns the names hosts gave themselves in a flow's first
// payload of each direction (DHCP host name option, ...). proto is "tcp"
// or "udp".
func HostNames(proto string, orig, resp []byte) []cw.HostName {
	return nil
}
