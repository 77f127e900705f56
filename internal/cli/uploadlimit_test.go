package cli

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The API publishes its upload limit in /v3/info; push compares the files
// it would upload (after .cfignore) with it before zipping anything.
func TestPush_filesPastTheServersUploadLimitAreRefusedBeforeZipping(t *testing.T) {
	app := t.TempDir()
	writeFiles(t, app, map[string]string{
		".cfignore": "*.log\n",
		"huge.log":  strings.Repeat("l", 10000), // ignored: does not count
		"big.bin":   strings.Repeat("b", 3000),
		"small.txt": "0123456789",
	})
	for _, tc := range []struct {
		limit   int64
		refused bool
	}{
		{limit: 3000, refused: true},
		{limit: 3100, refused: false},
	} {
		f := newFakeCF(t)
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && r.URL.Path == "/v3/info" {
				f.writeJSON(w, 200, map[string]any{"name": "Pando", "custom": map[string]any{"cc_api_version": "3.180.0", "pando_max_upload_bytes": tc.limit}})
				return true
			}
			if strings.HasSuffix(r.URL.Path, "/upload") { // the upload is all this test is after
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", "stop here")
				return true
			}
			return false
		}
		err := h.run("push", "myapp", "-p", app)
		uploaded := slices.ContainsFunc(f.requests(), func(r string) bool { return strings.HasSuffix(r, "/upload") })
		if !tc.refused {
			if !uploaded {
				t.Errorf("limit %d: files within it were not uploaded (err %v): %v", tc.limit, err, f.requests())
			}
			continue
		}
		if err == nil {
			t.Fatalf("limit %d: push succeeded", tc.limit)
		}
		for _, want := range []string{"exceed the server's upload limit (2.9 KiB)", "largest files: big.bin (2.9 KiB)", ".cfignore"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("limit %d: err %q lacks %q", tc.limit, err, want)
			}
		}
		if strings.Contains(err.Error(), "huge.log") {
			t.Errorf("limit %d: err names an ignored file: %v", tc.limit, err)
		}
		if uploaded {
			t.Errorf("limit %d: uploaded past the limit: %v", tc.limit, f.requests())
		}
	}
}
