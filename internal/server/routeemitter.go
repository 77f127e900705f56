package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
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
			}
			continue
		}
		for open := true; open; {
			select {
			case <-ctx.Done():
				return
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
			e.desired[d.ProcessGUID] = *d
			e.router.SetRoutes(d.ProcessGUID, d.AppGUID, d.Routes)
			e.pushBackends(d.ProcessGUID)
		}
	case pando.EventDesiredLRPRemoved:
		if _, ok := e.desired[ev.ProcessGUID]; ok {
			e.router.RemoveProcess(ev.ProcessGUID)
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

// pushBackends gives the router a process's RUNNING instances.
func (e *routeEmitter) pushBackends(processGUID string) {
	if _, ok := e.desired[processGUID]; !ok {
		return // routed once it is desired; its instances wait until then
	}
	var backends []router.Backend
	for _, a := range e.actuals[processGUID] {
		if a.State != pando.ActualRunning || a.Address == "" || a.Port == 0 {
			continue
		}
		backends = append(backends, router.Backend{
			InstanceGUID: a.InstanceGUID,
			Index:        a.Index,
			Addr:         net.JoinHostPort(a.Address, strconv.Itoa(a.Port)),
		})
	}
	sort.Slice(backends, func(i, j int) bool {
		if backends[i].Index != backends[j].Index {
			return backends[i].Index < backends[j].Index
		}
		return backends[i].InstanceGUID < backends[j].InstanceGUID
	})
	e.router.SetBackends(processGUID, backends)
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
	for pg := range e.desired {
		if _, ok := seen[pg]; !ok {
			e.router.RemoveProcess(pg)
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
		e.router.SetRoutes(d.ProcessGUID, d.AppGUID, d.Routes)
		e.pushBackends(d.ProcessGUID)
	}
	return nil
}
