package bbs

import (
	"context"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("event stream closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestSubscribe_actualChangedEvents(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	events := h.bbs.Subscribe(h.ctx)

	h.desire("web", 1, 1, 256)
	if e := next(t, events); e.Type != EventDesiredChanged || e.Desired.ProcessGUID != "web" {
		t.Fatalf("first event %+v", e)
	}
	if e := next(t, events); e.Type != EventActualChanged || e.Actual.State != pando.ActualUnclaimed || e.Actual.CellID != "" {
		t.Fatalf("new instance event %+v", e.Actual)
	}
	if e := next(t, events); e.Type != EventActualChanged || e.Actual.CellID != "cell-a" {
		t.Fatalf("placement event %+v", e.Actual)
	}

	h.report(h.actual("web", 0), pando.ActualRunning)
	e := next(t, events)
	if e.Type != EventActualChanged || e.ProcessGUID != "web" || e.Actual.State != pando.ActualRunning ||
		e.Actual.Address != "127.0.0.1" || e.Actual.Port != 61000 {
		t.Fatalf("running event %+v", e.Actual)
	}

	if err := h.bbs.RemoveDesiredLRP(h.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Type != EventActualRemoved || e.Actual.InstanceGUID == "" {
		t.Fatalf("removal event %+v", e)
	}
	if e := next(t, events); e.Type != EventDesiredRemoved {
		t.Fatalf("desired removal event %+v", e)
	}
}

func TestSubscribe_resyncWhenSubscriberFallsBehind(t *testing.T) {
	h := newHarness(t, Config{EventBuffer: 4})
	ctx, cancel := context.WithCancel(h.ctx)
	events := h.bbs.Subscribe(ctx)

	// Far more events than the subscriber's queue and channel hold.
	for i := range 200 {
		if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Instances: 0, MemoryMB: i}); err != nil {
			t.Fatal(err)
		}
	}
	// The subscriber reads: somewhere in the stream is a resync.
	for e := next(t, events); e.Type != EventResync; e = next(t, events) {
		if e.Type != EventDesiredChanged {
			t.Fatalf("unexpected event %+v", e)
		}
	}
	// Once caught up it gets events again.
	drained := false
	for !drained {
		select {
		case <-events:
		default:
			drained = true
		}
	}
	if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "last"}); err != nil {
		t.Fatal(err)
	}
	// It sees the event, or (if its queue was still full) another resync:
	// either way the change is not silently lost.
	for e := next(t, events); e.ProcessGUID != "last" && e.Type != EventResync; e = next(t, events) {
	}

	cancel()
	for range events {
	}
}

func TestSubscribe_closedWhenContextEnds(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithCancel(h.ctx)
	events := h.bbs.Subscribe(ctx)
	cancel()
	for range events {
	}
	waitFor(t, "subscriber removed", func() bool {
		h.bbs.mu.Lock()
		defer h.bbs.mu.Unlock()
		return len(h.bbs.subs) == 0
	})
}
