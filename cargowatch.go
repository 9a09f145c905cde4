// Package cargowatch holds the vocabulary shared by every part of the tool:
// the Conn record that every source produces, the Endpoint that enrichment
// fills in, the Finding that detectors conclude, and the small interfaces
// between sources, detectors, stores and sinks. Subpackages are named after
// what they wrap (pcap, geo, policy, sqlite, ...) and depend on this one,
// never on each other's internals.
package cargowatch

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
)

// Version is set at build time with -ldflags "-X github.com/cargowatch/cargowatch.Version=...".
var Version = "0.1.0-dev"

// Endpoint is one side of a conversation with what enrichment knows of it.
// Sources fill Addr and Port; enrichment (geo, asset) fills the rest.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
	// MAC is the hardware address when the source saw one (pcap), else "".
	MAC string

	// Local is true when the address belongs to the monitored network.
	Local bool
	// Name is the best host name known: TLS SNI, HTTP Host or a DNS answer
	// for a remote side; an asset or DHCP name for a local one.
	Name         string
	Country      string // ISO 3166-1 alpha-2 of where the address sits, "" unknown
	ASN          uint32
	Org          string
	Jurisdiction string // ISO 3166-1 alpha-2 of who controls the operator

	// JurisdictionSource says why Jurisdiction differs from Country (the
	// curated table entry and its source), "" when they are the same.
	JurisdictionSource string

	Asset *Asset // for local addresses that an assets file or discovery names
}

// Asset is what is known of a local device.
type Asset struct {
	Name  string
	Role  string // crane-plc, crane-hmi, scanner, wms, tos, customs-gateway, office, ...
	Zone  string
	Owner string
	// Allow lists the destinations this device may reach (country codes
	// and policy groups such as EEA), from the assets file; when set it
	// replaces the role's and the global allow list for this device.
	Allow []string
}

// Conn is one connection or flow, named after Zeek's conn.log.
type Conn struct {
	TS  time.Time
	UID string

	Orig Endpoint // originator: who sent the first packet (or SYN)
	Resp Endpoint

	Proto   string // "tcp", "udp", "icmp", "icmp6" or the IP protocol number
	Service string // detected from payload: "dns", "http", "ssl", "modbus", ... ("" unknown)

	Duration time.Duration

	// Payload bytes (TCP sequence-space or UDP payload) and IP bytes each way.
	OrigBytes, RespBytes     int64
	OrigPkts, RespPkts       int64
	OrigIPBytes, RespIPBytes int64
	MissedBytes              int64

	State   string // Zeek conn_state: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH
	History string // Zeek history letters
	// Open is true for a flow still open when the input ended (flushed, not closed).
	Open bool

	// VLAN and tunnel context, when present.
	VLAN   uint16
	Tunnel string // "gre", "vxlan", "teredo", "erspan", ... outermost decapsulated

	DNS  []DNS  // DNS messages seen in this flow (bounded, see DNSDropped)
	TLS  *TLS   // TLS ClientHello (and ServerHello version when seen)
	HTTP []HTTP // HTTP/1.x requests (bounded)

	// DNSDropped counts DNS messages beyond the per-flow cap.
	DNSDropped int

	Content *Content // cargo-data hits in inspected payload

	// OT is what an OT or remote-access protocol parser read from the
	// payload (nil when none recognised the flow).
	OT *OT
	// HostNames are names hosts gave themselves in this flow (DHCP,
	// NetBIOS, mDNS), for the asset inventory.
	HostNames []HostName

	// Source names the input this record came from (file path, interface, exporter).
	Source string
	// Alerts holds context from another sensor (e.g. Suricata alert signatures).
	Alerts []string
}

// DNS is one query and, when seen, its response.
type DNS struct {
	TransID uint16
	Query   string
	QType   uint16
	QClass  uint16
	RCode   int // -1 when no response was seen
	Answers []string
	TTLs    []uint32
	// QueryLen and RespLen are the DNS message sizes, so tunnelling scorers
	// can weigh the bytes carried.
	QueryLen, RespLen int
}

// TLS is what the ClientHello (and ServerHello) told.
type TLS struct {
	SNI     string
	Version string // negotiated when the ServerHello was seen, else offered max: "TLSv12", "TLSv13", ...
	ALPN    []string
	JA4     string
	JA3     string
}

// HTTP is one HTTP/1.x request with what the response told.
type HTTP struct {
	Method          string
	Host            string
	URI             string
	UserAgent       string
	ContentType     string
	RequestBodyLen  int64
	ResponseBodyLen int64
	StatusCode      int
}

// OT is what a payload parser of an industrial or remote-access protocol
// found in one flow. Protocol is also the Conn's Service.
type OT struct {
	// Protocol: modbus, s7comm, s7comm-plus, enip, cip, dnp3, bacnet,
	// iec104, opcua, profinet-dcp, mqtt, rdp, vnc, ssh, teamviewer, anydesk.
	Protocol string
	// ServerIsOrig is true when the originator is the side that serves the
	// protocol (a PLC that connects out, a BACnet device that announces).
	ServerIsOrig bool
	// Functions counts the operations seen by name (read_holding_registers,
	// write_var, download_block, ...), bounded per flow.
	Functions map[string]int
	// Writes counts operations that change a device's state (register and
	// coil writes, setpoints, controls); Program counts program or firmware
	// transfers (S7 block download, CIP/Modbus firmware functions).
	Writes, Program int
	// Device is what the traffic said the device is (vendor, product,
	// station name), "" when it said nothing.
	Device string
}

// HostName is a name a host gave itself on the wire.
type HostName struct {
	Addr   netip.Addr // zero when only the MAC is known (DHCP discover)
	MAC    string
	Name   string
	Source string // dhcp, netbios, mdns
}

// Hit is one cargo-data identifier found in payload or a file.
type Hit struct {
	Type        string // container, awb, imo, sscc, uld, unlocode, hs, eori
	Value       string // raw value; mask before output unless the user asked to reveal
	Offset      int64
	CheckDigit  string // valid | invalid | none
	Confidence  string // low | medium | high
	MessageType string // EDIFACT/BAPLIE, X12/315, CARGO-IMP/FWB, ... or ""
}

// Content summarises cargo data seen in a Conn's inspected payload.
type Content struct {
	Hits         []Hit          // bounded sample
	Counts       map[string]int // identifier type -> count
	MessageTypes map[string]int // message type -> count
	// OrigCounts and OrigMessageTypes are the part of Counts and
	// MessageTypes seen in the originator's direction, so that an upload
	// can be told from a download.
	OrigCounts       map[string]int
	OrigMessageTypes map[string]int
	Inspected        int64 // bytes inspected
	Uninspected      int64 // bytes not inspected (encrypted, over cap)
}

// Severity orders findings.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return "info"
	}
	return severityNames[s]
}

// ParseSeverity reads one of info|low|medium|high|critical.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("severity %q: want one of info, low, medium, high, critical", s)
}

// MarshalText makes severities print as names in JSON and YAML.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Finding kinds (DESIGN.md contract).
const (
	KindJurisdiction   = "jurisdiction"
	KindBeacon         = "beacon"
	KindStrobe         = "strobe"
	KindLongConnection = "long_connection"
	KindDNSTunnel      = "dns_tunnel"
	KindExfiltration   = "exfiltration"
	KindCargoData      = "cargo_data"
	KindOTEgress       = "ot_egress"
	KindNewAsset       = "new_asset"
	KindThreatIntel    = "threat_intel"
)

// Finding is what a detector concludes about a local host and a destination.
type Finding struct {
	Kind      string
	Severity  Severity
	Score     float64 // 0..1
	Src       Endpoint
	Dst       Endpoint
	FirstSeen time.Time
	LastSeen  time.Time
	Count     int64
	BytesOut  int64
	BytesIn   int64
	Summary   string
	// Evidence lets a person check the claim without re-running the tool:
	// intervals, sizes, sample identifiers (masked), flow uids, the rule.
	Evidence map[string]any
}

// Source yields Conn records. Run calls emit for each record and returns
// when the input is exhausted or ctx is done. Errors about one input that
// leave the others usable are returned as *InputError (joined when several).
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(*Conn)) error
}

// Enricher fills in endpoints: locality, geography, jurisdiction, assets.
type Enricher interface {
	Enrich(c *Conn)
}

// Detector consumes Conns and concludes Findings when asked. Detectors
// never read files and are not safe for concurrent use.
type Detector interface {
	Name() string
	Observe(c *Conn)
	// Findings returns what the detector concludes over everything observed
	// so far (for files: the whole input; for continuous sources: a window).
	Findings() []Finding
}

// Expirer is a Detector that can run over a continuous source: Expire
// forgets what lies before the start of the window that ends at now, so
// that state stays bounded and Findings speaks of the window only.
type Expirer interface {
	Expire(now time.Time)
}

// Sink receives findings as they are concluded.
type Sink interface {
	Write(f *Finding) error
	Close() error
}

// InputError reports an input that could not be used (fully or partly).
// The tool exits with status 2 when any input error occurred, after
// finishing the work on the other inputs.
type InputError struct {
	Input string
	Err   error
}

func (e *InputError) Error() string { return e.Input + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// IsInputError reports whether err holds an *InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// ProtoName names an IP protocol number as Conn.Proto does: "tcp", "udp",
// "icmp", "icmp6", else the number.
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmp6"
	}
	return strconv.Itoa(int(p))
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// FormatUID writes a 128-bit value as a Zeek-looking uid: "C" and 17
// base62 characters. Sources derive the value from what identifies a
// record, so the same input always yields the same uids.
func FormatUID(hi, lo uint64) string {
	var out [18]byte
	out[0] = 'C'
	for i := 17; i >= 1; i-- {
		var r uint64
		hi, r = bits.Div64(0, hi, 62)
		lo, r = bits.Div64(r, lo, 62)
		out[i] = base62[r]
	}
	return string(out[:])
}
