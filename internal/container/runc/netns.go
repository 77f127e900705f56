package runc

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Dial connects to 127.0.0.1:port inside the container's network
// namespace. The socket is created by a goroutine locked to an OS thread
// that has switched into the namespace; a socket keeps the namespace it was
// created in, so the connection works from any thread afterwards.
func (c *Container) Dial(ctx context.Context, port int) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("dial container %s: bad port %d", c.id, port)
	}
	c.nsMu.Lock()
	var ns *os.File
	if c.netns != nil && !c.exited() {
		// Dup so Destroy closing c.netns cannot pull the fd from under us.
		if fd, err := unix.FcntlInt(c.netns.Fd(), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			ns = os.NewFile(uintptr(fd), "netns")
		}
	}
	c.nsMu.Unlock()
	if ns == nil {
		return nil, fmt.Errorf("dial container %s port %d: the container is not running", c.id, port)
	}
	defer ns.Close()

	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := dialInNetns(ctx, int(ns.Fd()), "127.0.0.1:"+strconv.Itoa(port))
		ch <- result{conn, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("dial container %s port %d: %w", c.id, port, r.err)
	}
	return r.conn, nil
}

// dialInNetns must run on its own goroutine: if it cannot switch the
// thread back to the original namespace it leaves the thread locked, and
// the runtime discards a thread whose goroutine exits while locked.
func dialInNetns(ctx context.Context, nsFd int, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace: %w", err)
	}
	// The dialer creates the socket on this (locked) thread; waiting for
	// the connect parks the goroutine, which resumes on the same thread.
	// A literal IP address needs no resolver goroutines.
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, "tcp4", addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: this thread is in the wrong namespace and must die.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("return to own network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}
