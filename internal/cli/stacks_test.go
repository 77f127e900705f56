package cli

import (
	"net/http"
	"regexp"
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

// Cells that report different runtimes for a stack get a line each,
// saying which has what; cells that agree, one list.
func TestStacks_cellsThatDifferGetALineEach(t *testing.T) {
	const (
		node18 = `{"name":"node","version":"18.19.0"}`
		node20 = `{"name":"node","version":"20.1.2"}`
		py     = `{"name":"python3","version":"3.11.2"}`
	)
	for _, c := range []struct {
		name, runtimes, cells string
		want                  []string // regexps, in order
		notWant               string
	}{
		{"differ", `[` + py + `]`, `[{"cell_id":"cell-a","runtimes":[` + node18 + `,` + py + `]},{"cell_id":"cell-b","runtimes":[` + node20 + `]}]`,
			[]string{`(?m)^host\s+the host\s+cell-a: node 18\.19\.0, python3 3\.11\.2$`, `(?m)^\s+cell-b: node 20\.1\.2$`, `cells' runtimes differ`}, "not known"},
		{"one empty", `[]`, `[{"cell_id":"cell-a","runtimes":[]},{"cell_id":"cell-b","runtimes":[` + node20 + `]}]`,
			[]string{`(?m)^host\s+the host\s+cell-a: none found$`, `(?m)^\s+cell-b: node 20\.1\.2$`}, "not known"},
		{"agree", `[` + node18 + `]`, `[{"cell_id":"cell-a","runtimes":[` + node18 + `]},{"cell_id":"cell-b","runtimes":[` + node18 + `]}]`,
			[]string{`(?m)^host\s+the host\s+node 18\.19\.0$`}, "cell-a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCF(t)
			f.extra = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/v3/stacks" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"pagination":{"total_results":1,"total_pages":1,"next":null},"resources":[` +
					`{"guid":"s1","name":"host","description":"the host","runtimes":` + c.runtimes + `,"cell_runtimes":` + c.cells + `}]}`))
				return true
			}
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			if err := h.run("stacks"); err != nil {
				t.Fatalf("stacks: %v\nstderr: %s", err, h.err)
			}
			out := h.out.String()
			rest := out
			for _, re := range c.want {
				loc := regexp.MustCompile(re).FindStringIndex(rest)
				if loc == nil {
					t.Fatalf("output wants %q (in order):\n%s", re, out)
				}
				rest = rest[loc[1]:]
			}
			if strings.Contains(out, c.notWant) {
				t.Errorf("output has %q:\n%s", c.notWant, out)
			}
		})
	}
}
