// Package fake is an in-memory container.Backend for cell tests and scale
// benchmarks. Nothing is isolated or executed: a container "runs" until it
// is stopped, destroyed or told to exit (or until an optional Process
// function returns), Dial reaches HTTP handlers the test registers over
// in-memory pipes, and Stats returns configured figures.
package fake

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// Options set a Backend's behaviour for every container.
type Options struct {
	// RunError, if set, is asked first; a non-nil error fails Run.
	RunError func(spec container.Spec) error
	// Process, if set, is what each container runs, on its own goroutine.
	// ctx ends when the container is stopped or destroyed; the returned
	// status ends the container. It may write to spec.Stdout and
	// spec.Stderr. Nil: containers run until stopped.
	Process func(ctx context.Context, spec container.Spec) container.ExitStatus
	// Handler, if set, serves Dial(port) for containers without a Serve
	// registration; a nil handler refuses the connection.
	Handler func(spec container.Spec, port int) http.Handler
	// Stats is what Stats reports unless SetStats overrides it; a zero
	// MemoryLimit reports the spec's MemoryBytes.
	Stats container.Stats
}

// Backend is the fake container.Backend. It is safe for concurrent use.
type Backend struct {
	opts Options

	mu       sync.Mutex
	live     map[string]*Container
	handlers map[target]http.Handler
	stats    map[string]container.Stats
	volumes  map[string]*volume // by dir
	runs     int
}

type target struct {
	id   string
	port int
}

var _ container.Backend = (*Backend)(nil)

// New returns an empty fake backend.
func New(opts Options) *Backend {
	return &Backend{
		opts:     opts,
		live:     map[string]*Container{},
		handlers: map[target]http.Handler{},
		stats:    map[string]container.Stats{},
	}
}

// Run records spec and starts the container.
func (b *Backend) Run(ctx context.Context, spec container.Spec) (container.Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run container %s: %w", spec.ID, err)
	}
	if spec.ID == "" || len(spec.Args) == 0 {
		return nil, pando.Errorf(pando.EInvalid, "container %q: id and args are required", spec.ID)
	}
	if spec.Volume != "" {
		b.mu.Lock()
		v := b.volumes[filepath.Clean(spec.Volume)]
		b.mu.Unlock()
		if v == nil {
			return nil, pando.Errorf(pando.EInvalid, "container %s: %s is not a volume of this backend", spec.ID, spec.Volume)
		}
	}
	if b.opts.RunError != nil {
		if err := b.opts.RunError(spec); err != nil {
			return nil, err
		}
	}
	pctx, cancel := context.WithCancel(context.Background())
	c := &Container{b: b, spec: spec, cancel: cancel, done: make(chan struct{}), servers: map[int]*pipeServer{}}
	b.mu.Lock()
	if _, ok := b.live[spec.ID]; ok {
		b.mu.Unlock()
		cancel()
		return nil, pando.Errorf(pando.EConflict, "container %q already exists", spec.ID)
	}
	b.live[spec.ID] = c
	b.runs++
	b.mu.Unlock()
	if b.opts.Process != nil {
		go func() { c.exit(b.opts.Process(pctx, spec)) }()
	}
	return c, nil
}

// Serve makes Dial(port) on container id reach h. It may be called before
// the container runs; it lasts until the container is destroyed.
func (b *Backend) Serve(id string, port int, h http.Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers[target{id, port}] = h
}

// SetStats sets what Stats reports for container id.
func (b *Backend) SetStats(id string, s container.Stats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats[id] = s
}

// Exit ends container id's process with st, as if it had exited.
func (b *Backend) Exit(id string, st container.ExitStatus) error {
	c := b.get(id)
	if c == nil {
		return pando.Errorf(pando.ENotFound, "container %q not found", id)
	}
	c.exit(st)
	return nil
}

// Spec returns the spec container id was run with, while it exists.
func (b *Backend) Spec(id string) (container.Spec, bool) {
	if c := b.get(id); c != nil {
		return c.spec, true
	}
	return container.Spec{}, false
}

// IDs lists the containers not yet destroyed, sorted.
func (b *Backend) IDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.live))
	for id := range b.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Runs counts the successful Run calls so far.
func (b *Backend) Runs() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs
}

func (b *Backend) get(id string) *Container {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live[id]
}

func (b *Backend) handler(spec container.Spec, port int) http.Handler {
	b.mu.Lock()
	h, ok := b.handlers[target{spec.ID, port}]
	b.mu.Unlock()
	if !ok && b.opts.Handler != nil {
		h = b.opts.Handler(spec, port)
	}
	return h
}

func (b *Backend) remove(c *Container) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live[c.spec.ID] == c {
		delete(b.live, c.spec.ID)
		delete(b.stats, c.spec.ID)
		for t := range b.handlers {
			if t.id == c.spec.ID {
				delete(b.handlers, t)
			}
		}
	}
}

// Container is a fake container.
type Container struct {
	b      *Backend
	spec   container.Spec
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	status    container.ExitStatus
	exited    bool
	destroyed bool
	servers   map[int]*pipeServer
}

var _ container.Container = (*Container)(nil)

// ID returns the container's id.
func (c *Container) ID() string { return c.spec.ID }

// exit records the first status only.
func (c *Container) exit(st container.ExitStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited {
		return
	}
	c.exited, c.status = true, st
	c.cancel()
	close(c.done)
}

// Wait blocks until the container exits or ctx ends.
func (c *Container) Wait(ctx context.Context) (container.ExitStatus, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.status, nil
	case <-ctx.Done():
		return container.ExitStatus{}, fmt.Errorf("wait for container %s: %w", c.spec.ID, ctx.Err())
	}
}

// Stats returns the configured figures.
func (c *Container) Stats(ctx context.Context) (container.Stats, error) {
	c.mu.Lock()
	destroyed := c.destroyed
	c.mu.Unlock()
	if destroyed {
		return container.Stats{}, pando.Errorf(pando.ENotFound, "container %q not found", c.spec.ID)
	}
	c.b.mu.Lock()
	s, ok := c.b.stats[c.spec.ID]
	c.b.mu.Unlock()
	if !ok {
		s = c.b.opts.Stats
	}
	if s.MemoryLimit == 0 && c.spec.MemoryBytes > 0 {
		s.MemoryLimit = uint64(c.spec.MemoryBytes)
	}
	return s, nil
}

// Dial connects to the handler registered for port over an in-memory pipe.
func (c *Container) Dial(ctx context.Context, port int) (net.Conn, error) {
	c.mu.Lock()
	if c.exited || c.destroyed {
		c.mu.Unlock()
		return nil, fmt.Errorf("dial container %s port %d: the container is not running", c.spec.ID, port)
	}
	srv := c.servers[port]
	if srv == nil {
		h := c.b.handler(c.spec, port)
		if h == nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("dial container %s port %d: %w", c.spec.ID, port, syscall.ECONNREFUSED)
		}
		srv = newPipeServer(h)
		c.servers[port] = srv
	}
	c.mu.Unlock()
	conn, err := srv.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial container %s port %d: %w", c.spec.ID, port, err)
	}
	return conn, nil
}

// Stop ends the process: with a Process function, by cancelling its ctx
// and waiting up to grace for it to return; otherwise at once, as a
// SIGTERM would (exit 143).
func (c *Container) Stop(ctx context.Context, grace time.Duration) error {
	c.cancel()
	if c.b.opts.Process == nil {
		c.exit(container.ExitStatus{Code: 143, Signaled: true})
		return nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.exit(container.ExitStatus{Code: 137, Signaled: true})
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", c.spec.ID, ctx.Err())
	}
	return nil
}

// Destroy kills the process if it still runs, closes its servers and
// forgets the container. It is safe to call more than once.
func (c *Container) Destroy(ctx context.Context) error {
	c.exit(container.ExitStatus{Code: 137, Signaled: true})
	c.mu.Lock()
	if c.destroyed {
		c.mu.Unlock()
		return nil
	}
	c.destroyed = true
	servers := c.servers
	c.servers = map[int]*pipeServer{}
	c.mu.Unlock()
	for _, s := range servers {
		s.close()
	}
	c.b.remove(c)
	return nil
}

// pipeServer is an http.Server whose listener hands out net.Pipe ends.
type pipeServer struct {
	srv   *http.Server
	conns chan net.Conn
	quit  chan struct{}
	once  sync.Once // closes quit
}

func newPipeServer(h http.Handler) *pipeServer {
	s := &pipeServer{srv: &http.Server{Handler: h}, conns: make(chan net.Conn), quit: make(chan struct{})}
	go func() { _ = s.srv.Serve(pipeListener{s}) }()
	return s
}

func (s *pipeServer) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case s.conns <- server:
		return client, nil
	case <-s.quit:
		client.Close()
		server.Close()
		return nil, syscall.ECONNREFUSED
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

func (s *pipeServer) stopAccepting() { s.once.Do(func() { close(s.quit) }) }

// close stops the server and closes its open connections.
func (s *pipeServer) close() {
	s.stopAccepting()
	_ = s.srv.Close()
}

type pipeListener struct{ s *pipeServer }

func (l pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.s.conns:
		return c, nil
	case <-l.s.quit:
		return nil, net.ErrClosed
	}
}

func (l pipeListener) Close() error {
	l.s.stopAccepting()
	return nil
}

func (l pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
