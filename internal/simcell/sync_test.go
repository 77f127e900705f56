package simcell

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/container"
)

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.lines, func(l string) bool { return strings.Contains(l, sub) })
}

func guids(as []pando.ActualLRP) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.InstanceGUID)
	}
	slices.Sort(out)
	return out
}

// Issue 8 (defence in depth): a BBS restarted without a cell's records
// (its wait for the cells missed it) places the app again; the cell's
// first periodic sync stops the instances the new BBS does not know,
// each with a CELL line saying why, and keeps the instance that is still
// starting (CLAIMED, never healthy) as well as the new one.
func TestSimulatedCells_syncStopsWhatTheBBSForgotAndKeepsWhatIsStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := bbs.New(bbs.Config{})
	firstCtx, stopFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(firstCtx) }()
	sink := &logSink{}
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), MemoryMB: 4096, Reporter: first, Logs: sink, AddrBase: 86,
		Handler: NeverHealthy("slow")})
	cells, err := c.Add(1, nil, first.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	rep := cells[0]
	if err := first.DesireLRP(ctx, c.LRP("web", 2, 256)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running", 30*time.Second, func() (bool, string) {
		n, all := running(t, first, "web")
		return n == 2, fmt.Sprint(all)
	})
	_, old := running(t, first, "web")

	// The server restarts and forgets the cell's instances.
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	second := bbs.New(bbs.Config{})
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-secondDone; err != nil {
			t.Errorf("bbs Run: %v", err)
		}
	}()
	rep.SetReporter(second)
	second.RegisterCell(rep)
	if err := second.DesireLRP(ctx, c.LRP("web", 1, 256)); err != nil {
		t.Fatal(err)
	}
	if err := second.DesireLRP(ctx, c.LRP("slow", 1, 256)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running again and slow starting", 30*time.Second, func() (bool, string) {
		n, web := running(t, second, "web")
		slow := actuals(t, second, "slow")
		return n == 1 && len(slow) == 1 && slow[0].State == pando.ActualClaimed, fmt.Sprint(web, slow)
	})
	want := guids(append(actuals(t, second, "web"), actuals(t, second, "slow")...))
	if got := InstanceGUIDs(rep); len(got) != 4 {
		t.Fatalf("the cell runs %v, want the 2 old web instances besides %v", got, want)
	}

	// The first sync stops the old instances, later syncs keep the
	// starting instance and the new one.
	CheckSyncLeaves(t, ctx, rep, second, want)
	for _, a := range old {
		if !sink.contains("CELL Stopping instance " + a.InstanceGUID + ": the platform does not want it on this cell (") {
			t.Errorf("no CELL line saying why %s stopped", a.InstanceGUID)
		}
	}
	if slow := actuals(t, second, "slow"); len(slow) != 1 || slow[0].State != pando.ActualClaimed {
		t.Errorf("slow %v, want its instance still CLAIMED", slow)
	}
}

// A task a restarted BBS does not know is cancelled on the cell by its
// first sync, with a CELL line saying why; the task the new BBS gave the
// cell keeps running.
func TestSimulatedCells_syncCancelsATaskTheBBSForgotAndKeepsItsOwn(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first, second := bbs.New(bbs.Config{}), bbs.New(bbs.Config{})
	done := make(chan error, 2)
	go func() { done <- first.Run(ctx) }()
	go func() { done <- second.Run(ctx) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("bbs Run: %v", err)
			}
		}
	}()
	sink := &logSink{}
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), MemoryMB: 4096, Reporter: first, Logs: sink, AddrBase: 84})
	cells, err := c.Add(1, nil, first.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	rep := cells[0]
	task := func(guid string) pando.Task {
		return pando.Task{GUID: guid, Kind: pando.TaskRun, Run: &pando.RunRequest{AppGUID: "app-tasks", Name: guid,
			DropletKey: DropletKey, Command: "./run", MemoryMB: 128, DiskMB: 128}}
	}
	runningTasks := func() []string {
		var out []string
		for _, tk := range rep.Inventory().Tasks {
			if tk.State == pando.TaskRunning {
				out = append(out, tk.GUID)
			}
		}
		slices.Sort(out)
		return out
	}
	if err := first.DesireTask(ctx, task("forgotten")); err != nil {
		t.Fatal(err)
	}
	// The server restarts without it.
	rep.SetReporter(second)
	second.RegisterCell(rep)
	if err := second.DesireTask(ctx, task("kept")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both tasks running on the cell", 30*time.Second, func() (bool, string) {
		got := runningTasks()
		return slices.Equal(got, []string{"forgotten", "kept"}), fmt.Sprint(got)
	})

	if err := rep.SyncOnce(ctx, second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forgotten task cancelled", 30*time.Second, func() (bool, string) {
		got := runningTasks()
		return slices.Equal(got, []string{"kept"}), fmt.Sprint(got)
	})
	if !sink.contains("CELL Cancelling task forgotten: the platform does not want it on this cell (the server has no record of this task)") {
		t.Error("no CELL line saying why the task was cancelled")
	}
	if err := rep.SyncOnce(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got := runningTasks(); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after another sync the cell runs tasks %v, want kept", got)
	}
	if tk, err := second.Task(ctx, "kept"); err != nil || tk.State != pando.TaskRunning {
		t.Errorf("kept: %+v, %v; want RUNNING", tk, err)
	}
}

// An instance the cell is already stopping (the server's stop, an
// evacuation's) while a sync runs gets no second stop from it, nor a
// second CELL line saying the platform does not want it: its app's log
// says once that it stops.
func TestSimulatedCells_syncLeavesAnInstanceItIsAlreadyStopping(t *testing.T) {
	b, ctx := runBoard(t, bbs.Config{})
	release := make(chan struct{})
	defer close(release)
	sink := &logSink{}
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), Reporter: b, Logs: sink, AddrBase: 85,
		// The app takes its time to stop: SIGTERM is ignored until the
		// test ends (or the grace passes).
		Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
			<-release
			return container.ExitStatus{Code: 143, Signaled: true}
		}})
	cells, err := c.Add(1, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	rep := cells[0]
	if err := b.DesireLRP(ctx, c.LRP("web", 1, 256)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running", 30*time.Second, func() (bool, string) {
		n, all := running(t, b, "web")
		return n == 1, fmt.Sprint(all)
	})
	_, all := running(t, b, "web")
	guid := all[0].InstanceGUID
	if err := b.RemoveDesiredLRP(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cell stopping the instance", 10*time.Second, func() (bool, string) {
		return sink.contains("CELL Cell " + rep.ID() + " stopping instance " + guid), fmt.Sprint(InstanceGUIDs(rep))
	})

	if err := rep.SyncOnce(ctx, b); err != nil {
		t.Fatal(err)
	}
	if sink.contains("CELL Stopping instance " + guid + ": the platform does not want it") {
		t.Errorf("the sync stopped again an instance the cell was stopping, saying the platform does not want it")
	}
	if got := InstanceGUIDs(rep); !slices.Contains(got, guid) {
		t.Fatalf("the instance ended before the sync (%v): the test shows nothing", got)
	}
}
