package cellapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/logs"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// fixture is a server side (CA, token, BBS, blobstore, log store, the
// cell API over TLS and the join info over plain HTTP).
type fixture struct {
	ca      *cellauth.CA
	tok     cellauth.Token
	board   *bbs.BBS
	blobs   *fsblob.Store
	logs    *logs.Store
	grants  *Grants
	apiURL  string // plain HTTP, join info
	cellAPI *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, func(b pando.Blobstore) pando.Blobstore { return b })
}

// newFixtureWith serves the blobstore through wrap.
func newFixtureWith(t *testing.T, wrap func(pando.Blobstore) pando.Blobstore) *fixture {
	t.Helper()
	return newFixtureTTL(t, wrap, 0)
}

// newFixtureTTL is newFixtureWith with a cell presence TTL (0: the
// default).
func newFixtureTTL(t *testing.T, wrap func(pando.Blobstore) pando.Blobstore, ttl time.Duration) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := cellauth.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cellauth.LoadOrCreateToken(filepath.Join(dir, cellauth.TokenFile), ca)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.ServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ca: ca, tok: tok, board: bbs.New(bbs.Config{CellPresenceTTL: ttl}), grants: NewGrants()}
	if f.blobs, err = fsblob.New(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	f.logs = logs.New(logs.Config{})
	t.Cleanup(f.logs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.board.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	h, err := NewServerHandler(ServerConfig{CA: ca, Token: tok, Cells: f.board, Reporter: f.board, Owners: f.board,
		Blobs: wrap(f.blobs), Logs: f.logs, Grants: f.grants, RepHTTP: RepHTTPClient(serverCert, ca.Pool()),
		PresenceTTL: f.board.CellPresenceTTL()})
	if err != nil {
		t.Fatal(err)
	}
	f.cellAPI = httptest.NewUnstartedServer(h)
	f.cellAPI.TLS = cellauth.ServerTLS(serverCert, ca.Pool())
	f.cellAPI.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.cellAPI.StartTLS()
	t.Cleanup(f.cellAPI.Close)
	api := httptest.NewServer(JoinInfoHandler(ca, f.cellAPI.Listener.Addr().String()))
	t.Cleanup(api.Close)
	f.apiURL = api.URL
	return f
}

// joinedCell is a simulated cell that joined f and serves its rep.
type joinedCell struct {
	id     string
	creds  *cellauth.Credentials
	sim    *runtimetest.Cell
	client *ServerClient
	rep    *httptest.Server
}

func (f *fixture) join(t *testing.T, id string) *joinedCell {
	t.Helper()
	creds, err := cellauth.Join(context.Background(), http.DefaultClient, f.apiURL, f.tok, id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &joinedCell{id: id, creds: creds, sim: runtimetest.NewCell(id, 4096), client: NewServerClient(creds, nil)}
	c.sim.Reporter = c.client
	c.rep = httptest.NewUnstartedServer(NewRepHandler(c.sim))
	c.rep.TLS = cellauth.ServerTLS(creds.Cert, creds.Pool)
	c.rep.StartTLS()
	t.Cleanup(c.rep.Close)
	st, _ := c.sim.State(context.Background())
	if err := c.client.Register(context.Background(), c.rep.URL, st); err != nil {
		t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJoinedCell_runsWorkReadsOnlyItsBlobsAndShipsItsLogs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.join(t, "cell-a")
	if _, ok := f.board.Cell("cell-a"); !ok {
		t.Fatal("the joined cell is not registered")
	}
	if _, err := f.blobs.Put(ctx, "droplets/d1", strings.NewReader("droplet one")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.blobs.Put(ctx, "droplets/d2", strings.NewReader("another app's droplet")); err != nil {
		t.Fatal(err)
	}
	// Before any work, the cell may read nothing.
	if _, err := c.client.Get(ctx, "droplets/d1"); pando.ErrorKindOf(err) != pando.EForbidden {
		t.Fatalf("get a blob before any work: %v, want forbidden", err)
	}

	err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p1", AppGUID: "app1", Instances: 1,
		MemoryMB: 256, DiskMB: 256, DropletKey: "droplets/d1"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "instance RUNNING on the joined cell", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "p1")
		return len(as) == 1 && as[0].State == pando.ActualRunning && as[0].CellID == "cell-a"
	})

	rc, err := c.client.Get(ctx, "droplets/d1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "droplet one" {
		t.Fatalf("droplet read by the cell: %q, %v", b, err)
	}
	if _, err := c.client.Get(ctx, "droplets/d2"); pando.ErrorKindOf(err) != pando.EForbidden {
		t.Fatalf("get another app's droplet: %v, want forbidden", err)
	}
	if _, err := c.client.Put(ctx, "droplets/d1", strings.NewReader("overwritten")); pando.ErrorKindOf(err) != pando.EForbidden {
		t.Fatalf("overwrite a droplet it only runs: %v, want forbidden", err)
	}

	// Staging work grants writing its droplet and the build cache.
	task := pando.Task{GUID: "t1", Kind: pando.TaskStaging, Staging: &pando.StagingRequest{AppGUID: "app1",
		DropletGUID: "d3", PackageKey: "packages/k1", BuildCacheKey: "buildcache/app1", MemoryMB: 512}}
	if err := f.board.DesireTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	eventually(t, "staging task on the joined cell", func() bool { return c.sim.Running("t1") })
	big := bytes.Repeat([]byte("droplet bytes "), 100000)
	info, err := c.client.Put(ctx, "droplets/d3", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(big)) {
		t.Fatalf("stored %d bytes, want %d", info.Size, len(big))
	}
	if ok, err := c.client.Exists(ctx, "droplets/d3"); !ok || err != nil {
		t.Fatalf("exists after upload: %v %v", ok, err)
	}
	if err := c.sim.CompleteTask(ctx, "t1", pando.Task{Result: &pando.StagingResult{StartCommand: "run"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task completed", func() bool {
		tk, err := f.board.Task(ctx, "t1")
		return err == nil && tk.State == pando.TaskCompleted && !tk.Failed
	})

	// Logs: the app's lines reach the store, another app's do not.
	ship := c.client.NewLogShipper(0)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { ship.Run(sctx); close(done) }()
	defer func() { stop(); <-done }()
	ship.Emit(pando.LogEnvelope{Timestamp: time.Now(), SourceID: "app2", SourceType: pando.LogSourceApp, Type: "OUT", Payload: []byte("forged")})
	ship.Emit(pando.LogEnvelope{Timestamp: time.Now(), SourceID: "app1", SourceType: pando.LogSourceApp, Type: "OUT", Payload: []byte("hello from cell-a")})
	eventually(t, "the app's line in the log store", func() bool {
		for _, e := range f.logs.Read("app1", logs.ReadQuery{}) {
			if string(e.Payload) == "hello from cell-a" {
				return true
			}
		}
		return false
	})
	if got := f.logs.Read("app2", logs.ReadQuery{}); len(got) != 0 {
		t.Fatalf("another app's lines were stored: %v", got)
	}

	// Leaving unregisters the cell; its instance is placed again.
	if err := c.client.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.board.Cell("cell-a"); ok {
		t.Fatal("the cell is still registered after leaving")
	}
}

func TestLogShipper_countsWhatItDropsAndSaysSo(t *testing.T) {
	f := newFixture(t)
	c := f.join(t, "cell-a")
	ctx := context.Background()
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p1", AppGUID: "app1", Instances: 1, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "instance RUNNING", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "p1")
		return len(as) == 1 && as[0].State == pando.ActualRunning
	})
	ship := c.client.NewLogShipper(10)
	for i := range 25 {
		ship.Emit(pando.LogEnvelope{SourceID: "app1", SourceType: pando.LogSourceApp, Type: "OUT", Payload: []byte{byte('a' + i)}})
	}
	if got := ship.Dropped("app1"); got != 15 {
		t.Fatalf("dropped %d, want 15", got)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { ship.Run(sctx); close(done) }()
	defer func() { stop(); <-done }()
	eventually(t, "the ten lines and the loss notice", func() bool {
		got := f.logs.Read("app1", logs.ReadQuery{})
		notice := false
		for _, e := range got {
			notice = notice || strings.Contains(string(e.Payload), "15 log lines lost")
		}
		return len(got) == 11 && notice
	})
}

func TestJoin_refusesAWrongSecretAndAForeignCA(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wrong := f.tok
	wrong.Secret = strings.Repeat("0", 64)
	// The operator reads the server's words, not its JSON.
	_, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, wrong, "cell-a", t.TempDir())
	if err == nil || !strings.HasSuffix(err.Error(), ": join refused: wrong token secret (use the token in the server's <data-dir>/cell-token)") ||
		pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Fatalf("join with a wrong secret: %v", err)
	}
	other, err := cellauth.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pinsOther := f.tok
	pinsOther.CAHash = other.Hash()
	if _, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, pinsOther, "cell-a", t.TempDir()); err == nil || !strings.Contains(err.Error(), "not the one the token pins") {
		t.Fatalf("join pinning another CA: %v", err)
	}
	if _, ok := f.board.Cell("cell-a"); ok {
		t.Fatal("a refused cell is registered")
	}
	// The server's own cell's ID is not for joined cells.
	f.board.RegisterCell(runtimetest.NewCell("cell-0", 1024))
	if _, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, f.tok, "cell-0", t.TempDir()); err == nil || !strings.Contains(err.Error(), "the server's own cell") {
		t.Fatalf("join as the server's own cell: %v", err)
	}
}

func TestJoin_keepsItsCertificateAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	first, err := cellauth.Join(context.Background(), http.DefaultClient, f.apiURL, f.tok, "cell-a", dir)
	if err != nil {
		t.Fatal(err)
	}
	wrong := f.tok
	wrong.Secret = strings.Repeat("1", 64)
	// A restart finds its certificate: the secret is not even needed.
	again, err := cellauth.Join(context.Background(), http.DefaultClient, f.apiURL, wrong, "cell-a", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Cert.Certificate[0], again.Cert.Certificate[0]) {
		t.Fatal("a restarted cell got a new certificate")
	}
	// The cell logs a first join and a rejoin apart by Kept.
	if first.Kept || !again.Kept {
		t.Errorf("Kept: first join %v, restart %v; want false, true", first.Kept, again.Kept)
	}
}

func TestCellAPI_refusesCertificatesTheCADidNotSign(t *testing.T) {
	f := newFixture(t)
	forger, err := cellauth.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A certificate for "cell-x" from another CA, presented to the cell
	// API with the real CA pinned (the forger knows the server's CA).
	fake := &joinedCell{}
	forged, err := forger.ServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pool := f.ca.Pool()
	creds := &cellauth.Credentials{Cert: forged, Pool: pool, CellAPI: f.cellAPI.URL}
	fake.client = NewServerClient(creds, nil)
	err = fake.client.Register(context.Background(), "https://127.0.0.1:1", pando.CellState{})
	if err == nil {
		t.Fatal("a forged certificate registered a cell")
	}
	// Without any certificate: refused as unauthenticated.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cellauth.ClientTLS(nil, pool, cellauth.ServerName)}}
	resp, err := hc.Post(f.cellAPI.URL+presencePath, "application/json", strings.NewReader(`{"rep_url":"https://127.0.0.1:1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("presence without a certificate: %s, want 401", resp.Status)
	}
	if cs, _ := f.board.Cells(context.Background()); len(cs) != 0 {
		t.Fatalf("cells registered: %v", cs)
	}
}

func TestRep_onlyTheServerMayCallIt(t *testing.T) {
	f := newFixture(t)
	a := f.join(t, "cell-a")
	b := f.join(t, "cell-b")
	// Cell b calls cell a's rep with its own (valid) certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cellauth.ClientTLS(&b.creds.Cert, b.creds.Pool, cellauth.CellName("cell-a"))}}
	resp, err := hc.Get(a.rep.URL + "/v1/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cell calling another cell's rep: %s, want 403", resp.Status)
	}
	// And the server's client checks it reaches the right cell.
	serverCert, err := f.ca.ServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	wrongCell := NewRepClient("cell-b", a.rep.URL, RepHTTPClient(serverCert, f.ca.Pool())("cell-b"), nil)
	if _, err := wrongCell.State(context.Background()); err == nil {
		t.Fatal("the rep client accepted cell a's certificate as cell b's")
	}
}

func TestGrants_comeBackFromReportsOfInstancesTheRuntimePlacedThere(t *testing.T) {
	f := newFixture(t)
	c := f.join(t, "cell-a")
	ctx := context.Background()
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p1", AppGUID: "app1", Instances: 1,
		MemoryMB: 64, DropletKey: "droplets/d1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p2", AppGUID: "app2", Instances: 0,
		MemoryMB: 64, DropletKey: "droplets/d2"}); err != nil {
		t.Fatal(err)
	}
	var running pando.ActualLRP
	eventually(t, "instance RUNNING", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "p1")
		if len(as) == 1 && as[0].State == pando.ActualRunning {
			running = as[0]
			return true
		}
		return false
	})
	// The server restarted: its grants are gone.
	f.grants.mu.Lock()
	f.grants.cells = map[string]*cellGrants{}
	f.grants.mu.Unlock()
	if f.grants.CanLog("cell-a", "app1") {
		t.Fatal("grants survived their reset")
	}
	if err := c.client.ActualLRPChanged(ctx, running); err != nil {
		t.Fatal(err)
	}
	if !f.grants.CanLog("cell-a", "app1") || !f.grants.CanRead("cell-a", "droplets/d1") {
		t.Fatal("the report of a running instance did not grant its app's logs and droplet again")
	}
	// A made-up instance of another app grants nothing.
	fake := pando.ActualLRP{ProcessGUID: "p2", InstanceGUID: "made-up", State: pando.ActualRunning}
	if err := c.client.ActualLRPChanged(ctx, fake); err != nil {
		t.Fatal(err)
	}
	if f.grants.CanLog("cell-a", "app2") || f.grants.CanRead("cell-a", "droplets/d2") {
		t.Fatal("a report on an instance the runtime never placed there granted its app")
	}
}

func TestDrain_marksOnlyTheCallingCellDraining(t *testing.T) {
	f := newFixture(t)
	a := f.join(t, "cell-a")
	f.join(t, "cell-b")
	ctx := context.Background()
	if _, err := a.client.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	cells, err := f.board.Cells(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cells {
		got[c.ID] = c.State
	}
	if got["cell-a"] != pando.CellDraining || got["cell-b"] != pando.CellHealthy {
		t.Fatalf("cell states after cell-a drained: %v", got)
	}
	if err := a.client.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.Drain(ctx); !pando.IsNotFound(err) {
		t.Fatalf("a cell that left drained: %v, want not found", err)
	}
}

func TestDrain_theLastCellIsToldWhichInstancesNoOtherCellCanTake(t *testing.T) {
	f := newFixture(t)
	a := f.join(t, "cell-a")
	ctx := context.Background()
	err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "web", AppGUID: "app1", Revision: 1, Instances: 1,
		MemoryMB: 64, DiskMB: 64, Stack: "host"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the instance running on cell-a", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "web")
		return len(as) == 1 && as[0].State == pando.ActualRunning
	})
	answer, err := a.client.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(answer.Stopping) != 1 || answer.Stopping[0].ProcessGUID != "web" ||
		!strings.HasPrefix(answer.Stopping[0].PlacementError, "no healthy cells") {
		t.Fatalf("drain answer %+v, want the instance and why no cell can take it", answer)
	}
}

func TestKeepPresence_saysWhenTheServerHadForgottenTheCell(t *testing.T) {
	f := newFixture(t)
	c := f.join(t, "cell-a")
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	calls := 0
	reregistered := func() { mu.Lock(); calls++; mu.Unlock() }
	// Each renewal reads the cell's state first: once renewal k+1 has,
	// renewal k was answered.
	var renewals atomic.Int64
	state := func(ctx context.Context) (pando.CellState, error) {
		renewals.Add(1)
		return c.sim.State(ctx)
	}
	renewed := func(n int64) {
		t.Helper()
		want := renewals.Load() + n + 1
		eventually(t, fmt.Sprintf("%d more renewals", n), func() bool { return renewals.Load() >= want })
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.client.KeepPresence(ctx, c.rep.URL, 20*time.Millisecond, state, reregistered)
	}()
	defer func() { cancel(); <-done }()
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	// Renewals of a known cell are not registrations.
	renewed(3)
	if n := count(); n != 0 {
		t.Fatalf("reregistered %d times while the server knew the cell", n)
	}
	// Lost (as after its presence expired): the next renewal registers it
	// again and says so, once.
	f.board.UnregisterCell("cell-a")
	eventually(t, "the cell registered again", func() bool { _, ok := f.board.Cell("cell-a"); return ok && count() == 1 })
	renewed(3)
	if n := count(); n != 1 {
		t.Fatalf("reregistered %d times, want 1", n)
	}
}

// A cell renews its presence at a third of the TTL the server names, not
// at the default 2 s: with a TTL shorter than that it is never lost
// while it renews, and with the default TTL it renews every 2 s.
func TestKeepPresence_renewsAtAThirdOfTheServersTTL(t *testing.T) {
	const ttl = 600 * time.Millisecond
	f := newFixtureTTL(t, func(b pando.Blobstore) pando.Blobstore { return b }, ttl)
	c := f.join(t, "cell-a")
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	lost := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.client.KeepPresence(ctx, c.rep.URL, 0, c.sim.State, func() { mu.Lock(); lost++; mu.Unlock() })
	}()
	defer func() { cancel(); <-done }()
	// Past DefaultHeartbeat: a cell renewing every 2 s would have been
	// lost (and registered again) by then.
	deadline := time.Now().Add(DefaultHeartbeat + 4*ttl)
	for time.Now().Before(deadline) {
		if _, ok := f.board.Cell("cell-a"); !ok {
			t.Fatal("the cell's presence expired while it was renewing it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if lost != 0 {
		t.Fatalf("the server forgot the cell %d times", lost)
	}
	if got := heartbeatFor(bbs.DefaultCellPresenceTTL); got != DefaultHeartbeat {
		t.Errorf("renewals for the default TTL every %s, want %s", got, DefaultHeartbeat)
	}
}

// A cell process that restarts (same id, same rep URL) before its
// presence expired comes back empty: the server places again what it had
// placed there, rather than keep listing it RUNNING. Renewals of the same
// process change nothing.
func TestPresence_aRestartedCellHasItsInstancesPlacedAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.join(t, "cell-a")
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p1", AppGUID: "app1", Instances: 1,
		MemoryMB: 256, DiskMB: 256, DropletKey: "droplets/d1"}); err != nil {
		t.Fatal(err)
	}
	var first string
	eventually(t, "instance RUNNING on the joined cell", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "p1")
		if len(as) == 1 && as[0].State == pando.ActualRunning && as[0].CellID == "cell-a" {
			first = as[0].InstanceGUID
			return true
		}
		return false
	})
	st, _ := c.sim.State(ctx)
	for range 3 {
		if err := c.client.Register(ctx, c.rep.URL, st); err != nil {
			t.Fatal(err)
		}
	}
	if as, _ := f.board.ActualLRPs(ctx, "p1"); len(as) != 1 || as[0].InstanceGUID != first || as[0].State != pando.ActualRunning {
		t.Fatalf("renewals of the same cell process moved its instance: %+v", as)
	}

	// The same cell, a new process (a new client, so a new session).
	restarted := NewServerClient(c.creds, nil)
	if err := restarted.Register(ctx, c.rep.URL, st); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the instance placed again", func() bool {
		as, _ := f.board.ActualLRPs(ctx, "p1")
		return len(as) == 1 && as[0].InstanceGUID != first && as[0].State == pando.ActualRunning && as[0].CellID == "cell-a"
	})
	if _, ok := f.board.Cell("cell-a"); !ok {
		t.Fatal("the restarted cell is not registered")
	}
}

// TestCrashReport_carriesTheFailureAndAnOlderCellsWords: a joined cell's
// crash report reaches the runtime with its failure kind intact, and the
// free-text reason a cell from before failure kinds sends still does.
func TestCrashReport_carriesTheFailureAndAnOlderCellsWords(t *testing.T) {
	f := newFixture(t)
	c := f.join(t, "cell-a")
	ctx := context.Background()
	if err := f.board.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "p1", AppGUID: "app1", Instances: 1,
		MemoryMB: 64, DropletKey: "droplets/d1"}); err != nil {
		t.Fatal(err)
	}
	running := func() pando.ActualLRP {
		var in pando.ActualLRP
		eventually(t, "instance RUNNING", func() bool {
			as, _ := f.board.ActualLRPs(ctx, "p1")
			if len(as) == 1 && as[0].State == pando.ActualRunning {
				in = as[0]
				return true
			}
			return false
		})
		return in
	}
	crashed := func(in pando.ActualLRP, why *pando.Failure, reason string) pando.ActualLRP {
		in.State, in.Crash, in.CrashReason = pando.ActualCrashed, why, reason
		if err := c.client.ActualLRPChanged(ctx, in); err != nil {
			t.Fatal(err)
		}
		var got pando.ActualLRP
		eventually(t, "crash recorded", func() bool {
			as, _ := f.board.ActualLRPs(ctx, "p1")
			for _, a := range as {
				if a.CrashCount > in.CrashCount {
					got = a
					return true
				}
			}
			return false
		})
		return got
	}
	why := pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}
	if got := crashed(running(), &why, ""); got.Crash == nil || *got.Crash != why || got.CrashReason != "" {
		t.Fatalf("after a crash report with a failure: %+v", got)
	}
	old := "APP/PROC/WEB/0 Exited with status 3"
	if got := crashed(running(), nil, old); got.Crash != nil || got.CrashReason != old {
		t.Fatalf("after an older cell's crash report: %+v", got)
	}
}
