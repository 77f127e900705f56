package runc

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidID_matchesTheIDPattern checks the hand-written matcher against
// the pattern it replaces.
func TestValidID_matchesTheIDPattern(t *testing.T) {
	want := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	for _, id := range []string{
		"a", "Z", "0", "app-1f2e.x_y", strings.Repeat("a", 128), strings.Repeat("a", 129), "",
		"-a", ".a", "_a", "a/b", "a b", "a\\n", "é", "a:b", "a,b", "A" + strings.Repeat("-", 127), "..",
	} {
		if got := validID(id); got != want.MatchString(id) {
			t.Errorf("validID(%q) = %v, want %v", id, got, !got)
		}
	}
}
