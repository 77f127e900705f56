package runtimeapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/runtimeapi"
)

// serve runs a BBS behind the runtime API; streams counts the event
// streams the server opened.
func serve(t *testing.T, cfg runtimeapi.Config) (b *bbs.BBS, srv *httptest.Server, c *runtimeapi.Client, streams *atomic.Int64) {
	t.Helper()
	streams = new(atomic.Int64)
	b = bbs.New(bbs.Config{})
	h, err := runtimeapi.NewHandler(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			streams.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err = runtimeapi.NewClient(srv.URL, runtimeapi.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return b, srv, c, streams
}

func next(t *testing.T, events <-chan pando.RuntimeEvent) pando.RuntimeEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return pando.RuntimeEvent{}
}

func TestHandler_refusesWhatAuthenticateRefuses(t *testing.T) {
	_, _, c, _ := serve(t, runtimeapi.Config{Authenticate: func(r *http.Request) error {
		return errors.New("no client certificate")
	}})
	ctx := context.Background()
	if _, err := c.DesiredLRPs(ctx); pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Errorf("DesiredLRPs: %v, want unauthenticated", err)
	}
	if _, err := c.Subscribe(ctx, 0); pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Errorf("Subscribe: %v, want unauthenticated", err)
	}
	if _, err := runtimeapi.NewHandler(bbs.New(bbs.Config{}), runtimeapi.Config{}); err == nil {
		t.Error("a handler without an authenticator was built")
	}
}

func TestClient_resumesAStreamThatBroke(t *testing.T) {
	b, srv, c, streams := serve(t, runtimeapi.Config{Authenticate: runtimeapi.Unauthenticated})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := streams.Load()
	events, err := c.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != pando.EventResync {
		t.Fatalf("first event %+v", ev)
	}
	if err := b.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "a"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.ProcessGUID != "a" {
		t.Fatalf("event %+v, want a", ev)
	}

	// The connection breaks; changes meanwhile arrive after the client
	// reconnects, from where it was, without a resync.
	srv.CloseClientConnections()
	if err := b.DesireLRP(ctx, pando.DesiredLRP{ProcessGUID: "b"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != pando.EventDesiredLRPChanged || ev.ProcessGUID != "b" {
		t.Fatalf("event after the reconnect %+v, want b", ev)
	}
	if n := streams.Load() - before; n != 2 {
		t.Errorf("%d streams opened, want 2 (one reconnect)", n)
	}
	cancel()
	for range events {
	}
}

func TestHandler_boundsEventStreams(t *testing.T) {
	_, _, c, _ := serve(t, runtimeapi.Config{Authenticate: runtimeapi.Unauthenticated, MaxStreams: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Subscribe(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, 0); pando.ErrorKindOf(err) != pando.EUnavailable {
		t.Errorf("second stream: %v, want unavailable", err)
	}
}

func TestClient_refusesABadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9023", "ftp://x", "http://", "http://x/?a=b"} {
		if _, err := runtimeapi.NewClient(u, runtimeapi.ClientConfig{}); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
}
