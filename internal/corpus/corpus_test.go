package corpus

import (
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	p := Path(t, "SOURCES.md") // skips outside the team's checkout
	if filepath.Base(filepath.Dir(p)) != "corpus" {
		t.Fatalf("Path = %s", p)
	}
}
