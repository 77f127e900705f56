package cc

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// Concurrent requests that change different fields of one record all
// land: none reads the record, then writes it back over another's change.

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// onEngines runs fn on a fresh API over SQLite, then over PostgreSQL.
func onEngines(t *testing.T, fn func(t *testing.T, e *ptEnv)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, ptNew(t, nil)) })
	t.Run("postgres", func(t *testing.T) { fn(t, ptNewOn(t, pgtest.URL(t), nil)) })
}

// edit is one request of a concurrent batch and the status it must get.
type edit struct {
	method, path, body string
	status             int
}

// concurrently sends the edits all at once and checks their statuses.
func (e *ptEnv) concurrently(edits []edit) {
	e.t.Helper()
	recs := make([]*httptest.ResponseRecorder, len(edits))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ed := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			recs[i] = e.do(ed.method, ed.path, "application/json", strings.NewReader(ed.body))
		}()
	}
	close(start)
	wg.Wait()
	for i, ed := range edits {
		if recs[i].Code != ed.status {
			e.t.Fatalf("%s %s %s: status %d, want %d; body: %s", ed.method, ed.path, ed.body, recs[i].Code, ed.status, recs[i].Body.String())
		}
	}
}

func TestConcurrentEdits_appAndProcessKeepEveryChange(t *testing.T) {
	onEngines(t, func(t *testing.T, e *ptEnv) {
		app := e.startedApp("busy")
		web := "/v3/processes/" + app.GUID
		want := map[string]string{}
		for round := range 4 {
			name := fmt.Sprintf("busy-%d", round)
			action, state := "stop", pando.AppStopped
			if round%2 == 1 {
				action, state = "start", pando.AppStarted
			}
			feature := round%2 == 0
			edits := []edit{
				{"POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", fmt.Sprintf(`{"instances":%d}`, round+2), http.StatusAccepted},
				{"POST", "/v3/apps/" + app.GUID + "/processes/web/actions/scale", fmt.Sprintf(`{"memory_in_mb":%d}`, 64+round), http.StatusAccepted},
				{"POST", web + "/actions/scale", fmt.Sprintf(`{"disk_in_mb":%d}`, 100+round), http.StatusAccepted},
				{"POST", web + "/actions/scale", fmt.Sprintf(`{"log_rate_limit_in_bytes_per_second":%d}`, 1000+round), http.StatusAccepted},
				{"PATCH", web, fmt.Sprintf(`{"command":"./serve-%d"}`, round), http.StatusOK},
				{"PATCH", web, fmt.Sprintf(`{"health_check":{"data":{"timeout":%d}}}`, 10+round), http.StatusOK},
				{"PATCH", "/v3/apps/" + app.GUID, `{"name":"` + name + `"}`, http.StatusOK},
				{"POST", "/v3/apps/" + app.GUID + "/actions/" + action, "", http.StatusOK},
				{"PATCH", "/v3/apps/" + app.GUID + "/features/file-based-vcap-services", fmt.Sprintf(`{"enabled":%t}`, feature), http.StatusOK},
			}
			for i := range 6 {
				k, v := fmt.Sprintf("K%d_%d", round, i), fmt.Sprintf("v%d", i)
				want[k] = v
				edits = append(edits, edit{"PATCH", "/v3/apps/" + app.GUID + "/environment_variables", `{"var":{"` + k + `":"` + v + `"}}`, http.StatusOK})
			}
			e.concurrently(edits)

			got, err := e.store.GetApp(t.Context(), app.GUID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != name || got.State != state {
				t.Errorf("round %d: app name %q state %s, want %q %s", round, got.Name, got.State, name, state)
			}
			if !maps.Equal(got.EnvVars, want) {
				t.Errorf("round %d: env = %v, want %v", round, got.EnvVars, want)
			}
			if on := len(got.Features) == 1 && got.Features[0] == pando.AppFeatureFileVCAPServices; on != feature {
				t.Errorf("round %d: features = %v, want file-based-vcap-services %t", round, got.Features, feature)
			}
			p := e.webProcess(app.GUID)
			if p.Instances != round+2 || p.MemoryMB != 64+round || p.DiskMB != 100+round || p.LogRateLimitBytes != 1000+round ||
				p.Command != fmt.Sprintf("./serve-%d", round) || p.HealthCheckTimeout != 10+round {
				t.Errorf("round %d: web process = %+v, want every change of the round", round, p)
			}
		}
	})
}
