package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill9 kills the server process with SIGKILL (its process only, not the
// containers of a joined cell), as a crash would, and waits for it.
func (s *server) kill9(t *testing.T) {
	t.Helper()
	cmd, exited := s.running()
	if cmd == nil {
		t.Fatal("kill -9: the server is not running")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the server: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(shutdownTimeout):
		t.Fatal("the server did not die of SIGKILL")
	}
	s.mu.Lock()
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
}

// restartAfterKill9 is a crash and the operator's restart: kill9, then
// the server started again on the same data dir and addresses. It returns
// the log offset where the new process's log begins.
func (s *server) restartAfterKill9(t *testing.T) int64 {
	t.Helper()
	s.kill9(t)
	logFrom := s.logSize()
	if err := s.start(); err != nil {
		t.Fatalf("start the server again after kill -9: %v", err)
	}
	return logFrom
}

// processUptimes reads the uptime of each instance of an app's web
// process, by index.
func (s *server) processUptimes(t *testing.T, appGUID string) map[int]int {
	t.Helper()
	var stats struct {
		Resources []struct {
			Index  int    `json:"index"`
			State  string `json:"state"`
			Uptime int    `json:"uptime"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+appGUID+"/processes/web/stats", &stats)
	out := map[int]int{}
	for _, r := range stats.Resources {
		if r.State == "RUNNING" {
			out[r.Index] = r.Uptime
		}
	}
	return out
}

// A kill -9 of `pando server` while instances run on a joined cell: after
// the restart the cell's instances were never restarted (same containers,
// uptime going on) and the app is routable again through the in-process
// router; a staging that ran on the joined cell through the restart
// completes, its droplet is recorded, and the app runs it; so does a CF
// task running there.
func TestServerKill9_joinedCellInstancesAndStagingSurvive(t *testing.T) {
	t.Parallel()
	// The local cell is smaller than a staging (1024 MB) and than the
	// app's instances (1 GB): all of it runs on the joined cell.
	s := ownServer(t, "--cell-memory-mb", "900")
	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "6G")
	cs := &server{root: c.root, dataDir: c.dataDir}

	const name, n = "survivor", 2
	host := name + ".localhost"
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-i", fmt.Sprint(n), "-m", "1G")
	requireOutput(t, r, fmt.Sprintf(`web: %d of %d instances running`, n, n))
	eventually(t, "every instance answers through the router", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })
	guid := s.appGUID(t, name)
	appContainers := func() ([]string, error) {
		ids, err := cs.containers()
		return slices.DeleteFunc(ids, func(id string) bool { return !strings.HasPrefix(id, "app-") }), err // not stagings
	}
	before, err := appContainers()
	if err != nil || len(before) != n {
		t.Fatalf("containers on cell-b before the kill: %v %v, want %d", before, err, n)
	}
	upBefore := s.processUptimes(t, guid)

	// A push whose staging sleeps on the joined cell while the server dies.
	s.startSlowPush(t, 25*time.Second, "256M")
	lateGUID := s.appGUID(t, "late")
	// And a CF task of the survivor (1 GB: on the joined cell) that ends
	// after the restart.
	s.mustPando(t, "run-task", name, "--command", "sleep 20; echo napped", "--name", "nap")
	eventually(t, "the nap task running", waitTimeout, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^1\s+nap\s+RUNNING`).MatchString(r.stdout), r.out()
	})

	killed := time.Now()
	logFrom := s.restartAfterKill9(t)

	// The instances: adopted, not started again.
	eventually(t, "every instance answers through the router after the restart", waitTimeout, func() (bool, string) { return s.answersAll(host, n) })
	t.Logf("server kill -9 and restart: the joined cell's %d instances answer again %s after the kill", n, time.Since(killed).Round(100*time.Millisecond))
	after, err := appContainers()
	if err != nil || !slices.Equal(after, before) {
		t.Fatalf("containers on cell-b after the restart: %v %v, want the same as before %v", after, err, before)
	}
	upAfter := s.processUptimes(t, guid)
	for i := range n {
		if upAfter[i] < upBefore[i] {
			t.Errorf("instance %d uptime %ds after the restart, %ds before: it was restarted", i, upAfter[i], upBefore[i])
		}
	}
	if log := s.logTail(logFrom, 1<<20); strings.Count(log, "instance adopted") < n || !strings.Contains(log, "task adopted") {
		t.Errorf("the server log does not say it adopted the %d instances and the staging:\n%s", n, log)
	}

	// The task: completed on the cell after the restart and recorded.
	eventually(t, "the nap task SUCCEEDED", 2*time.Minute, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^1\s+nap\s+SUCCEEDED`).MatchString(r.stdout), r.out()
	})

	// The staging: completed on the cell after the restart and recorded.
	var droplets struct {
		Resources []struct {
			GUID  string `json:"guid"`
			State string `json:"state"`
		} `json:"resources"`
	}
	eventually(t, "the late app's droplet STAGED", 2*time.Minute, func() (bool, string) {
		s.api(t, "/v3/apps/"+lateGUID+"/droplets", &droplets)
		for _, d := range droplets.Resources {
			if d.State == "STAGED" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", droplets.Resources)
	})
	var droplet string
	for _, d := range droplets.Resources {
		if d.State == "STAGED" {
			droplet = d.GUID
		}
	}
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	if code, out := s.call(t, token, "PATCH", "/v3/apps/"+lateGUID+"/relationships/current_droplet",
		`{"data":{"guid":"`+droplet+`"}}`); code != http.StatusOK {
		t.Fatalf("set the late app's droplet: %d %v", code, out)
	}
	s.mustPando(t, "start", "late")
	eventually(t, "the late app answers through the router", waitTimeout, func() (bool, string) {
		status, body, err := s.get("late.localhost", "/")
		return err == nil && status == http.StatusOK && strings.Contains(body, "binary app index=0"), fmt.Sprint(status, body, err)
	})
	// The survivor was never restarted meanwhile either.
	if again, err := cs.containers(); err != nil || !slices.Contains(again, before[0]) || !slices.Contains(again, before[1]) {
		t.Fatalf("containers on cell-b at the end: %v %v, want %v among them", again, err, before)
	}
}
