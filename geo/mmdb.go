package geo

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// countryRecord decodes both layouts in use: GeoLite2/GeoIP2 Country and
// City (country.iso_code, falling back to registered_country) and the
// ip-location-db country files (country_code).
type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	CountryCode string `maxminddb:"country_code"`
}

// asnRecord is the GeoLite2-ASN layout, which the ip-location-db ASN
// databases share.
type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// openDB opens a MaxMind-format file and checks that its declared type can
// hold what we want from it, so `--country-db GeoLite2-ASN.mmdb` fails at
// start rather than yielding silence.
func openDB(path, want string) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s database %s: not a readable MaxMind DB file: %w", want, path, err)
	}
	t := strings.ToLower(r.Metadata.DatabaseType)
	bad := false
	switch want {
	case "country":
		// Country, City and Enterprise hold countries; ASN, ISP-only,
		// Connection-Type, Domain and Anonymous-IP do not.
		bad = strings.Contains(t, "asn") || strings.Contains(t, "connection-type") ||
			strings.Contains(t, "domain") || strings.Contains(t, "anonymous") || t == "geoip2-isp"
	case "ASN":
		bad = strings.Contains(t, "country") || strings.Contains(t, "city") ||
			strings.Contains(t, "connection-type") || strings.Contains(t, "domain") || strings.Contains(t, "anonymous")
	}
	if bad {
		r.Close()
		return nil, fmt.Errorf("%s database %s: its type is %q, which holds no %s data", want, path, r.Metadata.DatabaseType, want)
	}
	if r.Metadata.IPVersion != 4 && r.Metadata.IPVersion != 6 {
		r.Close()
		return nil, fmt.Errorf("%s database %s: unsupported IP version %d in metadata", want, path, r.Metadata.IPVersion)
	}
	// One lookup walks the tree and decodes a record, so a file whose
	// metadata is intact but whose body is not fails here, naming the file.
	probe := netip.MustParseAddr("1.1.1.1")
	var err2 error
	if want == "country" {
		_, err2 = lookupCountry(r, probe)
	} else {
		_, _, err2 = lookupASN(r, probe)
	}
	if err2 != nil {
		r.Close()
		return nil, fmt.Errorf("%s database %s: corrupt or unexpected layout: %w", want, path, err2)
	}
	return r, nil
}

// lookupCountry returns the ISO code a country database holds for a,
// "" when none. Decoding errors are returned so the caller can count them.
func lookupCountry(r *maxminddb.Reader, a netip.Addr) (string, error) {
	var rec countryRecord
	if err := r.Lookup(a).Decode(&rec); err != nil {
		return "", err
	}
	switch {
	case rec.Country.ISOCode != "":
		return normCountry(rec.Country.ISOCode), nil
	case rec.CountryCode != "":
		return normCountry(rec.CountryCode), nil
	}
	return normCountry(rec.RegisteredCountry.ISOCode), nil
}

func lookupASN(r *maxminddb.Reader, a netip.Addr) (uint32, string, error) {
	var rec asnRecord
	if err := r.Lookup(a).Decode(&rec); err != nil {
		return 0, "", err
	}
	return rec.Number, rec.Org, nil
}
