package bbs

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
)

func next(t *testing.T, events <-chan pando.RuntimeEvent) pando.RuntimeEvent {
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
	return pando.RuntimeEvent{}
}

func TestSubscribe_actualChangedEvents(t *testing.T) {
	h := newHarness(t, Config{})
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	events := h.subscribe(h.ctx)

	h.desire("web", 1, 1, 256)
	if e := next(t, events); e.Type != pando.EventDesiredLRPChanged || e.Desired.ProcessGUID != "web" {
		t.Fatalf("first event %+v", e)
	}
	if e := next(t, events); e.Type != pando.EventActualLRPChanged || e.Actual.State != pando.ActualUnclaimed || e.Actual.CellID != "" {
		t.Fatalf("new instance event %+v", e.Actual)
	}
	if e := next(t, events); e.Type != pando.EventActualLRPChanged || e.Actual.CellID != "cell-a" {
		t.Fatalf("placement event %+v", e.Actual)
	}

	h.report(h.actual("web", 0), pando.ActualRunning)
	e := next(t, events)
	if e.Type != pando.EventActualLRPChanged || e.ProcessGUID != "web" || e.Actual.State != pando.ActualRunning ||
		e.Actual.Address != "127.0.0.1" || e.Actual.Port != 61000 {
		t.Fatalf("running event %+v", e.Actual)
	}

	if err := h.bbs.RemoveDesiredLRP(h.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Type != pando.EventActualLRPRemoved || e.Actual.InstanceGUID == "" {
		t.Fatalf("removal event %+v", e)
	}
	if e := next(t, events); e.Type != pando.EventDesiredLRPRemoved {
		t.Fatalf("desired removal event %+v", e)
	}
}

func TestSubscribe_resyncWhenSubscriberFallsBehind(t *testing.T) {
	h := newHarness(t, Config{EventBuffer: 4})
	ctx, cancel := context.WithCancel(h.ctx)
	events := h.subscribe(ctx)

	// Far more events than the subscriber's queue and channel hold.
	for i := range 200 {
		if err := h.bbs.DesireLRP(h.ctx, pando.DesiredLRP{ProcessGUID: "web", Instances: 0, MemoryMB: i}); err != nil {
			t.Fatal(err)
		}
	}
	// The subscriber reads: somewhere in the stream is a resync.
	for e := next(t, events); e.Type != pando.EventResync; e = next(t, events) {
		if e.Type != pando.EventDesiredLRPChanged {
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
	for e := next(t, events); e.ProcessGUID != "last" && e.Type != pando.EventResync; e = next(t, events) {
	}

	cancel()
	for range events {
	}
}

func TestSubscribe_closedWhenContextEnds(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithCancel(h.ctx)
	events := h.subscribe(ctx)
	cancel()
	for range events {
	}
	waitFor(t, "subscriber removed", func() bool {
		return h.bbs.subscribers.Load() == 0
	})
}

func TestSubscribe_resumesAfterASequenceNumber(t *testing.T) {
	h := newHarness(t, Config{})
	h.desire("a", 1, 0, 256)
	h.desire("b", 1, 0, 256)
	h.desire("c", 1, 0, 256)

	events := h.subscribe(h.ctx)
	h.desire("d", 1, 0, 256)
	d := next(t, events)

	// From the event of "a" on, a new subscriber gets b, c and d in order.
	resumed, err := h.bbs.Subscribe(h.ctx, d.Seq-3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		e := next(t, resumed)
		got = append(got, e.ProcessGUID)
	}
	if want := []string{"b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("resumed events %v, want %v", got, want)
	}
}

func TestSubscribe_resyncForACursorOfAnotherBBS(t *testing.T) {
	h := newHarness(t, Config{})
	h.desire("a", 1, 0, 256)
	events := h.subscribe(h.ctx)
	h.desire("b", 1, 0, 256)
	last := next(t, events).Seq

	// A BBS started later (a restart) numbers its events after any cursor
	// of this one.
	h.clock.Advance(time.Second)
	later := New(Config{Now: h.clock.Now, After: h.clock.After})
	for _, after := range []uint64{last, 1} {
		s, err := later.Subscribe(h.ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		if e := next(t, s); e.Type != pando.EventResync {
			t.Fatalf("after %d: first event %+v, want a resync", after, e)
		}
	}
}

func TestSubscribe_cellPresenceEvents(t *testing.T) {
	h := newHarness(t, Config{})
	events := h.subscribe(h.ctx)
	h.bbs.RegisterCell(newFakeCell("cell-a", 4096))
	if err := h.bbs.DrainCell(h.ctx, "cell-a"); err != nil {
		t.Fatal(err)
	}
	h.bbs.UnregisterCell("cell-a")
	var got []string
	for range 3 {
		e := next(t, events)
		got = append(got, string(e.Type)+" "+e.Cell.ID+" "+e.Cell.State)
	}
	want := []string{"cell_changed cell-a healthy", "cell_changed cell-a draining", "cell_removed cell-a lost"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestSubscribe_refusedWithAnEndedContext(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	if _, err := h.bbs.Subscribe(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe: %v, want context.Canceled", err)
	}
}
