package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A staging that fails while the server cannot read its output (frozen
// with SIGSTOP, then killed -9): the lines the container wrote meanwhile,
// its last and most useful ones, were in the socket to the dead server,
// never stored. The shim held them until a server acknowledges them, so
// the restarted server stores them and the waiting push prints each one
// once, then the failure.
func TestServerKill9_stagingOutputTheKilledServerNeverStoredIsPrintedOnce(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const lines = 300
	talkative := buildpackZip(t, map[string]string{
		"bin/detect": "#!/bin/sh\nexit 1\n",
		// The sleep is the time the test has to freeze the server.
		"bin/finalize": "#!/bin/sh\necho 'talkative buildpack is thinking'\nsleep 5\n" +
			fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo \"talkative line $i\"; i=$((i+1)); done\n", lines) +
			"echo 'talkative buildpack gives up: libfoo is missing'\nexit 1\n",
		"bin/release": "#!/bin/sh\necho '---'\necho 'default_process_types: {web: ./server}'\n",
	})
	s.mustPando(t, "create-buildpack", "talkpack", talkative, "9")
	push := s.startCLI(t, pushTimeout, "push", "talky", "-p", binaryApp(t), "-b", "talkpack", "-m", "128M")
	eventually(t, "staging of talky reaches the buildpack", waitTimeout, func() (bool, string) {
		out := push.out.String()
		return strings.Contains(out, "talkative buildpack is thinking"), out
	})
	cmd, _ := s.running()
	if cmd == nil {
		t.Fatal("the server is not running")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze the server: %v", err)
	}
	// Should the test end before the kill, the frozen server can stop.
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT) })
	// The staging ends while the server reads nothing.
	eventually(t, "the staging container exited", waitTimeout, func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(s.dataDir, "containers", "bundles", "stg-*", "exit.json"))
		return len(m) == 1, strings.Join(m, ",")
	})
	s.kill9(t)
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	r := push.wait(t, pushTimeout)
	if r.code == 0 {
		t.Fatalf("push of talky succeeded, want its staging failed: %s", r)
	}
	var missing, twice []int
	for i := range lines {
		switch strings.Count(r.stdout, fmt.Sprintf("   talkative line %d\n", i)) {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			twice = append(twice, i)
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("push output lacks %d of the %d lines (first %v) and repeats %d (first %v):\n%s",
			len(missing), lines, missing[:min(5, len(missing))], len(twice), twice[:min(5, len(twice))], r)
	}
	requireOutput(t, r, `(?m)^   talkative buildpack gives up: libfoo is missing$`)
}
