package asset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"net"
	"strconv"
	"strings"
	"sync"
)

// The vendor table is the IEEE Registration Authority's public listings
// (MA-L, MA-M, MA-S, IAB), which IEEE publishes without asserting
// copyright, as Debian's ieee-data package ships them. Regenerate with a
// newer ieee-data installed:
//
//go:generate go run ./internal/ouigen -o oui.txt.gz -source " via Debian ieee-data 20220827.1" /usr/share/ieee-data/oui.csv /usr/share/ieee-data/mam.csv /usr/share/ieee-data/oui36.csv /usr/share/ieee-data/iab.csv
//go:embed oui.txt.gz
var ouiGz []byte

// ouiKey is a prefix of an address's leading bits: the bit length in the
// top byte, the prefix value below, so the three block sizes share a map.
type ouiKey uint64

func makeKey(bits int, v uint64) ouiKey { return ouiKey(uint64(bits)<<56 | v) }

var (
	ouiOnce  sync.Once
	ouiTable map[ouiKey]string
)

// loadOUI decodes the embedded table once, on first use, so that runs that
// never look a vendor up do not pay for its ~3 MB.
func loadOUI() {
	ouiTable = map[ouiKey]string{}
	zr, err := gzip.NewReader(bytes.NewReader(ouiGz))
	if err != nil {
		return
	}
	names := map[string]string{} // one copy of each organisation's name
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		hex, name, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		if n, ok := names[name]; ok {
			name = n
		} else {
			names[name] = name
		}
		ouiTable[makeKey(4*len(hex), v)] = name
	}
}

// Vendor names the organisation the IEEE assigned a MAC address's block to,
// "" when the address is unknown, locally administered (randomised phones,
// virtual machines) or a group address. The most specific block wins: a
// 36-bit MA-S or IAB assignment inside an IEEE-owned 24-bit prefix names
// the small vendor, not the IEEE.
func Vendor(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) < 6 || hw[0]&0x03 != 0 {
		return ""
	}
	ouiOnce.Do(loadOUI)
	var v uint64
	for _, b := range hw[:6] {
		v = v<<8 | uint64(b)
	}
	for _, bits := range [...]int{36, 28, 24} {
		if name, ok := ouiTable[makeKey(bits, v>>(48-bits))]; ok {
			return name
		}
	}
	return ""
}
