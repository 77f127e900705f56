package bbs

import (
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func TestCrashRestartDelay(t *testing.T) {
	tests := []struct {
		crashes     int
		wantDelay   time.Duration
		wantRestart bool
	}{
		{1, 0, true},
		{2, 0, true},
		{3, 0, true},
		{4, 30 * time.Second, true},
		{5, time.Minute, true},
		{6, 2 * time.Minute, true},
		{7, 4 * time.Minute, true},
		{8, 8 * time.Minute, true},
		{9, 16 * time.Minute, true},
		{10, 16 * time.Minute, true},
		{199, 16 * time.Minute, true},
		{200, 0, false},
		{500, 0, false},
	}
	for _, tt := range tests {
		delay, restart := CrashRestartDelay(tt.crashes)
		if delay != tt.wantDelay || restart != tt.wantRestart {
			t.Errorf("CrashRestartDelay(%d) = %v, %v; want %v, %v",
				tt.crashes, delay, restart, tt.wantDelay, tt.wantRestart)
		}
	}
}

func TestNextCrashCount(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		prev  int
		state string
		since time.Duration // before now
		want  int
	}{
		{"first crash", 0, pando.ActualRunning, time.Second, 1},
		{"counts up", 4, pando.ActualRunning, time.Minute, 5},
		{"crash while starting counts up", 4, pando.ActualClaimed, time.Hour, 5},
		{"running five minutes resets", 7, pando.ActualRunning, 5 * time.Minute, 1},
		{"just under five minutes does not", 7, pando.ActualRunning, 5*time.Minute - time.Second, 8},
	}
	for _, tt := range tests {
		if got := nextCrashCount(tt.prev, tt.state, now.Add(-tt.since), now); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCrash_restartsImmediatelyThreeTimesThenBacksOff(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.run()
	h.desire("web", 1, 1, 256)

	crash := func() pando.ActualLRP {
		t.Helper()
		in := h.actual("web", 0)
		h.report(in, pando.ActualRunning)
		h.report(in, pando.ActualCrashed)
		return in
	}
	starts := func() int { return len(c.startCalls()) }

	for i := 1; i <= 3; i++ {
		crash()
		waitFor(t, "immediate restart", func() bool { return starts() == i+1 })
		in := h.actual("web", 0)
		if in.CrashCount != i || in.State != pando.ActualUnclaimed {
			t.Fatalf("after crash %d: %+v", i, in)
		}
	}

	// Fourth crash: CRASHED for 30 s.
	crashedAt := h.clock.Now()
	old := crash()
	in := h.actual("web", 0)
	if in.State != pando.ActualCrashed || in.CrashCount != 4 || in.CrashReason == "" || in.InstanceGUID != old.InstanceGUID {
		t.Fatalf("after crash 4: %+v", in)
	}
	waitFor(t, "the 30 s restart timer", func() bool { return h.clock.hasWaiter(crashedAt.Add(30 * time.Second)) })
	h.clock.Advance(29 * time.Second)
	if starts() != 4 {
		t.Fatalf("restarted before the backoff: %d starts", starts())
	}
	h.clock.Advance(time.Second)
	waitFor(t, "restart after 30 s", func() bool { return starts() == 5 })
	if in := h.actual("web", 0); in.InstanceGUID == old.InstanceGUID || in.CrashCount != 4 {
		t.Errorf("restarted instance: %+v", in)
	}

	// Fifth crash: 60 s.
	crashedAt = h.clock.Now()
	crash()
	waitFor(t, "the 60 s restart timer", func() bool { return h.clock.hasWaiter(crashedAt.Add(time.Minute)) })
	h.clock.Advance(59 * time.Second)
	if starts() != 5 {
		t.Fatalf("restarted before the backoff: %d starts", starts())
	}
	h.clock.Advance(time.Second)
	waitFor(t, "restart after 60 s", func() bool { return starts() == 6 })

	// Running for five minutes resets the count: the next crash restarts
	// at once.
	in = h.actual("web", 0)
	h.report(in, pando.ActualRunning)
	h.clock.Advance(5 * time.Minute)
	h.report(in, pando.ActualCrashed)
	waitFor(t, "immediate restart after reset", func() bool { return starts() == 7 })
	if in := h.actual("web", 0); in.CrashCount != 1 {
		t.Errorf("crash count %d after reset, want 1", in.CrashCount)
	}
}

func TestCrash_givesUpAfterMaxCrashes(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.desire("web", 1, 1, 256)

	// Crash 199 times, restarting by convergence whenever a backoff is due.
	for i := 1; i < MaxCrashes; i++ {
		in := h.actual("web", 0)
		h.report(in, pando.ActualClaimed)
		h.report(in, pando.ActualCrashed)
		h.clock.Advance(CrashBackoffMax)
		h.bbs.ConvergeOnce(h.ctx)
	}
	in := h.actual("web", 0)
	if in.CrashCount != MaxCrashes-1 || in.State != pando.ActualUnclaimed {
		t.Fatalf("after %d crashes: %+v", MaxCrashes-1, in)
	}
	h.report(in, pando.ActualCrashed)
	h.clock.Advance(time.Hour)
	h.bbs.ConvergeOnce(h.ctx)
	in = h.actual("web", 0)
	if in.State != pando.ActualCrashed || in.CrashCount != MaxCrashes {
		t.Errorf("after %d crashes: %+v, want to stay CRASHED", MaxCrashes, in)
	}
	if n := len(c.startCalls()); n != MaxCrashes {
		t.Errorf("%d starts, want %d", n, MaxCrashes)
	}

	// A new revision (cf restart) starts over.
	h.desire("web", 2, 1, 256)
	if in := h.actual("web", 0); in.CrashCount != 0 || in.State != pando.ActualUnclaimed {
		t.Errorf("after restart: %+v", in)
	}
}

// TestCrash_startTimeoutWaitsTheBackoffFirst: an instance that never became
// healthy stays CRASHED for the first backoff even on its first crash, so
// a client waiting for the start sees it failed; then it starts again.
func TestCrash_startTimeoutWaitsTheBackoffFirst(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.run()
	h.desire("web", 1, 1, 256)
	in := h.actual("web", 0)
	h.report(in, pando.ActualClaimed)
	crashedAt := h.clock.Now()
	reason := pando.HealthCheckTimedOut + " after 1m0s: instance never healthy: Failed to make TCP connection to port 8080: connection refused"
	if err := h.bbs.ActualLRPChanged(h.ctx, pando.ActualLRP{ProcessGUID: "web", InstanceGUID: in.InstanceGUID, Index: 0,
		CellID: in.CellID, State: pando.ActualCrashed, CrashReason: reason}); err != nil {
		t.Fatal(err)
	}
	got := h.actual("web", 0)
	if got.State != pando.ActualCrashed || got.CrashCount != 1 || got.CrashReason != reason {
		t.Fatalf("after the start timeout: %+v, want CRASHED with the reason", got)
	}
	waitFor(t, "the 30 s restart timer", func() bool { return h.clock.hasWaiter(crashedAt.Add(CrashBackoffMin)) })
	if n := len(c.startCalls()); n != 1 {
		t.Fatalf("restarted at once: %d starts", n)
	}
	h.clock.Advance(CrashBackoffMin)
	waitFor(t, "restart after the backoff", func() bool { return len(c.startCalls()) == 2 })
}

// TestCrash_startTimeoutKindWaitsTheBackoffFirst: the same from a cell that
// reports the failure's kind instead of words; the failure stays with the
// index when it starts again.
func TestCrash_startTimeoutKindWaitsTheBackoffFirst(t *testing.T) {
	h := newHarness(t, Config{})
	c := newFakeCell("cell-a", 4096)
	h.bbs.RegisterCell(c)
	h.run()
	h.desire("web", 1, 1, 256)
	in := h.actual("web", 0)
	h.report(in, pando.ActualClaimed)
	crashedAt := h.clock.Now()
	why := pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: time.Minute, Detail: "connection refused"}
	if err := h.bbs.ActualLRPChanged(h.ctx, pando.ActualLRP{ProcessGUID: "web", InstanceGUID: in.InstanceGUID, Index: 0,
		CellID: in.CellID, State: pando.ActualCrashed, Crash: &why}); err != nil {
		t.Fatal(err)
	}
	got := h.actual("web", 0)
	if got.State != pando.ActualCrashed || got.CrashCount != 1 || got.Crash == nil || *got.Crash != why {
		t.Fatalf("after the start timeout: %+v, want CRASHED with the failure", got)
	}
	waitFor(t, "the 30 s restart timer", func() bool { return h.clock.hasWaiter(crashedAt.Add(CrashBackoffMin)) })
	if n := len(c.startCalls()); n != 1 {
		t.Fatalf("restarted at once: %d starts", n)
	}
	h.clock.Advance(CrashBackoffMin)
	waitFor(t, "restart after the backoff", func() bool { return len(c.startCalls()) == 2 })
	if next := h.actual("web", 0); next.InstanceGUID == in.InstanceGUID || next.CrashCount != 1 || next.Crash == nil || *next.Crash != why {
		t.Fatalf("restarted instance %+v, want a new one keeping the crash history", next)
	}
}
