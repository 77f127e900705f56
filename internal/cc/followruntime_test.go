package cc

// FollowRuntime against the real BBS: CF task completions reach the CCDB
// through the runtime's event stream and are resolved, including those
// that completed while the API was not following.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// frNew is a contract environment whose runtime is a running BBS with
// one simulated cell.
func frNew(t *testing.T) (*ctEnv, *bbs.BBS, *runtimetest.Cell) {
	t.Helper()
	board := bbs.New(bbs.Config{})
	cell := runtimetest.NewCell("cell-1", 8192)
	cell.Reporter = board
	board.RegisterCell(cell)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- board.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bbs Run: %v", err)
		}
	})
	e := ctNew(t, ctOpts{noFollow: true, mod: func(c *Config) { c.Runtime = board }})
	return e, board, cell
}

// follow runs FollowRuntime until the returned stop is called.
func frFollow(t *testing.T, api *API) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); api.FollowRuntime(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func (e *ctEnv) frWaitTask(guid, state string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		task := e.task(guid)
		if ctStr(task, "state") == state {
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s is %s, want %s", guid, ctStr(task, "state"), state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollowRuntime_recordsAndResolvesTaskCompletions(t *testing.T) {
	t.Parallel()
	e, board, cell := frNew(t)
	stop := frFollow(t, e.api)
	app := e.tkStagedApp("worker")
	ctx := context.Background()

	// The BBS placed it on the cell before the create answered.
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "rake db:migrate"}), "guid")
	if st := ctStr(e.task(guid), "state"); st != pando.AppTaskRunning {
		t.Fatalf("created task is %s, want RUNNING", st)
	}
	if err := cell.CompleteTask(ctx, guid, pando.Task{Failed: true, FailureReason: "APP/TASK/x Exited with status 3"}); err != nil {
		t.Fatal(err)
	}
	task := e.frWaitTask(guid, pando.AppTaskFailed)
	if got := ctStr(task, "result.failure_reason"); got != "APP/TASK/x Exited with status 3" {
		t.Errorf("failure reason %q", got)
	}
	waitResolved := func(guid string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := board.Task(ctx, guid)
			if pando.IsNotFound(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s not resolved in the runtime: %v", guid, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitResolved(guid)

	// A completion while the API does not follow (an API restart) is
	// recorded once it follows again.
	second := ctStr(e.runTask(app.GUID, map[string]any{"command": "true"}), "guid")
	stop()
	if err := cell.CompleteTask(ctx, second, pando.Task{}); err != nil {
		t.Fatal(err)
	}
	if st := ctStr(e.task(second), "state"); st != pando.AppTaskRunning {
		t.Fatalf("task completed while nobody followed reads %s", st)
	}
	frFollow(t, e.api)
	e.frWaitTask(second, pando.AppTaskSucceeded)
	waitResolved(second)
}

func TestFollowRuntime_recordsACrashOnce(t *testing.T) {
	t.Parallel()
	e, board, _ := frNew(t)
	frFollow(t, e.api)
	app := e.tkStagedApp("web")
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK)
	process := ctStr(e.webProcess(app.GUID), "guid")
	ctx := context.Background()

	var running pando.ActualLRP
	deadline := time.Now().Add(10 * time.Second)
	for running.State != pando.ActualRunning {
		as, err := board.ActualLRPs(ctx, process)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 {
			running = as[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %+v never RUNNING", running)
		}
		time.Sleep(5 * time.Millisecond)
	}
	crashed := running
	crashed.State, crashed.CrashReason = pando.ActualCrashed, "APP/PROC/WEB: Exited with status 1"
	for range 2 { // a cell may repeat its report
		if err := board.ActualLRPChanged(ctx, crashed); err != nil {
			t.Fatal(err)
		}
	}
	crashes := func() []map[string]any {
		var out []map[string]any
		for _, ev := range e.list(e.get("/v3/audit_events?target_guids=" + app.GUID)) {
			if ctStr(ev, "type") == "audit.app.process.crash" {
				out = append(out, ev)
			}
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); len(crashes()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no audit.app.process.crash event")
		}
	}
	// The BBS restarts it at once (first crash); the repeated report
	// records no second event.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		as, err := board.ActualLRPs(ctx, process)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 && as[0].InstanceGUID != running.InstanceGUID && as[0].State == pando.ActualRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement instance: %+v", as)
		}
	}
	got := crashes()
	if len(got) != 1 || ctStr(got[0], "data.exit_description") != crashed.CrashReason || ctStr(got[0], "data.instance") != running.InstanceGUID {
		t.Errorf("crash events %v, want one with the reason and instance", got)
	}
}

func TestFollowRuntime_recordsAPlacementFailureOnceAndABigEnoughCellPlacesIt(t *testing.T) {
	t.Parallel()
	e, board, _ := frNew(t)
	frFollow(t, e.api)
	app := e.tkStagedApp("big")
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"memory_in_mb": 16384}), http.StatusAccepted)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK)
	process := ctStr(e.webProcess(app.GUID), "guid")
	ctx := context.Background()

	placementEvents := func() []map[string]any {
		var out []map[string]any
		for _, ev := range e.list(e.get("/v3/audit_events?target_guids=" + app.GUID)) {
			if ctStr(ev, "type") == EventPlacementFailed {
				out = append(out, ev)
			}
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); len(placementEvents()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no placement-failed event")
		}
	}
	// Work that waits is retried when capacity frees up; retries with the
	// same reason record nothing new.
	board.ConvergeOnce(ctx)

	big := runtimetest.NewCell("cell-big", 32768)
	big.Reporter = board
	board.RegisterCell(big)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		as, err := board.ActualLRPs(ctx, process)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 && as[0].CellID == "cell-big" && as[0].State == pando.ActualRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not placed on the big cell: %+v", as)
		}
	}
	got := placementEvents()
	if len(got) != 1 || ctStr(got[0], "data.reason") != "insufficient resources: memory" || ctStr(got[0], "data.process_type") != "web" {
		t.Errorf("placement events %v, want one saying insufficient resources: memory", got)
	}
}
