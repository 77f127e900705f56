package bbs

import (
	"slices"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// completions records the task completions of the event stream, as the
// API's event loop receives them.
type completions struct {
	mu    sync.Mutex
	tasks []pando.Task
}

// follow subscribes to h's events and records every EventTaskCompleted.
func (c *completions) follow(h *harness) {
	events := h.subscribe(h.ctx)
	go func() {
		for e := range events {
			if e.Type == pando.EventTaskCompleted {
				c.mu.Lock()
				c.tasks = append(c.tasks, *e.Task)
				c.mu.Unlock()
			}
		}
	}()
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
	got.follow(h)
	h.run()

	if err := h.bbs.DesireTask(h.ctx, stagingTask("build-1", 1024)); err != nil {
		t.Fatal(err)
	}
	if tasks := c.taskCalls(); len(tasks) != 1 || tasks[0].GUID != "build-1" {
		t.Fatalf("RunTask calls %+v", tasks)
	}
	if tk, _ := h.task("build-1"); tk.State != pando.TaskRunning || tk.CellID != "cell-a" {
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
	got.follow(h)
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
	got.follow(h)
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
	if tk, _ := h.task("t1"); tk.FailureReason != TaskCancelledReason {
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

func TestTask_completionSentAgainUntilResolved(t *testing.T) {
	h := newHarness(t, Config{ConvergeInterval: time.Minute})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	if err := h.bbs.DesireTask(h.ctx, stagingTask("early", 256)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.TaskCompleted(h.ctx, pando.Task{GUID: "early"}); err != nil {
		t.Fatal(err)
	}

	// A consumer that starts late reads the completion after its resync.
	if tk, ok := h.task("early"); !ok || tk.State != pando.TaskCompleted {
		t.Fatalf("task %+v, want it kept COMPLETED until resolved", tk)
	}
	events := h.subscribe(h.ctx)
	// Convergence sends it again once a ConvergeInterval passed.
	h.bbs.ConvergeOnce(h.ctx)
	h.clock.Advance(time.Minute)
	h.bbs.ConvergeOnce(h.ctx)
	if e := next(t, events); e.Type != pando.EventTaskCompleted || e.Task.GUID != "early" {
		t.Fatalf("event %+v, want the completion again", e)
	}

	if err := h.bbs.ResolveTask(h.ctx, "early"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.task("early"); ok {
		t.Fatal("resolved task still readable")
	}
	h.clock.Advance(time.Minute)
	h.bbs.ConvergeOnce(h.ctx)
	h.bbs.RegisterCell(newFakeCell("cell-b", 4096)) // a marker event
	if e := next(t, events); e.Type != pando.EventCellChanged || e.Cell.ID != "cell-b" {
		t.Fatalf("event %+v, want no completion after the resolve", e)
	}
}

func TestTask_resolveRefusesUnfinishedAndUnknownTasks(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.ResolveTask(h.ctx, "t1"); pando.ErrorKindOf(err) != pando.EConflict {
		t.Errorf("resolve running task: %v, want a conflict", err)
	}
	if err := h.bbs.ResolveTask(h.ctx, "nope"); !pando.IsNotFound(err) {
		t.Errorf("resolve unknown task: %v", err)
	}
}

func TestTask_failsWhenItsCellGoes(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	var got completions
	got.follow(h)
	h.run()
	if err := h.bbs.DesireTask(h.ctx, stagingTask("t1", 256)); err != nil {
		t.Fatal(err)
	}

	h.bbs.UnregisterCell("cell-a")

	waitFor(t, "completion", func() bool { return len(got.guids()) == 1 })
	if tk, _ := h.task("t1"); !tk.Failed || tk.State != pando.TaskCompleted {
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

func runTask(guid string, memMB, diskMB int, stack string) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskRun, Run: &pando.RunRequest{
		AppGUID: "app", AppName: "app", Name: "migrate", DropletKey: "droplets/d1",
		Stack: stack, Command: "bin/migrate", MemoryMB: memMB, DiskMB: diskMB,
		Env: []pando.EnvVar{{Name: "MODE", Value: "full"}},
	}}
}

func TestRunTask_placedWithItsResourcesAndStack(t *testing.T) {
	h := newHarness(t, Config{})
	small := newFakeCell("cell-a-small", 512)
	big := newFakeCell("cell-b-big", 4096)
	other := newFakeCell("cell-c-other", 8192)
	other.capacity.Stacks = []string{"other-stack"}
	for _, c := range []*fakeCell{small, big, other} {
		h.bbs.RegisterCell(c)
	}
	var got completions
	got.follow(h)
	h.run()

	// 1 GB fits only on the big cell of the stack (an empty cell of a
	// different stack scores better but cannot run it).
	if err := h.bbs.DesireTask(h.ctx, runTask("t-mem", 1024, 512, "cflinuxfs4")); err != nil {
		t.Fatal(err)
	}
	if tk, _ := h.task("t-mem"); tk.State != pando.TaskRunning || tk.CellID != "cell-b-big" {
		t.Fatalf("task %+v, want RUNNING on cell-b-big", tk)
	}
	calls := big.taskCalls()
	if len(calls) != 1 || calls[0].Kind != pando.TaskRun || calls[0].Run == nil ||
		calls[0].Run.Command != "bin/migrate" || calls[0].Run.MemoryMB != 1024 || len(calls[0].Run.Env) != 1 {
		t.Fatalf("RunTask calls on the big cell %+v", calls)
	}
	if len(small.taskCalls()) != 0 || len(other.taskCalls()) != 0 {
		t.Errorf("task also sent to other cells")
	}

	if err := h.bbs.DesireTask(h.ctx, runTask("t-stack", 256, 256, "other-stack")); err != nil {
		t.Fatal(err)
	}
	if tk, _ := h.task("t-stack"); tk.CellID != "cell-c-other" {
		t.Errorf("stack task on %q, want cell-c-other", tk.CellID)
	}

	if err := h.bbs.DesireTask(h.ctx, runTask("t-huge", 16384, 512, "cflinuxfs4")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "placement failure", func() bool { return slices.Contains(got.guids(), "t-huge") })
	if tk, _ := h.task("t-huge"); !tk.Failed || tk.State != pando.TaskCompleted ||
		tk.FailureReason != "insufficient resources: memory" || tk.Run == nil {
		t.Errorf("huge task %+v", tk)
	}
}

func TestRunTask_eventsAndCompletionOnce(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	var got completions
	got.follow(h)
	h.run()
	events := h.subscribe(h.ctx)

	if err := h.bbs.DesireTask(h.ctx, runTask("t1", 256, 256, "cflinuxfs4")); err != nil {
		t.Fatal(err)
	}
	var states []string
	for len(states) < 3 {
		e := next(t, events)
		if e.Type != pando.EventTaskChanged || e.Task.GUID != "t1" || e.Task.Run == nil {
			t.Fatalf("event %+v", e)
		}
		states = append(states, e.Task.State+"@"+e.Task.CellID)
	}
	if want := []string{"PENDING@", "PENDING@cell-a", "RUNNING@cell-a"}; !slices.Equal(states, want) {
		t.Fatalf("task states %v, want %v", states, want)
	}

	done := pando.Task{GUID: "t1", CellID: "cell-a", State: pando.TaskCompleted, Failed: true,
		FailureReason: "APP/TASK/migrate Exited with status 3"}
	for range 2 {
		if err := h.bbs.TaskCompleted(h.ctx, done); err != nil {
			t.Fatal(err)
		}
	}
	e := next(t, events)
	if e.Type != pando.EventTaskCompleted || e.Task.State != pando.TaskCompleted || !e.Task.Failed ||
		e.Task.FailureReason != done.FailureReason {
		t.Fatalf("completion event %+v", e.Task)
	}
	// The repeated report changes nothing: no event, one completion.
	if err := h.bbs.DesireTask(h.ctx, runTask("t2", 256, 256, "cflinuxfs4")); err != nil {
		t.Fatal(err)
	}
	if err := h.bbs.CancelTask(h.ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Task.GUID != "t2" {
		t.Fatalf("event after the repeated report: %+v", e.Task)
	}
	waitFor(t, "two completions", func() bool { return len(got.guids()) >= 2 })
	if g := got.guids(); !slices.Equal(g, []string{"t1", "t2"}) {
		t.Fatalf("handler calls %v", g)
	}
	got.mu.Lock()
	first, second := got.tasks[0], got.tasks[1]
	got.mu.Unlock()
	if first.Kind != pando.TaskRun || first.Run == nil || first.Run.Name != "migrate" || !first.Failed {
		t.Errorf("first completion %+v", first)
	}
	if second.FailureReason != TaskCancelledReason || !second.Failed {
		t.Errorf("cancelled completion %+v", second)
	}
}

func TestDesireTask_refusesTasksWithoutTheirRequest(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	for _, tk := range []pando.Task{
		{GUID: "r", Kind: pando.TaskRun},
		{GUID: "s", Kind: pando.TaskStaging},
		{GUID: "x", Kind: "mystery", Run: &pando.RunRequest{}},
	} {
		if err := h.bbs.DesireTask(h.ctx, tk); pando.ErrorKindOf(err) != pando.EInvalid {
			t.Errorf("task %s (%s): %v", tk.GUID, tk.Kind, err)
		}
	}
	// A task without a kind takes it from its request.
	tk := stagingTask("k", 256)
	tk.Kind = ""
	if err := h.bbs.DesireTask(h.ctx, tk); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.task("k"); got.Kind != pando.TaskStaging {
		t.Errorf("kind %q", got.Kind)
	}
}
