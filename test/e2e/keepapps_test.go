package e2e

import (
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sigtermKeepingApps sends the server SIGTERM and requires status 0
// within the shutdown timeout; unlike stop, it expects the apps left
// running (--keep-apps-on-stop).
func (s *server) sigtermKeepingApps(t *testing.T) {
	t.Helper()
	cmd, exited := s.running()
	if cmd == nil {
		t.Fatal("SIGTERM: the server is not running")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(shutdownTimeout):
		t.Fatalf("pando server did not exit within %s of SIGTERM", shutdownTimeout)
	}
	s.mu.Lock()
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if err := s.exitErr(); err != nil {
		t.Fatalf("pando server exited with %v after SIGTERM, want status 0", err)
	}
}

// `pando server --keep-apps-on-stop` stopped with SIGTERM (a systemctl
// restart) while an app runs and another app stages on its own cell:
// the server exits 0 saying what it left running, the app's container
// keeps running and answering meanwhile, and after the restart it is the
// same container (same init, uptime going on, no crash event) answering
// through the router; the staging goes on and the waiting push ends with
// its app running.
func TestServerSIGTERM_keepAppsOnStopLeavesAppsAndStagingsRunning(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--keep-apps-on-stop")
	const name = "keeper"
	host := name + ".localhost"
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "kept\n"})
	s.mustPando(t, "push", name, "-p", dir, "-b", "binary_buildpack", "-m", "64M",
		"-c", "exec busybox httpd -f -p $PORT -h /home/vcap/app")
	s.waitRoute(t, host, "/", "the app answering", func(status int, body string) bool {
		return status == http.StatusOK && body == "kept\n"
	})
	guid := s.appGUID(t, name)

	// The compile sleeps long enough for the server to stop and come back.
	push := s.startSlowPush(t, 15*time.Second, "128M")

	before := s.appContainers(t)
	if len(before) != 1 {
		t.Fatalf("app containers before the stop: %v, want 1", before)
	}
	pid := s.initPid(t, before[0])
	upBefore := s.processUptimes(t, guid)

	logFrom := s.logSize()
	s.sigtermKeepingApps(t)
	if log := s.logTail(logFrom, 1<<20); !strings.Contains(log, "apps left running for the next start") ||
		!strings.Contains(log, "instances=1 stagings_and_tasks=1") {
		t.Errorf("the server log does not say it left 1 instance and 1 staging running:\n%s", log)
	}
	ids, err := s.containers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, before[0]) || !slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, "stg-") }) {
		t.Fatalf("containers after the stop: %v, want the app's %s and the staging's", ids, before[0])
	}
	// The server is gone: the app answers in its own container.
	if code, err := getInside(pid, "/"); err != nil || code != http.StatusOK {
		t.Fatalf("the app while the server is stopped: %d %v", code, err)
	}

	logFrom = s.logSize()
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	s.waitRoute(t, host, "/", "the adopted instance answering through the router", func(status int, body string) bool {
		return status == http.StatusOK && body == "kept\n"
	})
	if after := s.appContainers(t); !slices.Contains(after, before[0]) {
		t.Fatalf("app containers after the restart: %v, want %s still", after, before[0])
	}
	if s.initPid(t, before[0]) != pid {
		t.Fatal("the container's init changed: the app was restarted")
	}
	if upAfter := s.processUptimes(t, guid); upAfter[0] < upBefore[0] {
		t.Errorf("uptime %ds after the restart, %ds before: the instance was restarted", upAfter[0], upBefore[0])
	}
	if log := s.logTail(logFrom, 1<<20); !strings.Contains(log, "instance adopted") || !strings.Contains(log, "task adopted") {
		t.Errorf("the server log does not say the local cell adopted the instance and the staging:\n%s", log)
	}

	// Its staging output resumed after the restart: the stopping server
	// ended the log stream, and the push reconnected.
	s.requireSlowPushDone(t, push)
	if ev := s.pando(t, "events", name); strings.Contains(ev.stdout, "crash") || strings.Contains(ev.stdout, "rescheduling") {
		t.Errorf("the kept app has a crash or restart event:\n%s", ev.out())
	}
	if after := s.appContainers(t); len(after) != 2 || !slices.Contains(after, before[0]) {
		t.Errorf("app containers at the end: %v, want %s and late's", after, before[0])
	}
}
