package routestream

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"

	"github.com/pandoplatform/pando/internal/router"
)

// Defaults of a Hub's bounds.
const (
	// DefaultMaxQueue is how many changes a subscriber may have waiting
	// before it is sent a fresh snapshot instead.
	DefaultMaxQueue = 4096
	// DefaultMaxSubscribers bounds the routers following at once.
	DefaultMaxSubscribers = 64
)

// ErrTooManySubscribers refuses a subscriber past the Hub's bound.
var ErrTooManySubscribers = errors.New("too many routers are following the routing table")

// Hub is the server's routing table as routers in other processes see
// it. The route emitter writes it (SetRoutes, SetBackends, RemoveProcess,
// as it writes the in-process router); each subscriber reads a snapshot,
// then the changes since. A subscriber's memory is bounded: one whose
// queue passes maxQueue (a router that reads slowly or not at all) loses
// the queue and is sent a fresh snapshot when it reads again.
type Hub struct {
	systemDomain string
	maxQueue     int
	maxSubs      int

	mu      sync.Mutex
	entries map[string]Entry
	// apps counts the entries of each app.
	apps map[string]int
	// services maps routes to their route service URL.
	services map[string]string
	subs     map[*Subscription]struct{}
	// held: subscribers get nothing yet (Hold).
	held bool
}

// Hold keeps every subscriber waiting for its snapshot until Release: a
// server that just started holds its table back until its cells have
// reported their instances, or routers would drop routes that are
// only not yet known again.
func (h *Hub) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = true
}

// Release ends Hold: subscribers get their snapshots.
func (h *Hub) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = false
	for s := range h.subs {
		s.wakeUp()
	}
}

// NewHub returns an empty table for routers. systemDomain goes in every
// snapshot; maxQueue and maxSubs of zero pick the defaults.
func NewHub(systemDomain string, maxQueue, maxSubs int) *Hub {
	if maxQueue <= 0 {
		maxQueue = DefaultMaxQueue
	}
	if maxSubs <= 0 {
		maxSubs = DefaultMaxSubscribers
	}
	return &Hub{systemDomain: systemDomain, maxQueue: maxQueue, maxSubs: maxSubs,
		entries: map[string]Entry{}, apps: map[string]int{}, services: map[string]string{}, subs: map[*Subscription]struct{}{}}
}

// SetRouteServices replaces the routes bound to route services (route,
// as the router keys it, to URL) and sends subscribers what changed.
func (h *Hub) SetRouteServices(services map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for route := range h.services {
		if services[route] == "" {
			delete(h.services, route)
			h.publishLocked(Message{Type: TypeRouteService, Route: route})
		}
	}
	for route, url := range services {
		if route == "" || url == "" || h.services[route] == url {
			continue
		}
		h.services[route] = url
		h.publishLocked(Message{Type: TypeRouteService, Route: route, URL: url})
	}
}

// SetRoutes sets key's routes (and its app).
func (h *Hub) SetRoutes(key, appGUID string, routes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, had := h.entries[key]
	if had && e.AppGUID == appGUID && slices.Equal(e.Routes, routes) {
		return
	}
	e.AppGUID, e.Routes = appGUID, slices.Clone(routes)
	h.setLocked(key, e)
}

// SetBackends sets key's instances.
func (h *Hub) SetBackends(key string, backends []router.Backend) {
	bs := toBackends(backends)
	h.mu.Lock()
	defer h.mu.Unlock()
	e, had := h.entries[key]
	if had && slices.Equal(e.Backends, bs) {
		return
	}
	e.Backends = bs
	h.setLocked(key, e)
}

// RemoveProcess removes key.
func (h *Hub) RemoveProcess(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old, ok := h.entries[key]
	if !ok {
		return
	}
	h.countApp(old.AppGUID, -1)
	delete(h.entries, key)
	h.publishLocked(Message{Type: TypeRemove, Key: key})
}

// setLocked stores e (its slices never modified after) and tells the
// subscribers.
func (h *Hub) setLocked(key string, e Entry) {
	if old, had := h.entries[key]; had {
		h.countApp(old.AppGUID, -1)
	}
	h.countApp(e.AppGUID, 1)
	h.entries[key] = e
	h.publishLocked(Message{Type: TypeSet, Key: key, Entry: &e})
}

func (h *Hub) countApp(guid string, n int) {
	if h.apps[guid] += n; h.apps[guid] <= 0 {
		delete(h.apps, guid)
	}
}

// HasApp says whether an app has routes or instances in the table: a
// router logs requests of those apps only.
func (h *Hub) HasApp(appGUID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return appGUID != "" && h.apps[appGUID] > 0
}

func (h *Hub) publishLocked(m Message) {
	for s := range h.subs {
		if s.snapshot {
			continue // the snapshot it is owed will hold this change
		}
		if len(s.queue) >= h.maxQueue {
			s.queue = nil
			s.snapshot = true
			s.overflows++
		} else {
			s.queue = append(s.queue, m)
		}
		s.wakeUp()
	}
}

// Subscription is one router's view of the Hub.
type Subscription struct {
	hub  *Hub
	wake chan struct{} // capacity 1: something to read
	// Guarded by hub.mu.
	snapshot  bool // owed a full snapshot before anything else
	queue     []Message
	overflows int
}

// Subscribe starts a subscription; its first Next is a snapshot. Close
// it when done.
func (h *Hub) Subscribe() (*Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.maxSubs {
		return nil, ErrTooManySubscribers
	}
	s := &Subscription{hub: h, wake: make(chan struct{}, 1), snapshot: true}
	h.subs[s] = struct{}{}
	s.wakeUp()
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	delete(s.hub.subs, s)
	s.queue = nil
}

func (s *Subscription) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next waits until there is something to send and returns it: a whole
// snapshot (snapshot, a set per entry, synced) or the changes queued
// since the last Next.
func (s *Subscription) Next(ctx context.Context) ([]Message, error) {
	for {
		if msgs := s.take(); len(msgs) > 0 {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.wake:
		}
	}
}

// Overflows says how many times the subscription fell behind and was
// owed a snapshot.
func (s *Subscription) Overflows() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.overflows
}

func (s *Subscription) take() []Message {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		return nil
	}
	if s.snapshot {
		s.snapshot = false
		s.queue = nil
		keys := make([]string, 0, len(h.entries))
		for k := range h.entries {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		routes := make([]string, 0, len(h.services))
		for r := range h.services {
			routes = append(routes, r)
		}
		sort.Strings(routes)
		msgs := make([]Message, 0, len(routes)+len(keys)+2)
		msgs = append(msgs, Message{Type: TypeSnapshot, SystemDomain: h.systemDomain, Entries: len(keys)})
		// Route services first: no bound route is routable without one.
		for _, r := range routes {
			msgs = append(msgs, Message{Type: TypeRouteService, Route: r, URL: h.services[r]})
		}
		for _, k := range keys {
			e := h.entries[k]
			msgs = append(msgs, Message{Type: TypeSet, Key: k, Entry: &e})
		}
		return append(msgs, Message{Type: TypeSynced})
	}
	q := s.queue
	s.queue = nil
	return q
}
