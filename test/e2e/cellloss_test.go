package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// lossTTL is the cell presence TTL of tests that wait for a lost cell's
// presence to expire: shorter than the default 6 s, so the expiry leaves
// more of their deadline to placing and starting under load.
const lossTTL = "4s"

// Three cells (the server's and two joined ones) share an app of 6; one
// joined cell is killed with its containers: its instances run on the two
// others and answer through the router, and the cell restarted with the
// same data dir neither keeps nor gets any of them: 6 instances, one per
// index.
func TestThreeCells_lossOfOneMovesItsInstancesToTheOthersWithoutDuplicates(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--cell-presence-ttl", lossTTL)
	s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")
	c := s.joinCell(t, "cell-c", "127.0.0.3", "--memory", "4G")

	const name, n = "threecells", 6
	host := name + ".localhost"
	s.pushBinary(t, name, n)
	eventually(t, "instances on all three cells", waitTimeout, func() (bool, string) {
		running, perIndex := runningByCell(s.cells(t), name)
		return running["cell-0"] > 0 && running["cell-b"] > 0 && running["cell-c"] > 0 &&
			running["cell-0"]+running["cell-b"]+running["cell-c"] == n && len(perIndex) == n, fmt.Sprint(running, perIndex)
	})
	eventually(t, "every instance answers through the router", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })
	before, _ := runningByCell(s.cells(t), name)

	lost := time.Now()
	c.crash(t)
	eventually(t, "every instance RUNNING on cell-0 and cell-b, and answering", 25*time.Second, func() (bool, string) {
		running, perIndex := runningByCell(s.cells(t), name)
		if running["cell-0"]+running["cell-b"] != n || len(perIndex) != n {
			return false, fmt.Sprint(running, perIndex)
		}
		return s.answersAll(host, n)
	})
	t.Logf("cell loss: the %d instances of cell-c (of %d: %v) RUNNING and routable on the two others %s after kill -9",
		before["cell-c"], n, before, time.Since(lost).Round(100*time.Millisecond))
	// The app's log says why those instances started again.
	if logs := s.mustPando(t, "logs", name, "--recent"); strings.Count(logs.stdout, "Cell cell-c is lost (no presence renewal for "+lossTTL+")") != before["cell-c"] {
		t.Errorf("want one CELL line per instance cell-c had (%d) saying it was lost; logs:\n%s", before["cell-c"], logs.stdout)
	}

	c.startHealthy(t)
	// Started again, it keeps its certificate and says so.
	if log := c.logTail(1 << 20); strings.Count(log, "joined (certificate issued)") != 1 || !strings.Contains(log, "rejoined (certificate kept)") {
		t.Errorf("cell-c's log does not tell its first join from its rejoin:\n%s", c.logTail(maxLogShown))
	}
	// What cell-c had before its loss is gone: no container left, no
	// instance listed on it, exactly one instance per index elsewhere.
	eventually(t, "no duplicates and nothing left on cell-c", waitTimeout, func() (bool, string) {
		cs := s.cells(t)
		ids, err := c.containers()
		running, perIndex := runningByCell(cs, name)
		if !eachIndexOnce(perIndex, n) {
			return false, fmt.Sprintf("running %v per index %v", running, perIndex)
		}
		return err == nil && len(ids) == 0 && len(perIndex) == n && running["cell-c"] == 0 && running["cell-0"]+running["cell-b"] == n,
			fmt.Sprintf("containers on cell-c %v %v; running %v per index %v", ids, err, running, perIndex)
	})
	eventually(t, "every instance still answers", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })
	s.requireRunning(t, name, n)
}

// A joined cell that crashes with its containers and is restarted at once
// (by systemd, say: before its presence expires) comes back empty: the
// instances it had are placed again, on any cell, instead of staying
// listed RUNNING where nothing runs.
func TestJoinedCell_restartedBeforeItsPresenceExpiresHasItsInstancesPlacedAgain(t *testing.T) {
	t.Parallel()
	// A presence that outlives a slow restart on a loaded machine: the
	// premise is that the server never forgot the cell.
	s := ownServer(t, "--cell-presence-ttl", "60s")
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "quickrestart", 4
	host := name + ".localhost"
	s.pushBinary(t, name, n)
	eventually(t, "instances on both cells", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] > 0 && running["cell-b"] > 0 && running["cell-0"]+running["cell-b"] == n, fmt.Sprint(running)
	})

	logFrom := s.logSize()
	lost := time.Now()
	c.crash(t)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every instance RUNNING and answering, each index once", 25*time.Second, func() (bool, string) {
		cs := s.cells(t)
		running, perIndex := runningByCell(cs, name)
		if !eachIndexOnce(perIndex, n) {
			return false, fmt.Sprint(running, perIndex)
		}
		ids, err := c.containers()
		if err != nil || len(ids) != running["cell-b"] || running["cell-0"]+running["cell-b"] != n {
			return false, fmt.Sprintf("containers on cell-b %v %v; running %v per index %v", ids, err, running, perIndex)
		}
		return s.answersAll(host, n)
	})
	t.Logf("cell restarted at once: all %d instances RUNNING and routable %s after kill -9", n, time.Since(lost).Round(100*time.Millisecond))
	// The premise: the server never forgot the cell (else this is the
	// plain loss case of heal_test.go).
	if log := s.logTail(logFrom, 1<<20); regexp.MustCompile(`cell removed.*cell_id=cell-b reason="presence expired"`).MatchString(log) {
		t.Fatalf("cell-b took longer than the presence TTL to come back; server log:\n%s", log)
	}
}
