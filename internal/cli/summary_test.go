package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// `pando app` of a docker app shows the image it runs, pinned by digest,
// instead of a stack and buildpacks.
func TestApp_dockerAppShowsItsImage(t *testing.T) {
	const image = "registry.example/web@sha256:5b0f4c2d9a7e8f1b3c6d0e2f4a6b8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b"
	f := newFakeCF(t)
	f.appExists, f.appState, f.instances = true, "STARTED", 1
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v3/apps/"+appGUID+"/droplets/current" {
			return false
		}
		f.writeJSON(w, 200, map[string]any{
			"guid": dropGUID, "state": "STAGED", "stack": nil, "image": image, "created_at": "2026-11-26T03:25:55Z",
			"lifecycle": map[string]any{"type": "docker", "data": map[string]any{}}, "buildpacks": []any{},
		})
		return true
	}
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("app", "myapp"); err != nil {
		t.Fatalf("app: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	var shown string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "docker image:") {
			shown = strings.TrimSpace(strings.TrimPrefix(l, "docker image:"))
		}
		if strings.HasPrefix(l, "buildpacks:") || strings.HasPrefix(l, "stack:") {
			t.Errorf("a docker app shows %q", l)
		}
	}
	if shown != image {
		t.Errorf("docker image shown %q, want %q; output:\n%s", shown, image, out)
	}
}

// The since column is the instance's start as the server has it
// (pando_started_at), not now minus a whole-second uptime: it reads the
// same on every call.
func TestApp_sinceIsTheInstancesStart(t *testing.T) {
	const started = "2026-11-26T03:20:07Z"
	f := newFakeCF(t)
	f.appExists, f.appState, f.instances = true, "STARTED", 1
	f.stats = [][]statEntry{{{state: "RUNNING", startedAt: started}}}
	for i := range 2 {
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		if err := h.run("app", "myapp"); err != nil {
			t.Fatalf("app: %v\nstderr: %s", err, h.err)
		}
		var row string
		for _, l := range strings.Split(h.out.String(), "\n") {
			if strings.HasPrefix(l, "#0") {
				row = l
			}
		}
		if fields := strings.Fields(row); len(fields) < 3 || fields[2] != started {
			t.Errorf("call %d: instance row %q, want since %s", i+1, row, started)
		}
	}
}
