package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/router"
	"github.com/pandoplatform/pando/internal/runtimeapi"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// fakeTable records the router table the emitter keeps.
type fakeTable struct {
	mu       sync.Mutex
	routes   map[string][]string
	backends map[string][]string
}

func (f *fakeTable) SetRoutes(processGUID, appGUID string, hostnames []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[processGUID] = slices.Clone(hostnames)
}

func (f *fakeTable) SetBackends(processGUID string, backends []router.Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, fmt.Sprintf("%d@%s", b.Index, b.Addr))
	}
	f.backends[processGUID] = addrs
}

func (f *fakeTable) RemoveProcess(processGUID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, processGUID)
	delete(f.backends, processGUID)
}

// describe is the table as one comparable string.
func (f *fakeTable) describe() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for pg, r := range f.routes {
		out = append(out, fmt.Sprintf("%s %v %v", pg, r, f.backends[pg]))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

func (f *fakeTable) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.describe() != want {
		if time.Now().After(deadline) {
			t.Fatalf("router table %s, want %s", f.describe(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRouteEmitter_followsTheRuntime runs the emitter on the BBS itself and,
// as a router in another process would, on the runtime API client.
func TestRouteEmitter_followsTheRuntime(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote=%v", remote), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			board := bbs.New(bbs.Config{})
			cell := runtimetest.NewCell("cell-1", 4096)
			cell.Reporter = board
			board.RegisterCell(cell)
			go func() { _ = board.Run(ctx) }()
			// Desired before the emitter starts: it comes from the snapshot.
			lrp := pando.DesiredLRP{ProcessGUID: "web", Revision: 1, Instances: 2, MemoryMB: 64, Stack: "host",
				Routes: []string{"shop.localhost"}}
			if err := board.DesireLRP(ctx, lrp); err != nil {
				t.Fatal(err)
			}

			var src routeSource = board
			if remote {
				h, err := runtimeapi.NewHandler(board, runtimeapi.Config{Authenticate: runtimeapi.Unauthenticated})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(h)
				defer srv.Close()
				if src, err = runtimeapi.NewClient(srv.URL, runtimeapi.ClientConfig{}); err != nil {
					t.Fatal(err)
				}
			}
			table := &fakeTable{routes: map[string][]string{}, backends: map[string][]string{}}
			em := &routeEmitter{rt: src, router: table, log: slog.New(slog.DiscardHandler)}
			done := make(chan struct{})
			go func() { defer close(done); em.run(ctx) }()
			defer func() { cancel(); <-done }()

			table.waitFor(t, "[web [shop.localhost] [0@127.0.0.1:61000 1@127.0.0.1:61001]]")

			// Changes arrive as events: a new route and a scale down.
			one, routes := 1, []string{"shop.localhost", "www.localhost"}
			if err := board.UpdateDesiredLRP(ctx, "web", pando.DesiredLRPUpdate{Instances: &one, Routes: &routes}); err != nil {
				t.Fatal(err)
			}
			table.waitFor(t, "[web [shop.localhost www.localhost] [0@127.0.0.1:61000]]")

			// An instance its cell no longer has leaves the table (until
			// convergence starts it again).
			as, err := board.ActualLRPs(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if err := board.ActualLRPRemoved(ctx, "web", as[0].InstanceGUID); err != nil {
				t.Fatal(err)
			}
			table.waitFor(t, "[web [shop.localhost www.localhost] []]")

			if err := board.RemoveDesiredLRP(ctx, "web"); err != nil {
				t.Fatal(err)
			}
			table.waitFor(t, "[]")
		})
	}
}

// quietSource is a runtime whose event stream says nothing: the emitter
// learns its state from snapshots only.
type quietSource struct {
	desired []pando.DesiredLRP
	actual  []pando.ActualLRP
}

func (q quietSource) DesiredLRPs(context.Context) ([]pando.DesiredLRP, error) { return q.desired, nil }
func (q quietSource) ActualLRPs(context.Context, string) ([]pando.ActualLRP, error) {
	return q.actual, nil
}
func (q quietSource) Subscribe(ctx context.Context, _ uint64) (<-chan pando.RuntimeEvent, error) {
	return make(chan pando.RuntimeEvent), nil
}

func TestRouteEmitter_syncReturnsOnceTheTableHoldsTheRuntimesState(t *testing.T) {
	src := quietSource{
		desired: []pando.DesiredLRP{{ProcessGUID: "p", AppGUID: "a", Routes: []string{"a.example.com"}}},
		actual:  []pando.ActualLRP{{ProcessGUID: "p", InstanceGUID: "i", Index: 0, State: pando.ActualRunning, Address: "10.0.0.2", Port: 61001}},
	}
	table := &fakeTable{routes: map[string][]string{}, backends: map[string][]string{}}
	e := &routeEmitter{rt: src, router: table, log: slog.New(slog.DiscardHandler), syncReq: make(chan chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := e.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := table.describe(), "[p [a.example.com] [0@10.0.0.2:61001]]"; got != want {
		t.Fatalf("right after sync: %s, want %s", got, want)
	}
}
