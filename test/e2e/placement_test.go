package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostMemoryMB is the machine's memory, which the local cell offers.
func hostMemoryMB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

func TestPush_memoryAboveEveryCellSaysInsufficientResources(t *testing.T) {
	// The app asks 1 GB more than the cell has (at most the API's 64 GB
	// limit: on a bigger machine the cell is made smaller instead).
	memMB := (hostMemoryMB(t)>>10 + 2) << 10
	var s *server
	if memMB <= 64<<10 {
		s = sharedServer(t)
	} else {
		s, memMB = ownServer(t, "--cell-memory-mb", "4096"), 5<<10
	}
	const name = "toobig"
	s.deleteAppOnCleanup(t, name)

	start := time.Now()
	r := s.pandoWithin(t, 3*time.Minute, "push", name, "-p", staticSite(t, "never served\n"), "-m", fmt.Sprintf("%dM", memMB))
	if r.code == 0 {
		t.Fatalf("push of an app no cell can fit succeeded:\n%s", r)
	}
	requireOutput(t, r, "insufficient resources: memory", "lower -m")
	t.Logf("push failed with the reason after %s", time.Since(start).Round(time.Millisecond))

	// The instance details and the events say why, too.
	requireOutput(t, s.pando(t, "app", name), `(?m)^#0\s+down\s.*insufficient resources: memory`)
	requireOutput(t, s.pando(t, "events", name), "audit.app.process.placement-failed.*reason: insufficient resources: memory")
}
