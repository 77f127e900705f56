package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runningByCell counts app name's RUNNING instances per cell and the
// instances (any state) per index over all cells.
func runningByCell(cs []cellView, name string) (running map[string]int, perIndex map[int]int) {
	running, perIndex = map[string]int{}, map[int]int{}
	for _, v := range cs {
		for _, i := range v.Instances {
			if i.AppName != name {
				continue
			}
			perIndex[i.Index]++
			if i.State == "RUNNING" {
				running[v.ID]++
			}
		}
	}
	return running, perIndex
}

// eachIndexOnce reports whether indexes 0 to n-1 have exactly one
// instance each.
func eachIndexOnce(perIndex map[int]int, n int) bool {
	for i := range n {
		if perIndex[i] != 1 {
			return false
		}
	}
	return true
}

// pushBinary pushes the binary app as name with n instances and requires
// all of them running.
func (s *server) pushBinary(t *testing.T, name string, n int) {
	t.Helper()
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-i", fmt.Sprint(n), "-m", "128M")
	requireOutput(t, r, fmt.Sprintf(`web: %d of %d instances running`, n, n))
}

// requireRunning requires pando app to show n running instances of name.
func (s *server) requireRunning(t *testing.T, name string, n int) {
	t.Helper()
	app := s.mustPando(t, "app", name)
	if got := len(regexp.MustCompile(`(?m)^#\d+\s+running\s`).FindAllString(app.out(), -1)); got != n {
		t.Fatalf("pando app shows %d running instances, want %d:\n%s", got, n, app.out())
	}
}

// containers lists the cell's runc containers.
func (c *cellProc) containers() ([]string, error) {
	return (&server{root: c.root, dataDir: c.dataDir}).containers()
}

// crash kills the cell process and its containers, as a machine that
// loses power.
func (c *cellProc) crash(t *testing.T) {
	t.Helper()
	c.kill()
	c.killContainers(t)
}

// killContainers SIGKILLs every container of the cell, as a machine that
// loses power would.
func (c *cellProc) killContainers(t *testing.T) {
	t.Helper()
	cs := &server{root: c.root, dataDir: c.dataDir}
	ids, err := cs.containers()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "runc", "--root", cs.runcRoot(), "kill", "--all", id, "KILL").CombinedOutput()
		cancel()
		if err != nil && !strings.Contains(string(out), "not running") {
			t.Fatalf("runc kill %s: %v: %s", id, err, out)
		}
	}
}

// answersAll reports whether requests through the router reach every
// index of the app.
func (s *server) answersAll(host string, n int) (bool, string) {
	seen := map[string]int{}
	for range 4 * n {
		status, body, err := s.get(host, "/")
		if err != nil {
			seen[err.Error()]++
			continue
		}
		seen[fmt.Sprintf("%d %s", status, strings.TrimSpace(body))]++
	}
	for i := range n {
		if seen[fmt.Sprintf("200 binary app index=%d greeting=", i)] == 0 {
			return false, fmt.Sprint(seen)
		}
	}
	return true, fmt.Sprint(seen)
}

// A joined cell killed with its containers: its instances run on the
// server's cell within seconds (at the presence deadline, not the next
// convergence pass), and the cell restarted with the same data dir adds
// no duplicates.
func TestJoinedCell_lossReplacesItsInstancesAndRestartAddsNoDuplicates(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--cell-presence-ttl", lossTTL)
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "healed", 4
	host := name + ".localhost"
	s.pushBinary(t, name, n)
	eventually(t, "instances on both cells", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] > 0 && running["cell-b"] > 0 && running["cell-0"]+running["cell-b"] == n, fmt.Sprint(running)
	})
	eventually(t, "every instance answers through the router", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })

	lost := time.Now()
	c.crash(t)
	eventually(t, "every instance RUNNING on cell-0 and answering", 25*time.Second, func() (bool, string) {
		running, perIndex := runningByCell(s.cells(t), name)
		if running["cell-0"] != n || len(perIndex) != n {
			return false, fmt.Sprint(running, perIndex)
		}
		return s.answersAll(host, n)
	})
	t.Logf("cell loss: all %d instances RUNNING and routable on the other cell %s after kill -9", n, time.Since(lost).Round(100*time.Millisecond))

	// The cell comes back with the same data dir: whatever it still had
	// is stopped, each index keeps exactly one instance.
	c.startHealthy(t)
	eventually(t, "no duplicate instances", waitTimeout, func() (bool, string) {
		cs := s.cells(t)
		running, perIndex := runningByCell(cs, name)
		if !eachIndexOnce(perIndex, n) {
			return false, fmt.Sprint(running, perIndex)
		}
		if len(perIndex) != n || running["cell-0"]+running["cell-b"] != n {
			return false, fmt.Sprint(running, perIndex)
		}
		ids, err := c.containers()
		return err == nil && len(ids) == running["cell-b"], fmt.Sprintf("containers on cell-b %v %v; %v", ids, err, cs)
	})
	s.requireRunning(t, name, n)
}

// SIGTERM to a joined cell evacuates it: its instance keeps serving until
// its replacement on the server's cell answers, a client requesting the
// app throughout sees no failure, and the cell exits once nothing of the
// app runs on it.
func TestJoinedCell_sigtermEvacuatesWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "evacuated", 2
	host := name + ".localhost"
	s.pushBinary(t, name, n)
	eventually(t, "an instance on each cell", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] == 1 && running["cell-b"] == 1, fmt.Sprint(running)
	})
	eventually(t, "every instance answers through the router", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })

	// A client requests the app without pause until the cell is gone.
	stopClient := make(chan struct{})
	type tally struct {
		ok     int
		failed []string
	}
	done := make(chan tally, 1)
	var made atomic.Int64 // requests answered or failed
	go func() {
		var got tally
		for {
			select {
			case <-stopClient:
				done <- got
				return
			default:
			}
			status, body, err := s.get(host, "/")
			switch {
			case err != nil:
				got.failed = append(got.failed, err.Error())
			case status != 200 || !strings.HasPrefix(body, "binary app index="):
				got.failed = append(got.failed, fmt.Sprintf("%d %q", status, body))
			default:
				got.ok++
			}
			made.Add(1)
		}
	}()

	started := time.Now()
	if err := c.stop(); err != nil {
		close(stopClient)
		<-done
		t.Fatalf("SIGTERM the joined cell: %v\n%s", err, c.logTail(maxLogShown))
	}
	took := time.Since(started)
	// The client goes on for a few requests after the cell exited.
	after := made.Load() + 20
	eventually(t, "20 requests after the cell exited", waitTimeout, func() (bool, string) {
		return made.Load() >= after, fmt.Sprintf("%d of %d requests", made.Load(), after)
	})
	close(stopClient)
	got := <-done
	t.Logf("evacuation: cell exited %s after SIGTERM; %d requests served, %d failed", took.Round(100*time.Millisecond), got.ok, len(got.failed))
	if len(got.failed) > 0 {
		t.Fatalf("%d requests failed during the evacuation, e.g. %v\ncell log:\n%s", len(got.failed), got.failed[:min(5, len(got.failed))], c.logTail(maxLogShown))
	}
	if got.ok < 10 {
		t.Fatalf("only %d requests made during the evacuation", got.ok)
	}
	if log := c.logTail(1 << 20); !strings.Contains(log, "evacuation done") {
		t.Fatalf("the cell did not wait for its instance to be replaced:\n%s", log)
	}
	running, perIndex := runningByCell(s.cells(t), name)
	if running["cell-0"] != n || len(perIndex) != n {
		t.Fatalf("after the evacuation: running %v, per index %v", running, perIndex)
	}
	if ids, err := c.containers(); err != nil || len(ids) > 0 {
		t.Fatalf("containers left on the evacuated cell: %v %v", ids, err)
	}
}

// A cell cut off from the server (here: its process frozen) keeps its
// instances running; the server places them elsewhere, and when the cell
// is back and learns it was forgotten, it stops them: no index runs twice.
func TestJoinedCell_partitionedCellStopsWhatWasReplacedWhenBack(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--cell-presence-ttl", lossTTL)
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "partitioned", 2
	host := name + ".localhost"
	s.pushBinary(t, name, n)
	eventually(t, "an instance on each cell", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] == 1 && running["cell-b"] == 1, fmt.Sprint(running)
	})

	c.mu.Lock()
	proc := c.cmd.Process
	c.mu.Unlock()
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = proc.Signal(syscall.SIGCONT)
		}
	}()
	eventually(t, "every instance RUNNING on cell-0 and answering", 25*time.Second, func() (bool, string) {
		running, perIndex := runningByCell(s.cells(t), name)
		if running["cell-0"] != n || len(perIndex) != n {
			return false, fmt.Sprint(running, perIndex)
		}
		return s.answersAll(host, n)
	})
	// The cut-off cell did not stop its instance on its own.
	if ids, err := c.containers(); err != nil || len(ids) != 1 {
		t.Fatalf("containers on the partitioned cell: %v %v, want its instance still running", ids, err)
	}

	resumed = true
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replaced instance stopped on cell-b", waitTimeout, func() (bool, string) {
		ids, err := c.containers()
		running, perIndex := runningByCell(s.cells(t), name)
		return err == nil && len(ids) == 0 && running["cell-0"] == n && len(perIndex) == n,
			fmt.Sprintf("containers on cell-b %v %v; running %v per index %v", ids, err, running, perIndex)
	})
	for _, v := range s.cells(t) {
		if v.ID == "cell-b" && v.State != "healthy" {
			t.Fatalf("cell-b after it came back: %+v", v)
		}
	}
	if err := c.exitedErr(); err != nil {
		t.Fatalf("cell-b exited: %v", err)
	}
}

// SIGUSR1 drains a joined cell and keeps it up: it is listed draining,
// its instance moves to the server's cell, and SIGTERM later stops it.
func TestJoinedCell_sigusr1DrainsAndKeepsTheCellUp(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")

	const name, n = "drained", 2
	s.pushBinary(t, name, n)
	eventually(t, "an instance on each cell", waitTimeout, func() (bool, string) {
		running, _ := runningByCell(s.cells(t), name)
		return running["cell-0"] == 1 && running["cell-b"] == 1, fmt.Sprint(running)
	})

	c.mu.Lock()
	proc := c.cmd.Process
	c.mu.Unlock()
	if err := proc.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cell-b draining and empty, its instance on cell-0", waitTimeout, func() (bool, string) {
		cs := s.cells(t)
		state := ""
		for _, v := range cs {
			if v.ID == "cell-b" {
				state = v.State
			}
		}
		running, perIndex := runningByCell(cs, name)
		ids, err := c.containers()
		return state == "draining" && running["cell-0"] == n && len(perIndex) == n && err == nil && len(ids) == 0,
			fmt.Sprintf("cell-b %q; running %v per index %v; containers on cell-b %v %v", state, running, perIndex, ids, err)
	})
	if err := c.exitedErr(); err != nil {
		t.Fatalf("the drained cell exited: %v", err)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("SIGTERM the drained cell: %v\n%s", err, c.logTail(maxLogShown))
	}
}
