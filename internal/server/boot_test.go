package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// The boot tests start each node the binary runs (server, api, cell,
// router) in process on loopback port 0, check that it serves, cancel
// its context and check that it returned nil and gave back its
// listeners and its data dir's lock. The cells run on the fake container
// backend: no runc, no root.

const bootTimeout = 60 * time.Second

// fakeBackend is the fake container backend as a cell's runtime.
type fakeBackend struct{ *fake.Backend }

func (fakeBackend) Cleanup(context.Context) error { return nil }
func (fakeBackend) Close()                        {}

// node is a Run* function running in the background.
type node struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs run in the background until the test ends (or stop).
func start(t *testing.T, run func(ctx context.Context) error) *node {
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- run(ctx) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// boot starts run and waits until ready reports; it fails t if run
// returns first.
func boot[T any](t *testing.T, run func(ctx context.Context) error, ready <-chan T) (*node, T) {
	t.Helper()
	n := start(t, run)
	var zero T
	select {
	case v := <-ready:
		return n, v
	case err := <-n.done:
		n.done = nil
		t.Fatalf("the node stopped before it was ready: %v", err)
	case <-time.After(bootTimeout):
		t.Fatalf("the node was not ready within %s", bootTimeout)
	}
	return n, zero
}

// stop cancels the node's context and fails t unless it returns nil in
// time. Stopping a stopped node does nothing.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.done == nil {
		return
	}
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("the node returned %v after its context ended, want nil", err)
		}
	case <-time.After(bootTimeout):
		t.Errorf("the node did not stop within %s of its context ending", bootTimeout)
	}
	n.done = nil
}

// requireReleased fails t unless every address can be listened on again
// and the data dir's lock can be taken.
func requireReleased(t *testing.T, dataDir string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("address %s still taken after the node stopped: %v", a, err)
			continue
		}
		ln.Close()
	}
	release, err := lockDataDir(dataDir)
	if err != nil {
		t.Errorf("data dir still locked after the node stopped: %v", err)
		return
	}
	release()
}

// freeAddr is a loopback address free a moment ago, for a node that
// does not say where it listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// readySeeds marks the Go build cache seed and the python venv seed
// under cacheDir as built, so a booting cell does not compile the
// standard library or run ensurepip.
func readySeeds(t *testing.T, cacheDir string) {
	t.Helper()
	if py := buildpacks.HostPython(); py != "" {
		dir, err := buildpacks.PythonSeedDir(context.Background(), cacheDir, py, buildpacks.PythonSeedVenvPath)
		if err == nil {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, buildpacks.PythonSeedKeyFile), []byte("pyseed1 test"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir, err := buildpacks.GoCacheSeedDir(context.Background(), cacheDir)
	if err != nil {
		return // no Go toolchain: the cell warms nothing
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, buildpacks.GoCacheReadyFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// platformConfig is a server or api configuration on loopback port 0.
func platformConfig(t *testing.T, ready chan<- [2]string) Config {
	return Config{
		APIAddr: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", CellAPIAddr: "127.0.0.1:0",
		DataDir: t.TempDir(), AdminPassword: "boot-test-password",
		Logger: slog.New(slog.DiscardHandler),
		Ready:  func(api, router string) { ready <- [2]string{api, router} },
	}
}

// client speaks to a booted API as admin.
type client struct {
	t     *testing.T
	api   string // host:port
	token string
}

func login(t *testing.T, api, password string) *client {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	c := &client{t: t, api: api}
	if status := c.do(req, &tok); status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("admin login: status %d", status)
	}
	c.token = tok.AccessToken
	return c
}

// do sends req and decodes a JSON answer into v; it returns the status.
func (c *client) do(req *http.Request, v any) int {
	c.t.Helper()
	if c.token != "" {
		req.Header.Set("Authorization", "bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: bootTimeout}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			c.t.Fatalf("%s %s: %v: %s", req.Method, req.URL, err, body)
		}
	}
	return resp.StatusCode
}

// get is GET path at addr with Host host ("" for addr's own).
func (c *client) get(addr, host, path string, v any) int {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if host != "" {
		req.Host = host
	}
	return c.do(req, v)
}

// cellStates are the cells the API lists, by ID.
func (c *client) cellStates() map[string]string {
	var out struct {
		Resources []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"resources"`
	}
	if status := c.get(c.api, "", "/pando/v1/cells", &out); status != http.StatusOK {
		c.t.Fatalf("GET /pando/v1/cells: status %d", status)
	}
	m := map[string]string{}
	for _, r := range out.Resources {
		m[r.ID] = r.State
	}
	return m
}

// waitCells polls the cells list until want says yes.
func (c *client) waitCells(what string, want func(map[string]string) bool) {
	c.t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for {
		got := c.cellStates()
		if want(got) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: cells %v after %s", what, got, bootTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cellAPIAddr is where cells join the API at api (its join info).
func (c *client) cellAPIAddr() string {
	var info cellauth.JoinInfo
	if status := c.get(c.api, "", cellauth.JoinInfoPath, &info); status != http.StatusOK || info.CellAPIAddr == "" {
		c.t.Fatalf("GET %s: status %d, %+v", cellauth.JoinInfoPath, status, info)
	}
	return info.CellAPIAddr
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// `pando api` serves the API (also on the router's system hosts) with no
// cell; a `pando cell` joins it and leaves when stopped; a `pando router`
// follows its table and sends the system hosts to it. Each stops cleanly
// on its context and gives back its addresses and data dir.
func TestRunAPI_aCellAndARouterJoinAndEachStopsCleanly(t *testing.T) {
	ready := make(chan [2]string, 1)
	apiCfg := platformConfig(t, ready)
	api, addrs := boot(t, func(ctx context.Context) error { return RunAPI(ctx, apiCfg) }, ready)
	c := login(t, addrs[0], apiCfg.AdminPassword)
	var info struct {
		Links map[string]struct {
			Href string `json:"href"`
		} `json:"links"`
	}
	if status := c.get(addrs[0], "", "/v3/info", &info); status != http.StatusOK || info.Links["self"].Href == "" {
		t.Fatalf("GET /v3/info on the API: status %d, %+v", status, info)
	}
	if status := c.get(addrs[1], "api.localhost", "/v3/info", &info); status != http.StatusOK {
		t.Fatalf("GET /v3/info through the router's system host: status %d", status)
	}
	if got := c.cellStates(); len(got) != 0 {
		t.Fatalf("pando api lists cells %v before any joined, want none (no local cell)", got)
	}
	cellAPI := c.cellAPIAddr()

	// A cell joins with the cell token the API wrote.
	cellDir, cacheDir := t.TempDir(), t.TempDir()
	readySeeds(t, cacheDir)
	cellCfg := CellConfig{
		JoinURL: "http://" + addrs[0], Token: readToken(t, filepath.Join(apiCfg.DataDir, cellauth.TokenFile)),
		DataDir: cellDir, CacheDir: cacheDir, Addr: freeAddr(t), ID: "cell-boot", MemoryMB: 1024, DiskMB: 1024,
		Heartbeat: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		backend: fakeBackend{fake.New(fake.Options{})},
	}
	cell := start(t, func(ctx context.Context) error { return RunCell(ctx, cellCfg) })
	c.waitCells("the cell joins", func(m map[string]string) bool { return m["cell-boot"] == "healthy" })

	// A router follows the API's table with the router token.
	routerReady := make(chan string, 1)
	routerCfg := RouterConfig{
		APIURL: "http://" + addrs[0], Token: readToken(t, filepath.Join(apiCfg.DataDir, cellauth.RouterTokenFile)),
		DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Ready: func(addr string) { routerReady <- addr },
	}
	rtr, routerAddr := boot(t, func(ctx context.Context) error { return RunRouter(ctx, routerCfg) }, routerReady)
	deadline := time.Now().Add(bootTimeout)
	for c.get(routerAddr, "api.localhost", "/v3/info", &info) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the separate router never sent api.localhost to the API")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status := c.get(routerAddr, "nothing.localhost", "/", nil); status != http.StatusNotFound {
		t.Errorf("an unknown route through the separate router: status %d, want 404", status)
	}

	rtr.stop(t)
	requireReleased(t, routerCfg.DataDir, routerAddr)

	cell.stop(t)
	c.waitCells("the stopped cell leaves", func(m map[string]string) bool { _, ok := m["cell-boot"]; return !ok })
	requireReleased(t, cellDir, cellCfg.Addr)

	api.stop(t)
	requireReleased(t, apiCfg.DataDir, addrs[0], addrs[1], cellAPI)
}

// `pando server` boots with its local cell (on the fake backend here),
// lists it, serves the API on its listener and the router's HTTP and
// HTTPS system hosts, and stops cleanly.
func TestRun_servesWithItsLocalCellAndStopsCleanly(t *testing.T) {
	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.CacheDir = t.TempDir()
	readySeeds(t, cfg.CacheDir)
	cfg.CellMemoryMB, cfg.CellDiskMB = 2048, 4096
	cfg.backend = fakeBackend{fake.New(fake.Options{})}
	var stdout bytes.Buffer // written before Ready
	cfg.RouterTLSAddr, cfg.Stdout = freeAddr(t), &stdout
	srv, addrs := boot(t, func(ctx context.Context) error { return Run(ctx, cfg) }, ready)
	c := login(t, addrs[0], cfg.AdminPassword)
	for _, at := range []struct{ addr, host string }{{addrs[0], ""}, {addrs[1], "api.localhost"}} {
		if status := c.get(at.addr, at.host, "/v3/info", nil); status != http.StatusOK {
			t.Errorf("GET /v3/info at %s (Host %q): status %d", at.addr, at.host, status)
		}
	}
	// A cf CLI lists guids in URLs: 1500 of them (a 55 KB head, past the
	// API's small heads) are served.
	guids := make([]string, 1500)
	for i := range guids {
		guids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	var apps struct {
		Resources []json.RawMessage `json:"resources"`
	}
	if status := c.get(addrs[0], "", "/v3/apps?guids="+strings.Join(guids, ","), &apps); status != http.StatusOK || len(apps.Resources) != 0 {
		t.Errorf("GET /v3/apps with 1500 guids: status %d, %d apps", status, len(apps.Resources))
	}
	if want := "Router HTTPS: https://" + cfg.RouterTLSAddr; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout %q does not say %q", stdout.String(), want)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+cfg.RouterTLSAddr+"/v3/info", nil)
	req.Host = "api.localhost"
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "api.localhost", InsecureSkipVerify: true}}}
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v3/info through the router's HTTPS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := c.cellStates(); len(got) != 1 || got["cell-0"] != "healthy" {
		t.Errorf("cells %v, want the healthy local cell-0 only", got)
	}
	cellAPI := c.cellAPIAddr()
	for _, f := range []string{cellauth.TokenFile, cellauth.RouterTokenFile} {
		readToken(t, filepath.Join(cfg.DataDir, f))
	}
	srv.stop(t)
	requireReleased(t, cfg.DataDir, addrs[0], addrs[1], cellAPI, cfg.RouterTLSAddr)
}

// `pando api` takes the names of the cells' stacks, nothing else.
func TestRunAPI_refusesAStackItCannotName(t *testing.T) {
	for _, stacks := range []map[string]string{{"host": ""}, {"bookworm": "/srv/rootfs"}, {"a b": ""}} {
		cfg := Config{DataDir: t.TempDir(), Stacks: stacks, Logger: slog.New(slog.DiscardHandler)}
		if err := RunAPI(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--stack") {
			t.Errorf("stacks %v: %v, want a --stack error", stacks, err)
		}
	}
}

// A node that cannot start (its router's address is taken) says which
// address, and gives back what it had opened: the API's address and the
// data dir.
func TestRunAPI_thatCannotStartGivesBackWhatItOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := platformConfig(t, nil)
	cfg.APIAddr, cfg.RouterAddr = freeAddr(t), taken.Addr().String()
	err = RunAPI(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "router address "+cfg.RouterAddr) {
		t.Fatalf("RunAPI with its router address taken: %v", err)
	}
	requireReleased(t, cfg.DataDir, cfg.APIAddr)
}

// A `pando server` whose start fails after it opened the platform and its
// cell (here: the cell API address the operator chose is taken) returns
// the error and gives back what it opened, its data dir's lock included.
func TestRun_failingStartReturnsItsErrorAndReleasesTheDataDir(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := platformConfig(t, make(chan [2]string, 1))
	cfg.CellAPIAddr = taken.Addr().String()
	cfg.CacheDir = t.TempDir()
	readySeeds(t, cfg.CacheDir)
	cfg.backend = fakeBackend{fake.New(fake.Options{})}
	err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("Run with a taken cell API address: %v, want an error naming it", err)
	}
	requireReleased(t, cfg.DataDir)
}
