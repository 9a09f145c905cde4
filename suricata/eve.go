package suricata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// event is one EVE line, decoded only as far as cargowatch uses it.
// Unknown fields are skipped by the decoder, so newer Suricata versions
// that add fields never break parsing.
type event struct {
	Timestamp string    `json:"timestamp"`
	FlowID    flexUint  `json:"flow_id"`
	EventType string    `json:"event_type"`
	SrcIP     string    `json:"src_ip"`
	SrcPort   flexUint  `json:"src_port"`
	DestIP    string    `json:"dest_ip"`
	DestPort  flexUint  `json:"dest_port"`
	Proto     flexProto `json:"proto"`
	AppProto  string    `json:"app_proto"`
	// VLAN is a number in old versions and an array (outer first) in new ones.
	VLAN     json.RawMessage `json:"vlan"`
	ICMPType *flexUint       `json:"icmp_type"`
	ICMPCode *flexUint       `json:"icmp_code"`
	TxID     *flexUint       `json:"tx_id"`

	Flow     *flowInfo    `json:"flow"`
	Netflow  *netflowInfo `json:"netflow"`
	TCP      *tcpInfo     `json:"tcp"`
	Ether    *etherInfo   `json:"ether"`
	DNS      *dnsInfo     `json:"dns"`
	TLS      *tlsInfo     `json:"tls"`
	HTTP     *httpInfo    `json:"http"`
	Fileinfo *fileInfo    `json:"fileinfo"`
	Alert    *alertInfo   `json:"alert"`
}

type flowInfo struct {
	PktsToServer  flexUint `json:"pkts_toserver"`
	PktsToClient  flexUint `json:"pkts_toclient"`
	BytesToServer flexUint `json:"bytes_toserver"`
	BytesToClient flexUint `json:"bytes_toclient"`
	Start         string   `json:"start"`
	End           string   `json:"end"`
	State         string   `json:"state"`
	Reason        string   `json:"reason"`
}

type netflowInfo struct {
	Pkts  flexUint `json:"pkts"`
	Bytes flexUint `json:"bytes"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

// tcpInfo carries the TCP flags Suricata saw each way ("1b" hex): the
// only faithful way to Zeek's conn_state. Netflow events have tcp_flags
// only (the flags of that direction).
type tcpInfo struct {
	Flags   string `json:"tcp_flags"`
	FlagsTS string `json:"tcp_flags_ts"`
	FlagsTC string `json:"tcp_flags_tc"`
}

type etherInfo struct {
	SrcMAC   string   `json:"src_mac"`
	DestMAC  string   `json:"dest_mac"`
	SrcMACs  []string `json:"src_macs"`
	DestMACs []string `json:"dest_macs"`
}

type dnsInfo struct {
	Version flexUint    `json:"version"`
	Type    string      `json:"type"`
	ID      flexUint    `json:"id"`
	RRName  string      `json:"rrname"`
	RRType  string      `json:"rrtype"`
	RCode   string      `json:"rcode"`
	TTL     flexUint    `json:"ttl"`
	RData   string      `json:"rdata"`
	Queries []dnsQuery  `json:"queries"` // version 3
	Answers []dnsAnswer `json:"answers"`
	// Grouped maps an rrtype to its answers' data, without TTLs.
	Grouped map[string][]json.RawMessage `json:"grouped"`
}

type dnsQuery struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
}

type dnsAnswer struct {
	RRName string   `json:"rrname"`
	RRType string   `json:"rrtype"`
	TTL    flexUint `json:"ttl"`
	RData  string   `json:"rdata"`
}

type tlsInfo struct {
	SNI     string `json:"sni"`
	Version string `json:"version"`
	JA3     *struct {
		Hash string `json:"hash"`
	} `json:"ja3"`
	JA4         string   `json:"ja4"`
	ClientALPNs []string `json:"client_alpns"`
}

type httpInfo struct {
	Hostname    string   `json:"hostname"`
	URL         string   `json:"url"`
	UserAgent   string   `json:"http_user_agent"`
	Method      string   `json:"http_method"`
	ContentType string   `json:"http_content_type"`
	Status      flexUint `json:"status"`
	Length      flexUint `json:"length"`
	Port        flexUint `json:"http_port"`
}

type fileInfo struct {
	Filename string   `json:"filename"`
	Size     flexUint `json:"size"`
	TxID     flexUint `json:"tx_id"`
}

type alertInfo struct {
	Action    string   `json:"action"`
	GID       flexUint `json:"gid"`
	SID       flexUint `json:"signature_id"`
	Rev       flexUint `json:"rev"`
	Signature string   `json:"signature"`
	Category  string   `json:"category"`
	Severity  flexUint `json:"severity"`
}

// flexUint reads a JSON number or a string holding one: pipelines that
// re-export EVE (Logstash, Filebeat) often turn flow_id into a string.
type flexUint uint64

func (u *flexUint) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*u = 0
			return nil
		}
		b = []byte(s)
	}
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		// Floats (1.0) from converters: accept when integral.
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || f < 0 || f != float64(uint64(f)) {
			return fmt.Errorf("%q is not a non-negative integer", b)
		}
		v = uint64(f)
	}
	*u = flexUint(v)
	return nil
}

// flexProto reads the protocol as Suricata writes it ("TCP", "IPv6-ICMP",
// "047" for protocols without a name) or as a number.
type flexProto string

func (p *flexProto) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '"' {
		if string(b) == "null" {
			return nil
		}
		v, err := strconv.ParseUint(string(b), 10, 8)
		if err != nil {
			return fmt.Errorf("proto %s: %w", b, err)
		}
		*p = flexProto(strconv.FormatUint(v, 10))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*p = flexProto(s)
	return nil
}

// eventType returns the event_type of an EVE line without decoding it,
// so lines of types cargowatch ignores (stats, anomaly, ...) cost a scan
// and not a decode. Suricata writes event_type in the header, before
// any field that could carry traffic bytes. ok is false when the key is
// not found in the plain form Suricata writes; the caller then decodes.
func eventType(line []byte) (typ string, ok bool) {
	const key = `"event_type"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := line[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == ':' || rest[j] == '\t') {
		j++
	}
	if j >= len(rest) || rest[j] != '"' {
		return "", false
	}
	rest = rest[j+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}

// Errors for one line; wrapped with file:line by the reader.
var (
	errNoType = errors.New("no event_type")
	errAddr   = errors.New("bad address")
)

// parseEvent decodes one EVE line.
func parseEvent(line []byte) (*event, error) {
	var e event
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, jsonReason(err)
	}
	if e.EventType == "" {
		return nil, errNoType
	}
	return &e, nil
}

// jsonReason shortens encoding/json's messages to what a person needs.
func jsonReason(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not JSON at byte %d: %v", se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %s: JSON %s where %s was expected", te.Field, te.Value, te.Type)
	}
	return err
}

// tsLayouts are the timestamp forms seen in EVE: Suricata's own
// (+0200 without a colon), and RFC 3339 from converters.
var tsLayouts = []string{
	"2006-01-02T15:04:05.999999999-0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing time")
	}
	for _, l := range tsLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: not an EVE timestamp", clip(s, 40))
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w %q", errAddr, clip(s, 50))
	}
	return a.Unmap(), nil
}

// protoName maps Suricata's protocol names to the Conn's: tcp, udp,
// icmp, icmp6, else the IP protocol number, as the flow table writes them.
func protoName(p flexProto) (name string, num int) {
	s := strings.ToLower(string(p))
	switch s {
	case "tcp":
		return "tcp", 6
	case "udp":
		return "udp", 17
	case "icmp":
		return "icmp", 1
	case "ipv6-icmp", "icmpv6", "icmp6":
		return "icmp6", 58
	}
	if n, ok := protoNumbers[s]; ok {
		return strconv.Itoa(n), n
	}
	if v, err := strconv.ParseUint(s, 10, 8); err == nil {
		return strconv.FormatUint(v, 10), int(v)
	}
	return s, -1
}

// protoNumbers are the other names Suricata takes from its protocol table.
var protoNumbers = map[string]int{
	"hopopt": 0, "igmp": 2, "ggp": 3, "ipv4": 4, "ipip": 4, "st": 5, "egp": 8, "igp": 9,
	"ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50,
	"ah": 51, "ipv6-nonxt": 59, "ipv6-opts": 60, "eigrp": 88, "ospf": 89, "ospfigp": 89,
	"etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115,
	"sctp": 132, "udplite": 136, "mpls-in-ip": 137,
}

// serviceName maps Suricata's app_proto to Zeek's service names where
// they differ; "failed" and "unknown" mean no protocol was recognised.
func serviceName(app string) string {
	app = strings.ToLower(app)
	switch app {
	case "", "failed", "unknown":
		return ""
	case "tls":
		return "ssl"
	case "dcerpc":
		return "dce_rpc"
	case "krb5":
		return "krb"
	case "ftp-data":
		return "ftp-data"
	case "smb":
		return "smb"
	case "ike", "ikev2":
		return "ike"
	case "rfb":
		return "rfb"
	case "doh2", "http2":
		return "http2"
	}
	return app
}

// tlsVersion writes Suricata's "TLS 1.2" as the flow table does ("TLSv12").
func tlsVersion(v string) string {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "", "UNDETERMINED":
		return ""
	case "TLS 1.0", "TLSV1":
		return "TLSv10"
	case "TLS 1.1":
		return "TLSv11"
	case "TLS 1.2":
		return "TLSv12"
	case "TLS 1.3":
		return "TLSv13"
	case "SSLV3", "SSL 3.0":
		return "SSLv3"
	case "SSLV2", "SSL 2.0":
		return "SSLv2"
	}
	return strings.ReplaceAll(v, " ", "")
}

// Zeek's conn_state from Suricata's flow record. With the tcp object's
// per-direction flags the mapping follows Zeek's definitions; without it
// (older versions, "tcp" logging off) it is inferred from Suricata's flow
// state and the packet counts, as documented in docs/SOURCES.md.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
)

func tcpStateFromFlags(ts, tc uint8, respPkts uint64) string {
	synO, synR := ts&flagSYN != 0, tc&flagSYN != 0
	finO, finR := ts&flagFIN != 0, tc&flagFIN != 0
	rstO, rstR := ts&flagRST != 0, tc&flagRST != 0
	switch {
	case !synO:
		switch {
		case synR && rstR:
			return "RSTRH"
		case synR && finR:
			return "SHR"
		}
		return "OTH"
	case !synR:
		switch {
		case rstR:
			return "REJ"
		case rstO:
			return "RSTOS0"
		case finO:
			return "SH"
		case respPkts == 0:
			return "S0"
		}
		return "OTH"
	case rstO:
		return "RSTO"
	case rstR:
		return "RSTR"
	case finO && finR:
		return "SF"
	case finO:
		return "S2"
	case finR:
		return "S3"
	}
	return "S1"
}

func tcpStateFromFlow(state string, origPkts, respPkts uint64, origPayload, respPayload int64) string {
	switch state {
	case "new":
		if respPkts == 0 {
			return "S0"
		}
		return "OTH"
	case "established":
		return "S1"
	case "closed":
		switch {
		case respPkts == 0:
			return "RSTOS0"
		case origPayload == 0 && respPayload == 0 && respPkts <= origPkts:
			// Closed without a byte of data and no more answers than
			// attempts: a refused attempt more often than an empty session.
			return "REJ"
		}
		return "SF"
	}
	return "OTH"
}

func parseFlags(s string) (uint8, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 8)
	if err != nil {
		return 0, false
	}
	return uint8(v), true
}

// Per-packet header sizes for the payload estimate: Suricata counts the
// whole captured packet, link layer included (Ethernet assumed).
const linkHeader = 14

func headerSizes(v6 bool, proto int) (ip, l4 int64) {
	ip = 20
	if v6 {
		ip = 40
	}
	switch proto {
	case 6:
		// 20 bytes plus the 12 of the timestamp option most stacks send.
		l4 = 32
	case 17, 1, 58:
		l4 = 8
	}
	return ip, l4
}

// sizes turns Suricata's packet bytes into IP bytes and an estimate of
// payload bytes, clamped at zero.
func sizes(bytes, pkts uint64, v6 bool, proto int) (ipBytes, payload int64) {
	b, p := clampInt(bytes), clampInt(pkts)
	ipBytes = max(b-p*linkHeader, 0)
	ip, l4 := headerSizes(v6, proto)
	payload = max(ipBytes-p*(ip+l4), 0)
	return ipBytes, payload
}

func clampInt(u uint64) int64 {
	if u > 1<<62 {
		return 1 << 62
	}
	return int64(u)
}

// rcodes are the DNS response codes by the names Suricata writes.
var rcodes = map[string]int{
	"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
	"YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10, "BADVERS": 16,
	"BADSIG": 16, "BADKEY": 17, "BADTIME": 18, "BADMODE": 19, "BADNAME": 20, "BADALG": 21, "BADTRUNC": 22,
}

func rcode(s string) int {
	if s == "" {
		return -1
	}
	if v, ok := rcodes[strings.ToUpper(s)]; ok {
		return v
	}
	if v, err := strconv.ParseUint(s, 10, 16); err == nil {
		return int(v)
	}
	return -1
}

// rrtypes are the DNS record types by name; Suricata writes unknown ones
// as their number.
var rrtypes = map[string]uint16{
	"A": 1, "NS": 2, "MD": 3, "MF": 4, "CNAME": 5, "SOA": 6, "MB": 7, "MG": 8, "MR": 9, "NULL": 10,
	"WKS": 11, "PTR": 12, "HINFO": 13, "MINFO": 14, "MX": 15, "TXT": 16, "RP": 17, "AFSDB": 18,
	"X25": 19, "ISDN": 20, "RT": 21, "NSAP": 22, "NSAPPTR": 23, "SIG": 24, "KEY": 25, "PX": 26,
	"GPOS": 27, "AAAA": 28, "LOC": 29, "NXT": 30, "SRV": 33, "NAPTR": 35, "KX": 36, "CERT": 37,
	"A6": 38, "DNAME": 39, "OPT": 41, "APL": 42, "DS": 43, "SSHFP": 44, "IPSECKEY": 45, "RRSIG": 46,
	"NSEC": 47, "DNSKEY": 48, "DHCID": 49, "NSEC3": 50, "NSEC3PARAM": 51, "TLSA": 52, "HIP": 55,
	"CDS": 59, "CDNSKEY": 60, "SVCB": 64, "HTTPS": 65, "SPF": 99, "TKEY": 249, "TSIG": 250,
	"IXFR": 251, "AXFR": 252, "MAILB": 253, "MAILA": 254, "ANY": 255, "URI": 256, "CAA": 257,
	"TA": 32768, "DLV": 32769,
}

func rrtype(s string) uint16 {
	if v, ok := rrtypes[strings.ToUpper(s)]; ok {
		return v
	}
	s = strings.TrimPrefix(strings.ToUpper(s), "TYPE")
	if v, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(v)
	}
	return 0
}

// vlanID reads the outermost VLAN from a number or an array.
func vlanID(raw json.RawMessage) uint16 {
	if len(raw) == 0 {
		return 0
	}
	var one flexUint
	if json.Unmarshal(raw, &one) == nil {
		return uint16(min(uint64(one), 4095))
	}
	var many []flexUint
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return uint16(min(uint64(many[0]), 4095))
	}
	return 0
}

// clip bounds a string taken from input, on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
