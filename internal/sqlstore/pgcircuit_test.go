package sqlstore

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// silentProxy forwards loopback connections to PostgreSQL until silenced:
// then the connections it forwarded are gone and new ones are accepted
// but never answered, as on a network that drops every packet.
type silentProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	silent bool
	conns  []net.Conn
}

func startSilentProxy(t *testing.T, target string) *silentProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{ln: ln, target: target}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *silentProxy) serve(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
	if p.silent {
		return // held open, never read nor answered
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.conns = append(p.conns, up)
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	go func() { _, _ = io.Copy(c, up); c.Close() }()
}

// silence cuts every connection and answers none from now on; speak
// forwards again.
func (p *silentProxy) silence(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = silent
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// When PostgreSQL stops answering, requests wait for it only until one
// connection attempt has failed: then every read and write fails at once
// (503) instead of spending connect_timeout each, and once PostgreSQL
// answers again the Store serves by itself.
func TestPostgres_anUnansweringDatabaseFailsRequestsFast(t *testing.T) {
	u, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startSilentProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	const connectTimeout = 3 * time.Second
	q := u.Query()
	q.Set("connect_timeout", "3")
	u.RawQuery = q.Encode()
	s := openTemp(t, u.String())
	ctx := t.Context()
	if err := s.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	parallel(t, 4, func(int) error { _, err := s.ListOrgs(ctx, nil, nil); return err })

	proxy.silence(true)
	// The pooled connections fail, then a new one waits connect_timeout
	// and opens the circuit.
	deadline := time.Now().Add(30 * time.Second)
	for s.circuit.check() == nil {
		_, err := s.GetOrg(ctx, "org-1")
		wantUnavailable(t, "GetOrg with PostgreSQL silent", err, "The database cannot be reached")
		if time.Now().After(deadline) {
			t.Fatal("no request opened the circuit in 30s of silence")
		}
	}
	began := time.Now()
	for i := range 20 {
		_, err := s.GetOrg(ctx, "org-1")
		wantUnavailable(t, "GetOrg once the circuit is open", err, "The database cannot be reached")
		_, err = s.ListOrgs(ctx, nil, nil)
		wantUnavailable(t, "ListOrgs once the circuit is open", err, "The database cannot be reached")
		if i%4 == 0 {
			err = s.CreateOrg(ctx, pando.Org{GUID: "org-x", Name: "x"})
			wantUnavailable(t, "CreateOrg once the circuit is open", err, "The database cannot be reached")
		}
	}
	if d := time.Since(began); d >= connectTimeout {
		t.Errorf("45 requests took %s with the circuit open; want them all to fail before one connect_timeout (%s)", d, connectTimeout)
	}

	proxy.silence(false)
	for {
		_, err := s.GetOrg(ctx, "org-1")
		if err == nil {
			break
		}
		var pe *pando.Error
		if !errors.As(err, &pe) || pe.Kind != pando.EUnavailable {
			t.Fatalf("GetOrg as PostgreSQL answers again: %v; want EUnavailable or success", err)
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the Store still fails after PostgreSQL answers again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.CreateOrg(ctx, pando.Org{GUID: "org-2", Name: "two"}); err != nil {
		t.Fatalf("a write once PostgreSQL answers again: %v", err)
	}
}

// Closing a Store whose circuit is open stops its probe, even one waiting
// on a silent network.
func TestPostgres_closeStopsTheProbe(t *testing.T) {
	u, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startSilentProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "60")
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy.silence(true)
	s.circuit.trip(errors.New("test: opened by hand"))
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("Close took %s with a probe waiting on a silent network (connect_timeout 60s)", d)
	}
}
