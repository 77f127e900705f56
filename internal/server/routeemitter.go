package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/router"
)

// routeSource is what the emitter reads from the runtime: a snapshot, then
// its events.
type routeSource interface {
	DesiredLRPs(ctx context.Context) ([]pando.DesiredLRP, error)
	ActualLRPs(ctx context.Context, processGUID string) ([]pando.ActualLRP, error)
	Subscribe(ctx context.Context, after uint64) (<-chan pando.RuntimeEvent, error)
}

// routeTable is what the emitter writes to the router.
type routeTable interface {
	SetRoutes(processGUID, appGUID string, hostnames []string)
	SetBackends(processGUID string, backends []router.Backend)
	RemoveProcess(processGUID string)
}

// teeTable writes the emitter's changes to several tables: the
// in-process router and the stream routers in other processes follow.
type teeTable []routeTable

func (t teeTable) SetRoutes(processGUID, appGUID string, hostnames []string) {
	for _, r := range t {
		r.SetRoutes(processGUID, appGUID, hostnames)
	}
}

func (t teeTable) SetBackends(processGUID string, backends []router.Backend) {
	for _, r := range t {
		r.SetBackends(processGUID, backends)
	}
}

func (t teeTable) RemoveProcess(processGUID string) {
	for _, r := range t {
		r.RemoveProcess(processGUID)
	}
}

// routeEmitter keeps the router's table equal to the runtime's desired
// routes and RUNNING instances. It reads a snapshot when the event stream
// says to resync (at the start, after falling behind) and every
// resyncInterval as a safety net, and applies the events in between from
// their payloads, so a router in another process needs nothing but the
// runtime contract.
type routeEmitter struct {
	rt     routeSource
	router routeTable
	log    *slog.Logger

	desired map[string]pando.DesiredLRP
	// actuals holds each process's instances by instance GUID.
	actuals map[string]map[string]pando.ActualLRP
	// syncReq asks run for a resync now (sync); nil: never asked.
	syncReq chan chan struct{}
}

// sync has the running emitter read the runtime's snapshot now and
// returns once the router holds it (or when ctx ends).
func (e *routeEmitter) sync(ctx context.Context) error {
	if e.syncReq == nil {
		return nil
	}
	done := make(chan struct{})
	select {
	case e.syncReq <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const resyncInterval = 30 * time.Second

func (e *routeEmitter) run(ctx context.Context) {
	e.desired = map[string]pando.DesiredLRP{}
	e.actuals = map[string]map[string]pando.ActualLRP{}
	tick := time.NewTicker(resyncInterval)
	defer tick.Stop()
	var after uint64
	for ctx.Err() == nil {
		events, err := e.rt.Subscribe(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("subscribe to runtime events", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			case done := <-e.syncReq:
				e.resync(ctx)
				close(done)
			}
			continue
		}
		for open := true; open; {
			select {
			case <-ctx.Done():
				return
			case done := <-e.syncReq:
				e.resync(ctx)
				close(done)
			case <-tick.C:
				e.resync(ctx)
			case ev, ok := <-events:
				if !ok {
					open = false
					break
				}
				after = ev.Seq
				e.apply(ctx, ev)
			}
		}
	}
}

func (e *routeEmitter) apply(ctx context.Context, ev pando.RuntimeEvent) {
	switch ev.Type {
	case pando.EventResync:
		e.resync(ctx)
	case pando.EventDesiredLRPChanged:
		if d := ev.Desired; d != nil {
			old, had := e.desired[d.ProcessGUID]
			e.desired[d.ProcessGUID] = *d
			if had {
				e.dropPortKeys(old, *d)
			}
			e.setRoutes(*d)
			e.pushBackends(d.ProcessGUID)
		}
	case pando.EventDesiredLRPRemoved:
		if d, ok := e.desired[ev.ProcessGUID]; ok {
			e.removeProcess(d)
		}
		delete(e.desired, ev.ProcessGUID)
		delete(e.actuals, ev.ProcessGUID)
	case pando.EventActualLRPChanged:
		if a := ev.Actual; a != nil {
			set := e.actuals[a.ProcessGUID]
			if set == nil {
				set = map[string]pando.ActualLRP{}
				e.actuals[a.ProcessGUID] = set
			}
			set[a.InstanceGUID] = *a
			e.pushBackends(a.ProcessGUID)
		}
	case pando.EventActualLRPRemoved:
		if a := ev.Actual; a != nil {
			delete(e.actuals[a.ProcessGUID], a.InstanceGUID)
			e.pushBackends(a.ProcessGUID)
		}
	}
}

// A process's routes to its first container port are the router's entry
// under the process GUID; routes to another port P (DesiredLRP.RoutePorts)
// are a separate entry, portKey(process, P), whose backends are each
// instance's host port for P.

func portKey(processGUID string, port int) string {
	return processGUID + "#" + strconv.Itoa(port)
}

// extraPorts lists the ports d routes to besides the first, sorted.
func extraPorts(d pando.DesiredLRP) []int {
	var out []int
	for _, p := range d.RoutePorts {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// setRoutes gives the router d's routes, by port.
func (e *routeEmitter) setRoutes(d pando.DesiredLRP) {
	byPort := map[int][]string{}
	var first []string
	for _, r := range d.Routes {
		if p, ok := d.RoutePorts[r]; ok {
			byPort[p] = append(byPort[p], r)
		} else {
			first = append(first, r)
		}
	}
	e.router.SetRoutes(d.ProcessGUID, d.AppGUID, first)
	for _, p := range extraPorts(d) {
		e.router.SetRoutes(portKey(d.ProcessGUID, p), d.AppGUID, byPort[p])
	}
}

// dropPortKeys forgets the port entries old had and d no longer has.
func (e *routeEmitter) dropPortKeys(old, d pando.DesiredLRP) {
	keep := extraPorts(d)
	for _, p := range extraPorts(old) {
		if !slices.Contains(keep, p) {
			e.router.RemoveProcess(portKey(old.ProcessGUID, p))
		}
	}
}

func (e *routeEmitter) removeProcess(d pando.DesiredLRP) {
	e.router.RemoveProcess(d.ProcessGUID)
	for _, p := range extraPorts(d) {
		e.router.RemoveProcess(portKey(d.ProcessGUID, p))
	}
}

// pushBackends gives the router a process's RUNNING instances, for each
// port it routes to.
func (e *routeEmitter) pushBackends(processGUID string) {
	d, ok := e.desired[processGUID]
	if !ok {
		return // routed once it is desired; its instances wait until then
	}
	e.router.SetBackends(processGUID, e.backends(processGUID, 0))
	for _, p := range extraPorts(d) {
		e.router.SetBackends(portKey(processGUID, p), e.backends(processGUID, p))
	}
}

// backends lists the RUNNING instances' addresses for container port
// port (0: the first port).
func (e *routeEmitter) backends(processGUID string, port int) []router.Backend {
	var backends []router.Backend
	for _, a := range e.actuals[processGUID] {
		if a.State != pando.ActualRunning || a.Address == "" || a.Port == 0 {
			continue
		}
		hostPort := a.Port
		if port != 0 {
			i := slices.IndexFunc(a.Ports, func(m pando.PortMapping) bool { return m.ContainerPort == port })
			if i < 0 {
				continue
			}
			hostPort = a.Ports[i].HostPort
		}
		backends = append(backends, router.Backend{
			InstanceGUID: a.InstanceGUID,
			Index:        a.Index,
			Addr:         net.JoinHostPort(a.Address, strconv.Itoa(hostPort)),
		})
	}
	sort.Slice(backends, func(i, j int) bool {
		if backends[i].Index != backends[j].Index {
			return backends[i].Index < backends[j].Index
		}
		return backends[i].InstanceGUID < backends[j].InstanceGUID
	})
	return backends
}

// resync replaces the emitter's view with a snapshot of the runtime. On a
// read error the router keeps its table until the next resync.
func (e *routeEmitter) resync(ctx context.Context) {
	if err := e.load(ctx); err != nil {
		e.log.Warn("resync routes", "err", err)
	}
}

func (e *routeEmitter) load(ctx context.Context) error {
	desired, err := e.rt.DesiredLRPs(ctx)
	if err != nil {
		return fmt.Errorf("read desired LRPs: %w", err)
	}
	actuals, err := e.rt.ActualLRPs(ctx, "")
	if err != nil {
		return fmt.Errorf("read instances: %w", err)
	}
	seen := make(map[string]pando.DesiredLRP, len(desired))
	for _, d := range desired {
		seen[d.ProcessGUID] = d
	}
	for pg, old := range e.desired {
		if d, ok := seen[pg]; !ok {
			e.removeProcess(old)
		} else {
			e.dropPortKeys(old, d)
		}
	}
	e.desired = seen
	e.actuals = map[string]map[string]pando.ActualLRP{}
	for _, a := range actuals {
		set := e.actuals[a.ProcessGUID]
		if set == nil {
			set = map[string]pando.ActualLRP{}
			e.actuals[a.ProcessGUID] = set
		}
		set[a.InstanceGUID] = a
	}
	for _, d := range desired {
		e.setRoutes(d)
		e.pushBackends(d.ProcessGUID)
	}
	return nil
}
