package connlimit

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/certs"
)

func TestListener_refusesPastTheCapsWith503AndGivesSlotsBack(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(raw, 3, 2, "the test server")
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip byte) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	refusal := func(c net.Conn) string {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer from a refused connection: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return string(body)
	}
	dial(1)
	s1 := <-accepted
	dial(1)
	<-accepted
	if body := refusal(dial(1)); !strings.Contains(body, "too many connections from 127.0.0.1 (limit 2)") {
		t.Errorf("third from one address: %q", body)
	}
	dial(2)
	<-accepted
	if body := refusal(dial(3)); !strings.Contains(body, "the test server has reached its limit of 3 connections") {
		t.Errorf("fourth in all: %q", body)
	}
	if l.Refused() != 2 {
		t.Errorf("refused %d, want 2", l.Refused())
	}
	if l.Open() != 3 {
		t.Errorf("open %d, want 3", l.Open())
	}
	// The server closing a connection frees its slot at once.
	s1.Close()
	if l.Open() != 2 {
		t.Errorf("open %d after a close, want 2", l.Open())
	}
	dial(3)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to the next connection")
	}
}

func TestLimit_sharedByAPlainAndATLSListenerAndRefusedOverTLS(t *testing.T) {
	cert, _, err := certs.SelfSigned(t.TempDir(), certs.Names{DNS: []string{"localhost"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := certs.ServerConfig(cert)
	limit := NewLimit(1, 0, "the router")
	listen := func() net.Listener {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return raw
	}
	plainRaw, tlsRaw := listen(), listen()
	plain, secure := limit.Wrap(plainRaw), limit.WrapTLS(tlsRaw, tlsCfg)
	accepted := make(chan net.Conn, 2)
	for _, l := range []net.Listener{plain, secure} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	held, err := net.Dial("tcp", plainRaw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	<-accepted

	// The TLS listener shares the cap of one: its client is refused, and
	// the refusal comes over TLS.
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf())
	c, err := tls.Dial("tcp", tlsRaw.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("refused TLS client got no handshake: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "the router has reached its limit of 1 connections") {
		t.Errorf("refusal: %d %q", resp.StatusCode, body)
	}
	if limit.Refused() != 1 {
		t.Errorf("refused %d, want 1", limit.Refused())
	}
}
