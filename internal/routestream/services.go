package routestream

import (
	"maps"
	"strings"
	"sync"
)

// RouteServices is the route services a Follower learned from the
// stream, as its router asks for them (router.RouteServices): a router
// that follows the table also sends bound routes' requests through their
// route services.
type RouteServices struct {
	mu sync.RWMutex
	m  map[string]string // route (host + path) -> URL
}

// NewRouteServices returns an empty set of route services.
func NewRouteServices() *RouteServices { return &RouteServices{m: map[string]string{}} }

// RouteServiceURL is the route service of host and path ("" when none),
// as router.RouteServices asks.
func (s *RouteServices) RouteServiceURL(host, path string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.m) == 0 {
		return ""
	}
	return s.m[host+path]
}

// set binds route to url, or unbinds it (url ""); false when nothing
// changed.
func (s *RouteServices) set(route, url string) bool {
	route = normalRoute(route)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[route] == url {
		return false
	}
	if url == "" {
		delete(s.m, route)
	} else {
		s.m[route] = url
	}
	return true
}

func (s *RouteServices) all() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.m)
}

// normalRoute is a route as the router keys it: lower-case host and path,
// without a trailing slash.
func normalRoute(r string) string {
	return strings.TrimRight(strings.ToLower(r), "/")
}
