package cc

import (
	"net/http"
	"strings"
	"testing"
)

// With the system domain also the apps' domain (Pando's default), a route
// api.localhost would be served by the API, never the app: it is refused.
func TestRoutes_systemHostsAreRefused(t *testing.T) {
	e := ptNew(t, func(c *Config) { c.ReservedHosts = []string{"api.localhost", "log-cache.localhost"} })
	space, dom := e.space(), e.domain()
	post := func(host string) *http.Response {
		rec := e.doJSON("POST", "/v3/routes", map[string]any{
			"host": host,
			"relationships": map[string]any{
				"space":  map[string]any{"data": map[string]any{"guid": space.GUID}},
				"domain": map[string]any{"data": map[string]any{"guid": dom.GUID}},
			},
		})
		return rec.Result()
	}
	for _, host := range []string{"api", "API", "log-cache"} {
		res := post(host)
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("host %s: status %d, want 422", host, res.StatusCode)
		}
	}
	d := e.cfErr(e.doJSON("POST", "/v3/routes", map[string]any{
		"host": "api",
		"relationships": map[string]any{
			"space":  map[string]any{"data": map[string]any{"guid": space.GUID}},
			"domain": map[string]any{"data": map[string]any{"guid": dom.GUID}},
		},
	}), http.StatusUnprocessableEntity)
	if detail, _ := d["detail"].(string); !strings.Contains(detail, "Route api.localhost is the platform's own") {
		t.Errorf("detail = %v", d["detail"])
	}
	if res := post("apis"); res.StatusCode != http.StatusCreated {
		t.Errorf("host apis: status %d, want 201", res.StatusCode)
	}
}
