// Package routestream carries the routing table from the server to routers
// in other processes (`pando router`): the server's Hub holds the table the
// route emitter builds and streams it to each subscriber as a full snapshot
// followed by changes, and a Follower keeps a router's table equal to that
// stream across disconnections, resyncing from a fresh snapshot each time.
package routestream

import "github.com/pandoplatform/pando/internal/router"

// Path is the stream's endpoint on the server's cell listener; LogsPath
// is where a router sends its access log lines (RTR) for the apps' logs.
const (
	Path     = "/v1/routes"
	LogsPath = "/v1/routes/logs"
)

// Message types. The stream is newline-delimited JSON: a snapshot
// ("snapshot", one "route_service" per route bound to a route service,
// one "set" per entry, "synced"), then "set", "remove" and
// "route_service" changes and "heartbeat"s. The server may send a new snapshot at any
// time (a router that fell behind gets one instead of the changes it
// missed); whatever the router held that the snapshot did not set is gone
// at its "synced".
const (
	TypeSnapshot  = "snapshot"
	TypeSet       = "set"
	TypeRemove    = "remove"
	TypeSynced    = "synced"
	TypeHeartbeat = "heartbeat"
	// TypeRouteService binds Route to the route service at URL, or
	// unbinds it (URL ""). A snapshot sends them before its entries, so a
	// router never routes a bound route without its route service.
	TypeRouteService = "route_service"
)

// Message is one line of the stream.
type Message struct {
	Type string `json:"type"`
	// SystemDomain (snapshot) is where the API's own hosts live: api.,
	// uaa., login. and log-cache. under it.
	SystemDomain string `json:"system_domain,omitempty"`
	// Entries (snapshot) is how many "set" lines the snapshot holds.
	Entries int `json:"entries,omitempty"`
	// Key, and for "set" the entry, of a change.
	Key   string `json:"key,omitempty"`
	Entry *Entry `json:"entry,omitempty"`
	// Route (host and path as the router keys it: lower-case, no
	// trailing slash) and URL of a "route_service".
	Route string `json:"route,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Entry is one routing table entry: a process's routes to one of its
// ports and the addresses its RUNNING instances serve that port on.
type Entry struct {
	AppGUID  string    `json:"app_guid"`
	Routes   []string  `json:"routes"`
	Backends []Backend `json:"backends"`
}

// Backend is one instance's address.
type Backend struct {
	InstanceGUID string `json:"instance_guid"`
	Index        int    `json:"index"`
	Addr         string `json:"addr"` // IP:PORT
}

func toBackends(bs []router.Backend) []Backend {
	out := make([]Backend, len(bs))
	for i, b := range bs {
		out[i] = Backend{InstanceGUID: b.InstanceGUID, Index: b.Index, Addr: b.Addr}
	}
	return out
}

func fromBackends(bs []Backend) []router.Backend {
	out := make([]router.Backend, len(bs))
	for i, b := range bs {
		out[i] = router.Backend{InstanceGUID: b.InstanceGUID, Index: b.Index, Addr: b.Addr}
	}
	return out
}
