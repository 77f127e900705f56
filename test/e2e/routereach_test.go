package e2e

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// noteCurl is the way in `pando app` and `pando apps` print when the
// router listens where a route's localhost name does not lead.
var noteCurl = regexp.MustCompile(`curl -H 'Host: ([^']+)' (http://\S+/)`)

// requireRouteNoteReaches fails unless r says how to reach an app at the
// router's address (every test server's router is on its own 127.A.B.1,
// where NAME.localhost does not lead) and that way answers want.
func requireRouteNoteReaches(t *testing.T, r result, want string) {
	t.Helper()
	m := noteCurl.FindStringSubmatch(r.out())
	if m == nil {
		t.Fatalf("no word on how to reach the app at the router's address:\n%s", r)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = m[1]
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("the way printed (%s): %v", m[0], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("the way printed (%s): %d %q, want 200 %q", m[0], resp.StatusCode, body, want)
	}
}
