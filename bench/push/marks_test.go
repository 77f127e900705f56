package main

import (
	"context"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func TestMarkOf_recognisesTheCellsLines(t *testing.T) {
	cases := []struct {
		source, payload, want string
	}{
		{"STG", "Downloading app package...", mStgDownload},
		{"STG", "Downloaded app package (2.4M)", ""},
		{"STG", "Creating container and staging...", mStgContainer},
		{"STG", "Creating container", mStgContainer},
		{"STG", "-----> Running detect", mStgBuilder},
		{"STG", "-----> Running release for binary_buildpack", mStgRelease},
		{"STG", "-----> Droplet written (2.4 MiB)", mStgWritten},
		{"STG", "Exit status 0", mStgExit},
		{"STG", "Uploading droplet, build artifacts cache...", ""},
		{"STG", "Uploading droplet...", mStgDroplet},
		{"STG", "Uploaded droplet (660B)", mStgUploaded},
		{"STG", "Uploading complete", mStgComplete},
		{"CELL", "Cell cell-0 creating container for instance 82", mCellCreating},
		{"CELL", "Cell cell-0 successfully created container for instance 82", mCellCreated},
		{"CELL", "Cell cell-0 successfully destroyed container for instance 82", ""},
		{"CELL", "Container became healthy", mCellHealthy},
		// The app's own exit line is not the builder's.
		{"APP/PROC/WEB/0", "Exit status 0", ""},
	}
	for _, c := range cases {
		if got := markOf(api.LogLine{SourceType: c.source, Payload: c.payload}); got != c.want {
			t.Errorf("markOf(%s %q) = %q, want %q", c.source, c.payload, got, c.want)
		}
	}
}

// The breakdowns must add up to the total: each step starts where the
// previous one ended.
func TestSteps_tileThePush(t *testing.T) {
	chain := func(name string, steps []step, from, to string) {
		t.Helper()
		if steps[0].From != from || steps[len(steps)-1].To != to {
			t.Errorf("%s: runs %s..%s, want %s..%s", name, steps[0].From, steps[len(steps)-1].To, from, to)
		}
		for k := 1; k < len(steps); k++ {
			if steps[k].From != steps[k-1].To {
				t.Errorf("%s: %q starts at %s, but %q ended at %s", name, steps[k].Name, steps[k].From, steps[k-1].Name, steps[k-1].To)
			}
		}
	}
	chain("main", mainSteps, mStart, mFirst200)
	chain("detail", detailSteps, mAppReady, mFirst200)
	chain("cli", cliSteps, mStart, mFirst200)
}

func TestMarks_betweenNeedsBothEnds(t *testing.T) {
	t0 := time.Unix(100, 0)
	m := marks{mStart: t0, mAppReady: t0.Add(7 * time.Millisecond)}
	if d, ok := m.between(mainSteps[0]); !ok || d != 7*time.Millisecond {
		t.Errorf("create = %v, %v; want 7ms, true", d, ok)
	}
	if _, ok := m.between(mainSteps[1]); ok {
		t.Error("upload has no end mark but was reported")
	}
}

func TestLogTap_keepsTheFirstInstantOfEachMark(t *testing.T) {
	tap := &logTap{marks: marks{}, changed: make(chan struct{}), stopped: make(chan struct{}), cancel: func() {}, log: discardLogger()}
	t1, t2 := time.Unix(0, 1_000), time.Unix(0, 2_000)
	done := make(chan bool)
	go func() { done <- tap.await(context.Background(), 5*time.Second, mStgExit, mCellHealthy) }()
	tap.add(api.LogLine{SourceType: "STG", Payload: "Exit status 0", Timestamp: t1.UnixNano()})
	tap.add(api.LogLine{SourceType: "STG", Payload: "Exit status 0", Timestamp: t2.UnixNano()})
	tap.add(api.LogLine{SourceType: "CELL", Payload: "Container became healthy", Timestamp: t2.UnixNano()})
	if !<-done {
		t.Fatal("await returned before both marks arrived")
	}
	close(tap.stopped)
	m := marks{}
	if err := tap.stop(m); err != nil {
		t.Fatal(err)
	}
	if !m[mStgExit].Equal(t1) || !m[mCellHealthy].Equal(t2) {
		t.Errorf("marks = %v", m)
	}
}

func TestLogTap_awaitGivesUpAtTheDeadline(t *testing.T) {
	tap := &logTap{marks: marks{}, changed: make(chan struct{}), stopped: make(chan struct{}), cancel: func() {}, log: discardLogger()}
	if tap.await(context.Background(), 10*time.Millisecond, mCellHealthy) {
		t.Fatal("await reported a mark that never came")
	}
}
