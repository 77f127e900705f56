package e2e

import (
	"strings"
	"testing"
	"time"
)

// A tailing pando logs outlives a kill -9 of the server and its restart:
// it says it reconnects, resumes, and prints no line twice.
func TestLogs_tailResumesAfterAServerRestart(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const name = "tailed"
	host := name + ".localhost"
	s.pushBinary(t, name, 1)

	tail := s.startCLI(t, 5*time.Minute, "logs", name)
	eventually(t, "the tail shows a request made after it started", waitTimeout, func() (bool, string) {
		s.get(host, "/before-restart")
		return strings.Contains(tail.out.String(), "GET /before-restart"), tail.out.String()
	})

	s.restartAfterKill9(t)
	eventually(t, "the tail shows a request made after the restart", waitTimeout, func() (bool, string) {
		s.get(host, "/after-restart")
		return strings.Contains(tail.out.String(), "GET /after-restart"), tail.out.String()
	})
	out := tail.out.String()
	select {
	case <-tail.done:
		t.Fatalf("pando logs exited: %s", tail.result)
	default:
	}
	if n := strings.Count(out, "reconnecting..."); n != 1 {
		t.Errorf("said reconnecting %d times, want once:\n%s", n, out)
	}
	// Each request before the restart was printed once, though the tail
	// resumed from the last line it had printed.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "GET /before-restart") && strings.Count(out, l) != 1 {
			t.Errorf("line printed again after the restart: %q\n%s", l, out)
		}
	}
}
