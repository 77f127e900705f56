package server

import (
	"context"
	"log/slog"
	"testing"

	"github.com/pandoplatform/pando"
)

// TestRouteEmitter_routesEachPort: a route whose destination names another
// container port reaches each instance's host port for it; the entry goes
// when the port is no longer routed and when the process goes.
func TestRouteEmitter_routesEachPort(t *testing.T) {
	table := &fakeTable{routes: map[string][]string{}, backends: map[string][]string{}}
	em := &routeEmitter{router: table, log: slog.New(slog.DiscardHandler),
		desired: map[string]pando.DesiredLRP{}, actuals: map[string]map[string]pando.ActualLRP{}}
	ctx := context.Background()
	d := pando.DesiredLRP{ProcessGUID: "web", AppGUID: "app", Ports: []int{8080, 9090},
		Routes: []string{"a.test", "b.test"}, RoutePorts: map[string]int{"b.test": 9090}}
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventDesiredLRPChanged, Desired: &d})
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventActualLRPChanged, Actual: &pando.ActualLRP{
		ProcessGUID: "web", InstanceGUID: "i0", State: pando.ActualRunning, Address: "10.0.0.1", Port: 61000,
		Ports: []pando.PortMapping{{ContainerPort: 8080, HostPort: 61000}, {ContainerPort: 9090, HostPort: 61001}}}})
	want := "[web [a.test] [0@10.0.0.1:61000] web#9090 [b.test] [0@10.0.0.1:61001]]"
	if got := table.describe(); got != want {
		t.Errorf("table %s, want %s", got, want)
	}
	// An instance without a mapping for the port is not a backend of it.
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventActualLRPChanged, Actual: &pando.ActualLRP{
		ProcessGUID: "web", InstanceGUID: "i1", Index: 1, State: pando.ActualRunning, Address: "10.0.0.2", Port: 62000,
		Ports: []pando.PortMapping{{ContainerPort: 8080, HostPort: 62000}}}})
	want = "[web [a.test] [0@10.0.0.1:61000 1@10.0.0.2:62000] web#9090 [b.test] [0@10.0.0.1:61001]]"
	if got := table.describe(); got != want {
		t.Errorf("table %s, want %s", got, want)
	}
	// Unrouting the port drops its entry.
	d2 := d
	d2.Routes, d2.RoutePorts = []string{"a.test"}, nil
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventDesiredLRPChanged, Desired: &d2})
	want = "[web [a.test] [0@10.0.0.1:61000 1@10.0.0.2:62000]]"
	if got := table.describe(); got != want {
		t.Errorf("table %s, want %s", got, want)
	}
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventDesiredLRPChanged, Desired: &d})
	em.apply(ctx, pando.RuntimeEvent{Type: pando.EventDesiredLRPRemoved, ProcessGUID: "web"})
	if got := table.describe(); got != "[]" {
		t.Errorf("table after removal %s, want []", got)
	}
}
