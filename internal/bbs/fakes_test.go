package bbs

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

// fakeCell records what the BBS asks of it; tests report state back to the
// BBS themselves.
type fakeCell struct {
	id string

	mu        sync.Mutex
	capacity  pando.CellState
	instances map[string]startCall // by instance guid
	starts    []startCall
	stops     []string // instance guids
	tasks     []pando.Task
	cancels   []string
	startErr  error
	// stopErrs is how many StopLRP calls fail (the cell unreachable)
	// before they go through.
	stopErrs int
	stateErr error
	states   int // State calls: one per auction round
	// startGate, when set, holds StartLRP until it is closed (a start
	// in flight).
	startGate chan struct{}
}

type startCall struct {
	ProcessGUID  string
	Revision     int
	Index        int
	InstanceGUID string
	MemoryMB     int
}

func newFakeCell(id string, memMB int) *fakeCell {
	return &fakeCell{
		id: id,
		capacity: pando.CellState{
			ID: id, Stacks: []string{"cflinuxfs4"},
			TotalMemoryMB: memMB, TotalDiskMB: 100 * 1024, TotalContainers: 250,
		},
		instances: map[string]startCall{},
	}
}

func (c *fakeCell) ID() string { return c.id }

func (c *fakeCell) State(ctx context.Context) (pando.CellState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states++
	if c.stateErr != nil {
		return pando.CellState{}, c.stateErr
	}
	s := c.capacity
	s.InstancesPerProcess = map[string]int{}
	for _, in := range c.instances {
		s.UsedMemoryMB += in.MemoryMB
		s.UsedContainers++
		s.InstancesPerProcess[in.ProcessGUID]++
	}
	return s, nil
}

func (c *fakeCell) StartLRP(ctx context.Context, lrp pando.DesiredLRP, index int, instanceGUID string) error {
	c.mu.Lock()
	gate := c.startGate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.startErr != nil {
		return c.startErr
	}
	call := startCall{ProcessGUID: lrp.ProcessGUID, Revision: lrp.Revision, Index: index,
		InstanceGUID: instanceGUID, MemoryMB: lrp.MemoryMB}
	c.starts = append(c.starts, call)
	c.instances[instanceGUID] = call
	return nil
}

func (c *fakeCell) StopLRP(ctx context.Context, processGUID, instanceGUID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stops = append(c.stops, instanceGUID)
	if c.stopErrs > 0 {
		c.stopErrs--
		return pando.Errorf(pando.EUnavailable, "cell %s: rep unreachable", c.id)
	}
	if _, ok := c.instances[instanceGUID]; !ok {
		return pando.Errorf(pando.ENotFound, "instance %s is not on cell %s", instanceGUID, c.id)
	}
	delete(c.instances, instanceGUID)
	return nil
}

func (c *fakeCell) RunTask(ctx context.Context, t pando.Task) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tasks = append(c.tasks, t)
	return nil
}

func (c *fakeCell) CancelTask(ctx context.Context, guid string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancels = append(c.cancels, guid)
	return nil
}

func (c *fakeCell) Stats(ctx context.Context, instanceGUID string) (pando.InstanceStats, error) {
	return pando.InstanceStats{InstanceGUID: instanceGUID}, nil
}

func (c *fakeCell) setCapacity(memMB int) {
	c.mu.Lock()
	c.capacity.TotalMemoryMB = memMB
	c.mu.Unlock()
}

func (c *fakeCell) stateCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states
}

func (c *fakeCell) startCalls() []startCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.starts)
}

func (c *fakeCell) stopCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.stops)
}

func (c *fakeCell) taskCalls() []pando.Task {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tasks)
}

// fakeClock is a manual clock: After channels fire only when Advance passes
// their deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// hasWaiter reports whether someone waits for exactly t.
func (c *fakeClock) hasWaiter(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.at.Equal(t) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type harness struct {
	t     *testing.T
	ctx   context.Context
	bbs   *BBS
	clock *fakeClock
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	clock := newFakeClock()
	cfg.Now, cfg.After = clock.Now, clock.After
	if cfg.ConvergeInterval == 0 {
		cfg.ConvergeInterval = time.Hour // tests converge explicitly
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &harness{t: t, ctx: ctx, bbs: New(cfg), clock: clock}
}

// run starts Run and stops it when the test ends.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- h.bbs.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
}

func (h *harness) desire(guid string, rev, instances, memMB int) {
	h.t.Helper()
	err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{
		ProcessGUID: guid, AppGUID: "app-" + guid, Revision: rev, Instances: instances, MemoryMB: memMB, DiskMB: 256,
		Stack: "cflinuxfs4", Routes: []string{guid + ".localhost"},
	})
	if err != nil {
		h.t.Fatalf("DesireLRP: %v", err)
	}
}

// report tells the BBS what the cell says about an instance.
func (h *harness) report(a pando.ActualLRP, state string) {
	h.t.Helper()
	r := pando.ActualLRP{ProcessGUID: a.ProcessGUID, InstanceGUID: a.InstanceGUID, Index: a.Index,
		CellID: a.CellID, State: state}
	switch state {
	case pando.ActualRunning:
		r.Address, r.Port = "127.0.0.1", 61000+a.Index
		r.Ports = []pando.PortMapping{{ContainerPort: 8080, HostPort: r.Port}}
	case pando.ActualCrashed:
		r.CrashReason = "APP/PROC/WEB: Exited with status 1"
	}
	if err := h.bbs.ActualLRPChanged(h.ctx, r); err != nil {
		h.t.Fatalf("ActualLRPChanged: %v", err)
	}
}

// subscribe follows the BBS's events from now on (past the stream's
// opening resync).
func (h *harness) subscribe(ctx context.Context) <-chan pando.RuntimeEvent {
	h.t.Helper()
	events, err := h.bbs.Subscribe(ctx, 0)
	if err != nil {
		h.t.Fatalf("Subscribe: %v", err)
	}
	select {
	case e := <-events:
		if e.Type != pando.EventResync {
			h.t.Fatalf("first event %+v, want a resync", e)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("no opening resync")
	}
	return events
}

func (h *harness) actuals(processGUID string) []pando.ActualLRP {
	h.t.Helper()
	as, err := h.bbs.ActualLRPs(h.ctx, processGUID)
	if err != nil {
		h.t.Fatalf("ActualLRPs: %v", err)
	}
	return as
}

func (h *harness) desiredLRP(processGUID string) (pando.DesiredLRP, bool) {
	h.t.Helper()
	d, err := h.bbs.DesiredLRP(h.ctx, processGUID)
	if err != nil && !pando.IsNotFound(err) {
		h.t.Fatalf("DesiredLRP: %v", err)
	}
	return d, err == nil
}

func (h *harness) task(guid string) (pando.Task, bool) {
	h.t.Helper()
	t, err := h.bbs.Task(h.ctx, guid)
	if err != nil && !pando.IsNotFound(err) {
		h.t.Fatalf("Task: %v", err)
	}
	return t, err == nil
}

func (h *harness) actual(guid string, index int) pando.ActualLRP {
	h.t.Helper()
	for _, a := range h.actuals(guid) {
		if a.Index == index {
			return a
		}
	}
	h.t.Fatalf("no actual LRP %s/%d", guid, index)
	return pando.ActualLRP{}
}

func describe(as []pando.ActualLRP) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%d %s %s", a.Index, a.State, a.CellID))
	}
	return out
}
