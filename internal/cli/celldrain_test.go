package cli

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// fakeDrain serves the drain endpoint and a cells view in which the
// drained cell's instances leave one per GET after the drain.
type fakeDrain struct {
	mu      sync.Mutex
	drained []string
	left    int  // instances on cell-a
	stuck   bool // they never leave
	crashed int  // CRASHED instances listed on cell-a, waiting out their backoff: they never leave
	others  []map[string]any
	// stopping: cell-a drains itself (SIGTERM, SIGUSR1), so an undrain leaves it draining.
	stopping bool
}

func (fd *fakeDrain) serve(f *fakeCF) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		fd.mu.Lock()
		defer fd.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/pando/v1/cells/cell-a/drain":
			fd.drained = append(fd.drained, "cell-a")
			f.writeJSON(w, http.StatusAccepted, map[string]any{"id": "cell-a", "state": "draining", "draining": true})
		case r.Method == "POST" && r.URL.Path == "/pando/v1/cells/cell-a/undrain":
			fd.drained = append(fd.drained, "undrained:cell-a")
			state := "healthy"
			if fd.stopping {
				state = "draining"
			}
			f.writeJSON(w, http.StatusOK, map[string]any{"id": "cell-a", "state": state, "draining": fd.stopping})
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/pando/v1/cells/"):
			f.cfError(w, http.StatusNotFound, 10010, "CF-ResourceNotFound", `cell "nope" not found: it is not registered`)
		case r.Method == "GET" && r.URL.Path == "/pando/v1/cells":
			insts := []any{}
			for i := 0; i < fd.left; i++ {
				insts = append(insts, map[string]any{"app_name": "shop", "process_type": "web", "index": i, "state": "RUNNING"})
			}
			for i := 0; i < fd.crashed; i++ {
				insts = append(insts, map[string]any{"app_name": "flaky", "process_type": "web", "index": i, "state": "CRASHED"})
			}
			if len(fd.drained) > 0 && fd.left > 0 && !fd.stuck {
				fd.left--
			}
			cells := append([]any{map[string]any{"id": "cell-a", "state": "draining", "draining": true, "instances": insts}}, toAny(fd.others)...)
			f.writeJSON(w, 200, map[string]any{"resources": cells})
		default:
			return false
		}
		return true
	}
}

func toAny(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

func drainHarness(t *testing.T, fd *fakeDrain) (*harness, func(args ...string) error) {
	f := newFakeCF(t)
	f.mu.Lock()
	f.extra = fd.serve(f)
	f.mu.Unlock()
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	run := func(args ...string) error {
		t.Helper()
		root := &cobra.Command{Use: "pando", SilenceUsage: true, SilenceErrors: true}
		cell := &cobra.Command{Use: "cell"}
		cell.AddCommand(h.env.cellDrainCmd(), h.env.cellUndrainCmd())
		root.AddCommand(cell)
		root.SetArgs(args)
		root.SetOut(h.out)
		root.SetErr(h.err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return root.ExecuteContext(ctx)
	}
	return h, run
}

var healthyCell = map[string]any{"id": "cell-b", "state": "healthy", "instances": []any{}}

func TestCellDrain_waitsUntilTheCellIsEmpty(t *testing.T) {
	fd := &fakeDrain{left: 3, others: []map[string]any{healthyCell}}
	h, run := drainHarness(t, fd)
	if err := run("cell", "drain", "cell-a"); err != nil {
		t.Fatalf("drain: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	for _, want := range []string{"Draining cell cell-a as admin...", "3 instances left on cell-a", "2 instances left on cell-a",
		"1 instance left on cell-a", "Cell cell-a is drained: no instances left on it."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(fd.drained) != 1 {
		t.Errorf("drain requests: %v", fd.drained)
	}
}

// A crashed instance still listed on the cell holds no container there and
// starts elsewhere when its backoff ends (up to 16 minutes): the drain is
// done without waiting for it, and says so.
func TestCellDrain_doesNotWaitForCrashedInstances(t *testing.T) {
	fd := &fakeDrain{left: 2, crashed: 2, others: []map[string]any{healthyCell}}
	h, run := drainHarness(t, fd)
	if err := run("cell", "drain", "cell-a", "--timeout", "5s"); err != nil {
		t.Fatalf("drain with crashed instances on the cell: %v\nstdout: %s", err, h.out)
	}
	out := h.out.String()
	for _, want := range []string{"2 instances left on cell-a", "1 instance left on cell-a",
		"Cell cell-a is drained: no instances left on it.",
		"Crashed there and waiting to restart (no container left on it): 2 instances; each starts on another cell when its crash backoff ends."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4 instances") || strings.Contains(out, "3 instances") {
		t.Errorf("crashed instances counted as left on the cell:\n%s", out)
	}
}

func TestCellDrain_saysWhenNoOtherCellCanTakeTheInstances(t *testing.T) {
	lost := map[string]any{"id": "cell-c", "state": "lost", "instances": []any{}}
	fd := &fakeDrain{left: 2, others: []map[string]any{lost}}
	h, run := drainHarness(t, fd)
	if err := run("cell", "drain", "cell-a"); err != nil {
		t.Fatalf("drain with no other healthy cell: %v", err)
	}
	out := h.out.String()
	if n := strings.Count(out, "No other cell can take the 2 instances on cell-a: each stops"); n != 1 {
		t.Errorf("said %d times that no cell can take them, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "Cell cell-a is drained") {
		t.Errorf("output:\n%s", out)
	}
}

func TestCellDrain_timesOut(t *testing.T) {
	fd := &fakeDrain{left: 1, stuck: true, others: []map[string]any{healthyCell}}
	h, run := drainHarness(t, fd)
	err := run("cell", "drain", "cell-a", "--timeout", "30ms")
	if err == nil || !strings.Contains(err.Error(), "cell cell-a still has 1 instance after 30ms") {
		t.Fatalf("drain past its timeout: %v", err)
	}
	if n := strings.Count(h.out.String(), "1 instance left on cell-a"); n != 1 {
		t.Errorf("progress shown %d times, want once (only changes):\n%s", n, h.out)
	}
}

// Drain and undrain name an unknown cell, and give the usage line
// without one.
func TestCellDrainAndUndrain_unknownOrNoCell(t *testing.T) {
	for _, verb := range []string{"drain", "undrain"} {
		t.Run(verb, func(t *testing.T) {
			fd := &fakeDrain{}
			_, run := drainHarness(t, fd)
			err := run("cell", verb, "nope")
			if err == nil || !strings.Contains(err.Error(), `cell "nope" not found`) {
				t.Errorf("%s of an unknown cell: %v", verb, err)
			}
			want := fmt.Sprintf("; usage: pando cell %s CELL_ID ('pando help cell %s' for more)", verb, verb)
			if err := run("cell", verb); err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("%s without a cell id: %v, want the usage line", verb, err)
			}
			if len(fd.drained) != 0 {
				t.Errorf("requests for a cell that is not there: %v", fd.drained)
			}
		})
	}
}

// pando cells shows each cell's disk with the part its image layer cache
// holds; a cell that does not answer is listed lost without a capacity
// (not "0M of 0M"), and the output says what happens to its instances.
func TestCells_showsEachCell(t *testing.T) {
	for _, tc := range []struct {
		name string
		cell map[string]any
		// check gets the output and the cell's row in it.
		check func(t *testing.T, out, row string)
	}{
		{"layer cache", map[string]any{"id": "cell-b", "state": "healthy", "instances": []any{},
			"disk_mb": map[string]any{"total": 8192, "used": 1536, "layer_cache": 1024}},
			func(t *testing.T, out, row string) {
				var header string
				for _, line := range strings.Split(out, "\n") {
					if f := strings.Fields(line); len(f) > 0 && f[0] == "cell" {
						header = line
					}
				}
				col := strings.Index(header, "layer cache")
				if col < 0 || row == "" || len(row) <= col || !strings.HasPrefix(row[col:], "1024M ") {
					t.Errorf("no layer cache of 1024M under its column:\n%s", out)
				}
				if !strings.Contains(row, "1536M of 8192M") {
					t.Errorf("disk not shown as used of total:\n%s", out)
				}
			}},
		{"lost cell", map[string]any{"id": "cell-b", "state": "lost", "instances": []any{}},
			func(t *testing.T, out, row string) {
				if want := []string{"cell-b", "lost", "-", "-", "-", "-", "-", "-"}; !slices.Equal(strings.Fields(row), want) {
					t.Errorf("lost cell's row %q, want %q:\n%s", row, want, out)
				}
				if !strings.Contains(out, "lost: cell-b does not answer the server at its --addr. If down, its instances start on other cells once its presence expires") {
					t.Errorf("no word on what happens to the lost cell's instances:\n%s", out)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCF(t)
			fd := &fakeDrain{others: []map[string]any{tc.cell}}
			f.mu.Lock()
			f.extra = fd.serve(f)
			f.mu.Unlock()
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			root := &cobra.Command{Use: "pando", SilenceUsage: true, SilenceErrors: true}
			root.AddCommand(h.env.cellsCmd())
			root.SetArgs([]string{"cells"})
			root.SetOut(h.out)
			root.SetErr(h.err)
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("cells: %v\nstderr: %s", err, h.err)
			}
			out := h.out.String()
			var row string
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == "cell-b" {
					row = line
				}
			}
			tc.check(t, out, row)
		})
	}
}

func TestCellUndrain_saysTheCellTakesWorkAgain(t *testing.T) {
	fd := &fakeDrain{}
	h, run := drainHarness(t, fd)
	if err := run("cell", "undrain", "cell-a"); err != nil {
		t.Fatalf("undrain: %v\nstderr: %s", err, h.err)
	}
	if out := h.out.String(); !strings.Contains(out, "Cell cell-a takes new work again.") {
		t.Errorf("output:\n%s", out)
	}
	if !slices.Equal(fd.drained, []string{"undrained:cell-a"}) {
		t.Errorf("requests: %v", fd.drained)
	}
}

// A cell stopping on SIGTERM (or told SIGUSR1) drains itself: an undrain cannot make it
// take work, and the command fails saying why.
func TestCellUndrain_failsForACellThatIsStopping(t *testing.T) {
	fd := &fakeDrain{stopping: true}
	_, run := drainHarness(t, fd)
	err := run("cell", "undrain", "cell-a")
	if err == nil || !strings.Contains(err.Error(), "cell cell-a is still draining: it drains itself") {
		t.Errorf("undrain of a stopping cell: %v", err)
	}
}
