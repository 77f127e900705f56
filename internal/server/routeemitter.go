package server

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/router"
)

// routeSource is what the emitter reads from the BBS.
type routeSource interface {
	DesiredLRP(processGUID string) (pando.DesiredLRP, bool)
	DesiredLRPs() []pando.DesiredLRP
	ActualLRPs(processGUID string) []pando.ActualLRP
}

// routeTable is what the emitter writes to the router.
type routeTable interface {
	SetRoutes(processGUID, appGUID string, hostnames []string)
	SetBackends(processGUID string, backends []router.Backend)
	RemoveProcess(processGUID string)
}

// routeEmitter keeps the router's table equal to the BBS's desired routes
// and RUNNING instances, driven by the BBS event stream, with a periodic
// full resync as a safety net.
type routeEmitter struct {
	bbs    routeSource
	router routeTable
	log    *slog.Logger
	known  map[string]bool
}

func (e *routeEmitter) run(ctx context.Context, events <-chan bbs.Event) {
	e.known = map[string]bool{}
	e.resync()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			e.resync()
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Type {
			case bbs.EventResync:
				e.resync()
			case bbs.EventTaskChanged:
			default:
				if ev.ProcessGUID != "" {
					e.update(ev.ProcessGUID)
				}
			}
		}
	}
}

func (e *routeEmitter) update(processGUID string) {
	lrp, ok := e.bbs.DesiredLRP(processGUID)
	if !ok {
		if e.known[processGUID] {
			e.router.RemoveProcess(processGUID)
			delete(e.known, processGUID)
		}
		return
	}
	e.known[processGUID] = true
	e.router.SetRoutes(processGUID, lrp.AppGUID, lrp.Routes)
	var backends []router.Backend
	for _, a := range e.bbs.ActualLRPs(processGUID) {
		if a.State != pando.ActualRunning || a.Address == "" || a.Port == 0 {
			continue
		}
		backends = append(backends, router.Backend{
			InstanceGUID: a.InstanceGUID,
			Index:        a.Index,
			Addr:         net.JoinHostPort(a.Address, strconv.Itoa(a.Port)),
		})
	}
	e.router.SetBackends(processGUID, backends)
}

func (e *routeEmitter) resync() {
	seen := map[string]bool{}
	for _, lrp := range e.bbs.DesiredLRPs() {
		seen[lrp.ProcessGUID] = true
		e.update(lrp.ProcessGUID)
	}
	for pg := range e.known {
		if !seen[pg] {
			e.router.RemoveProcess(pg)
			delete(e.known, pg)
		}
	}
}
