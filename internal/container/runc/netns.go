package runc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects to 127.0.0.1:port inside the container's network
// namespace. The socket is made by the container's socket maker (one OS
// thread that lives in the namespace); a socket keeps the namespace it
// was created in, so connecting and all I/O happen on ordinary goroutines
// and no thread is pinned per connection. The connection costs one fd.
func (c *Container) Dial(ctx context.Context, port int) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("dial container %s: bad port %d", c.id, port)
	}
	sm, err := c.socketMaker()
	if err != nil {
		return nil, fmt.Errorf("dial container %s port %d: %w", c.id, port, err)
	}
	fd, err := sm.socket(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial container %s port %d: %w", c.id, port, err)
	}
	conn, err := connectLoopback(ctx, fd, port)
	if err != nil {
		return nil, fmt.Errorf("dial container %s port %d: %w", c.id, port, err)
	}
	return conn, nil
}

// socketMaker returns the container's socket maker, entering its network
// namespace on first use.
func (c *Container) socketMaker() (*socketMaker, error) {
	c.nsMu.Lock()
	defer c.nsMu.Unlock()
	if c.exited() || c.pid <= 0 {
		return nil, ErrNotRunning
	}
	if c.sockets != nil {
		return c.sockets, nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", c.pid))
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	defer f.Close()
	if c.exited() { // the pid may have been reused since
		return nil, ErrNotRunning
	}
	sm, err := startSocketMaker(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	c.sockets = sm
	return sm, nil
}

// ErrNotRunning is Dial's error for a container whose process has exited
// (or never started).
var ErrNotRunning = errors.New("the container is not running")

// connectLoopback connects the non-blocking socket fd to 127.0.0.1:port,
// waiting in the runtime's poller, and returns it as a net.Conn. It owns
// fd: on error fd is closed.
func connectLoopback(ctx context.Context, fd, port int) (net.Conn, error) {
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	err := unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "netns-tcp")
	defer f.Close() // net.FileConn holds its own dup
	if err == unix.EINPROGRESS || err == unix.EINTR {
		if err := awaitConnect(ctx, f); err != nil {
			return nil, err
		}
	}
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("adopt socket: %w", err)
	}
	// As net.Dial does: small writes (request heads) go out at once
	// instead of waiting for the peer's delayed ACK.
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return conn, nil
}

// awaitConnect waits in the poller until a non-blocking connect finishes
// or ctx ends.
func awaitConnect(ctx context.Context, f *os.File) error {
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var connErr error
	werr := rc.Write(func(fd uintptr) bool {
		if _, err := unix.Getpeername(int(fd)); err == nil {
			return true
		}
		soErr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		case soErr != 0 && unix.Errno(soErr) != unix.EINPROGRESS && unix.Errno(soErr) != unix.EALREADY:
			connErr = os.NewSyscallError("connect", unix.Errno(soErr))
			return true
		}
		return false // not connected yet: wait until writable
	})
	if connErr != nil {
		return connErr
	}
	if werr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		return fmt.Errorf("connect: %w", werr)
	}
	return nil
}

// socketMaker owns one OS thread that has entered a container's network
// namespace and does nothing but create sockets there on request. The
// thread never returns to the host's namespace: when the maker stops, its
// goroutine exits still locked and the runtime discards the thread.
type socketMaker struct {
	reqs chan chan socketResult
	stop chan struct{}
	once sync.Once
}

type socketResult struct {
	fd  int
	err error
}

// startSocketMaker enters the namespace of nsFd on a fresh thread.
func startSocketMaker(nsFd int) (*socketMaker, error) {
	sm := &socketMaker{reqs: make(chan chan socketResult), stop: make(chan struct{})}
	ready := make(chan error, 1)
	go sm.run(nsFd, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return sm, nil
}

func (sm *socketMaker) run(nsFd int, ready chan<- error) {
	runtime.LockOSThread()
	// A Go thread may share its file table and fs with the process, but
	// the network namespace is per thread: setns moves only this one.
	if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		ready <- fmt.Errorf("enter network namespace: %w", err)
		return
	}
	ready <- nil
	for {
		select {
		case <-sm.stop:
			return // locked: the thread dies with the goroutine
		case reply := <-sm.reqs:
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				err = os.NewSyscallError("socket", err)
			}
			reply <- socketResult{fd: fd, err: err}
		}
	}
}

// socket returns a new non-blocking TCP socket in the namespace.
func (sm *socketMaker) socket(ctx context.Context) (int, error) {
	reply := make(chan socketResult, 1)
	select {
	case sm.reqs <- reply:
	case <-sm.stop:
		return -1, ErrNotRunning
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	// The maker always answers a request it took.
	r := <-reply
	return r.fd, r.err
}

// close ends the maker's thread. Sockets it made stay valid.
func (sm *socketMaker) close() { sm.once.Do(func() { close(sm.stop) }) }

// Listen listens on 127.0.0.1:port inside the container's network
// namespace; the accept loop and all I/O run in the caller's process on
// ordinary goroutines (the socket keeps its namespace). The cell serves
// a staging container's egress proxy this way. The listener ends with
// the namespace's last process only when closed: close it.
func (c *Container) Listen(ctx context.Context, port int) (net.Listener, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("listen in container %s: bad port %d", c.id, port)
	}
	sm, err := c.socketMaker()
	if err != nil {
		return nil, fmt.Errorf("listen in container %s port %d: %w", c.id, port, err)
	}
	fd, err := sm.socket(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen in container %s port %d: %w", c.id, port, err)
	}
	ln, err := listenLoopback(fd, port)
	if err != nil {
		return nil, fmt.Errorf("listen in container %s port %d: %w", c.id, port, err)
	}
	return ln, nil
}

// listenLoopback binds fd to 127.0.0.1:port and listens. It owns fd.
func listenLoopback(fd, port int) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), "netns-listener")
	defer f.Close() // net.FileListener holds its own dup
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("adopt listener: %w", err)
	}
	return ln, nil
}
