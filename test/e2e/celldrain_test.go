package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// pando cell drain evacuates a joined cell while its instance serves: the
// instance moves to the server's cell, the joined cell is listed draining,
// and draining cell-0 then says no other cell can take its instances.
func TestCellDrain_movesTheInstancesOfAJoinedCell(t *testing.T) {
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

	r = s.runCLI(context.Background(), cliTimeout, "cell", "drain", "cell-0")
	if r.code == 0 || !strings.Contains(r.out(), fmt.Sprintf("no other cell can take the %d instances on cell-0", n)) {
		t.Fatalf("draining the last cell: %s", r)
	}
	if running, _ := runningByCell(s.cells(t), name); running["cell-0"] != n {
		t.Fatalf("instances after draining the last cell: %v, want %d still on cell-0", running, n)
	}
}
