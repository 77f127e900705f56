package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/routestream"
)

// A route service may send a request back through any router: the
// server's own router and a `pando router` seal signatures with the key
// both derive from the router token, and the separate router learns the
// route's binding from the routing table stream (and keeps it with its
// table), so neither lets a request skip the route service.
func TestRouteServices_aRoundTripWorksThroughEitherRouter(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	// The route service sends each request on through the router named
	// in back, with the route service headers, and marks the answer.
	var back atomic.Value
	rs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fwd, err := url.Parse(r.Header.Get(router.HeaderForwardedURL))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+back.Load().(string)+fwd.RequestURI(), nil)
		req.Host = fwd.Host
		req.Header.Set(router.HeaderProxySignature, r.Header.Get(router.HeaderProxySignature))
		req.Header.Set(router.HeaderProxyMetadata, r.Header.Get(router.HeaderProxyMetadata))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "checked:%s", b)
	}))
	defer rs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(rs.Certificate())
	rsTLS := &tls.Config{RootCAs: roots}

	const host = "app.apps.test"
	s := newRouteTableServer(t)
	s.hub.SetRoutes("p", "a", []string{host})
	s.hub.SetBackends("p", []router.Backend{{InstanceGUID: "i", Addr: app.Listener.Addr().String()}})
	s.hub.SetRouteServices(map[string]string{host: rs.URL + "/check"})

	// The server's router, as Run makes it.
	own := router.New(router.Config{
		Logger:          slog.New(slog.DiscardHandler),
		RouteServices:   routeServicesFunc(func(h, p string) string { return map[string]string{host: rs.URL + "/check"}[h+p] }),
		RouteServiceKey: s.cells.routeServiceKey(),
		RouteServiceTLS: rsTLS,
	})
	own.SetRoutes("p", "a", []string{host})
	own.SetBackends("p", []router.Backend{{InstanceGUID: "i", Addr: app.Listener.Addr().String()}})
	ownLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ownDone := make(chan struct{})
	go func() { own.Serve(ctx, ownLn); close(ownDone) }()

	// A `pando router` following the server.
	dir := t.TempDir()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunRouter(ctx, RouterConfig{APIURL: s.apiURL, Token: s.token(t, "router-token"), DataDir: dir, Addr: "127.0.0.1:0",
			RouteServiceTLS: rsTLS, Logger: slog.New(slog.DiscardHandler), Ready: func(addr string) { ready <- addr }})
	}()
	defer func() {
		cancel()
		<-ownDone
		if err := <-done; err != nil {
			t.Errorf("RunRouter: %v", err)
		}
	}()
	var sep string
	select {
	case sep = <-ready:
	case err := <-done:
		t.Fatalf("RunRouter: %v", err)
	}

	get := func(via string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+via+"/x?q=1", nil)
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// In through the separate router (once it has the table), back
	// through the server's.
	back.Store(ownLn.Addr().String())
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(sep, nil)
		if code == http.StatusOK && body == "checked:app" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("separate router -> route service -> server's router: %d %q, want 200 checked:app", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// In through the server's router, back through the separate one.
	back.Store(sep)
	if code, body := get(ownLn.Addr().String(), nil); code != http.StatusOK || body != "checked:app" {
		t.Errorf("server's router -> route service -> separate router: %d %q, want 200 checked:app", code, body)
	}
	// Skipping the route service with a made-up signature is refused.
	if code, body := get(sep, map[string]string{router.HeaderProxySignature: "Zm9yZ2Vk", router.HeaderProxyMetadata: "e30="}); code != http.StatusBadRequest {
		t.Errorf("a forged signature through the separate router: %d %q, want 400", code, body)
	}
	// The binding is kept with the table, for a restart without the server.
	path := filepath.Join(dir, routestream.TableFile)
	for {
		_, _, services, err := routestream.LoadTable(path)
		if err == nil && services[host] == rs.URL+"/check" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kept route services: %v %v", services, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
