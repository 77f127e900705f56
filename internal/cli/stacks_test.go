package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// `pando stacks` tells runtimes it looked for and found none from runtimes
// the server does not know (an API without a local cell sends null).
func TestStacks_unknownRuntimesAreNotNone(t *testing.T) {
	for _, c := range []struct {
		name, runtimes, want, notWant string
	}{
		{"probed", `[{"name":"node","version":"18.19.0"}]`, "node 18.19.0", "not known"},
		{"probed, none", `[]`, "none found", "not known"},
		{"not known", `null`, "not known here", "none found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCF(t)
			f.extra = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/v3/stacks" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"pagination":{"total_results":1,"total_pages":1,"next":null},"resources":[` +
					`{"guid":"s1","name":"host","description":"the host","runtimes":` + c.runtimes + `}]}`))
				return true
			}
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			if err := h.run("stacks"); err != nil {
				t.Fatalf("stacks: %v\nstderr: %s", err, h.err)
			}
			out := h.out.String()
			if !strings.Contains(out, c.want) || strings.Contains(out, c.notWant) {
				t.Errorf("output wants %q and not %q:\n%s", c.want, c.notWant, out)
			}
			if c.runtimes == "null" && !strings.Contains(out, "its cells' machines have them") {
				t.Errorf("no word on where the runtimes are:\n%s", out)
			}
		})
	}
}
