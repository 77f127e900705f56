package connwrap

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// wrapped is a wrapper as connlimit's and headbudget's are.
type wrapped struct {
	net.Conn
	closed int
}

func (w *wrapped) Close() error { w.closed++; return w.Conn.Close() }

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestCloseWrite_halfClosesASocket(t *testing.T) {
	client, server := tcpPair(t)
	w := &wrapped{Conn: client}
	if err := CloseWrite(w.Conn, w.Close); err != nil {
		t.Fatal(err)
	}
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := server.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the peer read %d bytes, %v; want EOF", n, err)
	}
	// Still open for reading.
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
		t.Errorf("read after half-close: %v", err)
	}
	if w.closed != 0 {
		t.Errorf("the wrapper was closed %d times", w.closed)
	}
}

func TestCloseWrite_closesWhatCannotHalfClose(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := &wrapped{Conn: a}
	if err := CloseWrite(w.Conn, w.Close); err != nil {
		t.Fatal(err)
	}
	if w.closed != 1 {
		t.Errorf("the wrapper was closed %d times, want 1", w.closed)
	}
}

func TestSyscallConn(t *testing.T) {
	client, _ := tcpPair(t)
	if _, err := SyscallConn(&wrapped{Conn: client}); !errors.Is(err, ErrNoSocket) {
		t.Errorf("a wrapper that does not forward SyscallConn: %v, want ErrNoSocket", err)
	}
	rc, err := SyscallConn(client)
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		t.Errorf("socket fd %d, %v", fd, err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := SyscallConn(a); !errors.Is(err, ErrNoSocket) {
		t.Errorf("a pipe: %v, want ErrNoSocket", err)
	}
}

func TestPerAddr_dropsAnAddressThatHoldsNothing(t *testing.T) {
	p := PerAddr{}
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	p.Take(a)
	p.Take(a)
	p.Take(b)
	p.Give(a)
	p.Give(b)
	if len(p) != 1 || p[a] != 1 {
		t.Fatalf("after 2+1 taken and 1+1 given: %v, want only %v holding 1", p, a)
	}
	p.Give(a)
	if len(p) != 0 {
		t.Fatalf("every address gave back all it took, yet %v is left", p)
	}
}
