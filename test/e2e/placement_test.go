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
	t.Parallel()
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

// An app bigger than every cell is not left waiting silently: push ends
// with the reason, the instance is DOWN with it in `pando app` and the
// API's stats; once a cell that can take it joins, it is placed there and
// serves, with no action from the user.
func TestPush_memoryAboveEveryCellIsPlacedWhenABigEnoughCellJoins(t *testing.T) {
	t.Parallel()
	// The local cell fits a staging (1024 MB), not the app.
	s := ownServer(t, "--cell-memory-mb", "1024")
	const name = "waitsforcell"
	r := s.pandoWithin(t, 3*time.Minute, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "2G")
	if r.code == 0 {
		t.Fatalf("push of an app no cell can fit succeeded:\n%s", r)
	}
	requireOutput(t, r, "insufficient resources: memory", "lower -m")
	requireOutput(t, s.pando(t, "app", name), `(?m)^#0\s+down\s.*insufficient resources: memory`)

	var stats struct {
		Resources []struct {
			Index   int     `json:"index"`
			State   string  `json:"state"`
			Details *string `json:"details"`
		} `json:"resources"`
	}
	statsPath := "/v3/apps/" + s.appGUID(t, name) + "/processes/web/stats"
	s.api(t, statsPath, &stats)
	if len(stats.Resources) != 1 || stats.Resources[0].State != "DOWN" || stats.Resources[0].Details == nil ||
		*stats.Resources[0].Details != "insufficient resources: memory" {
		t.Fatalf("process stats of the unplaceable instance: %s", s.api(t, statsPath, nil))
	}

	joined := time.Now()
	s.joinCell(t, "cell-big", "127.0.0.2", "--memory", "4G")
	eventually(t, "the instance RUNNING on the joined cell", waitTimeout, func() (bool, string) {
		running, perIndex := runningByCell(s.cells(t), name)
		return running["cell-big"] == 1 && len(perIndex) == 1, fmt.Sprint(running, perIndex)
	})
	t.Logf("placed and running %s after the big cell joined", time.Since(joined).Round(100*time.Millisecond))
	eventually(t, "the instance answers through the router", waitTimeout, func() (bool, string) { return s.answersAll(name+".localhost", 1) })
	s.api(t, statsPath, &stats)
	if len(stats.Resources) != 1 || stats.Resources[0].State != "RUNNING" || stats.Resources[0].Details != nil {
		t.Fatalf("process stats once placed: %s", s.api(t, statsPath, nil))
	}
	app := s.mustPando(t, "app", name)
	requireOutput(t, app, `(?m)^#0\s+running\s`)
	if strings.Contains(app.out(), "insufficient resources") {
		t.Fatalf("pando app still shows the placement error once placed:\n%s", app.out())
	}
}
