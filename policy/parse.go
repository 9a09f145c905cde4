package policy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cargowatch/cargowatch"
)

// Caps on what a policy may hold, so a hostile file cannot make the
// evaluator (which scans overrides linearly) slow or the process large.
const (
	maxOverrides = 10000
	maxRoles     = 1000
	maxRaise     = 4
	maxString    = 4096
)

// lineErr is an error at a line of the policy file.
type lineErr struct {
	line int
	msg  string
}

func (e *lineErr) Error() string { return e.msg }

func errAt(n *yaml.Node, format string, args ...any) error {
	return &lineErr{line: n.Line, msg: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse validates a policy. name is used in error messages, which read
// "policy: NAME:LINE: message".
func Parse(name string, data []byte) (p *Policy, err error) {
	defer func() {
		var le *lineErr
		if errors.As(err, &le) {
			err = fmt.Errorf("policy: %s:%d: %s", name, le.line, le.msg)
		}
	}()
	if len(data) > maxFile {
		return nil, fmt.Errorf("policy: %s: larger than %d bytes", name, maxFile)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &lineErr{line: line, msg: m[2]}
		}
		return nil, fmt.Errorf("policy: %s: %w", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("policy: %s: empty file", name)
	}
	root := doc.Content[0]
	p = &Policy{
		Name:          name,
		Watch:         map[string]Watch{},
		Roles:         map[string]Role{},
		ReportUnknown: true,
		Severity: Thresholds{
			NotAllowed: cargowatch.Low,
			Unknown:    cargowatch.Info,
			Role:       cargowatch.High,
			Raise:      []int64{1 << 20, 100 << 20},
		},
	}
	// Roles are finished after severity is read: their default severity
	// comes from severity.role wherever that key appears in the file.
	var inherit []string // roles without their own severity
	err = eachKey(root, func(k, v *yaml.Node) error {
		switch k.Value {
		case "version":
			n, err := intValue(v)
			if err != nil {
				return err
			}
			if n != 1 {
				return errAt(v, "version %d not supported (want 1)", n)
			}
		case "home":
			codes, err := countryList(v, false)
			if err != nil {
				return err
			}
			p.Home = codes
		case "allow":
			codes, err := countryList(v, true)
			if err != nil {
				return err
			}
			p.Allow = codes
		case "watch":
			return p.parseWatch(v)
		case "roles":
			return eachKey(v, func(k, v *yaml.Node) error {
				if len(p.Roles) >= maxRoles {
					return errAt(k, "more than %d roles", maxRoles)
				}
				r, explicit, err := parseRole(k, v)
				if err != nil {
					return err
				}
				if _, dup := p.Roles[r.Name]; dup {
					return errAt(k, "role %q defined twice (case-insensitive)", r.Name)
				}
				p.Roles[r.Name] = r
				if !explicit {
					inherit = append(inherit, r.Name)
				}
				return nil
			})
		case "jurisdictions":
			return p.parseOverrides(v)
		case "severity":
			return p.parseSeverity(v)
		case "unknown_country":
			s, err := enum(v, "report", "ignore")
			if err != nil {
				return err
			}
			p.ReportUnknown = s == "report"
		default:
			return unknownKey(k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range inherit {
		r := p.Roles[name]
		r.Severity = p.Severity.Role
		p.Roles[name] = r
	}
	if len(p.Home) == 0 {
		return nil, errAt(root, "home: at least one home jurisdiction is required")
	}
	p.home = map[string]bool{}
	for _, c := range p.Home {
		p.home[c] = true
	}
	p.allow = expand(p.Allow)
	return p, nil
}

// eachKey walks a mapping, rejecting duplicate keys and non-scalar keys.
func eachKey(n *yaml.Node, fn func(k, v *yaml.Node) error) error {
	if n.Kind == yaml.AliasNode {
		return errAt(n, "aliases are not supported")
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with nothing after it: an empty section
	}
	if n.Kind != yaml.MappingNode {
		return errAt(n, "want a mapping (key: value), got %s", kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return errAt(k, "want a plain key, got %s", kindName(k))
		}
		if prev, dup := seen[k.Value]; dup {
			return errAt(k, "key %q already defined at line %d", k.Value, prev)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return errAt(v, "aliases are not supported")
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func unknownKey(k *yaml.Node) error { return errAt(k, "unknown key %q", k.Value) }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "a number " + strconv.Quote(n.Value)
		case "!!bool":
			return "a boolean " + strconv.Quote(n.Value)
		}
		return "a string " + strconv.Quote(n.Value)
	}
	return "a document"
}

// str reads a string scalar; numbers are taken as written (a role named
// 7), booleans and nulls are refused as a sign of a misplaced value.
func str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float") {
		return "", errAt(n, "want a string, got %s", kindName(n))
	}
	if len(n.Value) > maxString {
		return "", errAt(n, "string longer than %d bytes", maxString)
	}
	return n.Value, nil
}

func intValue(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, errAt(n, "want an integer, got %s", kindName(n))
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		return 0, errAt(n, "integer %q out of range", n.Value)
	}
	return v, nil
}

func enum(n *yaml.Node, values ...string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", errAt(n, "want one of %s, got %s", strings.Join(values, ", "), kindName(n))
	}
	for _, v := range values {
		if n.Value == v {
			return v, nil
		}
	}
	return "", errAt(n, "%q: want one of %s", n.Value, strings.Join(values, ", "))
}

func severity(n *yaml.Node) (cargowatch.Severity, error) {
	s, err := enum(n, "info", "low", "medium", "high", "critical")
	if err != nil {
		return 0, err
	}
	return cargowatch.ParseSeverity(s)
}

// country reads one ISO 3166-1 alpha-2 code, or a group name when groups.
func country(n *yaml.Node, groupsOK bool) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", errAt(n, "want a country code, got %s", kindName(n))
	}
	c := n.Value
	if groupsOK && groups[c] != nil {
		return c, nil
	}
	if countries[c] {
		return c, nil
	}
	if up := strings.ToUpper(c); countries[up] || (groupsOK && groups[up] != nil) {
		return "", errAt(n, "%q: write codes in upper case (%s)", c, up)
	}
	if c == "UK" {
		return "", errAt(n, `unknown country code "UK": the ISO 3166-1 code of the United Kingdom is GB`)
	}
	if groupsOK {
		return "", errAt(n, "unknown country code or group %q (groups: EU, EEA, ADEQUACY)", c)
	}
	return "", errAt(n, "unknown country code %q", c)
}

// countryList reads a list of codes; a single scalar is taken as a list of one.
func countryList(n *yaml.Node, groupsOK bool) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if it.Kind == yaml.AliasNode {
			return nil, errAt(it, "aliases are not supported")
		}
		c, err := country(it, groupsOK)
		if err != nil {
			return nil, err
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

func (p *Policy) parseWatch(n *yaml.Node) error {
	return eachKey(n, func(k, v *yaml.Node) error {
		code, err := country(k, false)
		if err != nil {
			return err
		}
		w := Watch{Jurisdiction: code, Severity: cargowatch.Medium, Line: k.Line}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
			// Short form: CN: "legal basis".
			w.Basis = v.Value
		} else {
			err = eachKey(v, func(k, v *yaml.Node) error {
				switch k.Value {
				case "basis":
					w.Basis, err = str(v)
				case "severity":
					w.Severity, err = severity(v)
				default:
					return unknownKey(k)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		if strings.TrimSpace(w.Basis) == "" {
			return errAt(k, "watch %s: basis (the legal basis) is required", code)
		}
		if len(w.Basis) > maxString {
			return errAt(k, "watch %s: basis longer than %d bytes", code, maxString)
		}
		p.Watch[code] = w
		return nil
	})
}

// parseRole reads one role; explicit reports whether it set a severity.
func parseRole(k, v *yaml.Node) (r Role, explicit bool, err error) {
	name, err := str(k)
	if err != nil {
		return r, false, err
	}
	r = Role{Name: strings.ToLower(name), Line: k.Line}
	if r.Name == "" {
		return r, false, errAt(k, "empty role name")
	}
	sawAllow := false
	err = eachKey(v, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "internet":
			r.Internet, err = enum(v, InternetAllow, InternetDeny)
		case "allow":
			sawAllow = true
			r.Allow, err = countryList(v, true)
		case "severity":
			r.Severity, err = severity(v)
			explicit = err == nil
		default:
			return unknownKey(k)
		}
		return err
	})
	if err != nil {
		return r, false, err
	}
	if sawAllow && r.Internet != InternetDefault {
		return r, false, errAt(k, "role %s: set either internet or allow, not both", r.Name)
	}
	if sawAllow {
		// An empty list is kept as an empty (deny-all) map, not nil.
		r.allow = expand(r.Allow)
	}
	return r, explicit, nil
}

func (p *Policy) parseOverrides(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return errAt(n, "jurisdictions: want a list, got %s", kindName(n))
	}
	if len(n.Content) > maxOverrides {
		return errAt(n, "jurisdictions: more than %d entries", maxOverrides)
	}
	for _, it := range n.Content {
		if it.Kind != yaml.MappingNode {
			return errAt(it, "jurisdictions entry: want a mapping, got %s", kindName(it))
		}
		var o JurisdictionOverride
		var keys int
		err := eachKey(it, func(k, v *yaml.Node) error {
			switch k.Value {
			case "asn":
				keys++
				a, err := asn(v)
				if err != nil {
					return err
				}
				o.ASN = a
			case "prefix":
				keys++
				s, err := str(v)
				if err != nil {
					return err
				}
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					return errAt(v, "prefix %q: want CIDR such as 8.209.0.0/16", s)
				}
				o.Prefix = pfx.Masked()
			case "org":
				keys++
				s, err := str(v)
				if err != nil {
					return err
				}
				if strings.TrimSpace(s) == "" {
					return errAt(v, "org: empty substring would match every organisation")
				}
				o.OrgContains = s
			case "jurisdiction":
				c, err := country(v, false)
				if err != nil {
					return err
				}
				o.Jurisdiction = c
			case "source":
				s, err := str(v)
				if err != nil {
					return err
				}
				o.Source = s
			default:
				return unknownKey(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if keys != 1 {
			return errAt(it, "jurisdictions entry: set exactly one of asn, prefix, org")
		}
		if o.Jurisdiction == "" {
			return errAt(it, "jurisdictions entry: jurisdiction is required")
		}
		if strings.TrimSpace(o.Source) == "" {
			return errAt(it, "jurisdictions entry: source is required (say where the claim comes from)")
		}
		p.Jurisdictions = append(p.Jurisdictions, o)
	}
	return nil
}

func asn(n *yaml.Node) (uint32, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, errAt(n, "asn: want a number, got %s", kindName(n))
	}
	s := n.Value
	if n.Tag == "!!str" {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "AS"), "as")
	} else if n.Tag != "!!int" {
		return 0, errAt(n, "asn: want a number, got %s", kindName(n))
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, errAt(n, "asn %q: want 1..4294967295", n.Value)
	}
	return uint32(v), nil
}

func (p *Policy) parseSeverity(n *yaml.Node) error {
	return eachKey(n, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "not_allowed":
			p.Severity.NotAllowed, err = severity(v)
		case "unknown":
			p.Severity.Unknown, err = severity(v)
		case "role":
			p.Severity.Role, err = severity(v)
		case "raise":
			p.Severity.Raise, err = raiseList(v)
		default:
			return unknownKey(k)
		}
		return err
	})
}

func raiseList(n *yaml.Node) ([]int64, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, "raise: want a list of sizes, got %s", kindName(n))
	}
	if len(n.Content) > maxRaise {
		return nil, errAt(n, "raise: at most %d thresholds (severity has %d steps)", maxRaise, maxRaise)
	}
	var out []int64
	for _, it := range n.Content {
		b, err := size(it)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && b <= out[len(out)-1] {
			return nil, errAt(it, "raise: thresholds must be ascending")
		}
		out = append(out, b)
	}
	return out, nil
}

var units = map[string]float64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
}

// size reads a byte count: 1048576, "1MiB", "1.5 GB".
func size(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		return 0, errAt(n, "want a size such as 1MiB, got %s", kindName(n))
	}
	s := strings.TrimSpace(n.Value)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := units[unit]
	if err != nil || !ok {
		return 0, errAt(n, "size %q: want a number with optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB", n.Value)
	}
	v := f * mult
	if v < 1 || v > math.MaxInt64/2 || math.IsNaN(v) {
		return 0, errAt(n, "size %q out of range", n.Value)
	}
	return int64(v), nil
}
