package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heldLeases counts the host id leases (machine-wide, under /run/pando/ids)
// held for containers of this server's runc backend.
func (s *server) heldLeases(t *testing.T) int {
	t.Helper()
	dir := "/run/pando/ids"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(s.dataDir, "containers") + " "
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(string(b), owner) {
			n++
		}
	}
	return n
}

// shimSockets counts the sockets of this server's container shims.
func (s *server) shimSockets(t *testing.T) int {
	t.Helper()
	sum := sha256.Sum256([]byte(filepath.Join(s.dataDir, "containers")))
	ents, err := os.ReadDir(filepath.Join("/run/pando/shims", hex.EncodeToString(sum[:4])))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A kill -9 of `pando server` while a staging and a CF task run on its
// own cell: after the restart the cell adopts both containers; the
// staging's compile goes on (its lines, also those printed while the
// server was down, reach the app's log), its droplet is uploaded and the
// waiting `pando push` ends with the app running; the task completes and
// SUCCEEDED. Nothing of either is left behind: no container, volume,
// host id lease or shim socket beyond the app instances'.
func TestServerKill9_localCellStagingAndTaskSurvive(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const name = "napper"
	s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")

	// The compile sleeps long enough for the server to die and come back.
	push := s.startSlowPush(t, 15*time.Second, "128M")
	s.mustPando(t, "run-task", name, "--command", "echo napping; sleep 15; echo napped", "--name", "nap", "-m", "64M")
	eventually(t, "the nap task running", waitTimeout, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^1\s+nap\s+RUNNING`).MatchString(r.stdout), r.out()
	})
	eventually(t, "the task's container runs (it printed its first line)", waitTimeout, func() (bool, string) {
		r := s.pando(t, "logs", name, "--recent")
		return strings.Contains(r.stdout, "napping"), r.out()
	})
	before, err := s.containers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(before, func(id string) bool { return strings.HasPrefix(id, "stg-") }) ||
		!slices.ContainsFunc(before, func(id string) bool { return strings.HasPrefix(id, "task-") }) {
		t.Fatalf("containers before the kill: %v, want a staging and a task", before)
	}

	logFrom := s.restartAfterKill9(t)
	if log := s.logTail(logFrom, 1<<20); strings.Count(log, "task adopted") < 2 {
		t.Errorf("the server log does not say the local cell adopted the staging and the task:\n%s", log)
	}

	// Its staging output resumed after the restart.
	s.requireSlowPushDone(t, push)

	eventually(t, "the nap task SUCCEEDED", 2*time.Minute, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^1\s+nap\s+SUCCEEDED`).MatchString(r.stdout), r.out()
	})
	eventually(t, "the task's output after the restart in the app's log", waitTimeout, func() (bool, string) {
		r := s.pando(t, "logs", name, "--recent")
		return strings.Contains(r.stdout, "napped"), r.out()
	})

	// Only the two apps' instances are left.
	eventually(t, "nothing of the staging and the task left", waitTimeout, func() (bool, string) {
		ids, err := s.containers()
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, sub := range []string{"staging", "tasks", "task-records"} {
			ents, _ := os.ReadDir(filepath.Join(s.dataDir, "cell", sub))
			for _, e := range ents {
				left = append(left, sub+"/"+e.Name())
			}
		}
		apps := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !strings.HasPrefix(id, "app-") })
		ok := len(ids) == 2 && len(apps) == 2 && len(left) == 0 && len(s.volumeMounts(t)) == 2 &&
			s.loopDevices(t) == 2 && s.heldLeases(t) == 2 && s.shimSockets(t) == 2
		return ok, strings.Join([]string{strings.Join(ids, ","), strings.Join(left, ","),
			strings.Join(s.volumeMounts(t), ","), strconv.Itoa(s.loopDevices(t)), strconv.Itoa(s.heldLeases(t)), strconv.Itoa(s.shimSockets(t))}, " | ")
	})
}

// A kill -9 of `pando server` while its own cell stages, the staging's
// container ending while the server is down: the restarted cell takes
// the exit status (and the output the shim held) and uploads the droplet
// from the staging's files; the waiting push ends with the app running.
func TestServerKill9_localCellStagingThatEndsWhileTheServerIsDownCompletes(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	quick := buildpackZip(t, map[string]string{
		"bin/detect":   "#!/bin/sh\nexit 1\n",
		"bin/finalize": "#!/bin/sh\necho 'quick buildpack is sleeping'\nsleep 3\necho 'quick buildpack done'\n",
		"bin/release":  "#!/bin/sh\necho '---'\necho 'default_process_types: {web: ./server}'\n",
	})
	s.mustPando(t, "create-buildpack", "quickpack", quick, "9")
	push := s.startCLI(t, pushTimeout, "push", "brief", "-p", binaryApp(t), "-b", "quickpack", "-m", "128M")
	eventually(t, "staging of brief reaches the buildpack", waitTimeout, func() (bool, string) {
		out := push.out.String()
		return strings.Contains(out, "quick buildpack is sleeping"), out
	})
	s.kill9(t)
	// The container ends while no server runs: its shim writes its status.
	eventually(t, "the staging container exited", waitTimeout, func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(s.dataDir, "containers", "bundles", "stg-*", "exit.json"))
		return len(m) == 1, strings.Join(m, ",")
	})
	logFrom := s.logSize()
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	if log := s.logTail(logFrom, 1<<20); !strings.Contains(log, "ended container adopted") || !strings.Contains(log, "task adopted") {
		t.Errorf("the server log does not say the local cell adopted the ended staging container:\n%s", log)
	}
	r := push.wait(t, pushTimeout)
	if r.code != 0 {
		t.Fatalf("push of brief across the restart: %s", r)
	}
	requireOutput(t, r, `quick buildpack done`, `Uploading complete`, `(?m)^#0\s+running`)
	// The staging log is whole across the restart: no line lost or twice.
	for _, l := range []string{"quick buildpack is sleeping", "quick buildpack done", "Uploading droplet...", "Uploading complete"} {
		if n := strings.Count(r.stdout, "   "+l+"\n"); n != 1 {
			t.Errorf("push printed %q %d times, want once:\n%s", l, n, r)
		}
	}
	eventually(t, "the brief app answers through the router", waitTimeout, func() (bool, string) {
		status, body, err := s.get("brief.localhost", "/")
		return err == nil && status == 200 && strings.Contains(body, "binary app index=0"), body
	})
	eventually(t, "nothing of the staging left", waitTimeout, func() (bool, string) {
		ids, err := s.containers()
		ents, _ := os.ReadDir(filepath.Join(s.dataDir, "cell", "staging"))
		return err == nil && len(ids) == 1 && strings.HasPrefix(ids[0], "app-") && len(ents) == 0 &&
			s.heldLeases(t) == 1 && s.shimSockets(t) == 1 && s.loopDevices(t) == 1, strings.Join(ids, ",")
	})
}
