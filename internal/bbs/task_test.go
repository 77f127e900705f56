package bbs

import (
	"context"
	"slices"
	"sync"
	"testing"

	pando "github.com/pandoplatform/pando"
)

// completions records what the completion handler receives.
type completions struct {
	mu    sync.Mutex
	tasks []pando.Task
}

func (c *completions) handle(ctx context.Context, t pando.Task) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tasks = append(c.tasks, t)
}

func (c *completions) guids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, t := range c.tasks {
		out = append(out, t.GUID)
	}
	return out
}

func stagingTask(guid string, memMB int) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskStaging,
		Staging: &pando.StagingRequest{AppGUID: "app", BuildGUID: guid, MemoryMB: memMB, DiskMB: 1024, Stack: "cflinuxfs4"}}
}

func TestTask_completionHandlerCalledOnce(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	var got completions
	h.bbs.SetTaskCompletionHandler(got.handle)
	h.run()

	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-1", 1024)); err != nil {
		t.Fatal(err)
	}
	if tasks := c.taskCalls(); len(tasks) != 1 || tasks[0].GUID != "build-1" {
		t.Fatalf("RunTask calls %+v", tasks)
	}
	if tk, _ := h.bbs.Task("build-1"); tk.State != pando.TaskRunning || tk.CellID != "cell-a" {
		t.Fatalf("task %+v, want RUNNING on cell-a", tk)
	}

	done := pando.Task{GUID: "build-1", CellID: "cell-a", State: pando.TaskCompleted,
		Result: &pando.StagingResult{DetectedBuildpack: "binary", StartCommand: "./app"}}
	for range 2 { // a cell may repeat a report
		if err := h.bbs.TaskCompleted(h.ctx, done); err != nil {
			t.Fatal(err)
		}
	}
	// A later completion proves the first was delivered only once: the
	// handler sees completions in order.
	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-2", 1024)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.TaskCompleted(h.ctx, pando.Task{GUID: "build-2", Failed: true, FailureReason: "x", FailureCode: 222}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second completion", func() bool { return len(got.guids()) >= 2 })
	if g := got.guids(); !slices.Equal(g, []string{"build-1", "build-2"}) {
		t.Fatalf("handler calls %v", g)
	}
	got.mu.Lock()
	first, second := got.tasks[0], got.tasks[1]
	got.mu.Unlock()
	if first.Failed || first.Result == nil || first.Result.StartCommand != "./app" || first.Staging == nil {
		t.Errorf("first completion %+v", first)
	}
	if !second.Failed || second.FailureCode != 222 || second.State != pando.TaskCompleted {
		t.Errorf("second completion %+v", second)
	}
}

func TestTask_placementFailureCompletesAsFailed(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 512))
	var got completions
	h.bbs.SetTaskCompletionHandler(got.handle)
	h.run()

	if err := h.bbs.DesireTask(h.ctx, stagingTask("big", 1024)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "completion", func() bool { return len(got.guids()) == 1 })
	got.mu.Lock()
	tk := got.tasks[0]
	got.mu.Unlock()
	if !tk.Failed || tk.FailureReason != "insufficient resources: memory" {
		t.Errorf("completion %+v", tk)
	}
}

func TestTask_cancelCompletesOnceAndTellsTheCell(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	var got completions
	h.bbs.SetTaskCompletionHandler(got.handle)
	h.run()
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); err != nil {
		t.Fatal(err)
	}

	if err := h.bbs.CancelTask(h.ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	// The cell reports the killed task afterwards.
	if err := h.bbs.TaskCompleted(h.ctx, pando.Task{GUID: "t1", Failed: true, FailureReason: "exit 137"}); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t2", 256)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.CancelTask(h.ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two completions", func() bool { return len(got.guids()) >= 2 })
	if g := got.guids(); !slices.Equal(g, []string{"t1", "t2"}) {
		t.Fatalf("handler calls %v", g)
	}
	if tk, _ := h.bbs.Task("t1"); tk.FailureReason != TaskCancelledReason {
		t.Errorf("task %+v", tk)
	}
	c.mu.Lock()
	cancels := slices.Clone(c.cancels)
	c.mu.Unlock()
	if !slices.Equal(cancels, []string{"t1", "t2"}) {
		t.Errorf("cell cancels %v", cancels)
	}
	if err := h.bbs.CancelTask(h.ctx, "nope"); !pando.IsNotFound(err) {
		t.Errorf("cancel unknown: %v", err)
	}
}

func TestTask_completionWaitsForHandler(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	h.run()
	if err := h.bbs.DesireTask(h.ctx, stagingTask("early", 256)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.TaskCompleted(h.ctx, pando.Task{GUID: "early"}); err != nil {
		t.Fatal(err)
	}

	var got completions
	h.bbs.SetTaskCompletionHandler(got.handle)
	waitFor(t, "queued completion", func() bool { return len(got.guids()) == 1 })
}

func TestTask_failsWhenItsCellGoes(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	var got completions
	h.bbs.SetTaskCompletionHandler(got.handle)
	h.run()
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); err != nil {
		t.Fatal(err)
	}

	h.bbs.UnregisterCell("cell-a")

	waitFor(t, "completion", func() bool { return len(got.guids()) == 1 })
	if tk, _ := h.bbs.Task("t1"); !tk.Failed || tk.State != pando.TaskCompleted {
		t.Errorf("task %+v", tk)
	}
}

func TestDesireTask_duplicateGUID(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); pando.ErrorKindOf(err) != pando.EConflict {
		t.Errorf("duplicate: %v", err)
	}
}
