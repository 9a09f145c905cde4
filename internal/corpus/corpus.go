// Package corpus locates the shared test corpus (../shared/corpus beside
// the project root: real traffic and messages from other projects, never
// copied into the repository) for tests, and skips a test when it is
// absent, as it is in a checkout outside the team.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Root is the corpus folder, "" when it cannot be found. It is found from
// the module root (the nearest folder above the working directory with a
// go.mod), so a test in any package depth finds the same place.
func Root() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "corpus")
			if _, err := os.Stat(p); err != nil {
				return ""
			}
			return filepath.Clean(p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Path returns the corpus path of the joined parts, skipping t with a
// message naming what is missing when it is not there.
func Path(t testing.TB, parts ...string) string {
	t.Helper()
	root := Root()
	if root == "" {
		t.Skip("corpus not found: ../shared/corpus beside the project root is absent")
	}
	p := filepath.Join(append([]string{root}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus not found at %s: %v", p, err)
	}
	return p
}
