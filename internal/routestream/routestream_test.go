package routestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// syncBuffer is a log destination the follower's goroutine writes while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeTable records what a Follower writes, as the router would hold it.
type fakeTable struct {
	mu      sync.Mutex
	entries map[string]Entry
}

func newFakeTable() *fakeTable { return &fakeTable{entries: map[string]Entry{}} }

func (t *fakeTable) SetRoutes(key, appGUID string, routes []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	e.AppGUID, e.Routes = appGUID, routes
	t.entries[key] = e
}

func (t *fakeTable) SetBackends(key string, bs []router.Backend) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	e.Backends = toBackends(bs)
	t.entries[key] = e
}

func (t *fakeTable) RemoveProcess(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// routes is key -> "route@addr,addr" for comparisons.
func (t *fakeTable) routes() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]string{}
	for k, e := range t.entries {
		s := ""
		for _, r := range e.Routes {
			s += r + " "
		}
		s += "@"
		for _, b := range e.Backends {
			s += " " + b.Addr
		}
		out[k] = s
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

const secret = "s3cret"

func authorize(r *http.Request) error {
	if BearerSecret(r) != secret {
		return pando.Errorf(pando.EUnauthenticated, "wrong router token")
	}
	return nil
}

// streamServer serves hub's stream; down makes new connections fail.
type streamServer struct {
	srv   *httptest.Server
	down  atomic.Bool
	opens atomic.Int32
}

func newStreamServer(t *testing.T, hub *Hub, cfg HandlerConfig) *streamServer {
	t.Helper()
	if cfg.Authorize == nil {
		cfg.Authorize = authorize
	}
	s := &streamServer{srv: httptest.NewServer(hub.Handler(cfg))}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *streamServer) connect(ctx context.Context) (io.ReadCloser, error) {
	if s.down.Load() {
		return nil, errors.New("server down")
	}
	s.opens.Add(1)
	return Open(ctx, s.srv.Client(), s.srv.URL, secret)
}

func follow(t *testing.T, s *streamServer, table *fakeTable) *Follower {
	t.Helper()
	f := NewFollower(FollowerConfig{Connect: s.connect, Table: table, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func backend(addr string) []router.Backend {
	return []router.Backend{{InstanceGUID: "i-" + addr, Addr: addr}}
}

func TestStream_snapshotThenChanges(t *testing.T) {
	hub := NewHub("sys.example.com", 0, 0)
	hub.SetRoutes("p1", "a1", []string{"one.example.com"})
	hub.SetBackends("p1", backend("10.0.0.1:61001"))
	hub.SetRoutes("p2", "a2", []string{"two.example.com/path"})
	srv := newStreamServer(t, hub, HandlerConfig{})
	table := newFakeTable()
	var domain atomic.Value
	f := NewFollower(FollowerConfig{Connect: srv.connect, Table: table,
		OnSnapshot: func(d string) { domain.Store(d) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the snapshot", func() bool { return f.Synced() == 1 })
	want := map[string]string{"p1": "one.example.com @ 10.0.0.1:61001", "p2": "two.example.com/path @"}
	if got := table.routes(); !equalMaps(got, want) {
		t.Fatalf("after the snapshot: %v, want %v", got, want)
	}
	if d, _ := domain.Load().(string); d != "sys.example.com" {
		t.Errorf("system domain %q, want sys.example.com", d)
	}

	hub.SetBackends("p2", backend("10.0.0.2:61002"))
	hub.SetRoutes("p1", "a1", []string{"one.example.com", "uno.example.com"})
	hub.RemoveProcess("p1")
	hub.SetRoutes("p3", "a3", []string{"three.example.com"})
	want = map[string]string{"p2": "two.example.com/path @ 10.0.0.2:61002", "p3": "three.example.com @"}
	waitFor(t, "the changes", func() bool { return equalMaps(table.routes(), want) })
	if n := f.Synced(); n != 1 {
		t.Errorf("%d snapshots, want 1: changes come as changes", n)
	}
}

func TestStream_unchangedEntriesAreNotSentAgain(t *testing.T) {
	hub := NewHub("", 0, 0)
	sub, err := hub.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Next(t.Context()); err != nil { // the snapshot
		t.Fatal(err)
	}
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	hub.SetBackends("p", backend("10.0.0.1:1"))
	hub.SetBackends("p", backend("10.0.0.1:1"))
	hub.RemoveProcess("gone")
	msgs, err := sub.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Type != TypeSet || msgs[1].Type != TypeSet {
		t.Fatalf("got %+v, want two sets (routes, then backends)", msgs)
	}
}

func TestStream_resyncAfterReconnectRemovesWhatVanished(t *testing.T) {
	hub := NewHub("", 0, 0)
	hub.SetRoutes("stays", "a", []string{"stays.example.com"})
	hub.SetBackends("stays", backend("10.0.0.1:1"))
	hub.SetRoutes("goes", "b", []string{"goes.example.com"})
	hub.SetBackends("goes", backend("10.0.0.1:2"))
	srv := newStreamServer(t, hub, HandlerConfig{})
	table := newFakeTable()
	f := follow(t, srv, table)
	waitFor(t, "the first snapshot", func() bool { return f.Synced() == 1 })

	// The server goes away: the router keeps its table.
	srv.down.Store(true)
	srv.srv.CloseClientConnections()
	hub.RemoveProcess("goes")
	hub.SetRoutes("new", "c", []string{"new.example.com"})
	hub.SetBackends("stays", backend("10.0.0.9:1"))
	opens := srv.opens.Load()
	waitFor(t, "a failed reconnection", func() bool { return f.Synced() == 1 && srv.opens.Load() == opens })
	want := map[string]string{"stays": "stays.example.com @ 10.0.0.1:1", "goes": "goes.example.com @ 10.0.0.1:2"}
	if got := table.routes(); !equalMaps(got, want) {
		t.Fatalf("while the server is away: %v, want the last table %v", got, want)
	}

	srv.down.Store(false)
	waitFor(t, "the second snapshot", func() bool { return f.Synced() == 2 })
	want = map[string]string{"stays": "stays.example.com @ 10.0.0.9:1", "new": "new.example.com @"}
	if got := table.routes(); !equalMaps(got, want) {
		t.Fatalf("after the resync: %v, want %v", got, want)
	}
}

func TestStream_slowSubscriberIsBoundedAndGetsASnapshot(t *testing.T) {
	const maxQueue = 8
	hub := NewHub("", maxQueue, 0)
	sub, err := hub.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if msgs, err := sub.Next(t.Context()); err != nil || msgs[0].Type != TypeSnapshot {
		t.Fatalf("first read: %v %v, want a snapshot", msgs, err)
	}
	// The subscriber reads nothing while 1000 changes go by.
	for i := range 1000 {
		hub.SetBackends("p", backend("10.0.0.1:"+string(rune('0'+i%10))+"0"))
		hub.mu.Lock()
		n := len(sub.queue)
		hub.mu.Unlock()
		if n > maxQueue {
			t.Fatalf("after %d changes the subscriber holds %d, past its bound %d", i+1, n, maxQueue)
		}
	}
	if sub.Overflows() == 0 {
		t.Fatal("the subscriber never overflowed")
	}
	msgs, err := sub.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Type != TypeSnapshot || msgs[1].Key != "p" || msgs[2].Type != TypeSynced {
		t.Fatalf("after falling behind: %+v, want a snapshot of the one entry", msgs)
	}
	if got := msgs[1].Entry.Backends[0].Addr; got != "10.0.0.1:90" {
		t.Errorf("snapshot holds %s, want the last change's 10.0.0.1:90", got)
	}
}

func TestStream_refusedWithoutTheToken(t *testing.T) {
	hub := NewHub("", 0, 0)
	hub.SetRoutes("p", "a", []string{"secret-app.example.com"})
	srv := newStreamServer(t, hub, HandlerConfig{})
	for _, tok := range []string{"", "wrong"} {
		_, err := Open(t.Context(), srv.srv.Client(), srv.srv.URL, tok)
		if pando.ErrorKindOf(err) != pando.EUnauthenticated {
			t.Errorf("token %q: %v, want unauthenticated", tok, err)
		}
	}
	resp, err := srv.srv.Client().Get(srv.srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "secret-app") {
		t.Errorf("no token: %s %s, want 401 without the table", resp.Status, body)
	}
}

func TestStream_subscribersAreBounded(t *testing.T) {
	hub := NewHub("", 0, 2)
	for range 2 {
		sub, err := hub.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	if _, err := hub.Subscribe(); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("third subscriber: %v, want ErrTooManySubscribers", err)
	}
}

func TestFollower_givesUpOnASilentStream(t *testing.T) {
	// A server that answers the snapshot and then says nothing, not even
	// heartbeats: the follower must dial again rather than wait forever.
	var opens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opens.Add(1)
		io.WriteString(w, `{"type":"snapshot"}`+"\n"+`{"type":"synced"}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	f := NewFollower(FollowerConfig{
		Connect:     func(ctx context.Context) (io.ReadCloser, error) { return Open(ctx, srv.Client(), srv.URL, secret) },
		Table:       newFakeTable(),
		IdleTimeout: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "a second connection", func() bool { return opens.Load() >= 2 && f.Synced() >= 2 })
}

// The stream breaks (a server stopping), then the server is back but
// refuses the router's token (rotated meanwhile): that refusal is logged
// as a warning too, once, not hidden among the retries of the first
// failure.
func TestFollower_warnsAgainWhenTheReasonChanges(t *testing.T) {
	var opens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opens.Add(1) == 1 {
			io.WriteString(w, `{"type":"snapshot"}`+"\n"+`{"type":"synced"}`+"\n")
			return
		}
		wireerr.Write(w, pando.EUnauthenticated, "router refused: wrong or missing router token")
	}))
	defer srv.Close()
	logs := &syncBuffer{}
	f := NewFollower(FollowerConfig{
		Connect:    func(ctx context.Context) (io.ReadCloser, error) { return Open(ctx, srv.Client(), srv.URL, secret) },
		Table:      newFakeTable(),
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "several refused reconnections", func() bool { return opens.Load() >= 6 })
	out := logs.String()
	if n := strings.Count(out, "the server closed it"); n != 1 {
		t.Errorf("the stream's end warned %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "wrong or missing router token"); n != 1 {
		t.Errorf("the token's refusal warned %d times, want once:\n%s", n, out)
	}
}

func TestStream_heartbeatsKeepAQuietStreamAlive(t *testing.T) {
	hub := NewHub("", 0, 0)
	srv := newStreamServer(t, hub, HandlerConfig{Heartbeat: 10 * time.Millisecond})
	f := NewFollower(FollowerConfig{Connect: srv.connect, Table: newFakeTable(), IdleTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the snapshot", func() bool { return f.Synced() == 1 })
	// Five idle timeouts of heartbeats only, on one connection.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := srv.opens.Load(); n != 1 {
			t.Fatalf("%d connections: a stream with heartbeats was given up", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStream_heldHubSendsNoSnapshotUntilReleased(t *testing.T) {
	hub := NewHub("", 0, 0)
	hub.Hold()
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	srv := newStreamServer(t, hub, HandlerConfig{Heartbeat: 5 * time.Millisecond})
	table := newFakeTable()
	// The router holds an entry from before; a held server must not
	// wipe it with a table it has not rebuilt yet.
	f := NewFollower(FollowerConfig{Connect: srv.connect, Table: table})
	f.Load("", map[string]Entry{"old": {AppGUID: "o", Routes: []string{"old.example.com"}}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the connection", func() bool { return srv.opens.Load() == 1 })
	sub, err := hub.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if msgs := sub.take(); len(msgs) != 0 {
		t.Fatalf("a held hub gave %+v", msgs)
	}
	sub.Close()
	if got := table.routes(); len(got) != 1 || f.Synced() != 0 {
		t.Fatalf("while held: %v (%d snapshots), want the loaded table", got, f.Synced())
	}
	hub.Release()
	waitFor(t, "the snapshot", func() bool { return f.Synced() == 1 })
	want := map[string]string{"p": "x.example.com @"}
	if got := table.routes(); !equalMaps(got, want) {
		t.Fatalf("after release: %v, want %v", got, want)
	}
}

func TestTable_savedAndLoadedBack(t *testing.T) {
	path := t.TempDir() + "/" + TableFile
	if d, es, rs, err := LoadTable(path); err != nil || d != "" || es != nil || rs != nil {
		t.Fatalf("no file: %q %v %v %v, want nothing", d, es, rs, err)
	}
	want := map[string]Entry{"p": {AppGUID: "a", Routes: []string{"x.example.com"}, Backends: []Backend{{InstanceGUID: "i", Index: 1, Addr: "10.0.0.1:1"}}}}
	if err := SaveTable(path, "sys.example.com", want, map[string]string{"x.example.com/p": "https://rs.example.com"}); err != nil {
		t.Fatal(err)
	}
	d, got, rs, err := LoadTable(path)
	if err != nil || d != "sys.example.com" || len(got) != 1 || got["p"].Backends[0] != want["p"].Backends[0] || got["p"].Routes[0] != "x.example.com" {
		t.Fatalf("loaded %q %+v %v, want %+v", d, got, err, want)
	}
	if len(rs) != 1 || rs["x.example.com/p"] != "https://rs.example.com" {
		t.Fatalf("loaded route services %v", rs)
	}
}

func TestFollower_tableAndOnChangeFollowTheStream(t *testing.T) {
	hub := NewHub("sys.example.com", 0, 0)
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	srv := newStreamServer(t, hub, HandlerConfig{})
	changes := make(chan struct{}, 100)
	f := NewFollower(FollowerConfig{Connect: srv.connect, Table: newFakeTable(),
		OnChange: func() { changes <- struct{}{} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-changes // the snapshot
	if d, es := f.Table(); d != "sys.example.com" || len(es) != 1 || es["p"].Routes[0] != "x.example.com" {
		t.Fatalf("after the snapshot: %q %+v", d, es)
	}
	hub.RemoveProcess("p")
	<-changes
	if _, es := f.Table(); len(es) != 0 {
		t.Fatalf("after the removal: %+v, want nothing", es)
	}
}

func TestStream_aRouterThatStopsReadingIsCutOff(t *testing.T) {
	hub := NewHub("", 16, 0)
	srv := newStreamServer(t, hub, HandlerConfig{WriteTimeout: 100 * time.Millisecond, Heartbeat: time.Hour})
	body, err := Open(t.Context(), srv.srv.Client(), srv.srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	// The router reads nothing while the table grows past what the
	// connection's buffers hold.
	long := strings.Repeat("x", 60)
	for i := range 400 {
		routes := make([]string, 200)
		for j := range routes {
			routes[j] = fmt.Sprintf("%s-%d-%d.example.com", long, i, j)
		}
		hub.SetRoutes(fmt.Sprint("p", i), "a", routes)
	}
	waitFor(t, "the stalled router to be cut off", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		return len(hub.subs) == 0
	})
}

func TestHub_knowsWhichAppsItRoutes(t *testing.T) {
	hub := NewHub("", 0, 0)
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	hub.SetRoutes("p#8080", "a", []string{"y.example.com"})
	hub.SetRoutes("q", "b", nil)
	if !hub.HasApp("a") || !hub.HasApp("b") || hub.HasApp("c") || hub.HasApp("") {
		t.Fatal("apps a and b routed, c not")
	}
	hub.RemoveProcess("p")
	if !hub.HasApp("a") {
		t.Fatal("a still has p#8080")
	}
	hub.RemoveProcess("p#8080")
	hub.SetRoutes("q", "c", nil) // q moved to another app
	if hub.HasApp("a") || hub.HasApp("b") || !hub.HasApp("c") {
		t.Fatal("after the removals only c is routed")
	}
}

// A router learns which routes are bound to route services from the
// stream (before their entries in a snapshot), follows binds and
// unbinds, and after a reconnection forgets those unbound meanwhile.
func TestFollower_routeServicesFollowTheStream(t *testing.T) {
	hub := NewHub("", 0, 0)
	hub.SetRouteServices(map[string]string{"x.example.com": "https://rs.example.com/a", "x.example.com/admin": "https://rs.example.com/b"})
	hub.SetRoutes("p", "a", []string{"x.example.com"})
	sub, err := hub.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range sub.take() {
		types = append(types, m.Type)
	}
	sub.Close()
	if got := strings.Join(types, " "); got != "snapshot route_service route_service set synced" {
		t.Fatalf("snapshot %q: want the route services before the entries", got)
	}

	srv := newStreamServer(t, hub, HandlerConfig{Heartbeat: 5 * time.Millisecond})
	services := NewRouteServices()
	f := NewFollower(FollowerConfig{Connect: srv.connect, Table: newFakeTable(), Services: services, MinBackoff: time.Millisecond})
	// A route service kept from the last run that the server no longer has.
	f.Load("", nil, map[string]string{"gone.example.com": "https://rs.example.com/old"})
	if got := services.RouteServiceURL("gone.example.com", ""); got != "https://rs.example.com/old" {
		t.Fatalf("loaded: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the snapshot", func() bool { return f.Synced() == 1 })
	for _, c := range []struct{ host, path, want string }{
		{"x.example.com", "", "https://rs.example.com/a"},
		{"x.example.com", "/admin", "https://rs.example.com/b"},
		{"gone.example.com", "", ""},
		{"y.example.com", "", ""},
	} {
		if got := services.RouteServiceURL(c.host, c.path); got != c.want {
			t.Errorf("after the snapshot, %s%s: %q, want %q", c.host, c.path, got, c.want)
		}
	}

	// Changes: one unbound, one bound, one moved to another URL.
	hub.SetRouteServices(map[string]string{"x.example.com": "https://rs.example.com/c", "y.example.com": "https://rs.example.com/y"})
	waitFor(t, "the changes", func() bool {
		return services.RouteServiceURL("y.example.com", "") != "" && services.RouteServiceURL("x.example.com", "/admin") == "" &&
			services.RouteServiceURL("x.example.com", "") == "https://rs.example.com/c"
	})

	// Unbound while the router is away: gone at the next snapshot.
	srv.down.Store(true)
	srv.srv.CloseClientConnections()
	hub.SetRouteServices(map[string]string{"y.example.com": "https://rs.example.com/y"})
	srv.down.Store(false)
	waitFor(t, "the resync", func() bool { return f.Synced() >= 2 })
	if got := f.RouteServices(); len(got) != 1 || got["y.example.com"] != "https://rs.example.com/y" {
		t.Fatalf("after the resync: %v", got)
	}
}
