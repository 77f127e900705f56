package cell

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// orderedReporter records task completions and log syncs in the order
// they happen, so a test can tell which came first.
type orderedReporter struct {
	*recorder
	mu     sync.Mutex
	events []string
	logs   *sink
}

func (o *orderedReporter) TaskCompleted(ctx context.Context, t pando.Task) error {
	o.mu.Lock()
	o.events = append(o.events, "completed "+t.GUID)
	o.mu.Unlock()
	return o.recorder.TaskCompleted(ctx, t)
}

// syncLogs is the cell's Config.SyncLogs: it notes how many lines the
// sink held when the cell asked.
func (o *orderedReporter) syncLogs(ctx context.Context) error {
	o.logs.mu.Lock()
	n := len(o.logs.lines)
	o.logs.mu.Unlock()
	o.mu.Lock()
	o.events = append(o.events, fmt.Sprintf("synced %d", n))
	o.mu.Unlock()
	return nil
}

// TestStaging_aFailingBuilderIsReportedAsAKindAfterItsLinesAreSynced runs
// stagings on fake containers whose builder fails in each way the
// lifecycle can: the completion carries the kind and exit code, no CF
// words, and the cell syncs its log lines before it reports.
func TestStaging_aFailingBuilderIsReportedAsAKindAfterItsLinesAreSynced(t *testing.T) {
	exits := map[string]container.ExitStatus{
		"detect":  {Code: 222},
		"compile": {Code: 223},
		"release": {Code: 224},
		"supply":  {Code: 225},
		"other":   {Code: 3},
		"oom":     {Code: 137, Signaled: true, OOMKilled: true},
	}
	backend := fake.New(fake.Options{Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
		for name, st := range exits {
			if strings.HasSuffix(spec.ID, "-"+name) {
				fmt.Fprintf(spec.Stdout, "-----> building %s\n", name)
				fmt.Fprintf(spec.Stderr, "boom %s\n", name)
				return st
			}
		}
		<-ctx.Done() // "slow": runs until the staging times out
		return container.ExitStatus{Code: 137, Signaled: true}
	}})
	logs := newSink()
	rep := &orderedReporter{recorder: newRecorder(), logs: logs}
	r, err := New(Config{
		ID: "cell-fail", Backend: backend, Blobs: newMemBlobs(), Reporter: rep, Logs: logs, SyncLogs: rep.syncLogs,
		WorkDir: t.TempDir(), TotalMemoryMB: 8192, TotalDiskMB: 16384,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	blobs := r.cfg.Blobs.(*memBlobs)
	put := func(key string, b []byte) {
		if _, err := blobs.Put(context.Background(), key, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	}
	put("buildpacks/test", buildpackZip(t, "true"))

	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    pando.Failure
	}{
		{"detect", time.Minute, pando.Failure{Kind: pando.FailureNoAppDetected, ExitCode: 222}},
		{"compile", time.Minute, pando.Failure{Kind: pando.FailureCompileFailed, ExitCode: 223}},
		{"release", time.Minute, pando.Failure{Kind: pando.FailureReleaseFailed, ExitCode: 224}},
		{"supply", time.Minute, pando.Failure{Kind: pando.FailureSupplyFailed, ExitCode: 225}},
		{"other", time.Minute, pando.Failure{Kind: pando.FailureExited, ExitCode: 3}},
		{"oom", time.Minute, pando.Failure{Kind: pando.FailureOOM, ExitCode: 137, LimitMB: 256}},
		{"slow", 300 * time.Millisecond, pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: 300 * time.Millisecond}},
		{"nopackage", time.Minute, pando.Failure{Kind: pando.FailureStagingError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			guid := "task-" + tc.name
			app := "app-" + tc.name
			if tc.name != "nopackage" {
				put("packages/"+app, zipOf(t, map[string]string{"index.html": "x"}))
			}
			if err := r.RunTask(context.Background(), stagingTask(guid, app, tc.timeout)); err != nil {
				t.Fatal(err)
			}
			done := rep.wait(t, 10*time.Second, "staging result", isTask(guid)).task
			if tc.name == "nopackage" {
				// The detail is the cell's own error, whatever its words.
				if done.Failure == nil || done.Failure.Detail == "" || !strings.Contains(done.Failure.Detail, "download app package") {
					t.Errorf("failure %+v, want a staging error saying the download failed", done.Failure)
				}
				tc.want.Detail = done.Failure.Detail
			}
			wantTaskFailure(t, done, tc.want)
			if done.FailureCode != 0 {
				t.Errorf("failure code %d: the exit code travels in Failure", done.FailureCode)
			}
			if tc.name != "nopackage" && tc.name != "slow" {
				logs.wait(t, time.Second, pando.LogSourceStaging, "boom "+tc.name)
			}
			logs.noCFWords(t, pando.LogSourceStaging)

			// The sync came after every line of this staging and before
			// its completion.
			logs.mu.Lock()
			last := 0
			for k, e := range logs.lines {
				if e.SourceID == app {
					last = k + 1
				}
			}
			logs.mu.Unlock()
			rep.mu.Lock()
			events := append([]string(nil), rep.events...)
			rep.mu.Unlock()
			at := -1
			for k, e := range events {
				if e == "completed "+guid {
					at = k
				}
			}
			var synced int
			if at < 1 || !strings.HasPrefix(events[at-1], "synced ") {
				t.Fatalf("events %q: want a log sync right before %s's completion", events, guid)
			}
			fmt.Sscanf(events[at-1], "synced %d", &synced)
			if synced < last {
				t.Errorf("synced after %d lines, but %s's last line is line %d", synced, app, last)
			}
		})
	}
}
