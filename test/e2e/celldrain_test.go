package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// pando cell drain evacuates a joined cell while its instance serves: the
// instance moves to the server's cell, the joined cell is listed draining,
// and draining cell-0 then stops its instances (no other cell can take
// them) and says so, instead of waiting for a cell; pando cell undrain
// then has cell-b take them.
func TestCellDrain_movesTheInstancesOfAJoinedCell(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "moved", 2
	s.pushBinary(t, name, n)
	eventually(t, "an instance on each cell", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] == 1 && running["cell-b"] == 1, fmt.Sprint(running)
	})

	r := s.mustPando(t, "cell", "drain", "cell-b")
	requireOutput(t, r, `Cell cell-b is drained: no instances left on it`)
	cs := s.cells(t)
	state := ""
	for _, v := range cs {
		if v.ID == "cell-b" {
			state = v.State
		}
	}
	running, perIndex := runningByCell(cs, name)
	if state != "draining" || running["cell-0"] != n || len(perIndex) != n {
		t.Fatalf("after the drain: cell-b %q; running %v per index %v", state, running, perIndex)
	}
	eventually(t, "every instance answers", waitTimeout, func() (bool, string) { return s.answersAll(name+".localhost", n) })

	// Draining the last cell does not wait for a cell that may never
	// come: its instances stop after a short grace and wait UNCLAIMED.
	r = s.mustPando(t, "cell", "drain", "cell-0")
	requireOutput(t, r, fmt.Sprintf("No other cell can take the %d instances on cell-0", n), `Cell cell-0 is drained`)
	if running, perIndex := runningByCell(s.cells(t), name); len(running) != 0 || len(perIndex) != 0 {
		t.Fatalf("instances after draining the last cell: %v %v, want none", running, perIndex)
	}
	eventually(t, "the CELL line and the event", waitTimeout, func() (bool, string) {
		logs, events := s.pando(t, "logs", name, "--recent"), s.pando(t, "events", name)
		ok := strings.Contains(logs.out(), "no other cell can take instance 1: stopping it (no healthy cells") &&
			strings.Contains(events.out(), "placement-failed")
		return ok, logs.out() + events.out()
	})

	// Undrained without a restart, cell-b takes the waiting instances.
	r = s.mustPando(t, "cell", "undrain", "cell-b")
	requireOutput(t, r, `Cell cell-b takes new work again`)
	eventually(t, "the instances run on the undrained cell", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-b"] == n, fmt.Sprint(running)
	})
	eventually(t, "every instance answers again", waitTimeout, func() (bool, string) { return s.answersAll(name+".localhost", n) })
}
