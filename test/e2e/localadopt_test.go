package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// initPid is the pid of a container's init, from runc.
func (s *server) initPid(t *testing.T, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runc", "--root", s.runcRoot(), "state", id).Output()
	if err != nil {
		t.Fatalf("runc state %s: %v", id, err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		t.Fatalf("runc state %s: %q %v", id, out, err)
	}
	return st.Pid
}

// getInside requests path from port 8080 inside the network namespace of
// the process pid, reaching the app without the server (the router and
// the host-port forwarders are in it): the socket is made on a thread
// that entered the namespace (and dies with its goroutine).
func getInside(pid int, path string) (int, error) {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- dialed{err: fmt.Errorf("enter the network namespace: %w", err)}
			return
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 5*time.Second)
		ch <- dialed{c, err}
	}()
	d := <-ch
	if d.err != nil {
		return 0, d.err
	}
	defer d.conn.Close()
	_ = d.conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(d.conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(d.conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A kill -9 of `pando server` while an app that logs every request runs
// on the server's own cell: the app keeps running and answering while
// the server is down (its output goes to its shim, not to a broken pipe),
// and after the restart it is the same container with its uptime going
// on, routable again, its log lines (those logged while the server was
// down, and after) in its log, and a crash of it is still seen and
// restarted.
func TestServerKill9_localCellInstancesSurviveAndKeepLogging(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const name = "steadfast"
	host := name + ".localhost"
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "still here\n"})
	// busybox httpd -vv logs every request's URL on stderr.
	s.mustPando(t, "push", name, "-p", dir, "-b", "binary_buildpack", "-m", "64M",
		"-c", "exec busybox httpd -f -vv -p $PORT -h /home/vcap/app")
	s.waitRoute(t, host, "/", "the app answering", func(status int, body string) bool {
		return status == http.StatusOK && body == "still here\n"
	})
	guid := s.appGUID(t, name)
	before := s.appContainers(t)
	if len(before) != 1 {
		t.Fatalf("app containers before the kill: %v, want 1", before)
	}
	upBefore := s.processUptimes(t, guid)
	if status, _, err := s.get(host, "/before-the-kill"); err != nil || status != http.StatusNotFound {
		t.Fatalf("request before the kill: %d %v", status, err)
	}
	eventually(t, "the app logs each request", waitTimeout, func() (bool, string) {
		r := s.pando(t, "logs", name, "--recent")
		return strings.Contains(r.stdout, "url:/before-the-kill"), r.out()
	})

	logFrom := s.logSize()
	s.kill9(t)
	// The server is gone: the app answers (and logs) every request.
	pid := s.initPid(t, before[0])
	const during = 40
	for i := range during {
		if code, err := getInside(pid, fmt.Sprintf("/while-the-server-was-down-%d", i)); err != nil || code != http.StatusNotFound {
			t.Fatalf("request %d while the server is down: %d %v: the app died", i, code, err)
		}
	}
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}

	s.waitRoute(t, host, "/", "the adopted instance answering through the router", func(status int, body string) bool {
		return status == http.StatusOK && body == "still here\n"
	})
	if after := s.appContainers(t); !slices.Equal(after, before) {
		t.Fatalf("app containers after the restart: %v, want the same as before %v", after, before)
	}
	if s.initPid(t, before[0]) != pid {
		t.Fatal("the container's init changed: the app was restarted")
	}
	upAfter := s.processUptimes(t, guid)
	if upAfter[0] < upBefore[0] {
		t.Errorf("uptime %ds after the restart, %ds before: the instance was restarted", upAfter[0], upBefore[0])
	}
	if log := s.logTail(logFrom, 1<<20); !strings.Contains(log, "instance adopted") {
		t.Errorf("the server log does not say the local cell adopted the instance:\n%s", log)
	}
	for i := range 3 {
		if status, _, err := s.get(host, fmt.Sprintf("/after-the-restart-%d", i)); err != nil || status != http.StatusNotFound {
			t.Fatalf("request after the restart: %d %v", status, err)
		}
	}
	// (The log store is in memory: lines from before the kill are gone.)
	eventually(t, "the app's log has the lines logged while the server was down and after", waitTimeout, func() (bool, string) {
		r := s.pando(t, "logs", name, "--recent")
		return strings.Contains(r.stdout, "url:/while-the-server-was-down-0") &&
			strings.Contains(r.stdout, fmt.Sprintf("url:/while-the-server-was-down-%d", during-1)) &&
			strings.Contains(r.stdout, "url:/after-the-restart-2"), r.out()
	})

	// A crash of the adopted instance is seen and the instance restarted.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := exec.CommandContext(ctx, "runc", "--root", s.runcRoot(), "kill", before[0], "KILL").CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("runc kill: %v: %s", err, out)
	}
	eventually(t, "the crash recorded as an event", waitTimeout, func() (bool, string) {
		r := s.pando(t, "events", name)
		return strings.Contains(r.stdout, "audit.app.process.crash"), r.out()
	})
	s.waitRoute(t, host, "/", "the restarted instance answering", func(status int, body string) bool {
		return status == http.StatusOK && body == "still here\n"
	})
	eventually(t, "a new container for the instance", waitTimeout, func() (bool, string) {
		now := s.appContainers(t)
		return len(now) == 1 && now[0] != before[0], fmt.Sprint(now)
	})
}
