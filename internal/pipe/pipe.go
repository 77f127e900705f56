// Package pipe joins two connections, copying each way, for the cell's
// host-port forwarder and the router's upgraded (websocket) connections.
// It is built for many idle connections: a copy waits for data in the
// runtime's poller without holding a buffer, takes a pooled buffer only
// while bytes move, and never uses splice pipes, so an idle joined pair
// costs its two sockets and two parked goroutines, nothing more.
package pipe

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bufSize is the size of a pooled copy buffer.
const bufSize = 32 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Options bound a joined pair.
type Options struct {
	// IdleTimeout ends the pair when neither side has sent anything for
	// this long; zero means no limit.
	IdleTimeout time.Duration
}

// Join copies a→b and b→a until both directions end. A direction that
// ends cleanly half-closes its destination (if it can); an error on
// either side, or the idle timeout, closes both. Join closes neither
// connection on a clean end: the caller does.
func Join(a, b net.Conn, opts Options) {
	var (
		wg   sync.WaitGroup
		once sync.Once
		last = newActivity()
	)
	abort := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	var stopIdle func() bool
	if opts.IdleTimeout > 0 {
		stopIdle = last.watch(opts.IdleTimeout, abort)
	}
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		if err := copyLazy(dst, src, last); err != nil {
			abort()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	if stopIdle != nil {
		stopIdle()
	}
}

// activity records when bytes last moved and, with an idle limit, ends
// the pair once nothing has moved for that long.
type activity struct {
	mu     sync.Mutex
	at     time.Time
	idle   time.Duration
	expire func()
	timer  *time.Timer
}

func newActivity() *activity { return &activity{at: time.Now()} }

func (a *activity) touch() {
	a.mu.Lock()
	a.at = time.Now()
	a.mu.Unlock()
}

// watch calls expire once nothing has moved for d. The timer fires when
// the quiet period could first have ended and re-arms itself if bytes
// moved meanwhile, so it costs one timer per pair, not one per write.
func (a *activity) watch(d time.Duration, expire func()) (stop func() bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.idle, a.expire = d, expire
	a.timer = time.AfterFunc(d, a.check)
	return a.timer.Stop
}

func (a *activity) check() {
	a.mu.Lock()
	quiet := time.Since(a.at)
	if quiet < a.idle {
		a.timer.Reset(a.idle - quiet)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.expire()
}

// copyLazy copies src to dst until src ends (nil) or either fails.
func copyLazy(dst, src net.Conn, last *activity) error {
	wait := readableWaiter(src)
	for {
		if wait != nil {
			if err := wait(); err != nil {
				return err
			}
		}
		bp := pool.Get().(*[]byte)
		n, rerr := src.Read(*bp)
		if n > 0 {
			last.touch()
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				pool.Put(bp)
				return werr
			}
		}
		pool.Put(bp)
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// readableWaiter returns a function that parks until c has bytes to read
// (or EOF or an error), holding no buffer meanwhile. Connections that do
// not expose their socket get nil: their Read waits with the buffer.
func readableWaiter(c net.Conn) func() error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var one [1]byte
	return func() error {
		return rc.Read(func(fd uintptr) bool {
			_, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			// EAGAIN: nothing yet, park in the poller; anything else
			// (data, EOF, an error) is for Read to see.
			return err != unix.EAGAIN
		})
	}
}
