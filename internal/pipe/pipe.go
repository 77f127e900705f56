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
	"os"
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
	read := lazyReader(src)
	for {
		bp, n, rerr := read()
		if n > 0 {
			last.touch()
			_, werr := dst.Write((*bp)[:n])
			pool.Put(bp)
			if werr != nil {
				return werr
			}
		} else if bp != nil {
			pool.Put(bp)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// lazyReader returns a read function that parks in the poller until c
// has bytes (or EOF, or an error) without holding a buffer, then reads
// into a pooled one: one read syscall per chunk, as a plain Read, but an
// idle connection costs no buffer. Connections that do not expose their
// socket read with the buffer held.
func lazyReader(c net.Conn) func() (*[]byte, int, error) {
	plain := func() (*[]byte, int, error) {
		bp := pool.Get().(*[]byte)
		n, err := c.Read(*bp)
		return bp, n, err
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return plain
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return plain
	}
	return func() (*[]byte, int, error) {
		var (
			bp   *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			bp = pool.Get().(*[]byte)
			for {
				n, rerr = unix.Read(int(fd), *bp)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				pool.Put(bp)
				bp = nil
				return false // nothing yet: park without the buffer
			}
			return true
		})
		switch {
		case err != nil: // closed, or a deadline passed
			return bp, 0, err
		case rerr != nil:
			return bp, 0, os.NewSyscallError("read", rerr)
		case n == 0:
			return bp, 0, io.EOF
		}
		return bp, n, nil
	}
}
