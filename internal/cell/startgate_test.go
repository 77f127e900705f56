package cell

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// gateUser takes a slot of g on its own goroutine and says when it has it.
type gateUser struct {
	name    string
	got     chan struct{}
	err     chan error
	release func()
	cancel  context.CancelFunc
}

func useGate(g *startGate, name string, urgent bool, queued *sync.WaitGroup) *gateUser {
	ctx, cancel := context.WithCancel(context.Background())
	u := &gateUser{name: name, got: make(chan struct{}), err: make(chan error, 1), cancel: cancel}
	queued.Add(1)
	go func() {
		rel, err := g.acquire(ctx, urgent, func(int, int) { queued.Done() })
		if err != nil {
			u.err <- err
			return
		}
		u.release = rel
		close(u.got)
	}()
	return u
}

func holds(u *gateUser) bool {
	select {
	case <-u.got:
		return true
	default:
		return false
	}
}

// The gate serves waiters first come first served, stagings ahead of
// the rest and on a reserve slot of their own, and a waiter whose
// context ends leaves the line without a slot.
func TestStartGate_ordersWaitersAndLetsThemLeave(t *testing.T) {
	g := newStartGate(2, 1, 0)
	ctx := context.Background()
	var held []func()
	for range 2 {
		rel, err := g.acquire(ctx, false, func(int, int) { t.Error("waited with a slot free") })
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rel)
	}
	var queued sync.WaitGroup
	i1 := useGate(g, "i1", false, &queued)
	queued.Wait()
	i2 := useGate(g, "i2", false, &queued)
	queued.Wait()
	i3 := useGate(g, "i3", false, &queued)
	queued.Wait()
	if running, waiting := g.counts(); running != 2 || waiting != 3 {
		t.Fatalf("running %d, waiting %d; want 2 and 3", running, waiting)
	}
	// A staging takes the reserve slot at once, past the queue.
	s1, err := g.acquire(ctx, true, func(int, int) { t.Error("a staging waited with its reserve slot free") })
	if err != nil {
		t.Fatal(err)
	}
	// A second staging waits, but ahead of the instances.
	s2 := useGate(g, "s2", true, &queued)
	queued.Wait()

	// i2 leaves the line.
	i2.cancel()
	if err := <-i2.err; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	s1()
	<-s2.got // the freed slot goes to the staging...
	if holds(i1) || holds(i3) {
		t.Fatal("an instance start went ahead of a waiting staging")
	}
	s2.release()
	held[0]()
	<-i1.got // ...then to the first instance in line
	if holds(i3) {
		t.Fatal("i3 got a slot while only one was free and i1 was ahead")
	}
	held[1]()
	<-i3.got  // i2 left: i3 is next
	held[1]() // a second release gives back nothing
	if running, waiting := g.counts(); running != 2 || waiting != 0 {
		t.Fatalf("running %d, waiting %d; want 2 and 0", running, waiting)
	}
	i1.release()
	i3.release()
	if running, _ := g.counts(); running != 0 {
		t.Fatalf("running %d after every release", running)
	}
}

// heldRuns is a fake backend's RunError that holds every app container's
// Run until released, counting how many are in Run at once.
type heldRuns struct {
	mu       sync.Mutex
	inRun    int
	maxInRun int
	ids      map[string]bool // the app containers in Run
	changed  chan struct{}
	release  chan struct{}
}

func newHeldRuns() *heldRuns {
	return &heldRuns{changed: make(chan struct{}), release: make(chan struct{}), ids: map[string]bool{}}
}

func (h *heldRuns) runError(spec container.Spec) error {
	if !strings.HasPrefix(spec.ID, "app-") {
		return nil
	}
	h.add(spec.ID, 1)
	<-h.release
	h.add(spec.ID, -1)
	return nil
}

func (h *heldRuns) add(id string, d int) {
	h.mu.Lock()
	h.ids[id] = d > 0
	h.inRun += d
	h.maxInRun = max(h.maxInRun, h.inRun)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// waitInRun waits until n app containers are in Run.
func (h *heldRuns) waitInRun(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		in, ch := h.inRun, h.changed
		h.mu.Unlock()
		if in == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d app containers in Run, want %d", in, n)
		}
	}
}

// Scaling to many instances runs at most MaxConcurrentStarts starts at
// once; the rest wait CLAIMED (saying so in a CELL line), a stop of a
// waiting instance is immediate, a staging is not stuck behind the
// line, and every instance ends RUNNING.
func TestStartLRP_boundsConcurrentStarts(t *testing.T) {
	const limit, n = 3, 24
	held := newHeldRuns()
	fb := fake.New(fake.Options{
		RunError: held.runError,
		Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
			if strings.HasPrefix(spec.ID, "stg-") {
				return container.ExitStatus{Code: 3} // the builder fails at once
			}
			<-ctx.Done()
			return container.ExitStatus{Code: 143, Signaled: true}
		},
	})
	blobs, rc, logs := newMemBlobs(), newRecorder(), newSink()
	putDroplet(t, blobs, "droplets/d")
	ctx := context.Background()
	for key, b := range map[string][]byte{
		"buildpacks/test": buildpackZip(t, "true"),
		"packages/pushed": zipOf(t, map[string]string{"index.html": "x"}),
	} {
		if _, err := blobs.Put(ctx, key, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(Config{ID: "cell-s", Backend: fb, Blobs: blobs, Reporter: rc, Logs: logs, WorkDir: t.TempDir(),
		TotalMemoryMB: 8192, TotalDiskMB: 16384, MaxConcurrentStarts: limit})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			close(held.release)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	lrp := pando.DesiredLRP{ProcessGUID: "proc", AppGUID: "app", DropletKey: "droplets/d", MemoryMB: 64, DiskMB: 64,
		StartCommand: "./run", LogRateLimitBytes: -1, HealthCheck: pando.HealthCheck{Type: pando.HealthCheckProcess}}
	guid := func(k int) string { return fmt.Sprintf("inst-%02d", k) }
	for k := range n {
		if err := r.StartLRP(ctx, lrp, k, guid(k)); err != nil {
			t.Fatal(err)
		}
	}
	held.waitInRun(t, limit)
	eventually(t, 10*time.Second, "the other starts wait", func() bool {
		running, waiting := r.starts.counts()
		return running == limit && waiting == n-limit
	})
	logs.wait(t, time.Second, pando.LogSourceCell, "waits for a start slot")
	if s, _ := r.State(ctx); s.StartingContainers != n {
		t.Errorf("state: %d starting containers, want %d (waiting ones count)", s.StartingContainers, n)
	}

	// The instances not in Run wait for a slot (those in Run hold the
	// slots: they were all taken).
	var waiting []string
	held.mu.Lock()
	for k := range n {
		if !held.ids[containerID("app", guid(k))] {
			waiting = append(waiting, guid(k))
		}
	}
	held.mu.Unlock()
	if len(waiting) != n-limit {
		t.Fatalf("%d instances wait, want %d", len(waiting), n-limit)
	}

	// A waiting instance stops at once, though no start slot frees up.
	last := waiting[len(waiting)-1]
	if err := r.StopLRP(ctx, "proc", last); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 10*time.Second, "the waiting instance removed", isRemoved(last))
	if st := rc.states(last); slices.ContainsFunc(st, func(s string) bool { return s != pando.ActualClaimed }) {
		t.Errorf("reports of the stopped waiting instance: %v, want only CLAIMED", st)
	}

	// A push's staging runs its container past the line.
	if err := r.RunTask(ctx, stagingTask("stg-task", "pushed", time.Minute)); err != nil {
		t.Fatal(err)
	}
	done := rc.wait(t, 10*time.Second, "the staging's result", isTask("stg-task")).task
	if done.Failure == nil || done.Failure.Kind != pando.FailureExited || done.Failure.ExitCode != 3 {
		t.Errorf("staging failure %+v, want its builder's exit 3 (the builder ran)", done.Failure)
	}

	// Waiting instances read as starting, not crashed, and say why, in
	// their reports and in the cell's inventory.
	inventory := map[string]pando.ActualLRP{}
	for _, a := range r.Inventory().Actuals {
		inventory[a.InstanceGUID] = a
	}
	for _, g := range waiting {
		if g == last {
			continue
		}
		if a := lastReport(rc, g); a.State != pando.ActualClaimed || !strings.HasPrefix(a.Details, WaitingForStartSlot+" cell-s (") {
			t.Errorf("waiting %s last reported %s %q, want CLAIMED waiting for a start slot", g, a.State, a.Details)
		}
		if a := inventory[g]; a.State != pando.ActualClaimed || !strings.HasPrefix(a.Details, WaitingForStartSlot) {
			t.Errorf("waiting %s in the inventory: %s %q, want CLAIMED waiting for a start slot", g, a.State, a.Details)
		}
	}

	close(held.release)
	released = true
	for k := range n {
		if g := guid(k); g != last {
			rc.wait(t, 20*time.Second, g+" RUNNING", isState(g, pando.ActualRunning))
		}
	}
	for _, g := range waiting {
		if a := lastReport(rc, g); g != last && (a.State != pando.ActualRunning || a.Details != "") {
			t.Errorf("%s last reported %s %q, want RUNNING without details", g, a.State, a.Details)
		}
	}
	held.mu.Lock()
	maxIn := held.maxInRun
	held.mu.Unlock()
	if maxIn != limit {
		t.Errorf("at most %d app containers were in Run at once, want %d", maxIn, limit)
	}
	if running, waiting := r.starts.counts(); running != 0 || waiting != 0 {
		t.Errorf("after the starts: %d running, %d waiting", running, waiting)
	}
}

// lastReport is the last state change reported of instance guid.
func lastReport(rc *recorder, guid string) pando.ActualLRP {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var a pando.ActualLRP
	for _, e := range rc.events {
		if e.kind == "changed" && e.actual.InstanceGUID == guid {
			a = e.actual
		}
	}
	return a
}

// A waiter is told again of its place in line once it moved up to half
// the last one said, or to the front (an instance's details "N ahead"
// would otherwise stay what they were when it began waiting).
func TestStartGate_tellsAWaiterItsPlaceAsItMovesUp(t *testing.T) {
	g := newStartGate(1, 0, 5*time.Millisecond)
	hold, err := g.acquire(context.Background(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Four waiters ahead of the one watched, each holding its slot until
	// told to let go.
	lets := make([]chan struct{}, 4)
	for k := range lets {
		lets[k] = make(chan struct{})
		go func() {
			rel, err := g.acquire(context.Background(), false, nil)
			if err != nil {
				t.Error(err)
				return
			}
			<-lets[k]
			rel()
		}()
		eventually(t, 10*time.Second, "waiter queued", func() bool { _, w := g.counts(); return w == k+1 })
	}
	var mu sync.Mutex
	var told []int
	aheadNow := func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(told) }
	got := make(chan func(), 1)
	go func() {
		rel, err := g.acquire(context.Background(), false, func(_, ahead int) {
			mu.Lock()
			told = append(told, ahead)
			mu.Unlock()
		})
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	eventually(t, 10*time.Second, "told its place", func() bool { return len(aheadNow()) == 1 })
	hold() // the first of the four starts: 3 ahead, not half of 4
	eventually(t, 10*time.Second, "3 waiting", func() bool { _, w := g.counts(); return w == 4 })
	close(lets[0]) // 2 ahead: half
	eventually(t, 10*time.Second, "told 2 ahead", func() bool { return slices.Equal(aheadNow(), []int{4, 2}) })
	close(lets[1]) // 1 ahead: half
	eventually(t, 10*time.Second, "told 1 ahead", func() bool { return slices.Equal(aheadNow(), []int{4, 2, 1}) })
	close(lets[2]) // at the front
	eventually(t, 10*time.Second, "told 0 ahead", func() bool { return slices.Equal(aheadNow(), []int{4, 2, 1, 0}) })
	close(lets[3])
	rel := <-got
	rel()
	if told := aheadNow(); !slices.Equal(told, []int{4, 2, 1, 0}) {
		t.Errorf("told %v, want [4 2 1 0]", told)
	}
}

// tryAcquire takes a free slot and never waits: with none free (the
// reserve is the stagings') it takes none and the line is unchanged.
func TestStartGate_tryAcquireTakesOnlyAFreeSlot(t *testing.T) {
	g := newStartGate(1, 1, 0)
	rel, ok := g.tryAcquire()
	if !ok {
		t.Fatal("no slot with every slot free")
	}
	if _, ok := g.tryAcquire(); ok {
		t.Fatal("a slot past the bound (the reserve is the stagings')")
	}
	var queued sync.WaitGroup
	w := useGate(g, "w", false, &queued)
	queued.Wait()
	if _, ok := g.tryAcquire(); ok {
		t.Fatal("a slot with none free and a start waiting")
	}
	if running, waiting := g.counts(); running != 1 || waiting != 1 {
		t.Fatalf("running %d, waiting %d; want 1 and 1", running, waiting)
	}
	rel()
	<-w.got // the slot went to the start in line
	rel()   // once only
	if running, _ := g.counts(); running != 1 {
		t.Fatalf("running %d after a second release, want 1 (the waiter's)", running)
	}
	w.release()
	if running, waiting := g.counts(); running != 0 || waiting != 0 {
		t.Fatalf("running %d, waiting %d after every release", running, waiting)
	}
}
