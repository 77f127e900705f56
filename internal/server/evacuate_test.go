package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellapi"
)

type fakeDrainer struct {
	err     error
	drained chan struct{}
	// lost, once closed, makes the server unreachable for an hour.
	lost chan struct{}
}

func (d *fakeDrainer) Registrations() int64 { return 0 }

func (d *fakeDrainer) PresenceFailingFor() time.Duration {
	if d.lost == nil {
		return 0
	}
	select {
	case <-d.lost:
		return time.Hour
	default:
		return 0
	}
}

func (d *fakeDrainer) Drain(ctx context.Context) (cellapi.DrainAnswer, error) {
	if d.err == nil {
		close(d.drained)
	}
	return cellapi.DrainAnswer{}, d.err
}

// fakeCellState has n instances until drained is closed, then they go
// one by one, one per State call.
type fakeCellState struct {
	mu      sync.Mutex
	n       int
	drained chan struct{}
}

func (c *fakeCellState) State(ctx context.Context) (pando.CellState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.drained:
		if c.n > 0 {
			c.n--
		}
	default:
	}
	return pando.CellState{InstancesPerProcess: map[string]int{"web": c.n}}, nil
}

func (c *fakeCellState) left() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestEvacuate_waitsUntilTheServerStoppedEveryInstance(t *testing.T) {
	drained := make(chan struct{})
	cell := &fakeCellState{n: 3, drained: drained}
	evacuate(context.Background(), slog.New(slog.DiscardHandler), &fakeDrainer{drained: drained}, cell, time.Minute, time.Minute)
	if n := cell.left(); n != 0 {
		t.Fatalf("evacuate returned with %d instances still on the cell", n)
	}
}

func TestEvacuate_stopsAtOnceWhenTheServerCannotDrain(t *testing.T) {
	cell := &fakeCellState{n: 2, drained: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		evacuate(context.Background(), slog.New(slog.DiscardHandler), &fakeDrainer{err: errors.New("server unreachable")}, cell, time.Hour, time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("evacuate waited although the server could not drain the cell")
	}
}

func TestEvacuate_givesUpAtTheDeadline(t *testing.T) {
	cell := &fakeCellState{n: 1, drained: make(chan struct{})} // never drained
	d := &fakeDrainer{drained: make(chan struct{})}
	evacuate(context.Background(), slog.New(slog.DiscardHandler), d, cell, 300*time.Millisecond, time.Hour)
	if n := cell.left(); n != 1 {
		t.Fatalf("instances %d", n)
	}
}

// The server accepted the drain, then went away (stopped with the cell,
// say): the cell does not wait out the evacuation's 10 minutes for a
// server that cannot move its instances.
func TestEvacuate_givesUpWhenTheServerIsUnreachableMeanwhile(t *testing.T) {
	cell := &fakeCellState{n: 2, drained: make(chan struct{})} // the server never stops them
	d := &fakeDrainer{drained: make(chan struct{}), lost: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		evacuate(context.Background(), slog.New(slog.DiscardHandler), d, cell, time.Hour, 30*time.Second)
		close(done)
	}()
	<-d.drained
	select {
	case <-done:
		t.Fatal("evacuate gave up while the server was reachable")
	case <-time.After(300 * time.Millisecond):
	}
	close(d.lost)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("evacuate still waits for a server unreachable past its bound")
	}
	if n := cell.left(); n != 2 {
		t.Errorf("instances %d, want the 2 the server never moved", n)
	}
}

// restartedDrainer is a server that restarts right after accepting the
// first drain, forgetting it (the cell is registered again), then fails
// the next `failures` drain requests, as while it is still starting; it
// drains the cell on the one after.
type restartedDrainer struct {
	failures int32
	calls    atomic.Int32
	regs     atomic.Int64
	drained  chan struct{}
}

func (d *restartedDrainer) Drain(ctx context.Context) (cellapi.DrainAnswer, error) {
	switch n := d.calls.Add(1); {
	case n == 1:
		d.regs.Add(1)
	case n <= 1+d.failures:
		return cellapi.DrainAnswer{}, errors.New("503 Service Unavailable: starting")
	case n == 2+d.failures:
		close(d.drained)
	}
	return cellapi.DrainAnswer{}, nil
}

func (d *restartedDrainer) Registrations() int64              { return d.regs.Load() }
func (d *restartedDrainer) PresenceFailingFor() time.Duration { return 0 }

// A server restarted during the evacuation has forgotten the drain: the
// cell asks again, rather than wait out the 10 minutes for moves that no
// one makes, and asks until the server accepts, rather than wait for a
// registration that may not come again.
func TestEvacuate_asksARestartedServerAgainUntilItAccepts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int32
	}{{"accepted at once", 0}, {"two failed requests", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			d := &restartedDrainer{failures: tc.failures, drained: make(chan struct{})}
			cell := &fakeCellState{n: 2, drained: d.drained}
			done := make(chan struct{})
			go func() {
				evacuate(context.Background(), slog.New(slog.DiscardHandler), d, cell, time.Hour, time.Hour)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("evacuate still waits after the server restarted (%d drain requests)", d.calls.Load())
			}
			want := 2 + tc.failures
			if n, calls := cell.left(), d.calls.Load(); n != 0 || calls != want {
				t.Errorf("%d instances left after %d drain requests, want 0 after %d", n, calls, want)
			}
		})
	}
}

// A second SIGUSR1 starts no second evacuation: it is logged, and the
// first goes on.
func TestAwaitStop_drainsOnceForTwoSignals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal)
	var logs bytes.Buffer // read once awaitStop returned
	drains := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		awaitStop(ctx, context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), sig, func() <-chan struct{} {
			drains++
			return make(chan struct{}) // under way until the test ends
		})
	}()
	sig <- syscall.SIGUSR1
	sig <- syscall.SIGUSR1
	cancel()
	<-done
	if drains != 1 {
		t.Errorf("two SIGUSR1 started %d evacuations, want 1", drains)
	}
	if out := logs.String(); !strings.Contains(out, "already draining (SIGUSR1 again)") {
		t.Errorf("the second SIGUSR1 was not logged:\n%s", out)
	}
}

// A SIGUSR1 after the last evacuation ended (it gave up on an unreachable
// server, or its deadline passed, with instances left) starts another:
// the operator's way to try again without stopping the cell.
func TestAwaitStop_drainsAgainOnceTheLastEvacuationEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal)
	var logs bytes.Buffer // read once awaitStop returned
	drains := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		awaitStop(ctx, context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), sig, func() <-chan struct{} {
			drains++
			ended := make(chan struct{})
			close(ended) // it ends at once, instances left
			return ended
		})
	}()
	sig <- syscall.SIGUSR1
	sig <- syscall.SIGUSR1
	cancel()
	<-done
	if drains != 2 {
		t.Errorf("a SIGUSR1 after the evacuation ended started %d evacuations in all, want 2", drains)
	}
	if out := logs.String(); strings.Contains(out, "already draining") {
		t.Errorf("an ended evacuation was said to go on:\n%s", out)
	}
}
