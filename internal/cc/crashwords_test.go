package cc

import (
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
