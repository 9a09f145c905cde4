package policy

import "strings"

// iso3166 holds the officially assigned ISO 3166-1 alpha-2 codes (249) plus
// XK, the user-assigned code for Kosovo that geolocation databases use.
// Policies are checked against it so that a typo such as "DK" for "DE" is at
// least a real country, and "UK" (not ISO) is caught.
const iso3166 = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"XK " +
	"YE YT " +
	"ZA ZM ZW"

var countries = func() map[string]bool {
	m := make(map[string]bool, 256)
	for _, c := range strings.Fields(iso3166) {
		m[c] = true
	}
	return m
}()

// IsCountry reports whether code is an ISO 3166-1 alpha-2 code (upper case).
func IsCountry(code string) bool { return countries[code] }

// Group names usable in allow lists.
const (
	GroupEU       = "EU"
	GroupEEA      = "EEA"
	GroupAdequacy = "ADEQUACY"
)

// eu is the 27 member states, plus the outermost regions and Åland that
// carry their own ISO code but are inside the Union (TFEU art. 349 and 355),
// because geolocation databases report e.g. RE for Réunion, not FR.
var eu = strings.Fields("AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE HU " +
	"GF GP MQ RE YT MF AX")

// eeaExtra are the EEA members outside the EU (EEA Agreement).
var eeaExtra = strings.Fields("IS LI NO")

// adequacy lists the third countries with an EU adequacy decision under
// GDPR art. 45, as listed by the European Commission on
// https://commission.europa.eu/law/law-topic/data-protection/international-dimension-data-protection/adequacy-decisions_en
// (checked 2026-11): Andorra, Argentina, Canada (commercial organisations
// under PIPEDA only), Faroe Islands, Guernsey, Israel, Isle of Man, Japan,
// Jersey, New Zealand, Republic of Korea, Switzerland, United Kingdom
// (renewed after the 2025 review), Uruguay, the United States (only
// organisations certified under the EU-US Data Privacy Framework, decision
// (EU) 2023/1795) and Brazil (implementing decision (EU) 2026/179 of
// 26 January 2026). The European Patent Organisation (decision of
// 15 July 2025) is an international organisation without a country code, so
// it cannot appear here; allow its prefixes by country (DE, NL) instead.
//
// CA and US are partial decisions: the network cannot tell whether the
// operator is certified, so a policy that needs certainty lists countries
// explicitly instead of using ADEQUACY.
var adequacy = strings.Fields("AD AR CA FO GG IL IM JP JE NZ KR CH GB UY US BR")

// groups maps a group name to its member countries.
var groups = map[string][]string{
	GroupEU:       eu,
	GroupEEA:      append(append([]string{}, eu...), eeaExtra...),
	GroupAdequacy: adequacy,
}

// Group returns the member countries of a group name (EU, EEA, ADEQUACY),
// nil when name is not a group.
func Group(name string) []string {
	g := groups[name]
	if g == nil {
		return nil
	}
	return append([]string(nil), g...)
}
