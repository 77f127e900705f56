package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// push -l and scale -l set an app's log rate limit. A task printing a
// million 43-byte lines as fast as it can: the default log rate limit
// (16K/s) lets a few hundred a second through, and the user is told how
// many of the rest were dropped, to the line.
func TestLogs_floodIsLimitedAndTheDroppedLinesAreCounted(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "flooder"
	const line = "0123456789abcdef0123456789abcdef0123456789a" // 43 bytes
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "floods\n"), "-l", "32K")
	requireOutput(t, s.mustPando(t, "scale", name), `log rate limit: 32K`)
	s.mustPando(t, "scale", name, "-l", "1K", "-f")
	requireOutput(t, s.mustPando(t, "scale", name), `log rate limit: 1K`)

	r := s.pandoWithin(t, 2*time.Minute, "run-task", name, "--command", "yes "+line+" | head -c 44000000", "--name", "flood", "--wait")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	requireOutput(t, r, `\[APP/TASK/flood/0\] OUT app instance exceeded log rate limit \(16384 bytes/sec\)\n`, `completed successfully`)
	passed := strings.Count(r.stdout, "OUT "+line+"\n")
	dropped := 0
	for _, m := range regexp.MustCompile(`OUT app instance exceeded log rate limit \(16384 bytes/sec\): (\d+) log lines? dropped`).FindAllStringSubmatch(r.stdout, -1) {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	t.Logf("%d lines passed, %d dropped", passed, dropped)
	if passed+dropped != 1_000_000 || passed == 0 {
		t.Errorf("%d lines passed and %d were reported dropped, want 1000000 in all", passed, dropped)
	}
}
