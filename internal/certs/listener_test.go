package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// serveEcho accepts on l and echoes one line per connection.
func serveEcho(t *testing.T, l net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				c.Write(buf[:n])
			}()
		}
	}()
}

func newTestListener(t *testing.T, timeout time.Duration) (*Listener, *x509.CertPool) {
	t.Helper()
	c, _, err := SelfSigned(t.TempDir(), testNames, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, ServerConfig(c), timeout, nil)
	t.Cleanup(func() { l.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(c.Leaf())
	return l, roots
}

func TestListener_aSilentClientDoesNotHoldUpOthersAndIsCutOff(t *testing.T) {
	l, roots := newTestListener(t, 500*time.Millisecond)
	serveEcho(t, l)

	// A client that connects and never says hello.
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(),
		&tls.Config{RootCAs: roots, ServerName: "api.sys.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake behind a silent client: %v", err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN chose %q, want http/1.1", p)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}

	// The server gives up on the silent one after its handshake timeout.
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the silent client got data")
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Error("the server still held the silent connection after 10 s (handshake timeout 500 ms)")
	}
}

func TestListener_refusesOldTLSAndPlainHTTP(t *testing.T) {
	l, roots := newTestListener(t, time.Second)
	serveEcho(t, l)
	_, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Error("a TLS 1.1 client shook hands")
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	if len(b) > 0 && b[0] != 0x15 { // a TLS alert record, if anything
		t.Errorf("plain HTTP got %q", b)
	}
}

func TestListener_closeEndsAccept(t *testing.T) {
	l, _ := newTestListener(t, time.Second)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
