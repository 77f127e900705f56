package cell

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
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
	pipe(client, up)
}

// pipe copies both ways; each direction half-closes its destination when
// its source ends, and pipe returns when both are done.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if err != nil {
			// A broken side ends the exchange: close both so the other
			// copy returns too.
			a.Close()
			b.Close()
			return
		}
		// A conn that cannot half-close is closed once both sides are
		// done.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
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
