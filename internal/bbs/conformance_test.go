package bbs_test

import (
	"context"
	"testing"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// NewInProcess is the in-process runtime: the BBS itself.
func newInProcess(t *testing.T, cell *runtimetest.Cell) pando.Runtime {
	b := bbs.New(bbs.Config{})
	cell.Reporter = b
	b.RegisterCell(cell)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

func TestRuntimeConformance(t *testing.T) {
	runtimetest.Run(t, newInProcess)
}
