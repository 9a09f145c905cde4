package policy

import (
	"os"
	"strings"
	"testing"
)

// The documentation quotes the default policy verbatim and shows complete
// example policies; both must stay true.
func TestPolicyDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/POLICY.md")
	if err != nil {
		t.Skipf("docs not found at ../docs/POLICY.md: %v", err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(defaultYAML)+"```") {
		t.Error("docs/POLICY.md does not quote policy/default.yaml verbatim")
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	complete := 0
	for i, b := range blocks {
		b = b[:strings.Index(b, "```")]
		if strings.Contains(b, "home:") {
			complete++
		} else {
			b = "home: [DE]\n" + b // a fragment: one top-level section
		}
		if _, err := Parse("POLICY.md example", []byte(b)); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
	if complete < 3 {
		t.Errorf("found %d complete example policies, want the default and two examples", complete)
	}
}
