package sqlite

import (
	"database/sql"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cargowatch/cargowatch"
)

// endpointColumns names the columns that hold one Endpoint, in the order
// endpointArgs and endpointRow use (see endpointDDL).
func endpointColumns(addr, port, p string) []string {
	cols := []string{addr, port}
	for _, c := range []string{"mac", "local", "name", "country", "asn", "org", "jurisdiction", "jurisdiction_source", "asset"} {
		cols = append(cols, p+"_"+c)
	}
	return cols
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func endpointArgs(e *cargowatch.Endpoint) ([]any, error) {
	asset, err := marshalNull(e.Asset)
	if err != nil {
		return nil, fmt.Errorf("asset: %w", err)
	}
	return []any{addrText(e.Addr), int64(e.Port), e.MAC, e.Local, e.Name, e.Country,
		int64(e.ASN), e.Org, e.Jurisdiction, e.JurisdictionSource, asset}, nil
}

// endpointRow receives one Endpoint's columns. Nullable types everywhere:
// a file written by another tool (or damaged) must give errors, not panics.
type endpointRow struct {
	addr, mac, name, country, org, jur, jurSrc, asset sql.NullString
	port, asn                                         sql.NullInt64
	local                                             sql.NullBool
}

func (r *endpointRow) dest() []any {
	return []any{&r.addr, &r.port, &r.mac, &r.local, &r.name, &r.country, &r.asn, &r.org, &r.jur, &r.jurSrc, &r.asset}
}

func (r *endpointRow) endpoint(e *cargowatch.Endpoint) error {
	if r.addr.String != "" {
		a, err := netip.ParseAddr(r.addr.String)
		if err != nil {
			return err
		}
		e.Addr = a
	}
	if r.port.Int64 < 0 || r.port.Int64 > 0xffff {
		return fmt.Errorf("port %d out of range", r.port.Int64)
	}
	if r.asn.Int64 < 0 || r.asn.Int64 > 0xffffffff {
		return fmt.Errorf("asn %d out of range", r.asn.Int64)
	}
	e.Port = uint16(r.port.Int64)
	e.ASN = uint32(r.asn.Int64)
	e.MAC, e.Local, e.Name = r.mac.String, r.local.Bool, r.name.String
	e.Country, e.Org = r.country.String, r.org.String
	e.Jurisdiction, e.JurisdictionSource = r.jur.String, r.jurSrc.String
	return unmarshalNull(r.asset, &e.Asset)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
