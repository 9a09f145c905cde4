package netflow

// Sniff reports whether a UDP payload looks like a flow export: a known
// version whose header and first set are consistent with the datagram's
// length. It is how a packet capture's UDP datagrams are picked for
// decoding, whatever their ports (exporters use 2055, 2056, 4739, 6343,
// 9995, 9996 and many others). It reads only headers and never errs
// towards ordinary traffic: DNS, QUIC, NTP and the like fail it.
func Sniff(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	switch v := be.Uint16(b); {
	case v == 5:
		n := int(be.Uint16(b[2:]))
		return n >= 1 && n <= 30 && len(b) == v5Header+n*v5Record
	case v == 9:
		if len(b) < 24 || be.Uint16(b[2:]) == 0 {
			return false
		}
		return plausibleSet(b[20:], 0, 1)
	case v == 10:
		if int(be.Uint16(b[2:])) != len(b) || len(b) < 20 {
			return false
		}
		return plausibleSet(b[16:], 2, 3)
	case v == 0 && be.Uint16(b[2:]) == 5:
		return checkSFlow(b) == nil && sflowSamples(b) > 0
	}
	return false
}

// plausibleSet checks the first set of a v9/IPFIX message: a template,
// options template or data set id, and a length that fits.
func plausibleSet(b []byte, tmpl, opts uint16) bool {
	if len(b) < 4 {
		return false
	}
	id, n := be.Uint16(b), int(be.Uint16(b[2:]))
	if id != tmpl && id != opts && id < 256 {
		return false
	}
	return n >= 4 && n <= len(b)
}

// sflowSamples is the sample count of a datagram checkSFlow accepted.
func sflowSamples(b []byte) uint32 {
	off := 8 + 12
	if be.Uint32(b[4:]) == 2 {
		off += 16
	} else {
		off += 4
	}
	return be.Uint32(b[off:])
}
