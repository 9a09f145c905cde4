package geo

import (
	"slices"
	"strings"
)

// EU lists the 27 member states of the European Union (ISO 3166-1 alpha-2;
// Greece is GR, not the EU's own "EL").
var EU = []string{
	"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
	"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
}

// EEA is the European Economic Area: the EU plus Iceland, Liechtenstein and
// Norway, where the GDPR applies through the EEA Agreement.
var EEA = append(slices.Clone(EU), "IS", "LI", "NO")

// Adequacy lists the countries and territories with an EU adequacy decision
// under GDPR art. 45, as of 2026: Andorra, Argentina, Brazil (Implementing
// Decision (EU) 2026/179 of 26 January 2026), Canada (commercial
// organisations under PIPEDA only), Faroe Islands, Guernsey, Israel, Isle of
// Man, Japan, Jersey, New Zealand, Republic of Korea, Switzerland, the
// United Kingdom (renewed December 2025), Uruguay, and the United States
// (only organisations certified under the EU-US Data Privacy Framework,
// Implementing Decision (EU) 2023/1795).
// Source: https://commission.europa.eu/law/law-topic/data-protection/international-dimension-data-protection/adequacy-decisions_en
var Adequacy = []string{
	"AD", "AR", "BR", "CA", "CH", "FO", "GB", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "US", "UY",
}

// AdequacyPartial are the Adequacy entries whose decision covers only some
// recipients (Canada: commercial organisations; United States: DPF-certified
// organisations), so policy can treat them with care.
var AdequacyPartial = []string{"CA", "US"}

// IsEU, IsEEA and IsAdequate report membership of the lists above.
func IsEU(cc string) bool       { return slices.Contains(EU, strings.ToUpper(cc)) }
func IsEEA(cc string) bool      { return slices.Contains(EEA, strings.ToUpper(cc)) }
func IsAdequate(cc string) bool { return slices.Contains(Adequacy, strings.ToUpper(cc)) }

// CountryName returns the English short name for an ISO 3166-1 alpha-2 code
// ("DE" → "Germany"); the code itself when unknown, "" for "".
func CountryName(cc string) string {
	if n, ok := countryNames[strings.ToUpper(cc)]; ok {
		return n
	}
	return cc
}

// normCountry turns what a database says into an ISO code or "": iploc
// and some databases use "-", "ZZ" or "" for unknown or reserved space.
func normCountry(s string) string {
	if len(s) != 2 {
		return ""
	}
	if !isAlpha2(s) {
		s = strings.ToUpper(s)
	}
	if !isAlpha2(s) || s == "ZZ" {
		return ""
	}
	return s
}
