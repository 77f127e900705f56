package cc

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written name checks accept exactly what CF's patterns do.
func TestNameChecks_matchThePatterns(t *testing.T) {
	checks := []struct {
		name    string
		pattern *regexp.Regexp
		check   func(string) bool
	}{
		{"app", regexp.MustCompile(`^[^\x00-\x1f\x7f]{1,255}$`), validAppName},
		{"buildpack", regexp.MustCompile(`^[A-Za-z0-9_.-]{1,250}$`), validBuildpackName},
		{"process type", regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`), validProcessType},
	}
	inputs := []string{"", "a", "web", "my-app_2", "my.app", "naïve app", "tab\there", "del\x7f", "nul\x00",
		"sp ace", "ünïcödé-名前", "\xff\xfe", "a/b", "web!", ".", "-",
		strings.Repeat("a", 250), strings.Repeat("a", 251), strings.Repeat("a", 255), strings.Repeat("a", 256),
		strings.Repeat("é", 255), strings.Repeat("é", 256)}
	for _, c := range checks {
		for _, in := range inputs {
			if got, want := c.check(in), c.pattern.MatchString(in); got != want {
				t.Errorf("%s name %q: check says %v, the pattern %v", c.name, in, got, want)
			}
		}
	}
}
