// Package connwrap forwards, for a net.Conn wrapper (connlimit's slot,
// headbudget's head count), what the connection underneath can do beyond
// net.Conn: half-close it and reach its socket. A hijacked connection then
// still half-closes, and waits in the poller without a buffer
// (internal/pipe).
package connwrap

import (
	"errors"
	"net"
	"syscall"
)

// CloseWrite half-closes inner when it can; otherwise it calls closeAll
// (the wrapper's own Close): a writer that cannot half-close must close.
func CloseWrite(inner net.Conn, closeAll func() error) error {
	if cw, ok := inner.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return closeAll()
}

// ErrNoSocket is SyscallConn's error for a connection with no socket
// underneath (net.Pipe, say).
var ErrNoSocket = errors.New("connection has no socket")

// SyscallConn returns the raw connection of inner's socket.
func SyscallConn(inner net.Conn) (syscall.RawConn, error) {
	if sc, ok := inner.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, ErrNoSocket
}
