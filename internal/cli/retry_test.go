package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The server may trim its resource cache between the match and the
// upload: the push then sends every file instead of failing.
func TestPush_uploadsEverythingWhenMatchedFilesLeftTheCache(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	index := "<html>hello</html>\n"
	writeFiles(t, app, map[string]string{"index.html": index, "Staticfile": ""})
	f.knownSHA1[sha1Hex(index)] = true
	f.instances = 1
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	f.stgLines = []string{"-----> Staticfile Buildpack"}
	f.lastLine = "Uploading complete"
	uploads := 0
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/upload") {
			return false
		}
		uploads++
		if uploads == 1 {
			f.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []any{map[string]any{
				"code": 10008, "title": "CF-UnprocessableEntity",
				"detail": `Resource "index.html" (sha1 x) is not in the resource cache; upload it in bits`,
			}}})
			return true
		}
		return false // the fake's own upload handler records the second try
	}
	if err := h.run("push", "myapp", "-p", app, "-b", "staticfile_buildpack"); err != nil {
		t.Fatalf("push: %v\nstdout:\n%s\nstderr:\n%s", err, h.out, h.err)
	}
	if uploads != 2 {
		t.Fatalf("uploads = %d, want a retry", uploads)
	}
	if _, ok := f.zipEntries["index.html"]; !ok || len(f.uploadRes) != 0 {
		t.Errorf("retry zip entries %v, resources %v; want every file in the zip", keys(f.zipEntries), f.uploadRes)
	}
	if !strings.Contains(h.out.String(), "uploading all 2 files") {
		t.Errorf("output does not explain the retry:\n%s", h.out)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
