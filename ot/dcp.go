package ot

import (
	"errors"
	"fmt"
	"net/netip"
)

// PROFINET DCP (IEC 61158-6-10, Discovery and basic Configuration
// Protocol) travels in Ethernet frames of EtherType 0x8892: a 2-byte
// FrameID (0xfefc Hello, 0xfefd Get/Set, 0xfefe Identify request, 0xfeff
// Identify response), then the DCP header (service id, service type,
// transaction id, response delay or reserved, data length) and blocks
// (option, suboption, length, data padded to an even length; responses
// put a 2-byte BlockInfo before the data).

// EtherTypePROFINET is the EtherType of PROFINET real-time frames, DCP
// included.
const EtherTypePROFINET = 0x8892

// DCPMessage is what one DCP frame says.
type DCPMessage struct {
	FrameID  uint16
	Service  string // identify, get, set, hello
	Response bool   // service type 1 (success) or 5 (not supported)
	Xid      uint32

	StationName   string // NameOfStation (2/2)
	TypeOfStation string // DeviceVendorValue (2/1): the vendor's device family text
	AliasName     string // (2/6)
	VendorID      uint16 // DeviceID option (2/3)
	DeviceID      uint16
	HasDeviceID   bool
	Role          byte // DeviceRole (2/4): 1 IO device, 2 IO controller, 4 multidevice, 8 supervisor

	IP, Mask, Gateway netip.Addr // IP parameter (1/2)

	// Writes lists what a Set request changes ("ip", "name_of_station",
	// "factory_reset", "signal", ...): commissioning or sabotage.
	Writes []string
}

// ErrNotDCP is returned for frames that are PROFINET but not DCP (cyclic
// real-time data and alarms share the EtherType).
var ErrNotDCP = errors.New("not a DCP frame")

const maxDCPBlocks = 64

// ParseDCP parses the payload of an EtherType 0x8892 frame (starting at
// the FrameID). Errors say which field is wrong; fields parsed before a
// bad block are returned with the error.
func ParseDCP(b []byte) (*DCPMessage, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("dcp: %d bytes: no frame id", len(b))
	}
	// Checked before anything is allocated: cyclic real-time frames,
	// which share the EtherType, come every millisecond.
	fid := uint16(be16(b))
	if fid < 0xfefc || fid > 0xfeff {
		return nil, ErrNotDCP
	}
	m := &DCPMessage{FrameID: fid}
	if len(b) < 12 {
		return nil, fmt.Errorf("dcp: frame id %#04x: header cut at %d bytes", m.FrameID, len(b))
	}
	svc, typ := b[2], b[3]
	// Service ids as IEC 61158-6-10 numbers them (and Wireshark's pn_dcp
	// decodes them): 3 Get, 4 Set, 5 Identify, 6 Hello.
	switch svc {
	case 3:
		m.Service = "get"
	case 4:
		m.Service = "set"
	case 5:
		m.Service = "identify"
	case 6:
		m.Service = "hello"
	default:
		return nil, fmt.Errorf("dcp: frame id %#04x: service id %d unknown", m.FrameID, svc)
	}
	switch typ {
	case 0:
	case 1, 5:
		m.Response = true
	default:
		return nil, fmt.Errorf("dcp: %s: service type %d unknown", m.Service, typ)
	}
	m.Xid = le32be(b[4:])
	n := be16(b[10:])
	data := b[12:]
	if n > len(data) {
		return m, fmt.Errorf("dcp: %s: data length %d beyond the %d bytes in the frame", m.Service, n, len(data))
	}
	data = data[:n]
	for i := 0; len(data) > 0; i++ {
		if i == maxDCPBlocks {
			return m, fmt.Errorf("dcp: %s: more than %d blocks", m.Service, maxDCPBlocks)
		}
		if len(data) < 4 {
			return m, fmt.Errorf("dcp: %s: block %d header cut", m.Service, i)
		}
		opt, sub, l := data[0], data[1], be16(data[2:])
		if 4+l > len(data) {
			return m, fmt.Errorf("dcp: %s: block %d (option %d/%d) length %d beyond the data", m.Service, i, opt, sub, l)
		}
		v := data[4 : 4+l]
		// Responses (and Set requests' values in Hello) carry BlockInfo
		// or BlockQualifier first.
		if (m.Response || m.Service == "hello") && !(opt == 5 && sub == 4) && len(v) >= 2 {
			v = v[2:]
		}
		if m.Service == "set" && !m.Response && len(v) >= 2 {
			// BlockQualifier precedes the value in Set requests.
			m.dcpBlock(opt, sub, v[2:], true)
		} else if m.Service == "identify" && !m.Response {
			// Identify request blocks are filters: the name asked for.
			if opt == 2 && sub == 2 {
				m.StationName = printable(string(v))
			}
		} else {
			m.dcpBlock(opt, sub, v, false)
		}
		adv := 4 + l
		if l%2 == 1 && adv < len(data) {
			adv++ // padding
		}
		data = data[adv:]
	}
	return m, nil
}

func (m *DCPMessage) dcpBlock(opt, sub byte, v []byte, set bool) {
	switch {
	case opt == 1 && sub == 2 && len(v) >= 12:
		m.IP = netip.AddrFrom4([4]byte(v[0:4]))
		m.Mask = netip.AddrFrom4([4]byte(v[4:8]))
		m.Gateway = netip.AddrFrom4([4]byte(v[8:12]))
		if set {
			m.Writes = append(m.Writes, "ip")
		}
	case opt == 2 && sub == 1:
		m.TypeOfStation = printable(string(v))
	case opt == 2 && sub == 2:
		m.StationName = printable(string(v))
		if set {
			m.Writes = append(m.Writes, "name_of_station")
		}
	case opt == 2 && sub == 3 && len(v) >= 4:
		m.VendorID, m.DeviceID, m.HasDeviceID = uint16(be16(v)), uint16(be16(v[2:])), true
	case opt == 2 && sub == 4 && len(v) >= 1:
		m.Role = v[0]
	case opt == 2 && sub == 6:
		m.AliasName = printable(string(v))
	case opt == 5 && set:
		switch sub {
		case 1:
			m.Writes = append(m.Writes, "start_transaction")
		case 2:
			m.Writes = append(m.Writes, "end_transaction")
		case 3:
			m.Writes = append(m.Writes, "signal")
		case 5:
			m.Writes = append(m.Writes, "factory_reset")
		case 6:
			m.Writes = append(m.Writes, "reset_to_factory")
		}
	case opt == 3 && set:
		m.Writes = append(m.Writes, "dhcp")
	}
	if len(m.Writes) > 8 {
		m.Writes = m.Writes[:8]
	}
}

// Device is the identification the message carries, "" when none.
func (m *DCPMessage) Device() string {
	s := m.StationName
	if m.TypeOfStation != "" {
		if s != "" {
			s += " "
		}
		s += m.TypeOfStation
	}
	if m.HasDeviceID {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("vendor %#04x device %#04x", m.VendorID, m.DeviceID)
	}
	return s
}

func le32be(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
