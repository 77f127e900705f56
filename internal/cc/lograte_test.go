package cc

import (
	"fmt"
	"net/http"
	"testing"
)

func TestLogRateLimit_newProcessesGetTheOperatorsDefault(t *testing.T) {
	for _, tc := range []struct {
		name     string
		def      int
		want     int
		wantJSON float64
	}{
		{"platform default", 0, DefaultLogRateLimit, 16384},
		{"operator's default", 1 << 20, 1 << 20, 1 << 20},
		{"operator leaves apps unlimited", -1, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ptNew(t, func(c *Config) { c.DefaultLogRateLimit = tc.def })
			app := e.startedApp("chatty")
			web := e.webProcess(app.GUID)
			if web.LogRateLimitBytes != tc.want {
				t.Errorf("web process limit %d, want %d", web.LogRateLimitBytes, tc.want)
			}
			p := e.ok(e.do("GET", "/v3/processes/"+web.GUID, "", nil), http.StatusOK)
			if got := p["log_rate_limit_in_bytes_per_second"]; got != tc.wantJSON {
				t.Errorf("API shows %v, want %v", got, tc.wantJSON)
			}
		})
	}
	pe := ptNew(t, nil)
	if _, err := New(Config{Store: pe.store, Blobs: &ptBlobs{}, Runtime: pe.rt.board, Auth: ptAuth{}, DefaultLogRateLimit: -2}); err == nil {
		t.Error("a default limit of -2 was accepted")
	}
}

// cf scale -l 1K: the cell is asked to run the instances with that limit
// (when they start: a running revision keeps its limit, as its memory).
func TestLogRateLimit_scaleReachesTheDesiredLRP(t *testing.T) {
	e := ptNew(t, nil)
	for _, limit := range []int{1024, -1, 0} {
		app := e.startedApp(fmt.Sprintf("chatty%d", limit+1))
		web := e.webProcess(app.GUID)
		e.ok(e.doJSON("POST", "/v3/processes/"+web.GUID+"/actions/scale", map[string]any{"log_rate_limit_in_bytes_per_second": limit}), http.StatusAccepted)
		if err := e.api.syncApp(t.Context(), app.GUID); err != nil {
			t.Fatal(err)
		}
		lrp, ok := e.rt.desiredLRP(web.GUID)
		if !ok || lrp.LogRateLimitBytes != limit {
			t.Errorf("after scale -l %d: desired LRP's limit %d (found %v)", limit, lrp.LogRateLimitBytes, ok)
		}
		if limit == 1024 {
			e.cfErr(e.doJSON("POST", "/v3/processes/"+web.GUID+"/actions/scale", map[string]any{"log_rate_limit_in_bytes_per_second": -2}), http.StatusUnprocessableEntity)
		}
	}
}
