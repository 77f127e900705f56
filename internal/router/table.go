// Package router is Pando's HTTP router (CF's gorouter): it maps a
// request's Host (and optional path prefix) to the running instances of the
// processes bound to that route, balances round robin, retries a request a
// dead instance never received, and answers gorouter's 404/502/503 bodies
// when there is nothing to route to.
package router

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Backend is one routable instance.
type Backend struct {
	InstanceGUID string
	Index        int
	Addr         string // "127.0.0.1:61001"
}

// endpoint is a Backend as the router tracks it. Everything but failedUntil
// is immutable; a changed backend gets a new endpoint.
type endpoint struct {
	Backend
	processGUID string
	appGUID     string
	// failedUntil (unix ns) keeps a backend that refused a connection out
	// of rotation for a while.
	failedUntil atomic.Int64
	// hdrIndex is the X-Cf-Instanceindex value, made once.
	hdrIndex string
}

func newEndpoint(b Backend, processGUID, appGUID string) *endpoint {
	return &endpoint{
		Backend: b, processGUID: processGUID, appGUID: appGUID,
		hdrIndex: strconv.Itoa(b.Index),
	}
}

// routeKey is a parsed route: lower-case host and path prefix without a
// trailing slash ("" for none).
type routeKey struct {
	host string
	path string
}

func parseRoute(s string) (routeKey, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
	host, path, _ := strings.Cut(s, "/")
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return routeKey{}, false
	}
	path = strings.TrimRight(path, "/")
	if path != "" {
		path = "/" + path
	}
	return routeKey{host: host, path: path}, true
}

// process is one process's routes and endpoints.
type process struct {
	guid    string
	appGUID string
	routes  []routeKey
	// endpoints is replaced, never modified in place, so a reader may keep
	// the slice after releasing the lock.
	endpoints []*endpoint
}

// pathRoute is one host+path and the processes bound to it.
type pathRoute struct {
	key   routeKey
	procs []*process
	next  atomic.Uint64 // round-robin position
}

// table is the routing table. Reads take the read lock only.
type table struct {
	mu    sync.RWMutex
	procs map[string]*process
	// hosts lists each host's path routes, longest path first.
	hosts map[string][]*pathRoute
}

func newTable() *table {
	return &table{procs: map[string]*process{}, hosts: map[string][]*pathRoute{}}
}

// SetRoutes binds processGUID (an instance of appGUID) to hostnames, each
// "host.domain" or "host.domain/path", replacing its previous routes.
func (r *Router) SetRoutes(processGUID, appGUID string, hostnames []string) {
	var keys []routeKey
	for _, h := range hostnames {
		k, ok := parseRoute(h)
		if !ok {
			r.log.Warn("ignoring invalid route", "process_guid", processGUID, "route", h)
			continue
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	t := r.table
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procLocked(processGUID)
	if p.appGUID != appGUID {
		p.appGUID = appGUID
		p.endpoints = rebuildEndpoints(p, backendsOf(p.endpoints))
	}
	for _, k := range p.routes {
		if !slices.Contains(keys, k) {
			t.unbindLocked(k, p)
		}
	}
	for _, k := range keys {
		if !slices.Contains(p.routes, k) {
			t.bindLocked(k, p)
		}
	}
	p.routes = keys
}

// SetBackends replaces processGUID's routable instances.
func (r *Router) SetBackends(processGUID string, backends []Backend) {
	t := r.table
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procLocked(processGUID)
	p.endpoints = rebuildEndpoints(p, backends)
}

// RemoveProcess forgets processGUID's routes and instances.
func (r *Router) RemoveProcess(processGUID string) {
	t := r.table
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[processGUID]
	if !ok {
		return
	}
	for _, k := range p.routes {
		t.unbindLocked(k, p)
	}
	delete(t.procs, processGUID)
}

func (t *table) procLocked(guid string) *process {
	p, ok := t.procs[guid]
	if !ok {
		p = &process{guid: guid}
		t.procs[guid] = p
	}
	return p
}

func backendsOf(eps []*endpoint) []Backend {
	out := make([]Backend, len(eps))
	for i, ep := range eps {
		out[i] = ep.Backend
	}
	return out
}

// rebuildEndpoints makes p's endpoint list for backends, keeping the
// failure state of endpoints that did not change.
func rebuildEndpoints(p *process, backends []Backend) []*endpoint {
	old := map[Backend]*endpoint{}
	for _, ep := range p.endpoints {
		old[ep.Backend] = ep
	}
	out := make([]*endpoint, 0, len(backends))
	for _, b := range backends {
		if b.Addr == "" {
			continue
		}
		ep := newEndpoint(b, p.guid, p.appGUID)
		if prev, ok := old[b]; ok {
			if prev.appGUID == p.appGUID {
				ep = prev
			} else {
				ep.failedUntil.Store(prev.failedUntil.Load())
			}
		}
		out = append(out, ep)
	}
	return out
}

func (t *table) bindLocked(k routeKey, p *process) {
	routes := t.hosts[k.host]
	for _, pr := range routes {
		if pr.key == k {
			pr.procs = append(slices.Clip(pr.procs), p)
			return
		}
	}
	routes = append(slices.Clip(routes), &pathRoute{key: k, procs: []*process{p}})
	slices.SortStableFunc(routes, func(a, b *pathRoute) int { return len(b.key.path) - len(a.key.path) })
	t.hosts[k.host] = routes
}

func (t *table) unbindLocked(k routeKey, p *process) {
	routes := t.hosts[k.host]
	for i, pr := range routes {
		if pr.key != k {
			continue
		}
		pr.procs = slices.DeleteFunc(slices.Clone(pr.procs), func(x *process) bool { return x == p })
		if len(pr.procs) == 0 {
			routes = slices.Delete(slices.Clone(routes), i, i+1)
		}
		break
	}
	if len(routes) == 0 {
		delete(t.hosts, k.host)
	} else {
		t.hosts[k.host] = routes
	}
}

// lookup finds the route for host and path (host lower-case, without
// port) and its endpoints. found is false when no route matches.
func (t *table) lookup(host, path string) (route *pathRoute, eps []*endpoint, found bool) {
	path = strings.ToLower(path)
	t.mu.RLock()
	defer t.mu.RUnlock()
	routes, ok := t.hosts[host]
	if !ok {
		// A wildcard route "*.domain" serves any host under domain.
		if _, parent, cut := strings.Cut(host, "."); cut {
			routes, ok = t.hosts["*."+parent]
		}
		if !ok {
			return nil, nil, false
		}
	}
	for _, pr := range routes {
		if !pathMatches(pr.key.path, path) {
			continue
		}
		if len(pr.procs) == 1 {
			return pr, pr.procs[0].endpoints, true
		}
		for _, p := range pr.procs {
			eps = append(eps, p.endpoints...)
		}
		return pr, eps, true
	}
	return nil, nil, false
}

// pathMatches reports whether a request path falls under a route path, on
// a segment boundary ("/app" serves "/app" and "/app/x", not "/apps").
func pathMatches(prefix, path string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/' || rest[0] == '?'
}
