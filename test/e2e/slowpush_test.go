package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// startSlowPush creates the "slowpack" buildpack, whose compile prints
// "slow buildpack is sleeping", sleeps for sleep and prints "slow
// buildpack woke up", and starts `pando push late` with it and memory.
// It returns once the compile sleeps: long enough for the caller to stop
// or kill the server and bring it back meanwhile.
func (s *server) startSlowPush(t *testing.T, sleep time.Duration, memory string) *background {
	t.Helper()
	slow := buildpackZip(t, map[string]string{
		"bin/detect":   "#!/bin/sh\nexit 1\n",
		"bin/finalize": fmt.Sprintf("#!/bin/sh\necho 'slow buildpack is sleeping'\nsleep %d\necho 'slow buildpack woke up'\n", int(sleep.Seconds())),
		"bin/release":  "#!/bin/sh\necho '---'\necho 'default_process_types: {web: ./server}'\n",
	})
	s.mustPando(t, "create-buildpack", "slowpack", slow, "9")
	push := s.startCLI(t, pushTimeout, "push", "late", "-p", binaryApp(t), "-b", "slowpack", "-m", memory)
	eventually(t, "staging of late reaches the slow buildpack", waitTimeout, func() (bool, string) {
		out := push.out.String()
		return strings.Contains(out, "slow buildpack is sleeping"), out
	})
	return push
}

// requireSlowPushDone waits for the push startSlowPush started across a
// server restart: it ends well, its output has the whole staging (the
// lines printed before, during and after the restart), late answers
// through the router, and the app's log holds the rest of the staging.
func (s *server) requireSlowPushDone(t *testing.T, push *background) {
	t.Helper()
	r := push.wait(t, pushTimeout)
	if r.code != 0 {
		t.Fatalf("push of late across the restart: %s", r)
	}
	requireOutput(t, r, `slow buildpack is sleeping`, `slow buildpack woke up`, `Uploading complete`, `(?m)^#0\s+running`)
	eventually(t, "the late app answers through the router", waitTimeout, func() (bool, string) {
		status, body, err := s.get("late.localhost", "/")
		return err == nil && status == 200 && strings.Contains(body, "binary app index=0"), body
	})
	// The log store is the new process's: the staging's lines after the
	// restart (those printed while the server was down too) are there.
	eventually(t, "the rest of the staging log", waitTimeout, func() (bool, string) {
		r := s.pando(t, "logs", "late", "--recent")
		return strings.Contains(r.stdout, "slow buildpack woke up") && strings.Contains(r.stdout, "Uploading complete"), r.out()
	})
}

// appContainers lists the server's app instance containers (not stagings
// or tasks).
func (s *server) appContainers(t *testing.T) []string {
	t.Helper()
	ids, err := s.containers()
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ids, func(id string) bool { return !strings.HasPrefix(id, "app-") })
}
