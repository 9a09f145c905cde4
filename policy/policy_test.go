package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargowatch/cargowatch"
)

func TestCountryTables(t *testing.T) {
	if got := len(countries); got != 250 {
		t.Errorf("ISO 3166-1 table has %d codes, want 249 + XK = 250", got)
	}
	for name, members := range groups {
		for _, c := range members {
			if !IsCountry(c) {
				t.Errorf("group %s member %q is not an ISO code", name, c)
			}
		}
	}
	// 27 member states plus 7 separately coded EU territories.
	if n := len(Group(GroupEU)); n != 34 {
		t.Errorf("EU has %d codes, want 34", n)
	}
	if n := len(Group(GroupEEA)); n != 37 {
		t.Errorf("EEA has %d codes, want 37", n)
	}
	for _, c := range []string{"GB", "CH", "JP", "KR", "US", "BR", "CA"} {
		if !contains(Group(GroupAdequacy), c) {
			t.Errorf("ADEQUACY lacks %s", c)
		}
	}
	for _, c := range []string{"CN", "RU", "SG", "IN"} {
		if contains(Group(GroupAdequacy), c) {
			t.Errorf("ADEQUACY wrongly holds %s", c)
		}
	}
	if Group("NATO") != nil {
		t.Error("unknown group should be nil")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestDefault(t *testing.T) {
	p := Default()
	if len(p.Home) != 1 || p.Home[0] != "DE" {
		t.Errorf("home = %v, want [DE]", p.Home)
	}
	for _, j := range []string{"CN", "RU", "IR", "KP"} {
		w, ok := p.Watch[j]
		if !ok || w.Basis == "" {
			t.Errorf("default does not watch %s with a basis", j)
		}
	}
	for _, r := range []string{"crane-plc", "plc", "hmi", "scada", "ot"} {
		if p.Roles[r].Internet != InternetDeny {
			t.Errorf("role %s: internet = %q, want deny", r, p.Roles[r].Internet)
		}
		if p.Roles[r].Severity != cargowatch.High {
			t.Errorf("role %s: severity %v, want high from severity.role", r, p.Roles[r].Severity)
		}
	}
	if got := p.Severity.Raise; len(got) != 2 || got[0] != 1<<20 || got[1] != 100<<20 {
		t.Errorf("raise = %v", got)
	}
	if !strings.Contains(string(DefaultYAML()), "National Intelligence Law") {
		t.Error("DefaultYAML lost its text")
	}
}

var (
	ipDE  = netip.MustParseAddr("194.25.0.60")
	ipAli = netip.MustParseAddr("8.209.72.15")
	ipX   = netip.MustParseAddr("203.0.113.9")
	local = cargowatch.Endpoint{Addr: netip.MustParseAddr("10.1.2.3"), Local: true}
)

func remote(a netip.Addr, country, juris string) cargowatch.Endpoint {
	return cargowatch.Endpoint{Addr: a, Country: country, Jurisdiction: juris}
}

func withRole(role string) cargowatch.Endpoint {
	l := local
	l.Asset = &cargowatch.Asset{Name: "x", Role: role}
	return l
}

const custom = `
home: [NL]
allow: [EU, US]
watch:
  CN: "National Intelligence Law 2017 art. 7"
  RU: {basis: "374-FZ", severity: critical}
roles:
  customs-gateway: {allow: [NL, DE]}
  office: {internet: allow}
  sensor: {allow: []}
  crane-plc: {internet: deny, severity: critical}
jurisdictions:
  - prefix: 8.209.0.0/16
    jurisdiction: CN
    source: "Alibaba Cloud (Singapore) Pte, Alibaba Group, Hangzhou"
  - asn: AS4134
    jurisdiction: CN
    source: "China Telecom"
  - org: huawei cloud
    jurisdiction: CN
    source: "Huawei Technologies, Shenzhen"
unknown_country: ignore
severity:
  not_allowed: medium
  raise: [10MB]
`

func TestEvaluate(t *testing.T) {
	def := Default()
	cus, err := Parse("custom.yaml", []byte(custom))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		p        *Policy
		local    cargowatch.Endpoint
		remote   cargowatch.Endpoint
		allowed  bool
		rule     string
		sev      cargowatch.Severity
		watched  bool
		basisHas string
	}{
		{"remote local", def, local, cargowatch.Endpoint{Addr: ipX, Local: true, Country: "CN"}, true, RuleOutOfScope, 0, false, ""},
		{"private remote", def, local, remote(netip.MustParseAddr("192.168.1.1"), "CN", ""), true, RuleOutOfScope, 0, false, ""},
		{"cgnat remote", def, local, remote(netip.MustParseAddr("100.100.1.1"), "CN", ""), true, RuleOutOfScope, 0, false, ""},
		{"multicast", def, local, remote(netip.MustParseAddr("239.255.255.250"), "", ""), true, RuleOutOfScope, 0, false, ""},
		{"home", def, local, remote(ipDE, "DE", "DE"), true, "home DE", 0, false, ""},
		{"eea member", def, local, remote(ipX, "FR", ""), true, "allow EEA", 0, false, ""},
		{"eea outside eu", def, local, remote(ipX, "NO", "NO"), true, "allow EEA", 0, false, ""},
		{"adequacy", def, local, remote(ipX, "US", "US"), true, "allow ADEQUACY", 0, false, ""},
		{"lower-case geo", def, local, remote(ipX, "jp", ""), true, "allow ADEQUACY", 0, false, ""},
		{"cn cloud in DE", def, local, remote(ipAli, "DE", "CN"), false, "watch CN", cargowatch.High, true, "National Intelligence Law"},
		{"server in RU", def, local, remote(ipX, "RU", "RU"), false, "watch RU", cargowatch.High, true, "374-FZ"},
		{"server in CN, US operator", def, local, remote(ipX, "CN", "US"), false, "watch CN (server country)", cargowatch.High, true, "Data Security Law"},
		{"KP critical", def, local, remote(ipX, "KP", ""), false, "watch KP", cargowatch.Critical, true, "1718"},
		{"not allowed", def, local, remote(ipX, "SG", "SG"), false, RuleNotAllowed, cargowatch.Low, false, ""},
		{"unknown country", def, local, remote(ipX, "", ""), false, RuleUnknown, cargowatch.Info, false, ""},
		{"ot to home", def, withRole("crane-plc"), remote(ipDE, "DE", ""), false, "role crane-plc: internet deny", cargowatch.High, false, ""},
		{"ot role case", def, withRole("Crane-PLC"), remote(ipDE, "DE", ""), false, "role crane-plc: internet deny", cargowatch.High, false, ""},
		{"ot to watched keeps basis", def, withRole("plc"), remote(ipAli, "DE", "CN"), false, "role plc: internet deny", cargowatch.High, true, "National Intelligence Law"},
		{"ot to KP takes higher", def, withRole("scada"), remote(ipX, "KP", "KP"), false, "role scada: internet deny", cargowatch.Critical, true, "1718"},
		{"ot local peer", def, withRole("plc"), remote(netip.MustParseAddr("10.9.9.9"), "", ""), true, RuleOutOfScope, 0, false, ""},
		{"unlisted role", def, withRole("wms"), remote(ipX, "FR", ""), true, "allow EEA", 0, false, ""},
		{"role allow hit", cus, withRole("customs-gateway"), remote(ipDE, "DE", "DE"), true, "role customs-gateway: allow DE", 0, false, ""},
		{"role allow miss", cus, withRole("customs-gateway"), remote(ipX, "FR", "FR"), false, "role customs-gateway: FR not in its allow list", cargowatch.High, false, ""},
		{"role allow unknown", cus, withRole("customs-gateway"), remote(ipX, "", ""), false, "role customs-gateway: country unknown", cargowatch.High, false, ""},
		{"role allow, watched operator", cus, withRole("customs-gateway"), remote(ipAli, "DE", ""), false, "watch CN", cargowatch.Medium, true, "art. 7"},
		{"role empty allow denies all", cus, withRole("sensor"), remote(ipX, "NL", ""), false, "role sensor: NL not in its allow list", cargowatch.High, false, ""},
		{"role internet allow", cus, withRole("office"), remote(ipX, "SG", ""), true, "role office: internet allow", 0, false, ""},
		{"role internet allow, watched", cus, withRole("office"), remote(ipX, "RU", ""), false, "watch RU", cargowatch.Critical, true, "374-FZ"},
		{"role own severity", cus, withRole("crane-plc"), remote(ipX, "NL", ""), false, "role crane-plc: internet deny", cargowatch.Critical, false, ""},
		{"custom home", cus, local, remote(ipX, "NL", ""), true, "home NL", 0, false, ""},
		{"custom allow country", cus, local, remote(ipX, "US", ""), true, "allow US", 0, false, ""},
		{"custom not allowed severity", cus, local, remote(ipX, "GB", ""), false, RuleNotAllowed, cargowatch.Medium, false, ""},
		{"unknown ignored", cus, local, remote(ipX, "", ""), true, "country unknown (ignored)", 0, false, ""},
		{"prefix override", cus, local, remote(ipAli, "DE", ""), false, "watch CN", cargowatch.Medium, true, "art. 7"},
		{"asn override", cus, local, cargowatch.Endpoint{Addr: ipX, Country: "FR", ASN: 4134}, false, "watch CN", cargowatch.Medium, true, ""},
		{"org override", cus, local, cargowatch.Endpoint{Addr: ipX, Country: "IE", Org: "HUAWEI CLOUDS (IE)"}, false, "watch CN", cargowatch.Medium, true, ""},
		{"no override", cus, local, cargowatch.Endpoint{Addr: ipX, Country: "IE", Org: "Amazon", ASN: 16509}, true, "allow EU", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Evaluate(tt.local, tt.remote)
			if d.Allowed != tt.allowed || d.Rule != tt.rule || d.Watched != tt.watched {
				t.Fatalf("got %+v, want allowed=%v rule=%q watched=%v", d, tt.allowed, tt.rule, tt.watched)
			}
			if !d.Allowed && d.Severity != tt.sev {
				t.Errorf("severity %v, want %v", d.Severity, tt.sev)
			}
			if !strings.Contains(d.LegalBasis, tt.basisHas) || (tt.watched != (d.LegalBasis != "")) {
				t.Errorf("legal basis %q, want it to contain %q", d.LegalBasis, tt.basisHas)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	cus, err := Parse("c.yaml", []byte(`
home: [DE]
jurisdictions:
  - {prefix: 8.209.0.0/16, jurisdiction: CN, source: wide}
  - {prefix: 8.209.72.0/24, jurisdiction: HK, source: narrow}
  - {asn: 45102, jurisdiction: CN, source: asn}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ep        cargowatch.Endpoint
		juris, by string
	}{
		{cargowatch.Endpoint{Addr: ipAli, ASN: 45102}, "HK", "narrow"},
		{cargowatch.Endpoint{Addr: netip.MustParseAddr("8.209.1.1")}, "CN", "wide"},
		{cargowatch.Endpoint{Addr: ipX, ASN: 45102, Jurisdiction: "SG"}, "CN", "asn"},
		{cargowatch.Endpoint{Addr: ipX, ASN: 1, Jurisdiction: "SG", JurisdictionSource: "geo"}, "SG", "geo"},
		{cargowatch.Endpoint{Addr: netip.MustParseAddr("::ffff:8.209.1.1")}, "CN", "wide"},
	}
	for _, tt := range tests {
		got := cus.Resolve(tt.ep)
		if got.Jurisdiction != tt.juris || got.JurisdictionSource != tt.by {
			t.Errorf("Resolve(%v) = %s/%s, want %s/%s", tt.ep.Addr, got.Jurisdiction, got.JurisdictionSource, tt.juris, tt.by)
		}
	}
}

func TestRaise(t *testing.T) {
	p := Default()
	tests := []struct {
		base  cargowatch.Severity
		bytes int64
		want  cargowatch.Severity
	}{
		{cargowatch.Low, 0, cargowatch.Low},
		{cargowatch.Low, 1<<20 - 1, cargowatch.Low},
		{cargowatch.Low, 1 << 20, cargowatch.Medium},
		{cargowatch.Low, 100 << 20, cargowatch.High},
		{cargowatch.High, 100 << 20, cargowatch.Critical},
		{cargowatch.Critical, 1 << 40, cargowatch.Critical},
		{cargowatch.Info, 5 << 20, cargowatch.Low},
	}
	for _, tt := range tests {
		if got := p.Raise(tt.base, tt.bytes); got != tt.want {
			t.Errorf("Raise(%v, %d) = %v, want %v", tt.base, tt.bytes, got, tt.want)
		}
	}
}

func TestParseValues(t *testing.T) {
	p, err := Parse("v.yaml", []byte(`
version: 1
home: DE
allow: [EEA, EEA, CH]
severity:
  raise: [1048576, "1.5 MB", 2GiB, 1TB]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Home) != 1 || len(p.Allow) != 2 {
		t.Errorf("home %v allow %v: want scalar home and deduplicated allow", p.Home, p.Allow)
	}
	want := []int64{1 << 20, 1500000, 2 << 30, 1e12}
	for i, w := range want {
		if p.Severity.Raise[i] != w {
			t.Errorf("raise[%d] = %d, want %d", i, p.Severity.Raise[i], w)
		}
	}
	if got := p.AllowedCountries(); !contains(got, "CH") || !contains(got, "DE") || contains(got, "US") {
		t.Errorf("AllowedCountries = %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"typo key", "home: [DE]\nalow: [EU]\n", `policy: t.yaml:2: unknown key "alow"`},
		{"unknown country", "home: [DE]\nallow:\n  - EU\n  - XX\n", `policy: t.yaml:4: unknown country code or group "XX" (groups: EU, EEA, ADEQUACY)`},
		{"UK", "home: [DE]\nallow: [UK]\n", `policy: t.yaml:2: unknown country code "UK": the ISO 3166-1 code of the United Kingdom is GB`},
		{"lower case", "home: [de]\n", `policy: t.yaml:1: "de": write codes in upper case (DE)`},
		{"group as home", "home: [EU]\n", `policy: t.yaml:1: unknown country code "EU"`},
		{"no home", "allow: [EU]\n", `policy: t.yaml:1: home: at least one home jurisdiction is required`},
		{"wrong type", "home: [DE]\nwatch: [CN]\n", `policy: t.yaml:2: want a mapping (key: value), got a list`},
		{"watch no basis", "home: [DE]\nwatch:\n  CN: {severity: high}\n", `policy: t.yaml:3: watch CN: basis (the legal basis) is required`},
		{"bad severity", "home: [DE]\nwatch:\n  CN:\n    basis: x\n    severity: severe\n", `policy: t.yaml:5: "severe": want one of info, low, medium, high, critical`},
		{"watch key typo", "home: [DE]\nwatch:\n  RU:\n    basis: x\n    sev: high\n", `policy: t.yaml:5: unknown key "sev"`},
		{"role bad internet", "home: [DE]\nroles:\n  plc: {internet: no}\n", `policy: t.yaml:3: "no": want one of allow, deny`},
		{"role both", "home: [DE]\nroles:\n  plc:\n    internet: deny\n    allow: [DE]\n", `policy: t.yaml:3: role plc: set either internet or allow, not both`},
		{"role bool", "home: [DE]\nroles:\n  plc: {internet: true}\n", `policy: t.yaml:3: want one of allow, deny, got a boolean "true"`},
		{"override two keys", "home: [DE]\njurisdictions:\n  - asn: 1\n    org: x\n    jurisdiction: CN\n    source: s\n", `policy: t.yaml:3: jurisdictions entry: set exactly one of asn, prefix, org`},
		{"override no source", "home: [DE]\njurisdictions:\n  - asn: 45102\n    jurisdiction: CN\n", `policy: t.yaml:3: jurisdictions entry: source is required (say where the claim comes from)`},
		{"override bad prefix", "home: [DE]\njurisdictions:\n  - prefix: 8.209.0.0/33\n    jurisdiction: CN\n    source: s\n", `policy: t.yaml:3: prefix "8.209.0.0/33": want CIDR such as 8.209.0.0/16`},
		{"override bad asn", "home: [DE]\njurisdictions:\n- asn: -5\n  jurisdiction: CN\n  source: s\n", `policy: t.yaml:3: asn "-5": want 1..4294967295`},
		{"override not list", "home: [DE]\njurisdictions: {asn: 1}\n", `policy: t.yaml:2: jurisdictions: want a list, got a mapping`},
		{"duplicate key", "home: [DE]\nallow: [EU]\nhome: [NL]\n", `policy: t.yaml:3: key "home" already defined at line 1`},
		{"raise descending", "home: [DE]\nseverity:\n  raise:\n    - 100MiB\n    - 1MiB\n", `policy: t.yaml:5: raise: thresholds must be ascending`},
		{"raise bad unit", "home: [DE]\nseverity:\n  raise: [1 parsec]\n", `policy: t.yaml:3: size "1 parsec": want a number with optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB`},
		{"version", "version: 2\nhome: [DE]\n", `policy: t.yaml:1: version 2 not supported (want 1)`},
		{"alias", "home: &h [DE]\nallow: *h\n", `policy: t.yaml:2: aliases are not supported`},
		{"yaml syntax", "home: [DE\nallow: [EU]\n", `policy: t.yaml:1: did not find expected ',' or ']'`},
		{"not a mapping", "- DE\n", `policy: t.yaml:1: want a mapping (key: value), got a list`},
		{"empty", "", `policy: t.yaml: empty file`},
		{"unknown_country", "home: [DE]\nunknown_country: drop\n", `policy: t.yaml:2: "drop": want one of report, ignore`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("parsed %+v, want error %q", p, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(good, []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(good)
	if err != nil || p.Name != good || p.Home[0] != "NL" {
		t.Fatalf("Load = %v, %v", p, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "policy: open ") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFile+10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "not a policy file") {
		t.Errorf("big file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte(custom))
	f.Add([]byte("home: [DE]\nalow: [EU]\n"))
	f.Add([]byte("home: &a [DE]\nallow: *a\n"))
	f.Add([]byte("home: [DE]\njurisdictions:\n  - {prefix: ::/0, jurisdiction: CN, source: s}\nseverity: {raise: [0.5KiB]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy: fuzz.yaml") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if len(p.Home) == 0 {
			t.Fatal("parsed policy without home")
		}
		for _, c := range p.AllowedCountries() {
			if !IsCountry(c) {
				t.Fatalf("allowed %q is not a country", c)
			}
		}
		// Evaluate must not panic on a parsed policy.
		p.Evaluate(withRole("plc"), remote(ipAli, "DE", "CN"))
		p.Evaluate(local, cargowatch.Endpoint{Addr: ipX, ASN: 1, Org: "x"})
	})
}

func TestAssetAllowListStandsInForTheRole(t *testing.T) {
	p := Default()
	local := func(role string, allow ...string) cargowatch.Endpoint {
		return cargowatch.Endpoint{Addr: netip.MustParseAddr("10.0.0.5"), Local: true,
			Asset: &cargowatch.Asset{Name: "wms-01", Role: role, Allow: allow}}
	}
	us := cargowatch.Endpoint{Addr: netip.MustParseAddr("104.16.0.1"), Country: "US", Jurisdiction: "US"}
	de := cargowatch.Endpoint{Addr: netip.MustParseAddr("80.150.0.1"), Country: "DE", Jurisdiction: "DE"}
	for _, tc := range []struct {
		name    string
		local   cargowatch.Endpoint
		remote  cargowatch.Endpoint
		allowed bool
		rule    string
	}{
		{"no list: global allow admits US", local("wms"), us, true, "allow ADEQUACY"},
		{"list DE: US denied", local("wms", "DE"), us, false, "asset wms-01: US not in its allow list"},
		{"list DE: DE allowed", local("wms", "DE"), de, true, "asset wms-01: allow DE"},
		{"list beats an OT role's internet deny", local("crane-plc", "EEA"), de, true, "asset wms-01: allow EEA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Evaluate(tc.local, tc.remote)
			if d.Allowed != tc.allowed || d.Rule != tc.rule {
				t.Fatalf("got %+v, want allowed=%v rule=%q", d, tc.allowed, tc.rule)
			}
		})
	}
	if !ValidAllow("EEA") || !ValidAllow("DE") || ValidAllow("allow=DE") {
		t.Error("ValidAllow")
	}
}
