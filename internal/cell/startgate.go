package cell

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"
)

// stagingStartReserve is how many starts stagings may run beyond the
// cell's bound: a push's staging does not wait for a burst of instance
// starts to drain.
const stagingStartReserve = 1

// WaitingForStartSlot begins the details of an instance waiting for one
// of its cell's start slots ("waiting for a start slot on cell CELL (N
// ahead)").
const WaitingForStartSlot = "waiting for a start slot on cell"

// DefaultMaxConcurrentStarts is the default bound on the container starts
// a cell runs at once: two per CPU, at least 2.
func DefaultMaxConcurrentStarts() int { return max(2*runtime.NumCPU(), 2) }

// startGate bounds the container starts (volume and files prepared,
// droplet extracted, container created and its process started) a cell
// runs at once; a start downloads what it needs (droplet, image layers,
// package, buildpacks, build cache) before it asks for a slot. Starts
// past the bound wait in order of arrival;
// stagings ("urgent") wait ahead of every instance and task and may also
// take reserve slots that nothing else takes. A waiter whose context ends
// leaves the queue at once.
type startGate struct {
	limit, reserve int
	// refresh is how often a waiter looks whether its place in line moved
	// up enough to say so again (see acquire); 0: never.
	refresh time.Duration

	mu     sync.Mutex
	inUse  int
	urgent []*startWaiter // stagings, first come first served
	normal []*startWaiter // instances and tasks
}

type startWaiter struct {
	ready   chan struct{} // closed when the slot is granted
	granted bool          // under startGate.mu
}

func newStartGate(limit, reserve int, refresh time.Duration) *startGate {
	return &startGate{limit: max(limit, 1), reserve: max(reserve, 0), refresh: refresh}
}

// startWaitRefresh is how often a waiting start looks whether its place in
// line moved up enough to report it again (its Details' "N ahead").
const startWaitRefresh = 2 * time.Second

// acquire takes a start slot, waiting in line when none is free; waiting,
// when set, is called (before waiting) with the number of starts running
// and the number of waiters ahead, and again (every g.refresh at most)
// once that number is down to half the last one said, or to none. release
// gives the slot back; it may be called more than once. acquire fails only
// when ctx ends first.
func (g *startGate) acquire(ctx context.Context, urgent bool, waiting func(running, ahead int)) (release func(), err error) {
	g.mu.Lock()
	queued := len(g.urgent) > 0 || (!urgent && len(g.normal) > 0)
	if g.freeLocked(urgent) && !queued {
		g.inUse++
		g.mu.Unlock()
		return g.releaser(), nil
	}
	w := &startWaiter{ready: make(chan struct{})}
	ahead := len(g.urgent)
	if urgent {
		g.urgent = append(g.urgent, w)
	} else {
		ahead += len(g.normal)
		g.normal = append(g.normal, w)
	}
	running := g.inUse
	g.mu.Unlock()
	var refresh <-chan time.Time
	if waiting != nil {
		waiting(running, ahead)
		if g.refresh > 0 {
			t := time.NewTicker(g.refresh)
			defer t.Stop()
			refresh = t.C
		}
	}
wait:
	for {
		select {
		case <-w.ready:
			return g.releaser(), nil
		case <-ctx.Done():
			break wait
		case <-refresh:
			g.mu.Lock()
			now, queued := g.aheadLocked(w, urgent)
			running := g.inUse
			g.mu.Unlock()
			if queued && now < ahead && (now <= ahead/2 || now == 0) {
				ahead = now
				waiting(running, ahead)
			}
		}
	}
	g.mu.Lock()
	if w.granted { // granted as ctx ended: pass the slot on
		g.inUse--
		g.grantLocked()
	} else if urgent {
		g.urgent = slices.DeleteFunc(g.urgent, func(x *startWaiter) bool { return x == w })
	} else {
		g.normal = slices.DeleteFunc(g.normal, func(x *startWaiter) bool { return x == w })
	}
	g.mu.Unlock()
	return nil, context.Cause(ctx)
}

// tryAcquire takes a slot for an instance's or task's start only if one
// is free and no start waits for one; ok is false otherwise.
func (g *startGate) tryAcquire() (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.freeLocked(false) || len(g.urgent) > 0 || len(g.normal) > 0 {
		return nil, false
	}
	g.inUse++
	return g.releaser(), true
}

// aheadLocked is how many waiters are ahead of w in line; queued is false
// once w left the line (it was granted a slot).
func (g *startGate) aheadLocked(w *startWaiter, urgent bool) (ahead int, queued bool) {
	if urgent {
		k := slices.Index(g.urgent, w)
		return k, k >= 0
	}
	k := slices.Index(g.normal, w)
	return len(g.urgent) + k, k >= 0
}

// freeLocked reports whether a start of the kind may begin now.
func (g *startGate) freeLocked(urgent bool) bool {
	if urgent {
		return g.inUse < g.limit+g.reserve
	}
	return g.inUse < g.limit
}

func (g *startGate) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.inUse--
			g.grantLocked()
			g.mu.Unlock()
		})
	}
}

// grantLocked hands free slots to the waiters first in line.
func (g *startGate) grantLocked() {
	for {
		var w *startWaiter
		switch {
		case len(g.urgent) > 0 && g.freeLocked(true):
			w, g.urgent = g.urgent[0], g.urgent[1:]
		case len(g.urgent) == 0 && len(g.normal) > 0 && g.freeLocked(false):
			w, g.normal = g.normal[0], g.normal[1:]
		default:
			return
		}
		g.inUse++
		w.granted = true
		close(w.ready)
	}
}

// counts reports the starts running and waiting.
func (g *startGate) counts() (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inUse, len(g.urgent) + len(g.normal)
}
