package asset

import (
	"sort"
	"strings"
)

// otProtocols are the industrial protocols whose server is a controller
// (PLC, RTU, outstation, BACnet device, OPC UA server) and whose client
// polls or commands it (HMI, SCADA master, historian). MQTT is not here:
// a broker is IT plumbing, not a controller.
var otProtocols = map[string]bool{
	"modbus": true, "s7comm": true, "s7comm-plus": true, "enip": true, "cip": true, "dnp3": true,
	"bacnet": true, "iec104": true, "opcua": true, "profinet-dcp": true,
}

// remoteAccess are the protocols that let a person operate a host from
// elsewhere; around OT they are how vendors and attackers get in.
var remoteAccess = map[string]bool{"rdp": true, "vnc": true, "ssh": true, "teamviewer": true, "anydesk": true}

// Roles inferred from behaviour.
const (
	RolePLC                = "plc"                     // serves an OT protocol: PLC, RTU, outstation, BACnet device
	RoleHMI                = "hmi"                     // polls OT servers: HMI, SCADA master, historian
	RoleEngineering        = "engineering-workstation" // transfers programs or firmware to controllers
	RoleRemoteAccessServer = "remote-access-server"    // accepts rdp, vnc, ssh, teamviewer, anydesk
	RoleRemoteAccessClient = "remote-access-client"    // opens them
)

// otRoleWords make an assets-file role OT when any of its words (split at
// '-', '_', '.' and spaces) is one of them: crane-plc, crane-hmi,
// crane-modem, scada, rtu, sis, ot-gateway, ...
var otRoleWords = map[string]bool{
	"ot": true, "ics": true, "plc": true, "hmi": true, "scada": true, "rtu": true, "dcs": true,
	"ied": true, "sis": true, "crane": true, "ews": true, "opc": true, "historian": true,
	"outstation": true, "controller": true,
}

// otZoneWords make a zone OT when its first word is one of them: ot,
// ot-crane, ot_scanner, ics-cell-1, scada.
var otZoneWords = map[string]bool{"ot": true, "ics": true, "scada": true}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' })
}

// IsOTRole reports whether an assets-file role names an OT device.
func IsOTRole(role string) bool {
	for _, w := range words(role) {
		if otRoleWords[w] {
			return true
		}
	}
	return false
}

// IsOTZone reports whether a zone is an OT zone. A device in one is OT
// whatever its role: a barcode scanner in ot-scanner sits beside the
// controllers and is reached the same way.
func IsOTZone(zone string) bool {
	w := words(zone)
	return len(w) > 0 && otZoneWords[w[0]]
}

// roles returns the behavioural roles of h, sorted.
func (h *host) roles() []string {
	var out []string
	if o := h.ot; o != nil {
		served, used := false, false
		for p := range o.served {
			served = served || otProtocols[p]
		}
		for p := range o.used {
			used = used || otProtocols[p]
		}
		if served {
			out = append(out, RolePLC)
		}
		if used {
			out = append(out, RoleHMI)
		}
		if o.programSent > 0 {
			out = append(out, RoleEngineering)
		}
	}
	ras, rac := false, false
	for p := range h.offered {
		ras = ras || remoteAccess[p]
	}
	for p := range h.used {
		rac = rac || remoteAccess[p]
	}
	if o := h.ot; o != nil {
		for p := range o.served {
			ras = ras || remoteAccess[p]
		}
		for p := range o.used {
			rac = rac || remoteAccess[p]
		}
	}
	if ras {
		out = append(out, RoleRemoteAccessServer)
	}
	if rac {
		out = append(out, RoleRemoteAccessClient)
	}
	sort.Strings(out)
	return out
}

// isOT reports whether h is an OT host: its assets-file role or zone says
// so, or it behaves as a controller, a master or an engineering station.
func (h *host) isOT(e *Entry) bool {
	if e != nil && (IsOTRole(e.Role) || IsOTZone(e.Zone)) {
		return true
	}
	if h.asset != nil && (IsOTRole(h.asset.Role) || IsOTZone(h.asset.Zone)) {
		return true
	}
	for _, r := range h.roles() {
		if r == RolePLC || r == RoleHMI || r == RoleEngineering {
			return true
		}
	}
	return false
}
