package cellapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// TestLogShipper_syncWaitsUntilEarlierLinesReachedTheServer: Sync returns
// only once every line queued before it was delivered, so a completion
// reported after it follows them into the log store.
func TestLogShipper_syncWaitsUntilEarlierLinesReachedTheServer(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 16)
	var (
		mu  sync.Mutex
		got []string
	)
	ship := NewLogShipper(func(ctx context.Context, batch []pando.LogEnvelope) error {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			got = append(got, string(e.Payload))
		}
		return nil
	}, 0, "the cell", pando.LogSourceCell, nil)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ship.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()

	// Nothing queued: nothing to wait for.
	if err := ship.Sync(ctx); err != nil {
		t.Fatalf("sync with nothing queued: %v", err)
	}
	for _, l := range []string{"one", "two", "three"} {
		ship.Emit(pando.LogEnvelope{SourceID: "app1", SourceType: pando.LogSourceStaging, Type: "OUT", Payload: []byte(l)})
	}
	<-entered // the batch is on its way, held at the gate

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := ship.Sync(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sync while the lines are undelivered = %v, want the deadline", err)
	}

	close(gate)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ship.Sync(sctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != "one" || got[2] != "three" {
		t.Fatalf("delivered %q when Sync returned, want the three lines", got)
	}
}

// TestStagingCompletion_carriesTheFailureAndAnOlderCellsWords: a joined
// cell's staging failure reaches the runtime as its kind and facts; an
// older cell's free text and exit code arrive as sent.
func TestStagingCompletion_carriesTheFailureAndAnOlderCellsWords(t *testing.T) {
	f := newFixture(t)
	c := f.join(t, "cell-a")
	ctx := context.Background()
	stage := func(guid string, done pando.Task) pando.Task {
		t.Helper()
		task := pando.Task{GUID: guid, Kind: pando.TaskStaging, Staging: &pando.StagingRequest{AppGUID: "app1",
			DropletGUID: "d-" + guid, PackageKey: "packages/k1", MemoryMB: 256}}
		if err := f.board.DesireTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		eventually(t, "staging task on the joined cell", func() bool { return c.sim.Running(guid) })
		done.Failed = true
		if err := c.sim.CompleteTask(ctx, guid, done); err != nil {
			t.Fatal(err)
		}
		var got pando.Task
		eventually(t, "staging completed", func() bool {
			tk, err := f.board.Task(ctx, guid)
			got = tk
			return err == nil && tk.State == pando.TaskCompleted
		})
		return got
	}
	why := pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: 90 * time.Second}
	if got := stage("s1", pando.Task{Failure: &why}); !got.Failed || got.Failure == nil || *got.Failure != why || got.FailureReason != "" {
		t.Fatalf("after a staging failure with a kind: %+v", got)
	}
	old := "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
	if got := stage("s2", pando.Task{FailureReason: old, FailureCode: 223}); !got.Failed || got.Failure != nil || got.FailureReason != old || got.FailureCode != 223 {
		t.Fatalf("after an older cell's staging failure: %+v", got)
	}
}
