package simcell

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/container"
)

// What tests of simulated cells share, in this package and in the
// packages that run cells over their APIs (cellapi).

// NewForTest is New for a test: the cluster (in a temp dir unless cfg
// names one) shuts down when the test ends.
func NewForTest(t testing.TB, ctx context.Context, cfg Config) *Cluster {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := c.Shutdown(sctx); err != nil {
			t.Errorf("shutdown cells: %v", err)
		}
	})
	return c
}

// NeverHealthy is a Config.Handler under which the instances of the
// given processes (as Cluster.LRP names them) refuse their ports, so they
// stay CLAIMED; every other port answers.
func NeverHealthy(processGUIDs ...string) func(spec container.Spec, port int) http.Handler {
	apps := make([]string, len(processGUIDs))
	for i, p := range processGUIDs {
		apps[i] = strconv.Quote("app-" + p) // as VCAP_APPLICATION has it
	}
	return func(spec container.Spec, _ int) http.Handler {
		for _, app := range apps {
			if slices.ContainsFunc(spec.Env, func(kv string) bool { return strings.Contains(kv, app) }) {
				return nil
			}
		}
		return okHandler
	}
}

// InstanceGUIDs lists, sorted, the instances rep runs.
func InstanceGUIDs(rep *cell.Rep) []string {
	var out []string
	for _, a := range rep.Inventory().Actuals {
		out = append(out, a.InstanceGUID)
	}
	slices.Sort(out)
	return out
}

// countingSyncer counts the syncs a cell makes and keeps the instances
// the first answer stopped.
type countingSyncer struct {
	cell.Syncer
	n         atomic.Int64
	mu        sync.Mutex
	firstStop []string
	laterStop []string
}

func (s *countingSyncer) SyncCell(ctx context.Context, id string, inv pando.CellInventory) (pando.CellSyncAnswer, error) {
	n := s.n.Add(1)
	ans, err := s.Syncer.SyncCell(ctx, id, inv)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range ans.Actuals {
		if v.Action != pando.SyncStop {
			continue
		}
		if n == 1 {
			s.firstStop = append(s.firstStop, v.GUID)
		} else {
			s.laterStop = append(s.laterStop, v.GUID)
		}
	}
	return ans, err
}

// stops returns the instances the first answer stopped (sorted) and those
// later answers stopped.
func (s *countingSyncer) stops() (first, later []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = slices.Clone(s.firstStop)
	slices.Sort(first)
	return first, slices.Clone(s.laterStop)
}

// CheckSyncLeaves runs rep's periodic sync with s (every 100 ms) and
// checks that its first sync stops every instance the cell runs besides
// want (sorted), that the cell then runs exactly want, and that three
// more syncs stop nothing.
func CheckSyncLeaves(t testing.TB, ctx context.Context, rep *cell.Rep, s cell.Syncer, want []string) {
	t.Helper()
	var unwanted []string
	for _, g := range InstanceGUIDs(rep) {
		if !slices.Contains(want, g) {
			unwanted = append(unwanted, g)
		}
	}
	syncer := &countingSyncer{Syncer: s}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep.RunSync(sctx, syncer, 100*time.Millisecond)
	}()
	defer func() { stop(); <-done }()

	waitFor(t, "the cell to run only "+fmt.Sprint(want), 30*time.Second, func() (bool, string) {
		got := InstanceGUIDs(rep)
		return slices.Equal(got, want), fmt.Sprint("the cell runs ", got)
	})
	if first, _ := syncer.stops(); !slices.Equal(first, unwanted) {
		t.Errorf("the first sync stopped %v, want %v (all the cell ran besides %v)", first, unwanted, want)
	}
	start := syncer.n.Load()
	waitFor(t, "three more syncs", 30*time.Second, func() (bool, string) {
		n := syncer.n.Load()
		return n >= start+3, fmt.Sprint(n-start, " more")
	})
	if got := InstanceGUIDs(rep); !slices.Equal(got, want) {
		t.Errorf("after more syncs the cell runs %v, want %v", got, want)
	}
	if _, later := syncer.stops(); len(later) > 0 {
		t.Errorf("later syncs stopped %v, want nothing more", later)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
