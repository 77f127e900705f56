package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	otherAppGUID = "0c3c81c4-6f0e-4b39-a4a8-54f3a1b2b7d1"
	ownRoute     = "5cb788f7-a094-48de-a0cc-89d5f999b1df"
	sharedRoute  = "2b0d3a3e-3f59-4c54-9a3b-9b7f1e1c3a10"
)

// fakeRoutes answers an app's routes from routes (raw route JSON), a
// route's destinations from dests, and records deletions.
type fakeRoutes struct {
	routes []map[string]any
	dests  map[string][]any
}

func dest(app string) map[string]any {
	return map[string]any{"guid": "d-" + app, "app": map[string]any{"guid": app, "process": map[string]any{"type": "web"}}}
}

func (fr *fakeRoutes) install(f *fakeCF) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appExists = true
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		p := r.URL.Path
		switch {
		case r.Method == "GET" && p == "/v3/apps/"+appGUID+"/routes":
			items := make([]any, 0, len(fr.routes))
			for _, rt := range fr.routes {
				items = append(items, rt)
			}
			f.writeJSON(w, 200, f.list(items...))
		case r.Method == "GET" && strings.HasPrefix(p, "/v3/routes/") && strings.HasSuffix(p, "/destinations"):
			guid := strings.TrimSuffix(strings.TrimPrefix(p, "/v3/routes/"), "/destinations")
			ds := fr.dests[guid]
			if ds == nil {
				ds = []any{}
			}
			f.writeJSON(w, 200, map[string]any{"destinations": ds})
		case r.Method == "DELETE" && (p == "/v3/apps/"+appGUID || strings.HasPrefix(p, "/v3/routes/")):
			w.Header().Set("Location", f.url()+"/v3/jobs/"+jobGUID)
			w.WriteHeader(http.StatusAccepted)
		default:
			return false
		}
		return true
	}
}

func deletes(f *fakeCF) []string {
	var out []string
	for _, r := range f.requests() {
		if strings.HasPrefix(r, "DELETE ") {
			out = append(out, r)
		}
	}
	return out
}

func TestDeleteWithRoutes_refusesWhenARouteIsMappedToAnotherApp(t *testing.T) {
	cases := []struct {
		name string
		fr   *fakeRoutes
	}{
		{"destinations in the route", &fakeRoutes{routes: []map[string]any{
			{"guid": ownRoute, "url": "myapp.localhost", "destinations": []any{dest(appGUID)}},
			{"guid": sharedRoute, "url": "shared.localhost", "destinations": []any{dest(appGUID), dest(otherAppGUID)}},
		}}},
		{"destinations asked for", &fakeRoutes{
			routes: []map[string]any{{"guid": sharedRoute, "url": "shared.localhost"}},
			dests:  map[string][]any{sharedRoute: {dest(otherAppGUID), dest(appGUID)}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCF(t)
			tc.fr.install(f)
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			err := h.run("delete", "myapp", "-r", "-f")
			if err == nil {
				t.Fatal("delete succeeded")
			}
			if !strings.Contains(err.Error(), "shared.localhost is mapped to more than one app") {
				t.Errorf("err = %v", err)
			}
			for _, want := range []string{
				"App 'myapp' was not deleted because route 'shared.localhost' is mapped to more than one app.\n",
				"TIP: Delete the app without -r, or remove the other app's mapping first.\n",
			} {
				if !strings.Contains(h.err.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, h.err)
				}
			}
			if d := deletes(f); len(d) != 0 {
				t.Errorf("deleted %v", d)
			}
			if tc.fr.dests != nil && !strings.Contains(strings.Join(f.requests(), "\n"), "GET /v3/routes/"+sharedRoute+"/destinations") {
				t.Error("the route's destinations were not asked for")
			}
		})
	}
}

func TestDeleteWithRoutes_deletesTheAppThenItsOwnRoutes(t *testing.T) {
	f := newFakeCF(t)
	fr := &fakeRoutes{
		routes: []map[string]any{
			{"guid": ownRoute, "url": "myapp.localhost", "destinations": []any{dest(appGUID)}},
			// Two processes of the same app are still one app.
			{"guid": sharedRoute, "url": "api.localhost", "destinations": []any{dest(appGUID), dest(appGUID)}},
		},
	}
	fr.install(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("delete", "myapp", "-r", "-f"); err != nil {
		t.Fatalf("delete: %v\nstderr: %s", err, h.err)
	}
	got := strings.Join(deletes(f), "\n")
	want := "DELETE /v3/apps/" + appGUID + "\nDELETE /v3/routes/" + ownRoute + "\nDELETE /v3/routes/" + sharedRoute
	if got != want {
		t.Errorf("deletes:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasSuffix(h.out.String(), "OK\n") {
		t.Errorf("output:\n%s", h.out)
	}
}

func TestDeleteWithoutRoutes_leavesSharedRoutesAlone(t *testing.T) {
	f := newFakeCF(t)
	fr := &fakeRoutes{routes: []map[string]any{
		{"guid": sharedRoute, "url": "shared.localhost", "destinations": []any{dest(appGUID), dest(otherAppGUID)}},
	}}
	fr.install(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("delete", "myapp", "-f"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := strings.Join(deletes(f), "\n"); got != "DELETE /v3/apps/"+appGUID {
		t.Errorf("deletes = %s", got)
	}
}
