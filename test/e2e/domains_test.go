package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// apiSend calls the CF v3 API as admin with a JSON body and decodes the
// answer.
func (s *server) apiSend(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, "http://"+s.apiAddr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, out
}

func (s *server) mustSend(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	code, out := s.apiSend(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, path, code, want, out)
	}
	return out
}

// newRoute creates host.domain[/path] in the app's space and maps it to
// the app's port (0: the default).
func (s *server) newRoute(t *testing.T, appGUID, domainGUID, host, path string, port int) {
	t.Helper()
	var app struct {
		Relationships struct {
			Space struct {
				Data struct {
					GUID string `json:"guid"`
				} `json:"data"`
			} `json:"space"`
		} `json:"relationships"`
	}
	s.api(t, "/v3/apps/"+appGUID, &app)
	rt := s.mustSend(t, http.MethodPost, "/v3/routes", map[string]any{"host": host, "path": path, "relationships": map[string]any{
		"space":  map[string]any{"data": map[string]any{"guid": app.Relationships.Space.Data.GUID}},
		"domain": map[string]any{"data": map[string]any{"guid": domainGUID}}}}, http.StatusCreated)
	dest := map[string]any{"app": map[string]any{"guid": appGUID, "process": map[string]any{"type": "web"}}}
	if port != 0 {
		dest["port"] = port
	}
	s.mustSend(t, http.MethodPost, "/v3/routes/"+rt["guid"].(string)+"/destinations", map[string]any{"destinations": []any{dest}}, http.StatusOK)
}

// TestDomains_sharedDomainRouteReachesTheApp: cf create-shared-domain, a
// route with a host and path on it mapped to an app, served by the router;
// cf delete-shared-domain takes the route with it.
func TestDomains_sharedDomainRouteReachesTheApp(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "domained"
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server")
	d := s.mustSend(t, http.MethodPost, "/v3/domains", map[string]any{"internal": false, "name": "shop.e2e.test"}, http.StatusCreated)
	dGUID := d["guid"].(string)
	t.Cleanup(func() { s.apiSend(t, http.MethodDelete, "/v3/domains/"+dGUID, nil) })
	s.newRoute(t, s.appGUID(t, name), dGUID, "www", "/store", 0)

	if body := s.curlRoute(t, "www.shop.e2e.test", "/store/items"); !strings.Contains(body, "binary app") {
		t.Errorf("www.shop.e2e.test/store answered %q", body)
	}
	if code, _, err := s.get("www.shop.e2e.test", "/elsewhere"); err != nil || code != http.StatusNotFound {
		t.Errorf("a path the route does not cover: %d %v, want 404", code, err)
	}

	s.mustSend(t, http.MethodDelete, "/v3/domains/"+dGUID, nil, http.StatusAccepted)
	s.waitRoute(t, "www.shop.e2e.test", "/store", "status 404", func(status int, _ string) bool { return status == http.StatusNotFound })
}

// TestPorts_aRouteToEachPort: an app listening on 8080 and 9090, with a
// route to each (the second a destination with port 9090, as CF documents
// custom ports), answers each route from its own port after a restart.
func TestPorts_aRouteToEachPort(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "twoports"
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack",
		"-c", "PORT=9090 GREETING=nine ./server & GREETING=eight exec ./server")
	guid := s.appGUID(t, name)
	var routes struct {
		Resources []struct {
			Host          string `json:"host"`
			URL           string `json:"url"`
			Relationships struct {
				Domain struct {
					Data struct {
						GUID string `json:"guid"`
					} `json:"data"`
				} `json:"domain"`
			} `json:"relationships"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+guid+"/routes", &routes)
	if len(routes.Resources) != 1 {
		t.Fatalf("routes of %s: %+v", name, routes.Resources)
	}
	host, dGUID := routes.Resources[0].URL, routes.Resources[0].Relationships.Domain.Data.GUID
	s.newRoute(t, guid, dGUID, name+"-admin", "", 9090)
	s.mustPando(t, "restart", name)

	if body := s.curlRoute(t, host, "/"); !strings.Contains(body, "greeting=eight") {
		t.Errorf("%s answered %q, want the app on 8080", host, body)
	}
	admin := strings.Replace(host, name, name+"-admin", 1)
	if body := s.curlRoute(t, admin, "/"); !strings.Contains(body, "greeting=nine") {
		t.Errorf("%s answered %q, want the app on 9090", admin, body)
	}
}
