package cellapi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// lockedBuffer is a log destination written by a client's goroutine
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A cell whose server was given a new cell CA (its cell-ca files
// deleted): the cell's presence renewals, which had been failing while
// the server was down, now fail for another reason, said at once and
// with what to do, not hidden among the quiet retries.
func TestKeepPresence_saysWhenTheServersCAIsNotTheOneItJoined(t *testing.T) {
	joined := newFixture(t).join(t, "cell-a")
	other := newFixture(t) // the server again, with a new CA

	// One listener: its handshakes fail until the server is "back",
	// then it presents the new CA's certificate.
	var back atomic.Bool
	srv := httptest.NewUnstartedServer(other.cellAPI.Config.Handler)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if !back.Load() {
			return nil, errors.New("not up yet")
		}
		return other.cellAPI.TLS, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	creds := *joined.creds
	creds.CellAPI = srv.URL
	logs := &lockedBuffer{}
	client := NewServerClient(&creds, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.KeepPresence(ctx, joined.rep.URL, 10*time.Millisecond,
			func(context.Context) (pando.CellState, error) { return pando.CellState{}, nil }, nil)
	}()
	defer func() { cancel(); <-done }()
	waitLog := func(what, sub string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), sub) {
			if time.Now().After(deadline) {
				t.Fatalf("no log of %s after 10s:\n%s", what, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLog("the failing handshakes", "internal error")
	if d := client.PresenceFailingFor(); d <= 0 {
		t.Errorf("PresenceFailingFor %s while renewals fail, want more than 0", d)
	}

	back.Store(true)
	waitLog("the new CA", "certificate signed by unknown authority")
	out := logs.String()
	if !strings.Contains(out, newCAHint) {
		t.Errorf("the refusal does not say what to do (%q):\n%s", newCAHint, out)
	}
	if n := strings.Count(out, "internal error"); n != 1 {
		t.Errorf("the failing handshakes warned %d times, want once:\n%s", n, out)
	}
}
