package layers

import (
	"regexp"
	"strings"
	"testing"
)

// TestIsDirName_matchesTheCacheDirPattern checks the hand-written matcher
// against the pattern it replaces.
func TestIsDirName_matchesTheCacheDirPattern(t *testing.T) {
	want := regexp.MustCompile(`^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})(-u[0-9]+-g[0-9]+-n[0-9]+)?$`)
	h64, h128 := strings.Repeat("ab12", 16), strings.Repeat("0f9e", 32)
	names := []string{
		"sha256-" + h64, "sha512-" + h128,
		"sha256-" + h64 + "-u0-g0-n65536", "sha512-" + h128 + "-u1879048192-g1879048192-n65536",
		"", "sha256-", "sha256-" + h64[:63], "sha256-" + h64 + "0", "sha256-" + strings.ToUpper(h64),
		"sha256-" + h128, "sha512-" + h64, "sha384-" + h64, "SHA256-" + h64,
		"sha256-" + h64 + "-", "sha256-" + h64 + "-u", "sha256-" + h64 + "-u1", "sha256-" + h64 + "-u1-g2",
		"sha256-" + h64 + "-u1-g2-n", "sha256-" + h64 + "-u1-g2-n3-", "sha256-" + h64 + "-u1-g2-n3x",
		"sha256-" + h64 + "-ux-g2-n3", "sha256-" + h64 + "-g2-u1-n3", "sha256-" + h64 + ".tmp",
		"sha256-" + h64[:10] + "g" + h64[11:], "tmp", "../sha256-" + h64,
	}
	for _, n := range names {
		if got := isDirName(n); got != want.MatchString(n) {
			t.Errorf("isDirName(%q) = %v, want %v", n, got, !got)
		}
	}
}
