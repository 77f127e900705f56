package cell

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/pipe"
)

// forwarder accepts connections on a host port and pipes each to a new
// connection into the container (container.Dial). Close stops it and
// closes every connection it holds, so no goroutine outlives it.
type forwarder struct {
	ln     net.Listener
	dial   func(ctx context.Context) (net.Conn, error)
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// forwardIdleTimeout closes a forwarded connection quiet both ways for
// this long, as the router does with websockets.
const forwardIdleTimeout = time.Hour

// dialTimeout bounds connecting into the container for one client.
const dialTimeout = 10 * time.Second

func startForwarder(ln net.Listener, dial func(ctx context.Context) (net.Conn, error), log *slog.Logger) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarder{ln: ln, dial: dial, log: log, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	var delay time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			f.log.Warn("accept", "addr", f.ln.Addr().String(), "error", err)
			select {
			case <-time.After(delay):
				continue
			case <-f.ctx.Done():
				return
			}
		}
		delay = 0
		if f.full() {
			// Past the cap: refuse at once rather than queue.
			f.log.Debug("connection refused: forwarder at its limit", "max", maxForwardedConns)
			c.Close()
			continue
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.handle(c)
	}
}

func (f *forwarder) handle(client net.Conn) {
	defer f.wg.Done()
	defer f.untrack(client)
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	up, err := f.dial(ctx)
	cancel()
	if err != nil {
		f.log.Debug("dial container", "error", err)
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	pipe.Join(client, up, pipe.Options{IdleTimeout: forwardIdleTimeout})
}

// maxForwardedConns bounds one host port's open connections (each counts
// its client and upstream sockets, hence the factor).
const maxForwardedConns = 4096

func (f *forwarder) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns) >= 2*maxForwardedConns
}

func (f *forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// Close stops accepting, closes all connections and waits for every
// goroutine of the forwarder.
func (f *forwarder) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return
	}
	f.closed = true
	f.ln.Close()
	f.cancel()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// DialHostPort connects straight into the container behind one of this
// cell's host ports (addr "HOST:PORT" as an ActualLRP advertises it),
// skipping the host-port forwarder: the in-process router uses it, so a
// routed connection costs one fd on this side and no forwarding
// goroutines. ok is false when addr is not a RUNNING instance's port here.
func (r *Rep) DialHostPort(ctx context.Context, addr string) (conn net.Conn, ok bool, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil || host != r.cfg.HostAddr {
		return nil, false, nil
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, false, nil
	}
	ctr, cport := r.containerAtHostPort(port)
	if ctr == nil {
		return nil, false, nil
	}
	conn, err = ctr.Dial(ctx, cport)
	return conn, true, err
}

// containerAtHostPort finds the running container that owns a host port.
func (r *Rep) containerAtHostPort(port int) (container.Container, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ports[port] {
		return nil, 0
	}
	for _, i := range r.instances {
		for _, m := range i.ports {
			if m.HostPort == port {
				return i.container(), m.ContainerPort
			}
		}
	}
	return nil, 0
}
