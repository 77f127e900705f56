package cc

import (
	"context"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// TestCrashDescription: each failure a cell reports reads exactly as CF
// (and Pando before cells reported kinds) words it.
func TestCrashDescription(t *testing.T) {
	hint := "app is listening on 127.0.0.1:9000, not on 0.0.0.0:$PORT=8080: listen on $PORT on all interfaces"
	for _, tc := range []struct {
		name     string
		al       pando.ActualLRP
		procType string
		want     string
	}{
		{"exited", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureExited, ExitCode: 3}}, "web",
			"APP/PROC/WEB/0 Exited with status 3"},
		{"exited worker index 2", pando.ActualLRP{Index: 2, Crash: &pando.Failure{Kind: pando.FailureExited, ExitCode: 1}}, "worker",
			"APP/PROC/WORKER/2 Exited with status 1"},
		{"no process type is web", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureExited, ExitCode: 5}}, "",
			"APP/PROC/WEB/0 Exited with status 5"},
		{"out of memory", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}}, "web",
			"APP/PROC/WEB/0 Exited with status 137 (out of memory)"},
		{"disk full", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureDiskFull, ExitCode: 3, LimitMB: 16}}, "web",
			"APP/PROC/WEB/0 Exited with status 3 (disk quota of 16 MB full)"},
		{"never healthy", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: time.Second,
			Detail: "Failed to make TCP connection to port 8080: connection refused"}}, "web",
			"health check timed out after 1s: instance never healthy: Failed to make TCP connection to port 8080: connection refused"},
		{"never healthy, listening elsewhere", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: 8 * time.Second,
			Detail: "Failed to make TCP connection to port 9000: connection refused", Hint: hint}}, "web",
			"health check timed out after 8s: instance never healthy: Failed to make TCP connection to port 9000: connection refused (" + hint + ")"},
		{"unhealthy", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureUnhealthy, Detail: "Failed to make TCP connection to port 8080: connection refused"}}, "web",
			"Instance became unhealthy: Failed to make TCP connection to port 8080: connection refused"},
		{"start failed", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureStartFailed, Detail: `user "ghost" is not in the image's /etc/passwd`}}, "web",
			`failed to create container: user "ghost" is not in the image's /etc/passwd`},
		{"lost", pando.ActualLRP{Index: 1, Crash: &pando.Failure{Kind: pando.FailureLost, Detail: "wait: container gone"}}, "web",
			"APP/PROC/WEB/1: wait: container gone"},
		{"stopped by the platform", pando.ActualLRP{Crash: &pando.Failure{Kind: pando.FailureStopped}}, "web", "stopped"},
		{"a newer cell's kind", pando.ActualLRP{Crash: &pando.Failure{Kind: "frozen", Detail: "cgroup frozen"}}, "web",
			"APP/PROC/WEB/0 frozen: cgroup frozen"},
		{"an older cell's words", pando.ActualLRP{CrashReason: "APP/PROC/WEB/0 Exited with status 9"}, "web",
			"APP/PROC/WEB/0 Exited with status 9"},
		{"the kind wins over words", pando.ActualLRP{CrashReason: "old words", Crash: &pando.Failure{Kind: pando.FailureExited, ExitCode: 2}}, "web",
			"APP/PROC/WEB/0 Exited with status 2"},
		{"no crash", pando.ActualLRP{}, "web", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := crashDescription(tc.al, tc.procType); got != tc.want {
				t.Errorf("crashDescription = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTaskFailureDescription: each way a cell says a CF task failed reads
// exactly as CF (and Pando before cells reported kinds) words it.
func TestTaskFailureDescription(t *testing.T) {
	named := func(f *pando.Failure) pando.Task {
		return pando.Task{GUID: "t-guid", CellID: "cell-7", Failed: true, Failure: f, Run: &pando.RunRequest{Name: "migrate"}}
	}
	for _, tc := range []struct {
		name string
		task pando.Task
		want string
	}{
		{"exited", named(&pando.Failure{Kind: pando.FailureExited, ExitCode: 4}), "APP/TASK/migrate Exited with status 4"},
		{"out of memory", named(&pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}), "APP/TASK/migrate Exited with status 137 (out of memory)"},
		{"disk full", named(&pando.Failure{Kind: pando.FailureDiskFull, ExitCode: 1, LimitMB: 16}), "APP/TASK/migrate Exited with status 1 (disk quota of 16 MB full)"},
		{"unnamed task is its guid", pando.Task{GUID: "t-guid", Failed: true, Failure: &pando.Failure{Kind: pando.FailureExited, ExitCode: 2}, Run: &pando.RunRequest{}},
			"APP/TASK/t-guid Exited with status 2"},
		{"start failed", named(&pando.Failure{Kind: pando.FailureStartFailed, Detail: "no space"}), "failed to create container: no space"},
		{"start failed with a hint", named(&pando.Failure{Kind: pando.FailureStartFailed, Detail: "exec /bin/sh: missing", Hint: "the image has no /bin/sh"}),
			"failed to create container: exec /bin/sh: missing (the image has no /bin/sh)"},
		{"lost", named(&pando.Failure{Kind: pando.FailureLost, Detail: "wait: gone"}), "APP/TASK/migrate: wait: gone"},
		{"cancelled", named(&pando.Failure{Kind: pando.FailureCancelled}), "task was cancelled"},
		{"cell shut down", named(&pando.Failure{Kind: pando.FailureCellShutdown}), "cell cell-7 shut down before the task completed"},
		{"stopped", named(&pando.Failure{Kind: pando.FailureStopped, Detail: "context deadline exceeded"}), "task stopped: context deadline exceeded"},
		{"a newer cell's kind", named(&pando.Failure{Kind: "frozen"}), "APP/TASK/migrate frozen"},
		{"the runtime's own words", pando.Task{Failed: true, FailureReason: "cell c1 disappeared before completion"}, "cell c1 disappeared before completion"},
		{"an older cell's words", pando.Task{Failed: true, FailureReason: "APP/TASK/x Exited with status 3", Run: &pando.RunRequest{Name: "x"}},
			"APP/TASK/x Exited with status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := taskFailureDescription(tc.task); got != tc.want {
				t.Errorf("taskFailureDescription = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFollowRuntime_aTaskFailureFromACellIsWordedAsCFDoes: a cell reports
// how a task failed through the runtime; the task's failure_reason is CF's.
func TestFollowRuntime_aTaskFailureFromACellIsWordedAsCFDoes(t *testing.T) {
	t.Parallel()
	e, _, cell := frNew(t)
	frFollow(t, e.api)
	app := e.tkStagedApp("worker")
	guid := ctStr(e.runTask(app.GUID, map[string]any{"command": "rake db:migrate", "name": "migrate"}), "guid")
	if err := cell.CompleteTask(context.Background(), guid, pando.Task{Failed: true,
		Failure: &pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}}); err != nil {
		t.Fatal(err)
	}
	task := e.frWaitTask(guid, pando.AppTaskFailed)
	if got := ctStr(task, "result.failure_reason"); got != "APP/TASK/migrate Exited with status 137 (out of memory)" {
		t.Errorf("failure reason %q", got)
	}
}
