package e2e

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every test calls t.Parallel; what really runs at the same time is
// decided here, by what a test shares and what it costs:
//   - the tests on the shared server take it one at a time (each sees
//     the server as the one before left it, as in a serial run);
//   - the tests with servers of their own (own data dir, loopback
//     network and runc root: nothing they check is machine-wide) run
//     beside them, at most ownSlots at a time;
//   - CPU-heavy ones with servers of their own (compilers, npm/pip/
//     bundler installs) take the one heavy turn too, so that at most one
//     of them runs beside the shared server's (which never wait for it:
//     a shared test waiting would stop every other shared test);
//   - a server's start (until its API answers) is one at a time: the
//     first start of every test at once would each take minutes.
//
// A test waits for its turn inside go test's own parallel limit, so
// runMain lifts that limit; `go test -parallel N` sets ownSlots instead.
const (
	defaultOwnSlots = 3
	heavySlots      = 1
	// unlimitedParallel is go test's -parallel while the gates decide.
	unlimitedParallel = 1000
)

// gates are the turns the tests wait for.
type gates struct {
	shared chan struct{}
	own    chan struct{}
	heavy  chan struct{}
	start  chan struct{}

	mu      sync.Mutex
	ownHeld map[string]bool // top-level tests holding an own turn
}

func newGates(ownSlots int) *gates {
	return &gates{
		shared:  make(chan struct{}, 1),
		own:     make(chan struct{}, ownSlots),
		heavy:   make(chan struct{}, heavySlots),
		start:   make(chan struct{}, 1),
		ownHeld: map[string]bool{},
	}
}

// setParallelism makes the gates and lifts go test's -parallel (read by
// m.Run after this); an explicit -parallel N is the number of own turns.
func setParallelism() (*gates, error) {
	own := defaultOwnSlots
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if explicit {
		n, err := strconv.Atoi(flag.Lookup("test.parallel").Value.String())
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-parallel %s: want a positive number", flag.Lookup("test.parallel").Value)
		}
		own = n
	}
	if err := flag.Set("test.parallel", strconv.Itoa(unlimitedParallel)); err != nil {
		return nil, fmt.Errorf("lift -parallel: %w", err)
	}
	return newGates(own), nil
}

// take waits for a turn of sem and gives it back when t ends.
func take(t *testing.T, what string, sem chan struct{}) {
	t.Helper()
	wait(t, what, sem)
	t.Cleanup(func() { <-sem })
}

// wait takes a turn of sem, saying how long t waited for it (part of its
// elapsed time, not of what it tested).
func wait(t *testing.T, what string, sem chan struct{}) {
	t.Helper()
	began := time.Now()
	sem <- struct{}{}
	if d := time.Since(began); d >= time.Second {
		t.Logf("waited %s for the %s turn", d.Round(100*time.Millisecond), what)
	}
}

// sharedTurn waits until no other test uses the shared server; t has it
// until it ends (its cleanups, which delete its apps, included).
func (g *gates) sharedTurn(t *testing.T) { take(t, "shared server", g.shared) }

// ownTurn waits for a turn to run servers of t's own; the servers and
// cells of one test (its subtests too) count once.
func (g *gates) ownTurn(t *testing.T) {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	g.mu.Lock()
	held := g.ownHeld[top]
	g.mu.Unlock()
	if held {
		return
	}
	wait(t, "own server", g.own)
	g.mu.Lock()
	g.ownHeld[top] = true
	g.mu.Unlock()
	t.Cleanup(func() {
		g.mu.Lock()
		delete(g.ownHeld, top)
		g.mu.Unlock()
		<-g.own
	})
}

// heavy waits for the CPU-heavy turn: a test with a server of its own
// calls it after ownServer, never before, so that no test holds it while
// waiting for another turn.
func heavy(t *testing.T) {
	t.Helper()
	if env.gates == nil { // skipped run
		return
	}
	take(t, "CPU-heavy", env.gates.heavy)
}

// startTurn waits until no other server of the run is starting; the
// returned func ends the turn. A run without gates (skipped) has turns
// at once.
func (g *gates) startTurn() (done func()) {
	if g == nil {
		return func() {}
	}
	g.start <- struct{}{}
	return func() { <-g.start }
}
