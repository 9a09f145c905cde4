package format

import (
	"net/netip"

	cw "github.com/cargowatch/cargowatch"
)

// ConnRecord flattens a Conn into Zeek conn.log names (as Zeek's JSON
// writer spells them, ts as epoch seconds) plus cargowatch's enrichment,
// so tools that read Zeek JSON read these lines too.
func ConnRecord(c *cw.Conn) map[string]any {
	m := map[string]any{
		"ts":            float64(c.TS.UnixNano()) / 1e9,
		"uid":           c.UID,
		"id.orig_h":     addrString(c.Orig.Addr),
		"id.orig_p":     c.Orig.Port,
		"id.resp_h":     addrString(c.Resp.Addr),
		"id.resp_p":     c.Resp.Port,
		"proto":         c.Proto,
		"duration":      c.Duration.Seconds(),
		"orig_bytes":    c.OrigBytes,
		"resp_bytes":    c.RespBytes,
		"conn_state":    c.State,
		"local_orig":    c.Orig.Local,
		"local_resp":    c.Resp.Local,
		"missed_bytes":  c.MissedBytes,
		"history":       c.History,
		"orig_pkts":     c.OrigPkts,
		"orig_ip_bytes": c.OrigIPBytes,
		"resp_pkts":     c.RespPkts,
		"resp_ip_bytes": c.RespIPBytes,
	}
	if c.Service != "" {
		m["service"] = c.Service
	}
	if c.Open {
		m["open"] = true
	}
	if c.VLAN != 0 {
		m["vlan"] = c.VLAN
	}
	if c.Tunnel != "" {
		m["tunnel"] = c.Tunnel
	}
	if c.Orig.MAC != "" {
		m["orig_l2_addr"] = c.Orig.MAC
	}
	if c.Resp.MAC != "" {
		m["resp_l2_addr"] = c.Resp.MAC
	}
	endpointFields(m, "orig_", &c.Orig)
	endpointFields(m, "resp_", &c.Resp)
	if len(c.DNS) > 0 {
		d := c.DNS[0]
		m["dns_query"] = d.Query
		m["dns_qtype"] = d.QType
		if d.RCode >= 0 {
			m["dns_rcode"] = d.RCode
		}
		if len(d.Answers) > 0 {
			m["dns_answers"] = d.Answers
		}
		m["dns_messages"] = len(c.DNS) + c.DNSDropped
	}
	if t := c.TLS; t != nil {
		setNonEmpty(m, "tls_sni", t.SNI)
		setNonEmpty(m, "tls_version", t.Version)
		setNonEmpty(m, "ja4", t.JA4)
		setNonEmpty(m, "ja3", t.JA3)
		if len(t.ALPN) > 0 {
			m["tls_alpn"] = t.ALPN
		}
	}
	if len(c.HTTP) > 0 {
		h := c.HTTP[0]
		setNonEmpty(m, "http_method", h.Method)
		setNonEmpty(m, "http_host", h.Host)
		setNonEmpty(m, "http_uri", h.URI)
		setNonEmpty(m, "http_user_agent", h.UserAgent)
		m["http_requests"] = len(c.HTTP)
		var body int64
		for _, r := range c.HTTP {
			body += r.RequestBodyLen
		}
		m["http_request_body_len"] = body
	}
	if ct := c.Content; ct != nil {
		m["cargo_counts"] = ct.Counts
		if len(ct.MessageTypes) > 0 {
			m["cargo_message_types"] = ct.MessageTypes
		}
		m["inspected_bytes"] = ct.Inspected
		m["uninspected_bytes"] = ct.Uninspected
	}
	if o := c.OT; o != nil {
		ot := map[string]any{"protocol": o.Protocol}
		if len(o.Functions) > 0 {
			ot["functions"] = o.Functions
		}
		if o.Writes > 0 {
			ot["writes"] = o.Writes
		}
		if o.Program > 0 {
			ot["program_transfers"] = o.Program
		}
		if o.ServerIsOrig {
			ot["server_is_orig"] = true
		}
		setNonEmpty(ot, "device", o.Device)
		m["ot"] = ot
	}
	if len(c.HostNames) > 0 {
		names := make([]map[string]any, 0, len(c.HostNames))
		for _, h := range c.HostNames {
			n := map[string]any{"name": h.Name, "source": h.Source}
			if h.Addr.IsValid() {
				n["addr"] = h.Addr.String()
			}
			setNonEmpty(n, "mac", h.MAC)
			names = append(names, n)
		}
		m["host_names"] = names
	}
	if len(c.Alerts) > 0 {
		m["alerts"] = c.Alerts
	}
	return m
}

func endpointFields(m map[string]any, prefix string, e *cw.Endpoint) {
	setNonEmpty(m, prefix+"name", e.Name)
	setNonEmpty(m, prefix+"country", e.Country)
	if e.ASN != 0 {
		m[prefix+"asn"] = e.ASN
	}
	setNonEmpty(m, prefix+"org", e.Org)
	setNonEmpty(m, prefix+"jurisdiction", e.Jurisdiction)
	if a := e.Asset; a != nil {
		setNonEmpty(m, prefix+"asset", a.Name)
		setNonEmpty(m, prefix+"role", a.Role)
		setNonEmpty(m, prefix+"zone", a.Zone)
	}
}

func setNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
