package cellapi

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// A presence renewal that cannot reach the server in use asks the
// failover for another one and renews there from then on; every request
// (reports, logs, blobs) follows.
func TestKeepPresence_movesToTheServerTheFailoverFinds(t *testing.T) {
	f := newFixture(t)
	joined := f.join(t, "cell-a")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "https://" + dead.Addr().String()
	dead.Close() // refused from now on
	creds := *joined.creds
	creds.CellAPI = deadURL
	logs := &lockedBuffer{}
	client := NewServerClient(&creds, slog.New(slog.NewTextHandler(logs, nil)))
	var mu sync.Mutex
	var asked []string
	client.SetFailover(func(_ context.Context, unreachable string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, unreachable)
		return f.cellAPI.URL, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.KeepPresence(ctx, joined.rep.URL, 10*time.Millisecond,
			func(context.Context) (pando.CellState, error) { return pando.CellState{}, nil }, nil)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "cell presence renewed again") {
		if time.Now().After(deadline) {
			t.Fatalf("the presence was not renewed at the server the failover found within 10s:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	if len(asked) != 1 || asked[0] != deadURL {
		t.Errorf("the failover was asked %v, want once, for %s", asked, deadURL)
	}
	mu.Unlock()
	if got := client.baseURL(); got != f.cellAPI.URL {
		t.Errorf("the client talks to %s, want %s", got, f.cellAPI.URL)
	}
	// A report goes to the new server too.
	rctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := client.ReportInventory(rctx, pando.CellInventory{}); err != nil {
		t.Errorf("report to the server found: %v", err)
	}
}
