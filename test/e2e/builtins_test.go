package e2e

import (
	"fmt"
	"slices"
	"testing"
)

// builtins are the builtin buildpacks in Cloud Foundry's detection order.
var builtins = []string{"staticfile_buildpack", "java_buildpack", "ruby_buildpack", "nodejs_buildpack", "go_buildpack", "python_buildpack", "binary_buildpack"}

func TestBuildpacks_aNewServerListsTheSevenBuiltinsInDetectionOrder(t *testing.T) {
	t.Parallel()
	s := ownServer(t)

	r := s.mustPando(t, "buildpacks")
	patterns := make([]string, len(builtins))
	for i, name := range builtins {
		patterns[i] = fmt.Sprintf(`(?m)^%d\s+%s\s`, i+1, name)
	}
	requireOutput(t, r, patterns...)

	// What `cf buildpacks` reads: GET /v3/buildpacks, by position.
	var page struct {
		Resources []struct {
			Name     string `json:"name"`
			Position int    `json:"position"`
			Enabled  bool   `json:"enabled"`
		} `json:"resources"`
	}
	s.api(t, "/v3/buildpacks?order_by=position&per_page=5000", &page)
	var names []string
	for i, bp := range page.Resources {
		if bp.Position != i+1 || !bp.Enabled {
			t.Errorf("buildpack %s: position %d enabled %v, want position %d enabled", bp.Name, bp.Position, bp.Enabled, i+1)
		}
		names = append(names, bp.Name)
	}
	if !slices.Equal(names, builtins) {
		t.Fatalf("GET /v3/buildpacks: %v, want %v", names, builtins)
	}
}
