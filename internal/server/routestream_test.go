package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/routestream"
)

// routeTableServer is the server side of routers: the cell listener with
// the routing table stream, and the API's join info.
type routeTableServer struct {
	dataDir string
	hub     *routestream.Hub
	apiURL  string
	cells   *cellAPI
	logs    *sinkRecorder
}

// sinkRecorder is a log store that keeps what it is given.
type sinkRecorder struct {
	mu    sync.Mutex
	lines []pando.LogEnvelope
}

func (s *sinkRecorder) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, e)
}

func (s *sinkRecorder) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.lines {
		out = append(out, e.SourceID+" "+e.SourceType+" "+string(e.Payload))
	}
	return out
}

func newRouteTableServer(t *testing.T) *routeTableServer {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	logStore := &sinkRecorder{}
	hub := routestream.NewHub("sys.test", 0, 0)
	cells, err := listenCellAPI(Config{DataDir: dir, CellAPIAddr: "127.0.0.1:0"}, bbs.New(bbs.Config{}), blobs, logStore, hub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cells.serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	mux := http.NewServeMux()
	cells.joinRoute(mux)
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	return &routeTableServer{dataDir: dir, hub: hub, apiURL: api.URL, cells: cells, logs: logStore}
}

func (s *routeTableServer) token(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestRouteStream_aRouterWithTheRouterTokenFollowsTheTable(t *testing.T) {
	s := newRouteTableServer(t)
	s.hub.SetRoutes("p", "a", []string{"app.apps.test"})
	s.hub.SetBackends("p", []router.Backend{{InstanceGUID: "i", Addr: "127.0.0.2:61001"}})
	tok, err := cellauth.ParseRouterToken(s.token(t, cellauth.RouterTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := newServerLink(testReplicas(t, s.apiURL, tok)).openStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, `"synced"`) {
		n, err := body.Read(buf)
		if err != nil {
			t.Fatalf("read the stream: %v (so far %q)", err, got)
		}
		got += string(buf[:n])
	}
	for _, want := range []string{`"system_domain":"sys.test"`, `"app.apps.test"`, `"127.0.0.2:61001"`} {
		if !strings.Contains(got, want) {
			t.Errorf("snapshot %q lacks %s", got, want)
		}
	}
}

func TestRouteStream_isRefusedWithoutTheRouterTokenAndARouterIsNoCell(t *testing.T) {
	s := newRouteTableServer(t)
	s.hub.SetRoutes("p", "a", []string{"app.apps.test"})
	rtrTok, err := cellauth.ParseRouterToken(s.token(t, cellauth.RouterTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	cellTok, err := cellauth.ParseToken(s.token(t, cellauth.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A wrong secret, and the cell join token's secret, read nothing.
	for name, secret := range map[string]string{"wrong": strings.Repeat("0", 64), "cell token": cellTok.Secret} {
		forged := rtrTok
		forged.Secret = secret
		if _, err := newServerLink(testReplicas(t, s.apiURL, forged)).openStream(ctx); pando.ErrorKindOf(err) != pando.EUnauthenticated {
			t.Errorf("%s: %v, want unauthenticated", name, err)
		}
	}
	// A joined cell's certificate is no router token either.
	creds, err := cellauth.Join(ctx, http.DefaultClient, s.apiURL, cellTok, "cell-a", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	asCell := &http.Client{Transport: &http.Transport{TLSClientConfig: cellauth.ClientTLS(&creds.Cert, creds.Pool, cellauth.ServerName)}}
	if _, err := routestream.Open(ctx, asCell, creds.CellAPI, ""); pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Errorf("with a cell certificate and no token: %v, want unauthenticated", err)
	}

	// With the router token, nothing a cell does is open to it: it has no
	// certificate.
	asRouter := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: creds.Pool, ServerName: cellauth.ServerName}}}
	for _, path := range []string{"/v1/presence", "/v1/reports/actual_lrp_changed", "/v1/logs"} {
		req, _ := http.NewRequestWithContext(ctx, "POST", creds.CellAPI+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+rtrTok.Secret)
		resp, err := asRouter.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s as a router: %s, want 401", path, resp.Status)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", creds.CellAPI+"/v1/blobs/droplets/x", nil)
	req.Header.Set("Authorization", "Bearer "+rtrTok.Secret)
	if resp, err := asRouter.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET a blob as a router: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	// And the router token joins no cell.
	if _, err := cellauth.Join(ctx, http.DefaultClient, s.apiURL, cellauth.Token{Secret: rtrTok.Secret, CAHash: rtrTok.CAHash}, "cell-r", t.TempDir()); err == nil {
		t.Error("the router token's secret joined as a cell")
	}
}

func TestRouterLogs_takesRTRLinesOfRoutedAppsWithTheRouterTokenOnly(t *testing.T) {
	s := newRouteTableServer(t)
	s.hub.SetRoutes("p", "app-a", []string{"a.apps.test"})
	tok, err := cellauth.ParseRouterToken(s.token(t, cellauth.RouterTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	line := func(app, source, text string) pando.LogEnvelope {
		return pando.LogEnvelope{Timestamp: time.Now(), SourceID: app, SourceType: source, InstanceID: "0", Type: "OUT", Payload: []byte(text)}
	}
	link := newServerLink(testReplicas(t, s.apiURL, tok))
	if err := link.sendLogs(ctx, []pando.LogEnvelope{
		line("app-a", pando.LogSourceRouter, "GET /"),
		line("app-z", pando.LogSourceRouter, "an app the table does not route"),
		line("app-a", pando.LogSourceApp, "not a router's line"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := s.logs.payloads(); len(got) != 1 || got[0] != "app-a RTR GET /" {
		t.Fatalf("log store got %q, want only app-a's RTR line", got)
	}
	forged := tok
	forged.Secret = strings.Repeat("0", 64)
	if err := newServerLink(testReplicas(t, s.apiURL, forged)).sendLogs(ctx, []pando.LogEnvelope{line("app-a", pando.LogSourceRouter, "forged")}); pando.ErrorKindOf(err) != pando.EUnauthenticated ||
		!strings.Contains(err.Error(), "router refused: wrong or missing router token: start the router with the server's current <data-dir>/router-token") {
		t.Errorf("with a wrong token: %v, want unauthenticated, saying what to do", err)
	}
	if got := s.logs.payloads(); len(got) != 1 {
		t.Errorf("log store got %q after a refused request", got)
	}
}

// A router started while the server's routing table cannot be read
// serves the table it kept, and sends the system hosts to the API.
func TestRunRouter_servesItsKeptTableAndTheAPIWithoutAStream(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	// An API that answers, but not the join info: no stream.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == cellauth.JoinInfoPath {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "api "+r.Host+" "+r.Header.Get("X-Forwarded-For"))
	}))
	defer api.Close()
	dir := t.TempDir()
	if err := routestream.SaveTable(filepath.Join(dir, routestream.TableFile), "sys.test", map[string]routestream.Entry{
		"p": {AppGUID: "a", Routes: []string{"app.apps.test"}, Backends: []routestream.Backend{{InstanceGUID: "i", Addr: app.Listener.Addr().String()}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunRouter(ctx, RouterConfig{APIURL: api.URL, Token: "pando1router." + strings.Repeat("a", 64) + ".sha256:" + strings.Repeat("b", 64),
			DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("RunRouter: %v", err)
	}
	get := func(host string) string {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("app.apps.test"); got != "app" {
		t.Errorf("an app route of the kept table: %q", got)
	}
	if got := get("api.sys.test"); got != "api api.sys.test 127.0.0.1" {
		t.Errorf("a system host: %q, want the API with the client's address forwarded", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunRouter after its context ended: %v", err)
	}
}
