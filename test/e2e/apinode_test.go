package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `pando api` is the platform without a cell of its own: until a `pando
// cell` joins, `pando cells` lists none and a push fails saying there are
// no healthy cells; once one joins, the app stages and runs there and
// answers through the api's router. SIGTERM to that only cell stops the
// instance at once (no other cell can take it), which waits UNCLAIMED for
// the next cell to join. The api stops cleanly on SIGTERM.
func TestAPINode_runsAppsOnAJoinedCellOnly(t *testing.T) {
	t.Parallel()
	s := ownAPI(t)
	if _, err := os.Stat(filepath.Join(s.dataDir, "containers")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pando api made a containers dir (%v): it runs no container", err)
	}
	if len(s.cells(t)) != 0 {
		t.Fatalf("pando api lists cells before any joined: %+v", s.cells(t))
	}
	requireOutput(t, s.mustPando(t, "cells"), `No cells: no healthy cells`, `pando cell --join`)
	// No local cell to look into the stacks: their runtimes are not known
	// here, which is not "none".
	requireOutput(t, s.mustPando(t, "stacks"), `(?m)^host\s.*not known here$`, `its cells' machines have them`)
	early := s.pando(t, "push", "early", "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")
	if early.code == 0 {
		t.Fatalf("a push with no cell joined succeeded:\n%s", early)
	}
	requireOutput(t, early, `no healthy cells`)

	c := s.joinCell(t, "cell-a", "127.0.0.2", "--memory", "4G")
	// The joined cell asks its machine's runtimes and reports them.
	hostRuntimes := regexp.MustCompile(`(?m)^host\s.*\b(node|python3|ruby|java|go) [0-9]+\.`)
	eventually(t, "pando stacks with the joined cell's runtimes", waitTimeout, func() (bool, string) {
		out := s.pando(t, "stacks").out()
		return hostRuntimes.MatchString(out) && !strings.Contains(out, "not known here"), out
	})
	const name = "on-joined"
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")
	requireOutput(t, r, `Exit status 0`, `Uploading droplet`, `web: 1 of 1 instances running`)
	cells := s.cells(t)
	if len(cells) != 1 || cells[0].ID != "cell-a" || len(cells[0].Instances) != 1 || cells[0].Instances[0].AppName != name {
		t.Fatalf("cells %+v, want the app's one instance on cell-a, the only cell", cells)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "binary app index=0 greeting=\n" {
		t.Fatalf("GET / through the api's router = %q", body)
	}

	// SIGTERM to the only cell does not wait for another: the instance
	// stops after a short grace and waits UNCLAIMED, saying why, until a
	// cell joins.
	start := time.Now()
	if err := c.stop(); err != nil {
		t.Fatalf("stop the cell: %v\n%s", err, c.logTail(maxLogShown))
	}
	t.Logf("the only cell exited %s after SIGTERM", time.Since(start).Round(100*time.Millisecond))
	if log := c.logTail(maxLogShown); !strings.Contains(log, "no other cell can take the instance") {
		t.Errorf("the cell's log does not say why its instance stopped:\n%s", log)
	}
	eventually(t, "the reason in pando app and the CELL line in the app's log", waitTimeout, func() (bool, string) {
		app, logs := s.pando(t, "app", name), s.pando(t, "logs", name, "--recent")
		return strings.Contains(app.out(), "no healthy cells") &&
			strings.Contains(logs.out(), "no other cell can take instance 0: stopping it"), app.out() + logs.out()
	})
	s.joinCell(t, "cell-b", "127.0.0.3", "--memory", "4G")
	if body := s.curlRoute(t, name+".localhost", "/"); body != "binary app index=0 greeting=\n" {
		t.Fatalf("GET / once a cell joined again = %q", body)
	}
	s.mustPando(t, "delete", name, "-f")
	if err := s.stop(); err != nil {
		t.Fatalf("stop pando api: %v", err)
	}
}
