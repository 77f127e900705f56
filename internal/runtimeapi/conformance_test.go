package runtimeapi_test

import (
	"context"
	"net/http/httptest"
	"testing"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/runtimeapi"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// newOverHTTP is a BBS behind the runtime API on loopback, used through
// the HTTP client.
func newOverHTTP(t *testing.T, cell *runtimetest.Cell) pando.Runtime {
	b := bbs.New(bbs.Config{})
	cell.Reporter = b
	b.RegisterCell(cell)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	h, err := runtimeapi.NewHandler(b, runtimeapi.Config{Authenticate: runtimeapi.Unauthenticated})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	c, err := runtimeapi.NewClient(srv.URL, runtimeapi.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRuntimeConformance(t *testing.T) {
	runtimetest.Run(t, newOverHTTP)
}
