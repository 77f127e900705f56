package cli

import (
	"strings"
	"testing"
	"time"
)

// startHarness is a logged-in harness for 'pando start' of a stopped,
// staged app whose instances go through stats.
func startHarness(t *testing.T, instances int, stats [][]statEntry) (*fakeCF, *harness) {
	t.Helper()
	f := newFakeCF(t)
	f.appExists = true
	f.instances = instances
	f.stats = stats
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	return f, h
}

func TestWait_allInstancesUnplaceableFailsAtOnceWithTheReason(t *testing.T) {
	_, h := startHarness(t, 1, [][]statEntry{
		{{state: "STARTING"}},
		{{state: "DOWN", details: "insufficient resources: memory"}},
	})
	start := time.Now()
	// A wait far beyond the test's own timeout: only giving up at once
	// passes.
	err := h.run("start", "myapp", "--wait-timeout", "1h")
	if err == nil {
		t.Fatal("start succeeded")
	}
	want := "web: 0 of 1 instances running: insufficient resources: memory (the cells cannot fit the app; lower -m/-k or -i)"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestWait_partlyUnplaceableKeepsWaitingAndNamesTheReasonOnTimeout(t *testing.T) {
	_, h := startHarness(t, 2, [][]statEntry{
		{{state: "RUNNING"}, {state: "DOWN", details: "insufficient resources: memory"}},
	})
	err := h.run("start", "myapp", "--wait-timeout", "50ms")
	if err == nil {
		t.Fatal("start succeeded")
	}
	if !strings.Contains(err.Error(), "did not start within 50ms: 1 of 2 instances running, 1 down; insufficient resources: memory (the cells cannot fit the app") {
		t.Errorf("err = %v", err)
	}
}

func TestWait_showsEachCrashReasonOnceAndSucceedsWhenRunning(t *testing.T) {
	never := "Instance never healthy after 1m0s: Failed to make TCP connection to port 8080: connection refused"
	exited := "APP/PROC/WEB/0 Exited with status 3"
	f, h := startHarness(t, 1, [][]statEntry{
		{{state: "STARTING"}},
		{{state: "STARTING", details: never}},
		{{state: "STARTING", details: never}},
		{{state: "STARTING", details: exited}},
		{{state: "RUNNING"}},
	})
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\nstdout:\n%s\nstderr:\n%s", err, h.out, h.err)
	}
	out := h.out.String()
	for _, want := range []string{"   web #0 crashed: " + never + "; restarting\n", "   web #0 crashed: " + exited + "; restarting\n"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%q shown %d times, want once:\n%s", want, n, out)
		}
	}
	if strings.Index(out, never) > strings.Index(out, exited) || !strings.Contains(out, "web: 1 of 1 instances running") {
		t.Errorf("output:\n%s", out)
	}
	// The wait long-polls; only the app summary afterwards reads plain
	// stats.
	reqs := strings.Join(f.requests(), "\n")
	lastPoll := strings.Index(reqs, "/pando/v1/processes/"+appGUID+"/stats?since=h3")
	if plain := strings.Index(reqs, "/v3/processes/"+appGUID+"/stats"); lastPoll < 0 || plain < lastPoll {
		t.Errorf("the wait did not long-poll:\n%s", reqs)
	}
}

func TestWait_timeoutNamesTheLastCrashReason(t *testing.T) {
	_, h := startHarness(t, 1, [][]statEntry{
		{{state: "STARTING", details: "APP/PROC/WEB/0 Exited with status 1"}},
		{{state: "STARTING", details: "APP/PROC/WEB/0 Exited with status 3"}},
	})
	err := h.run("start", "myapp", "--wait-timeout", "50ms")
	if err == nil {
		t.Fatal("start succeeded")
	}
	want := "myapp did not start within 50ms: 0 of 1 instances running, 1 starting; last crash: APP/PROC/WEB/0 Exited with status 3 (see 'pando logs myapp --recent')"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

func TestWait_oneCrashedInstanceAmongOthersIsShownNotFatal(t *testing.T) {
	_, h := startHarness(t, 2, [][]statEntry{
		{{state: "RUNNING"}, {state: "CRASHED", details: "APP/PROC/WEB/1 Exited with status 1"}},
		{{state: "RUNNING"}, {state: "RUNNING"}},
	})
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\nstderr:\n%s", err, h.err)
	}
	if !strings.Contains(h.out.String(), "   web #1 crashed: APP/PROC/WEB/1 Exited with status 1\n") {
		t.Errorf("output:\n%s", h.out)
	}
}

func TestWait_allCrashedStillFailsAtOnce(t *testing.T) {
	_, h := startHarness(t, 2, [][]statEntry{
		{{state: "STARTING"}, {state: "STARTING"}},
		{{state: "CRASHED", details: "APP/PROC/WEB/0 Exited with status 2"}, {state: "CRASHED", details: "APP/PROC/WEB/1 Exited with status 2"}},
	})
	err := h.run("start", "myapp", "--wait-timeout", "1h")
	if err == nil || !strings.Contains(err.Error(), "myapp crashed: APP/PROC/WEB/0 Exited with status 2") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(h.err.String(), "Instance web/0 crashed: APP/PROC/WEB/0 Exited with status 2") {
		t.Errorf("stderr:\n%s", h.err)
	}
}

func TestPlacementHint_namesWhatToDo(t *testing.T) {
	for reason, want := range map[string]string{
		"insufficient resources: disk, memory":                     "lower -m/-k or -i",
		`found no compatible cell: no cell has stack "cflinuxfs4"`: "no cell offers the app's stack",
		"no healthy cells":                         "no cell can take work",
		"no healthy cells: every cell is draining": "no cell can take work",
	} {
		if got := placementHint(reason); !strings.Contains(got, want) {
			t.Errorf("placementHint(%q) = %q, want it to say %q", reason, got, want)
		}
	}
}
