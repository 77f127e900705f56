package cli

import (
	"net/http"
	"strings"
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
