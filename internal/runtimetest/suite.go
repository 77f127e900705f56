package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// NewRuntime builds the runtime under test around cell: it sets
// cell.Reporter to the BBS behind the runtime, registers the cell, keeps
// the BBS running until the test ends, and returns the runtime (the BBS
// itself, or a client of it).
type NewRuntime func(t *testing.T, cell *Cell) pando.Runtime

// Run runs the conformance suite against runtimes made by newRuntime.
func Run(t *testing.T, newRuntime NewRuntime) {
	tests := []struct {
		name string
		fn   func(t *testing.T, rt pando.Runtime, cell *Cell)
	}{
		{"DesiredLRPBecomesRunningInstances", testDesireToActual},
		{"UpdateAndRetire", testUpdateAndRetire},
		{"RemoveStopsInstances", testRemove},
		{"UnknownGUIDsAreNotFound", testUnknownGUIDs},
		{"GUIDsWithURLCharacters", testOddGUIDs},
		{"BadInputKeepsItsKind", testBadInput},
		{"EventsStartWithResyncAndResume", testEventsResume},
		{"TaskCompletionAtLeastOnce", testTaskCompletion},
		{"CancelTask", testCancelTask},
		{"CellsListCapacityAndState", testCells},
		{"DrainCell", testDrainCell},
		{"EndedContextIsAnError", testContextCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cell := NewCell("cell-1", 4096)
			rt := newRuntime(t, cell)
			tc.fn(t, rt, cell)
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent returns the next event of the stream that match accepts,
// skipping others.
func nextEvent(t *testing.T, events <-chan pando.RuntimeEvent, what string, match func(pando.RuntimeEvent) bool) pando.RuntimeEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event: %s", what)
		}
	}
}

func subscribe(t *testing.T, ctx context.Context, rt pando.Runtime, after uint64) <-chan pando.RuntimeEvent {
	t.Helper()
	events, err := rt.Subscribe(ctx, after)
	if err != nil {
		t.Fatalf("Subscribe(%d): %v", after, err)
	}
	return events
}

func webLRP(guid string, instances int) pando.DesiredLRP {
	return pando.DesiredLRP{
		ProcessGUID: guid, Revision: 1, AppGUID: "app-" + guid, AppName: "shop", ProcessType: "web",
		Instances: instances, MemoryMB: 256, DiskMB: 512, Stack: "host", DropletKey: "droplets/d1",
		StartCommand: "./web", Env: []pando.EnvVar{{Name: "A", Value: "1"}}, Ports: []int{8080},
		HealthCheck: pando.HealthCheck{Type: "port", StartTimeout: time.Minute},
		Routes:      []string{guid + ".localhost"},
	}
}

func running(ctx context.Context, rt pando.Runtime, guid string, n int) func() (bool, error) {
	return func() (bool, error) {
		as, err := rt.ActualLRPs(ctx, guid)
		if err != nil {
			return false, err
		}
		up := 0
		for _, a := range as {
			if a.State == pando.ActualRunning && a.Address != "" && a.Port != 0 && a.CellID == "cell-1" {
				up++
			}
		}
		return up == n && len(as) == n, nil
	}
}

func testDesireToActual(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	want := webLRP("web", 2)
	// A route to a second port travels with the LRP.
	want.Ports = []int{8080, 9090}
	want.Routes = append(want.Routes, "web-admin.localhost")
	want.RoutePorts = map[string]int{"web-admin.localhost": 9090}
	if err := rt.DesireLRP(ctx, want); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 RUNNING instances", running(ctx, rt, "web", 2))

	got, err := rt.DesiredLRP(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.AppName != want.AppName || got.Instances != 2 || got.StartCommand != want.StartCommand ||
		!slices.Equal(got.Env, want.Env) || !slices.Equal(got.Routes, want.Routes) || !maps.Equal(got.RoutePorts, want.RoutePorts) ||
		!slices.Equal(got.Ports, want.Ports) || got.HealthCheck != want.HealthCheck || got.UpdatedAt.IsZero() {
		t.Errorf("DesiredLRP = %+v, want %+v", got, want)
	}
	all, err := rt.DesiredLRPs(ctx)
	if err != nil || len(all) != 1 || all[0].ProcessGUID != "web" {
		t.Errorf("DesiredLRPs = %+v, %v", all, err)
	}
	as, err := rt.ActualLRPs(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range as {
		if a.Index != i || a.InstanceGUID == "" || !cell.Running(a.InstanceGUID) || a.StartedAt.IsZero() ||
			len(a.Ports) != 1 || a.Ports[0].ContainerPort != 8080 {
			t.Errorf("instance %d = %+v", i, a)
		}
	}
	// Every process's instances at once.
	if err := rt.DesireLRP(ctx, webLRP("worker", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "worker RUNNING", running(ctx, rt, "worker", 1))
	every, err := rt.ActualLRPs(ctx, "")
	if err != nil || len(every) != 3 {
		t.Errorf("ActualLRPs(\"\") = %d instances, %v; want 3", len(every), err)
	}
}

func testUpdateAndRetire(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	if err := rt.DesireLRP(ctx, webLRP("web", 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 RUNNING", running(ctx, rt, "web", 2))

	one, routes := 1, []string{"new.localhost"}
	if err := rt.UpdateDesiredLRP(ctx, "web", pando.DesiredLRPUpdate{Instances: &one, Routes: &routes}); err != nil {
		t.Fatal(err)
	}
	if d, err := rt.DesiredLRP(ctx, "web"); err != nil || d.Instances != 1 || !slices.Equal(d.Routes, routes) || d.StartCommand != "./web" {
		t.Errorf("after update: %+v, %v", d, err)
	}
	eventually(t, "1 RUNNING", running(ctx, rt, "web", 1))

	as, err := rt.ActualLRPs(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	old := as[0].InstanceGUID
	if err := rt.RetireActualLRP(ctx, "web", old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new instance for index 0", func() (bool, error) {
		as, err := rt.ActualLRPs(ctx, "web")
		return err == nil && len(as) == 1 && as[0].InstanceGUID != old && as[0].State == pando.ActualRunning, err
	})
	if cell.Running(old) {
		t.Error("the retired instance still runs")
	}
}

func testRemove(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	if err := rt.DesireLRP(ctx, webLRP("web", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RUNNING", running(ctx, rt, "web", 1))
	as, _ := rt.ActualLRPs(ctx, "web")
	if err := rt.RemoveDesiredLRP(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.DesiredLRP(ctx, "web"); !pando.IsNotFound(err) {
		t.Errorf("DesiredLRP after remove: %v, want not found", err)
	}
	if as2, err := rt.ActualLRPs(ctx, "web"); err != nil || len(as2) != 0 {
		t.Errorf("ActualLRPs after remove = %+v, %v", as2, err)
	}
	if cell.Running(as[0].InstanceGUID) {
		t.Error("instance still runs after remove")
	}
}

func testUnknownGUIDs(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	one := 1
	calls := map[string]func() error{
		"DesiredLRP":       func() error { _, err := rt.DesiredLRP(ctx, "nope"); return err },
		"UpdateDesiredLRP": func() error { return rt.UpdateDesiredLRP(ctx, "nope", pando.DesiredLRPUpdate{Instances: &one}) },
		"RemoveDesiredLRP": func() error { return rt.RemoveDesiredLRP(ctx, "nope") },
		"RetireActualLRP":  func() error { return rt.RetireActualLRP(ctx, "nope", "nope") },
		"Task":             func() error { _, err := rt.Task(ctx, "nope"); return err },
		"CancelTask":       func() error { return rt.CancelTask(ctx, "nope") },
		"ResolveTask":      func() error { return rt.ResolveTask(ctx, "nope") },
		// A GUID with characters a URL must escape is still just unknown.
		"DesiredLRP/odd": func() error { _, err := rt.DesiredLRP(ctx, "a/b?c d"); return err },
	}
	for name, call := range calls {
		if err := call(); !pando.IsNotFound(err) {
			t.Errorf("%s of an unknown GUID: %v, want a not-found error", name, err)
		}
	}
	if as, err := rt.ActualLRPs(ctx, "nope"); err != nil || len(as) != 0 {
		t.Errorf("ActualLRPs of an unknown process = %+v, %v; want none", as, err)
	}
}

func testOddGUIDs(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	guid := "a/b?c d%2F#"
	if err := rt.DesireLRP(ctx, webLRP(guid, 1)); err != nil {
		t.Fatal(err)
	}
	if d, err := rt.DesiredLRP(ctx, guid); err != nil || d.ProcessGUID != guid {
		t.Fatalf("DesiredLRP(%q) = %q, %v", guid, d.ProcessGUID, err)
	}
	eventually(t, "RUNNING", running(ctx, rt, guid, 1))
	as, err := rt.ActualLRPs(ctx, guid)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.RetireActualLRP(ctx, guid, as[0].InstanceGUID); err != nil {
		t.Errorf("RetireActualLRP: %v", err)
	}
	if err := rt.RemoveDesiredLRP(ctx, guid); err != nil {
		t.Errorf("RemoveDesiredLRP: %v", err)
	}
	task := runTask(guid)
	if err := rt.DesireTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if tk, err := rt.Task(ctx, guid); err != nil || tk.GUID != guid {
		t.Errorf("Task(%q) = %q, %v", guid, tk.GUID, err)
	}
	if err := rt.CancelTask(ctx, guid); err != nil {
		t.Errorf("CancelTask: %v", err)
	}
	if err := rt.ResolveTask(ctx, guid); err != nil {
		t.Errorf("ResolveTask: %v", err)
	}
}

func testBadInput(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	if err := rt.DesireLRP(ctx, pando.DesiredLRP{Instances: 1}); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("DesireLRP without a process GUID: %v, want invalid", err)
	}
	if err := rt.DesireTask(ctx, pando.Task{Kind: pando.TaskRun}); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("DesireTask without a GUID: %v, want invalid", err)
	}
	task := runTask("t1")
	if err := rt.DesireTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := rt.DesireTask(ctx, task); pando.ErrorKindOf(err) != pando.EConflict {
		t.Errorf("DesireTask twice: %v, want a conflict", err)
	}
	if err := rt.ResolveTask(ctx, "t1"); pando.ErrorKindOf(err) != pando.EConflict {
		t.Errorf("ResolveTask of a running task: %v, want a conflict", err)
	}
}

func runTask(guid string) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskRun, Run: &pando.RunRequest{
		AppGUID: "app", Name: "migrate", DropletKey: "droplets/d1", Stack: "host", Command: "rake db:migrate",
		MemoryMB: 256, DiskMB: 256, Env: []pando.EnvVar{{Name: "B", Value: "2"}},
	}}
}

func stagingTask(guid string) pando.Task {
	return pando.Task{GUID: guid, Kind: pando.TaskStaging, Staging: &pando.StagingRequest{
		AppGUID: "app", BuildGUID: guid, DropletGUID: "d-" + guid, PackageKey: "packages/p1",
		Buildpacks: []pando.BuildpackRef{{Name: "go_buildpack", Key: "buildpacks/go"}},
		Stack:      "host", MemoryMB: 1024, DiskMB: 1024, Timeout: 15 * time.Minute,
	}}
}

func testEventsResume(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	events := subscribe(t, ctx, rt, 0)
	first := nextEvent(t, events, "opening resync", func(pando.RuntimeEvent) bool { return true })
	if first.Type != pando.EventResync {
		t.Fatalf("first event %+v, want a resync", first)
	}

	for _, guid := range []string{"a", "b", "c"} {
		if err := rt.DesireLRP(ctx, webLRP(guid, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	for _, guid := range []string{"a", "b", "c"} {
		ev := nextEvent(t, events, "desired "+guid, func(ev pando.RuntimeEvent) bool {
			return ev.Type == pando.EventDesiredLRPChanged
		})
		if ev.ProcessGUID != guid || ev.Desired == nil || ev.Desired.ProcessGUID != guid || !slices.Equal(ev.Desired.Routes, []string{guid + ".localhost"}) {
			t.Fatalf("event %+v, want desired %s with its payload", ev, guid)
		}
		if ev.Seq <= first.Seq || (len(seqs) > 0 && ev.Seq <= seqs[len(seqs)-1]) {
			t.Fatalf("event sequence %d after %v (resync %d): not increasing", ev.Seq, seqs, first.Seq)
		}
		seqs = append(seqs, ev.Seq)
	}

	// A consumer that saw "a" resumes from it and gets b and c again, with
	// the same sequence numbers, and nothing before them.
	resumed := subscribe(t, ctx, rt, seqs[0])
	for i, guid := range []string{"b", "c"} {
		ev := nextEvent(t, resumed, "resumed "+guid, func(pando.RuntimeEvent) bool { return true })
		if ev.Type != pando.EventDesiredLRPChanged || ev.ProcessGUID != guid || ev.Seq != seqs[i+1] {
			t.Fatalf("resumed event %+v, want desired %s at %d", ev, guid, seqs[i+1])
		}
	}
	// A cursor the runtime cannot resume from (not one of its own) starts
	// with a resync.
	for _, after := range []uint64{1, seqs[2] + 1000} {
		s := subscribe(t, ctx, rt, after)
		if ev := nextEvent(t, s, "resync", func(pando.RuntimeEvent) bool { return true }); ev.Type != pando.EventResync {
			t.Errorf("after %d: first event %+v, want a resync", after, ev)
		}
	}

	// Actual LRP changes carry the instance.
	if err := rt.DesireLRP(ctx, webLRP("d", 1)); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, "instance d RUNNING", func(ev pando.RuntimeEvent) bool {
		return ev.Type == pando.EventActualLRPChanged && ev.Actual != nil && ev.Actual.State == pando.ActualRunning
	})
	if ev.ProcessGUID != "d" || ev.Actual.Port == 0 || ev.Actual.CellID != "cell-1" {
		t.Errorf("running event %+v", ev.Actual)
	}
}

func testTaskCompletion(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	events := subscribe(t, ctx, rt, 0)
	nextEvent(t, events, "opening resync", func(ev pando.RuntimeEvent) bool { return ev.Type == pando.EventResync })

	if err := rt.DesireTask(ctx, stagingTask("build-1")); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, "task RUNNING", func(ev pando.RuntimeEvent) bool {
		return ev.Type == pando.EventTaskChanged && ev.Task.State == pando.TaskRunning
	})
	if ev.Task.GUID != "build-1" || ev.Task.Kind != pando.TaskStaging || ev.Task.CellID != "cell-1" || ev.Task.Staging == nil ||
		ev.Task.Staging.Timeout != 15*time.Minute || len(ev.Task.Staging.Buildpacks) != 1 {
		t.Fatalf("running event %+v", ev.Task)
	}
	beforeCompletion := ev.Seq
	if tk, err := rt.Task(ctx, "build-1"); err != nil || tk.State != pando.TaskRunning {
		t.Fatalf("Task = %+v, %v", tk, err)
	}

	result := &pando.StagingResult{DetectedBuildpack: "go", BuildpackName: "go_buildpack", StartCommand: "./app",
		ProcessTypes: map[string]string{"web": "./app"}, DropletSHA256: "abc", DropletSize: 42}
	if err := cell.CompleteTask(ctx, "build-1", pando.Task{Result: result}); err != nil {
		t.Fatal(err)
	}
	checkDone := func(where string, tk *pando.Task) {
		t.Helper()
		if tk == nil || tk.GUID != "build-1" || tk.State != pando.TaskCompleted || tk.Failed || tk.Result == nil ||
			tk.Result.StartCommand != "./app" || tk.Result.ProcessTypes["web"] != "./app" || tk.Result.DropletSize != 42 ||
			tk.Staging == nil || tk.Staging.DropletGUID != "d-build-1" {
			t.Fatalf("%s: %+v", where, tk)
		}
	}
	done := nextEvent(t, events, "completion", func(ev pando.RuntimeEvent) bool { return ev.Type == pando.EventTaskCompleted })
	checkDone("completion event", done.Task)

	// The consumer restarts before resolving: resuming from before the
	// completion brings it again...
	again := subscribe(t, ctx, rt, beforeCompletion)
	ev = nextEvent(t, again, "completion again", func(ev pando.RuntimeEvent) bool { return ev.Type == pando.EventTaskCompleted })
	checkDone("resumed completion", ev.Task)
	// ...and so does a fresh start: after its resync, the task reads
	// COMPLETED with its result.
	fresh := subscribe(t, ctx, rt, 0)
	nextEvent(t, fresh, "resync", func(ev pando.RuntimeEvent) bool { return ev.Type == pando.EventResync })
	tasks, err := rt.Tasks(ctx)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("Tasks = %+v, %v", tasks, err)
	}
	checkDone("Tasks after a resync", &tasks[0])

	if err := rt.ResolveTask(ctx, "build-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Task(ctx, "build-1"); !pando.IsNotFound(err) {
		t.Errorf("Task after resolve: %v, want not found", err)
	}
	if tasks, err := rt.Tasks(ctx); err != nil || len(tasks) != 0 {
		t.Errorf("Tasks after resolve = %+v, %v", tasks, err)
	}

	// A task that fits nowhere completes at once, failed with the reason.
	big := runTask("big")
	big.Run.MemoryMB = 1 << 20
	if err := rt.DesireTask(ctx, big); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, events, "placement failure", func(ev pando.RuntimeEvent) bool {
		return ev.Type == pando.EventTaskCompleted && ev.Task.GUID == "big"
	})
	if !ev.Task.Failed || ev.Task.FailureReason == "" || ev.Task.Run == nil || ev.Task.Run.Command != "rake db:migrate" {
		t.Errorf("placement failure %+v", ev.Task)
	}
}

func testCancelTask(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	events := subscribe(t, ctx, rt, 0)
	if err := rt.DesireTask(ctx, runTask("t1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task on the cell", func() (bool, error) { return cell.Running("t1"), nil })
	if err := rt.CancelTask(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, "cancelled completion", func(ev pando.RuntimeEvent) bool { return ev.Type == pando.EventTaskCompleted })
	if ev.Task.GUID != "t1" || !ev.Task.Failed || ev.Task.FailureReason == "" {
		t.Errorf("completion %+v, want failed with a reason", ev.Task)
	}
	eventually(t, "cancel reaches the cell", func() (bool, error) { return slices.Contains(cell.Cancelled(), "t1"), nil })
	// Cancelling a completed task does nothing.
	if err := rt.CancelTask(ctx, "t1"); err != nil {
		t.Errorf("cancel again: %v", err)
	}
	if tk, err := rt.Task(ctx, "t1"); err != nil || tk.State != pando.TaskCompleted || tk.FailureReason != ev.Task.FailureReason {
		t.Errorf("Task after cancel = %+v, %v", tk, err)
	}
}

func testCells(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	if err := rt.DesireLRP(ctx, webLRP("web", 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 RUNNING", running(ctx, rt, "web", 2))
	cells, err := rt.Cells(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 1 {
		t.Fatalf("Cells = %+v, want one", cells)
	}
	c := cells[0]
	if c.ID != "cell-1" || c.State != pando.CellHealthy || c.Zone != "z1" || c.TotalMemoryMB != 4096 ||
		c.UsedMemoryMB != 512 || c.UsedContainers != 2 || !slices.Equal(c.Stacks, []string{"host"}) {
		t.Errorf("cell = %+v", c)
	}
}

func testDrainCell(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx := ctxOf(t)
	if err := rt.DrainCell(ctx, "no-such-cell"); !pando.IsNotFound(err) {
		t.Errorf("DrainCell(unknown) = %v, want not found", err)
	}
	if err := rt.DesireLRP(ctx, webLRP("web", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "1 RUNNING", running(ctx, rt, "web", 1))
	as, err := rt.ActualLRPs(ctx, "web")
	if err != nil || len(as) != 1 {
		t.Fatalf("ActualLRPs = %+v, %v", as, err)
	}
	serving := as[0].InstanceGUID
	if err := rt.DrainCell(ctx, "cell-1"); err != nil {
		t.Fatalf("DrainCell: %v", err)
	}
	cells, err := rt.Cells(ctx)
	if err != nil || len(cells) != 1 || cells[0].State != pando.CellDraining || !cells[0].Draining {
		t.Fatalf("Cells after drain = %+v, %v; want cell-1 draining", cells, err)
	}
	// Draining again does nothing.
	if err := rt.DrainCell(ctx, "cell-1"); err != nil {
		t.Errorf("DrainCell again: %v", err)
	}
	// New work goes to no draining cell.
	if err := rt.DesireLRP(ctx, webLRP("late", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "late instance unplaced with a reason", func() (bool, error) {
		as, err := rt.ActualLRPs(ctx, "late")
		if err != nil || len(as) != 1 {
			return false, err
		}
		if as[0].CellID != "" {
			return false, fmt.Errorf("instance of a new LRP placed on draining cell %s", as[0].CellID)
		}
		return as[0].PlacementError != "", nil
	})
	// With nowhere to go, the instance on the cell keeps serving.
	if !cell.Running(serving) {
		t.Errorf("instance %s was stopped with no replacement running", serving)
	}
	// Undrained, the cell takes the waiting instance.
	if err := rt.UndrainCell(ctx, "no-such-cell"); !pando.IsNotFound(err) {
		t.Errorf("UndrainCell(unknown) = %v, want not found", err)
	}
	if err := rt.UndrainCell(ctx, "cell-1"); err != nil {
		t.Fatalf("UndrainCell: %v", err)
	}
	cells, err = rt.Cells(ctx)
	if err != nil || len(cells) != 1 || cells[0].State != pando.CellHealthy || cells[0].Draining {
		t.Fatalf("Cells after undrain = %+v, %v; want cell-1 healthy", cells, err)
	}
	eventually(t, "late instance RUNNING on the undrained cell", running(ctx, rt, "late", 1))
}

func testContextCancel(t *testing.T, rt pando.Runtime, cell *Cell) {
	ctx, cancel := context.WithCancel(context.Background())
	events := subscribe(t, ctx, rt, 0)
	cancel()
	calls := map[string]func() error{
		"DesireLRP":   func() error { return rt.DesireLRP(ctx, webLRP("web", 1)) },
		"DesiredLRP":  func() error { _, err := rt.DesiredLRP(ctx, "web"); return err },
		"DesiredLRPs": func() error { _, err := rt.DesiredLRPs(ctx); return err },
		"ActualLRPs":  func() error { _, err := rt.ActualLRPs(ctx, ""); return err },
		"DesireTask":  func() error { return rt.DesireTask(ctx, runTask("t1")) },
		"Tasks":       func() error { _, err := rt.Tasks(ctx); return err },
		"Cells":       func() error { _, err := rt.Cells(ctx); return err },
		"Subscribe":   func() error { _, err := rt.Subscribe(ctx, 0); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with an ended context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing was done.
	bg := ctxOf(t)
	if _, err := rt.DesiredLRP(bg, "web"); !pando.IsNotFound(err) {
		t.Errorf("DesiredLRP after a cancelled DesireLRP: %v, want not found", err)
	}
	if _, err := rt.Task(bg, "t1"); !pando.IsNotFound(err) {
		t.Errorf("Task after a cancelled DesireTask: %v, want not found", err)
	}
	// The stream ends with its context.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("event stream still open after its context ended")
		}
	}
}
