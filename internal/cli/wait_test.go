package cli

import (
	"net/http"
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

// An instance its cell holds back until a start slot frees reads as
// starting, said once, never as a crash.
func TestWait_anInstanceWaitingForAStartSlotIsStartingNotCrashed(t *testing.T) {
	_, h := startHarness(t, 2, [][]statEntry{
		{{state: "STARTING"}, {state: "STARTING"}},
		{{state: "STARTING"}, {state: "STARTING", details: "waiting for a start slot on cell cell-0 (2 ahead)"}},
		{{state: "RUNNING"}, {state: "STARTING", details: "waiting for a start slot on cell cell-0 (1 ahead)"}},
		{{state: "RUNNING"}, {state: "RUNNING"}},
	})
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\nstdout:\n%s\nstderr:\n%s", err, h.out, h.err)
	}
	out := h.out.String()
	if strings.Contains(out, "crash") {
		t.Errorf("a waiting instance read as crashed:\n%s", out)
	}
	if n := strings.Count(out, "waiting for a start slot"); n != 1 || !strings.Contains(out, "   web #1 is waiting for a start slot on cell cell-0 (2 ahead)") {
		t.Errorf("the wait for a start slot said %d times, want once:\n%s", n, out)
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

// What a cell logs as an error about starting instances (a wrong port,
// found after 3 s) is shown while the wait goes on, once, instead of
// only after the start timeout; lines from before the wait are not.
func TestWait_showsWhatTheCellLogsAboutStartingInstances(t *testing.T) {
	f, h := startHarness(t, 1, [][]statEntry{
		{{state: "STARTING"}}, {{state: "STARTING"}}, {{state: "STARTING"}}, {{state: "STARTING"}},
		{{state: "RUNNING"}},
	})
	old := "Timed out after 1m0s: health check never passed."
	wrongPort := "app is listening on [::]:3000, not on 0.0.0.0:$PORT=8080: listen on $PORT on all interfaces"
	f.mu.Lock()
	f.envelopes = []fakeEnvelope{{ts: 100e9, sourceType: "CELL", instance: "0", typ: "ERR", payload: old}}
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/stats") && r.URL.Query().Get("since") == "h1" {
			f.mu.Lock()
			f.envelopes = append(f.envelopes,
				fakeEnvelope{ts: 200e9, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Starting health monitoring of container"},
				fakeEnvelope{ts: 201e9, sourceType: "APP/PROC/WEB", instance: "0", typ: "ERR", payload: "listening on 3000"},
				fakeEnvelope{ts: 203e9, sourceType: "CELL", instance: "0", typ: "ERR", payload: wrongPort})
			f.mu.Unlock()
		}
		return false
	}
	f.mu.Unlock()
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\nstdout:\n%s\nstderr:\n%s", err, h.out, h.err)
	}
	out := h.out.String()
	if n := strings.Count(out, "[CELL/0] ERR "+wrongPort+"\n"); n != 1 {
		t.Errorf("the cell's error shown %d times, want once:\n%s", n, out)
	}
	if i, j := strings.Index(out, wrongPort), strings.Index(out, "web: 1 of 1 instances running"); i < 0 || j < i {
		t.Errorf("the cell's error is not shown while the instance starts:\n%s", out)
	}
	for _, no := range []string{old, "Starting health monitoring", "listening on 3000"} {
		if strings.Contains(out, no) {
			t.Errorf("shown %q (before the wait, or not a cell error):\n%s", no, out)
		}
	}
}

// Without --wait-timeout, the wait lasts at least the process's start
// timeout (-t) plus a margin: an instance allowed a long start is not
// given up on while it may still become healthy.
func TestWait_byDefaultOutlastsTheStartTimeout(t *testing.T) {
	for _, tc := range []struct {
		startTimeout *int
		want         string
	}{
		{nil, "did not start within 20ms"},
		{new(1), "did not start within 1.05s"},
	} {
		f, h := startHarness(t, 1, [][]statEntry{{{state: "STARTING"}}})
		f.mu.Lock()
		f.startTimeout = tc.startTimeout
		f.mu.Unlock()
		h.env.startWaitMin, h.env.startWaitMargin = 20*time.Millisecond, 50*time.Millisecond
		err := h.run("start", "myapp")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("start timeout %v: err = %v, want %q", tc.startTimeout, err, tc.want)
		}
	}
	// An explicit --wait-timeout is kept as it is.
	f, h := startHarness(t, 1, [][]statEntry{{{state: "STARTING"}}})
	f.mu.Lock()
	f.startTimeout = new(60)
	f.mu.Unlock()
	if err := h.run("start", "myapp", "--wait-timeout", "30ms"); err == nil || !strings.Contains(err.Error(), "did not start within 30ms") {
		t.Errorf("--wait-timeout 30ms: err = %v", err)
	}
}
