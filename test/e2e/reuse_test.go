package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestPush_unchangedRepushReusesTheDropletAndRestageStages: a second
// `pando push` of the same files with the same settings runs no staging
// and starts the droplet it already has, saying so; `pando restage`
// stages anyway; a changed file stages again.
func TestPush_unchangedRepushReusesTheDropletAndRestageStages(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "droplet-reuse"
	host := name + ".localhost"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "same files\n", "Staticfile": ""})
	// A named buildpack: buildpacks other tests add to this server do not
	// change this app's staging inputs.
	push := func() result { return s.mustPando(t, "push", name, "-p", dir, "-b", "staticfile_buildpack") }

	first := push()
	if strings.Contains(first.out(), "Reusing droplet") {
		t.Fatalf("the first push reused a droplet:\n%s", first)
	}
	droplet := regexp.MustCompile(`Reusing droplet ([0-9a-f-]{36}) \(staged `)

	second := push()
	requireOutput(t, second, `Reusing droplet [0-9a-f-]{36} \(staged .*\): staging inputs unchanged`, `web: 1 of 1 instances running`)
	if strings.Contains(second.out(), "Creating container") {
		t.Fatalf("the unchanged push staged:\n%s", second)
	}
	reused := droplet.FindStringSubmatch(second.out())[1]
	if body := s.curlRoute(t, host, "/"); body != "same files\n" {
		t.Fatalf("GET / after the reuse = %q", body)
	}

	re := s.mustPando(t, "restage", name)
	if strings.Contains(re.out(), "Reusing droplet") {
		t.Fatalf("restage reused the droplet:\n%s", re)
	}
	requireOutput(t, re, `web: 1 of 1 instances running`)

	// The restage made a new droplet from the same inputs: the next
	// unchanged push reuses that one, the newest.
	third := push()
	requireOutput(t, third, `Reusing droplet`)
	if m := droplet.FindStringSubmatch(third.out()); m[1] == reused {
		t.Errorf("the push after restage reused the older droplet %s", reused)
	}

	writeFiles(t, dir, map[string]string{"index.html": "changed\n"})
	changed := push()
	if strings.Contains(changed.out(), "Reusing droplet") {
		t.Fatalf("a push of a changed file reused the droplet:\n%s", changed)
	}
	if body := s.curlRoute(t, host, "/"); body != "changed\n" {
		t.Fatalf("GET / after the changed push = %q", body)
	}
}
