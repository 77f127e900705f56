// Package cc is Pando's Cloud Controller: the CF v3 API handlers and the
// orchestration behind them. It owns the CCDB (through pando.Store), turns
// user intent into BBS desires (staging tasks, desired LRPs) and records
// what the runtime reports back (builds, droplets).
package cc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
)

// APIVersion is the CC API version advertised to clients. The cf CLI v8
// switches `cf apps` to newer requests above 3.180.0.
const APIVersion = "3.180.0"

// DefaultLogRateLimit is the log rate limit of processes and tasks that
// set none, 16 KiB/s: the default Tanzu Application Service gives apps
// (open-source CF leaves them unlimited unless the operator sets one). It
// is far above what a healthy app logs and far below what a runaway
// one does.
const DefaultLogRateLimit = 16 << 10

// InstanceStatter reads one instance's resource figures from its cell.
type InstanceStatter interface {
	InstanceStats(ctx context.Context, cellID, instanceGUID string) (pando.InstanceStats, error)
}

// Identity is the authenticated caller.
type Identity struct {
	UserGUID string
	UserName string
	// Scopes are the token's (cloud_controller.read, ...): authorize
	// checks them on every request.
	Scopes []string
}

// Authenticator checks a request's Authorization header.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Sealer encrypts secrets for storage, bound to what they are for
// (internal/secrets).
type Sealer interface {
	Seal(plaintext, purpose string) (string, error)
	Open(sealed, purpose string) (string, error)
}

// Config configures the API.
type Config struct {
	// BaseURL is the API's external URL, e.g. "http://127.0.0.1:9022". Every
	// link and Location the API returns is absolute under it.
	BaseURL        string
	Domain         string        // default app domain, "localhost"
	RouterURL      string        // e.g. "http://127.0.0.1:8080", shown in route urls
	StagingTimeout time.Duration // default 15m
	MaxUploadBytes int64         // default 1 GiB
	// ReservedHosts are host names (lower case, e.g. "api.localhost") the
	// router serves itself (the API, UAA, login, log-cache): no route may
	// take one, or it would never reach its app.
	ReservedHosts []string
	// MaxPackageBytes bounds the expanded size of a package (zip bomb
	// guard); default 4 GiB.
	MaxPackageBytes int64
	DefaultStack    string // "host"
	// DockerEnabled lets apps run Docker images; off until the cells can
	// stage and run them, so a docker push fails up front, not at staging.
	DockerEnabled bool
	// Secrets seals registry passwords before they are stored; a docker
	// package with a password is refused without it.
	Secrets Sealer
	// Stacks are the root filesystem stacks cells offer besides "host".
	Stacks           []StackConfig
	DefaultMemoryMB  int // 256
	DefaultDiskMB    int // 1024
	StagingMemoryMB  int // 1024
	StagingDiskMB    int // 4096
	DefaultInstances int // 1
	// DefaultLogRateLimit is the log rate limit in bytes per second of
	// processes and tasks that set none: 0 means DefaultLogRateLimit,
	// -1 unlimited.
	DefaultLogRateLimit int
	// TempDir holds uploads while they are assembled; default os.TempDir().
	TempDir string
	Store   pando.Store
	Blobs   pando.Blobstore
	// Runtime is the runtime contract (the BBS, in process or over HTTP):
	// the API desires and reads LRPs, tasks and cells through it and
	// follows its events (FollowRuntime).
	Runtime pando.Runtime
	Stats   InstanceStatter
	Logs    pando.LogSink
	Auth    Authenticator
	Logger  *slog.Logger
	Now     func() time.Time

	// ServicesChanged, when set, is called after a service binding or an
	// instance's URLs changed (the syslog drain forwarder reads the
	// bindings again). It must not block.
	ServicesChanged func()
	// RouteServicesChanged, when set, gets every route bound to a route
	// service (host + path as the router keys it, to the service's URL)
	// at start-up and after each change: routers in other processes
	// learn them through it.
	RouteServicesChanged func(routes map[string]string)

	// DrainLimits bound the syslog drains of apps, as the forwarder
	// (internal/drain) does: binding an app to an instance with a drain
	// URL, or giving a bound instance one, past them is refused. Zero
	// fields are the drain package's defaults.
	DrainLimits drain.Limits
	// MaxServiceInstancesPerOrg bounds the service instances of one org:
	// CF's quotas count only managed instances, and user-provided ones
	// are all Pando has. 0 means DefaultMaxServiceInstancesPerOrg, -1 none.
	MaxServiceInstancesPerOrg int

	// StackRuntimes, when set, adds the language runtimes each stack offers
	// to the stack resources (a Pando extension, "runtimes").
	StackRuntimes StackRuntimes

	// Extra handlers mounted on the same mux without CC auth (UAA) or with
	// it (log-cache), registered by the caller.
	PublicRoutes func(mux *http.ServeMux)
	AuthedRoutes func(mux *http.ServeMux)
}

// StackConfig names a stack the cells offer.
type StackConfig struct {
	Name        string
	Description string
}

// API is the Cloud Controller.
type API struct {
	cfg    Config
	store  pando.Store
	blobs  pando.Blobstore
	rt     pando.Runtime
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	authed *http.ServeMux
	// patterns are the authenticated endpoints, as registered.
	patterns []string
	// routeServices is the router's view of route service bindings.
	routeServices routeServiceIndex
	// uploads bounds the package uploads in progress (uploadlimit.go).
	uploads *uploadLimiter
	// reloadMu serialises reloads of routeServices, so the last one
	// stored (and told) read the CCDB last.
	reloadMu sync.Mutex

	mu sync.Mutex
	// buildWaiters are closed when a build leaves STAGING.
	buildWaiters map[string]chan struct{}
	// processWaiters are closed when a process's instances change.
	processWaiters map[string]chan struct{}
	// stagingTimers fail builds whose staging task never reports back.
	stagingTimers map[string]*time.Timer
	// taskWaiters are closed when a CF task finishes.
	taskWaiters map[string]chan struct{}
	closed      bool
	// taskMu serialises CF task state changes, which come from requests,
	// runtime events and completions at once.
	taskMu sync.Mutex
	// wg counts background work that Close waits for.
	wg sync.WaitGroup
	// eventsPrunedAt and jobsPrunedAt are when audit events and jobs
	// were last pruned (unix nanos).
	eventsPrunedAt, jobsPrunedAt atomic.Int64
}

// New builds the API and its routes.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil || cfg.Blobs == nil || cfg.Runtime == nil || cfg.Auth == nil {
		return nil, errors.New("cc: Store, Blobs, Runtime and Auth are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://127.0.0.1:9022"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.RouterURL == "" {
		cfg.RouterURL = "http://127.0.0.1:8080"
	}
	if cfg.StagingTimeout <= 0 {
		cfg.StagingTimeout = 15 * time.Minute
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 1 << 30
	}
	if cfg.MaxPackageBytes <= 0 {
		cfg.MaxPackageBytes = 4 << 30
	}
	if cfg.DefaultStack == "" {
		cfg.DefaultStack = "host"
	}
	if cfg.DefaultMemoryMB <= 0 {
		cfg.DefaultMemoryMB = 256
	}
	if cfg.DefaultDiskMB <= 0 {
		cfg.DefaultDiskMB = 1024
	}
	if cfg.StagingMemoryMB <= 0 {
		cfg.StagingMemoryMB = 1024
	}
	if cfg.StagingDiskMB <= 0 {
		cfg.StagingDiskMB = 4096
	}
	switch {
	case cfg.DefaultLogRateLimit == 0:
		cfg.DefaultLogRateLimit = DefaultLogRateLimit
	case cfg.DefaultLogRateLimit < -1:
		return nil, fmt.Errorf("cc: default log rate limit %d: want -1 (unlimited) or bytes per second", cfg.DefaultLogRateLimit)
	}
	if cfg.DefaultInstances <= 0 {
		cfg.DefaultInstances = 1
	}
	if err := cfg.DrainLimits.Validate(); err != nil {
		return nil, fmt.Errorf("cc: %w", err)
	}
	cfg.DrainLimits = cfg.DrainLimits.WithDefaults()
	switch {
	case cfg.MaxServiceInstancesPerOrg == 0:
		cfg.MaxServiceInstancesPerOrg = DefaultMaxServiceInstancesPerOrg
	case cfg.MaxServiceInstancesPerOrg < -1:
		return nil, fmt.Errorf("cc: service instance limit %d: want a count, 0 for the default or -1 for none", cfg.MaxServiceInstancesPerOrg)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{
		cfg:            cfg,
		uploads:        newUploadLimiter(maxUploadsPerUser, maxUploads),
		store:          cfg.Store,
		blobs:          cfg.Blobs,
		rt:             cfg.Runtime,
		log:            cfg.Logger,
		now:            func() time.Time { return cfg.Now().UTC() },
		buildWaiters:   map[string]chan struct{}{},
		stagingTimers:  map[string]*time.Timer{},
		processWaiters: map[string]chan struct{}{},
		taskWaiters:    map[string]chan struct{}{},
	}
	a.routes()
	return a, nil
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Vcap-Request-Id")
	if reqID == "" {
		reqID = uuid.NewString()
	}
	w.Header().Set("X-Vcap-Request-Id", reqID)
	w = a.externalLinks(w, r)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			a.writeError(w, r, fmt.Errorf("internal error"))
		}
	}()
	a.mux.ServeHTTP(w, r)
}

// Close stops the API's timers and waits for background work to finish.
func (a *API) Close() {
	a.mu.Lock()
	a.closed = true
	for guid, t := range a.stagingTimers {
		t.Stop()
		delete(a.stagingTimers, guid)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

type ctxKey int

const identityKey ctxKey = 1

func identityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey).(Identity)
	return id
}

// requireAuth wraps the authenticated part of the API.
func (a *API) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.cfg.Auth.Authenticate(r)
		if err != nil {
			if r.Header.Get("Authorization") == "" {
				writeCFError(w, http.StatusUnauthorized, 10002, "CF-NotAuthenticated", "Authentication error")
				return
			}
			writeCFError(w, http.StatusUnauthorized, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey, id)))
	})
}

// url returns an absolute URL under the API.
func (a *API) url(path string, args ...any) string {
	if len(args) > 0 {
		path = fmt.Sprintf(path, args...)
	}
	return a.cfg.BaseURL + path
}

func link(href string) map[string]any { return map[string]any{"href": href} }

func (a *API) newGUID() string { return uuid.NewString() }

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 1 << 20

// readJSON decodes a bounded JSON body into v. An empty body leaves v as is.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: %v", err)
	}
	if len(body) > maxJSONBody {
		return pando.Errorf(pando.ETooLarge, "Request body exceeds %d bytes", maxJSONBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: invalid request body")
	}
	return nil
}

// splitList parses a comma-separated filter query parameter.
func splitList(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }
