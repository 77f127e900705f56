package e2e

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// routeService is a route service on loopback, over HTTPS: it keeps the
// headers of each request the router sends it, sends the request on to
// its X-CF-Forwarded-Url with the router's three X-CF headers, through
// the router at back (the route's host is the Host header; a router
// listens elsewhere), and answers "checked:" and what came back.
type routeService struct {
	url   string   // where the route service listens (https://127.0.0.1:PORT)
	trust []string // SSL_CERT_FILE=its certificate: env for a pando that calls it
	back  atomic.Value

	mu   sync.Mutex
	seen []http.Header
}

func startRouteService(t *testing.T) *routeService {
	t.Helper()
	rs := &routeService{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.seen = append(rs.seen, r.Header.Clone())
		rs.mu.Unlock()
		req, err := http.NewRequest(r.Method, r.Header.Get("X-CF-Forwarded-Url"), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for _, h := range []string{"X-CF-Forwarded-Url", "X-CF-Proxy-Signature", "X-CF-Proxy-Metadata"} {
			req.Header.Set(h, r.Header.Get(h))
		}
		back, _ := rs.back.Load().(string)
		req.URL.Host = back
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
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "rs-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	rs.url, rs.trust = srv.URL, []string{"SSL_CERT_FILE=" + ca}
	return rs
}

// sendBackThrough makes the route service send requests on through the
// router at addr.
func (rs *routeService) sendBackThrough(addr string) { rs.back.Store(addr) }

// lastSeen is the headers of the last request the route service got.
func (rs *routeService) lastSeen(t *testing.T) http.Header {
	t.Helper()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.seen) == 0 {
		t.Fatal("the route service got no request")
	}
	return rs.seen[len(rs.seen)-1]
}

// bindRouteService binds the route of the pushed app name (its only one)
// to a new user-provided instance with rs's URL (path /check), as `cf cups
// -r` and `cf bind-route-service` do, and returns the binding's GUID.
func (s *server) bindRouteService(t *testing.T, token, name string, rs *routeService) string {
	t.Helper()
	_, _, spaceGUID := s.spaceOf(t, token, s.appGUID(t, name))
	routes := s.must(t, token, "GET", "/v3/routes?hosts="+name, "", 200)["resources"].([]any)
	if len(routes) != 1 {
		t.Fatalf("routes of %s: %v", name, routes)
	}
	route := routes[0].(map[string]any)["guid"].(string)
	si := s.must(t, token, "POST", "/v3/service_instances", `{"type":"user-provided","name":"guard","route_service_url":"`+rs.url+`/check","relationships":{"space":{"data":{"guid":"`+spaceGUID+`"}}}}`, 201)["guid"].(string)
	return s.must(t, token, "POST", "/v3/service_route_bindings", `{"relationships":{"route":{"data":{"guid":"`+route+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)["guid"].(string)
}

// forgedSignatureRefused checks that the router at addr answers 400 to a
// request for host that skips its route service with a made-up signature.
func forgedSignatureRefused(t *testing.T, client *http.Client, addr, host string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("X-CF-Proxy-Signature", "Zm9yZ2Vk")
	req.Header.Set("X-CF-Proxy-Metadata", "e30=")
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("a forged signature through %s: %v, want a 400", addr, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged signature through %s: %s, want 400", addr, resp.Status)
	}
}
