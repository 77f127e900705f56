package e2e

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A route bound to a route service goes through it on a separate `pando
// router` too, and the route service may send the request back through
// either router: in through the separate router and back through the
// server's, and the other way round. Skipping the route service through
// the separate router is refused.
func TestServices_routeServiceWorksThroughASeparateRouter(t *testing.T) {
	var back atomic.Value // the router the route service sends requests back to
	rs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequest(r.Method, r.Header.Get("X-CF-Forwarded-Url"), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for _, h := range []string{"X-CF-Proxy-Signature", "X-CF-Proxy-Metadata"} {
			req.Header.Set(h, r.Header.Get(h))
		}
		req.URL.Host = back.Load().(string)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}).Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "checked:%s", body)
	}))
	defer rs.Close()
	ca := filepath.Join(t.TempDir(), "rs-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rs.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	trust := []string{"SSL_CERT_FILE=" + ca}
	s := ownServerWithEnv(t, trust)
	rp := s.startRouterWithEnv(t, trust)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	const name = "guardedsep"
	s.mustPando(t, "push", name, "-p", staticSite(t, "the app\n"))
	host := name + ".localhost"
	app := s.appGUID(t, name)
	_, _, spaceGUID := s.spaceOf(t, admin, app)
	routes := s.must(t, admin, "GET", "/v3/routes?hosts="+name, "", 200)["resources"].([]any)
	if len(routes) != 1 {
		t.Fatalf("routes: %v", routes)
	}
	route := routes[0].(map[string]any)["guid"].(string)
	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"guard","route_service_url":"`+rs.URL+`/check","relationships":{"space":{"data":{"guid":"`+spaceGUID+`"}}}}`, 201)["guid"].(string)
	s.must(t, admin, "POST", "/v3/service_route_bindings", `{"relationships":{"route":{"data":{"guid":"`+route+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)

	back.Store(s.routerAddr)
	rp.waitBody(t, host, "checked:the app")
	back.Store(rp.addr)
	if code, body, err := s.get(host, "/"); err != nil || code != 200 || body != "checked:the app\n" {
		t.Fatalf("in through the server's router, back through the separate one: %d %q %v", code, body, err)
	}
	req, _ := http.NewRequest("GET", "http://"+rp.addr+"/", nil)
	req.Host = host
	req.Header.Set("X-CF-Proxy-Signature", "Zm9yZ2Vk")
	req.Header.Set("X-CF-Proxy-Metadata", "e30=")
	if resp, err := rp.http.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged signature through the separate router: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
}
