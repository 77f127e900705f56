package cli

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPush_emptyDirectoryIsRefusedBeforeAnyAPICall(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	// Only files push leaves out.
	writeFiles(t, app, map[string]string{".cfignore": "*.log\n", "debug.log": "noise\n", ".git/config": "[core]\n"})
	err := h.run("push", "myapp", "-p", app)
	if err == nil {
		t.Fatal("push of an empty directory succeeded")
	}
	if want := "No app files found in '" + app + "'"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("API calls made: %v", reqs)
	}
}

func TestPush_appDeletedWhileStagingIsSaidPlainly(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	h.env.drainIdle = 20 * time.Millisecond
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "GET" && r.URL.Path == "/pando/v1/builds/"+buildGUID {
			f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Build not found")
			return true
		}
		return false
	}
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"index.html": "hi"})
	err := h.run("push", "myapp", "-p", app)
	if err == nil {
		t.Fatal("push succeeded")
	}
	if !strings.Contains(err.Error(), "the app was deleted while it was staging") || strings.Contains(err.Error(), "Build not found") {
		t.Errorf("err = %v", err)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "/v3/builds/") || strings.Contains(r, "current_droplet") {
			t.Errorf("after the build was gone: %s", r)
		}
	}
}

// The droplet is made current and the app restarted while the staging
// output's last lines are drained: here the last line comes only once the
// restart was asked for, so a CLI that restarted after the drain would
// wait out drainMax and lose it.
func TestPush_restartsWhileTheStagingOutputDrains(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t) // drainIdle and drainMax 10 s
	h.loggedIn(f, time.Hour)
	f.lastLine = "Staging complete"
	f.lastLineGate = make(chan struct{})
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	var once sync.Once
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/actions/restart") {
			once.Do(func() { close(f.lastLineGate) })
		}
		return false
	}
	start := time.Now()
	if err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1"); err != nil {
		t.Fatalf("push: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	line, waiting := strings.Index(out, "   Staging complete"), strings.Index(out, "Waiting for app myapp to start")
	if line < 0 || waiting < 0 || line > waiting {
		t.Fatalf("want the last staging line, then the wait for the start (push took %v):\n%s", time.Since(start), out)
	}
	var droplet, restart int
	for k, r := range f.requests() {
		switch {
		case strings.Contains(r, "relationships/current_droplet"):
			droplet = k
		case strings.Contains(r, "actions/restart"):
			restart = k
		}
	}
	if droplet == 0 || restart < droplet {
		t.Errorf("requests: the droplet (%d) must be set before the restart (%d): %v", droplet, restart, f.requests())
	}
}

// A registry user without a password is refused before the app is
// created, not after, which would leave a stopped app behind.
func TestPush_dockerUsernameWithoutPasswordIsRefusedBeforeAnyAPICall(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1", "--docker-username", "bob")
	if err == nil || !strings.Contains(err.Error(), "CF_DOCKER_PASSWORD") {
		t.Fatalf("err = %v", err)
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("API calls made: %v", reqs)
	}
}

// The API ends a failed staging's output with "Staging failed: REASON";
// the CLI then does not say it once more on stderr (the command's error
// still carries the reason). A reason the output did not show is said.
func TestPush_aStagingFailureTheOutputShowedIsNotRepeated(t *testing.T) {
	const reason = "StagingError - Staging error: registry.example/web:nope not found: the repository has no such tag or manifest"
	for _, shown := range []bool{true, false} {
		f := newFakeCF(t)
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.lastLine = "Staging docker image registry.example/web:nope..."
		if shown {
			f.lastLine = "Staging failed: " + reason
		}
		f.buildError = reason
		err := h.run("push", "myapp", "--docker-image", "registry.example/web:nope")
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Fatalf("shown %v: err = %v", shown, err)
		}
		if n := strings.Count(h.out.String()+h.err.String(), "Staging failed: "+reason); n != 1 {
			t.Errorf("shown %v: the reason is said %d times, want once:\nstdout:\n%s\nstderr:\n%s", shown, n, h.out, h.err)
		}
	}
}

// Restaging a docker app says whether its image changed: the tag is
// resolved again, and following a moved tag is why one restages it.
func TestRestage_aDockerAppSaysWhetherItsImageChanged(t *testing.T) {
	const repo = "registry.example/web@"
	old, moved := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	for _, tc := range []struct {
		after, want string
	}{
		{moved, "Image changed: " + old + " -> " + moved + "."},
		{old, "Image unchanged: the tag still points at " + old + "."},
	} {
		f := newFakeCF(t)
		f.appExists, f.dockerApp = true, true
		f.lastLine = "Staging complete"
		f.stats = [][]statEntry{{{state: "RUNNING"}}}
		var mu sync.Mutex
		staged := false
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			switch r.Method + " " + r.URL.Path {
			case "GET /v3/packages":
				f.writeJSON(w, 200, f.list(map[string]any{"guid": pkgGUID, "type": "docker", "state": "READY"}))
			case "PATCH /v3/apps/" + appGUID + "/relationships/current_droplet":
				staged = true
				return false
			case "GET /v3/apps/" + appGUID + "/droplets/current":
				image := repo + old
				if staged {
					image = repo + tc.after
				}
				f.writeJSON(w, 200, map[string]any{"guid": dropGUID, "state": "STAGED", "image": image, "created_at": "2026-11-26T03:25:55Z"})
			default:
				return false
			}
			return true
		}
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		out := h.mustRun("restage", "myapp")
		if !strings.Contains(out, "\n"+tc.want+"\n") {
			t.Errorf("restage to %s said:\n%s", tc.after, out)
		}
	}
}

// Files pushed to a docker app are refused before any upload, saying how
// to push it instead.
func TestPush_filesToADockerAppAreRefusedBeforeTheUpload(t *testing.T) {
	f := newFakeCF(t)
	f.appExists, f.dockerApp = true, true
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"index.html": "hi"})
	err := h.run("push", "myapp", "-p", app)
	if err == nil || !strings.Contains(err.Error(), "app myapp runs a docker image: push it with --docker-image") {
		t.Fatalf("err = %v", err)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "resource_matches") || strings.Contains(r, "/v3/packages") {
			t.Errorf("request %s for a docker app's files", r)
		}
	}
}
