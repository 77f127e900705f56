package cc

import (
	"fmt"
	"strings"

	"github.com/pandoplatform/pando"
)

// crashDescription words why an instance crashed as CF does (processes
// stats details, exit_description of crash events): the one place where a
// cell's pando.Failure becomes text. An instance reported by a cell that
// predates Failure keeps the words that cell sent.
func crashDescription(al pando.ActualLRP, processType string) string {
	f := al.Crash
	if f == nil {
		return al.CrashReason
	}
	inst := fmt.Sprintf("%s/%d", processSource(processType), al.Index)
	var s string
	switch f.Kind {
	case pando.FailureExited:
		s = fmt.Sprintf("%s Exited with status %d", inst, f.ExitCode)
	case pando.FailureOOM:
		s = fmt.Sprintf("%s Exited with status %d (out of memory)", inst, f.ExitCode)
	case pando.FailureDiskFull:
		s = fmt.Sprintf("%s Exited with status %d (disk quota of %d MB full)", inst, f.ExitCode, f.LimitMB)
	case pando.FailureHealthCheckTimeout:
		s = fmt.Sprintf("%s after %s: instance never healthy: %s", pando.HealthCheckTimedOut, f.Timeout, f.Detail)
	case pando.FailureUnhealthy:
		s = "Instance became unhealthy: " + f.Detail
	case pando.FailureStartFailed:
		s = "failed to create container: " + f.Detail
	case pando.FailureLost:
		s = inst + ": " + f.Detail
	case pando.FailureStopped:
		s = "stopped"
	default:
		// A kind from a newer cell: say what is known.
		s = inst + " " + f.Kind
		if f.Detail != "" {
			s += ": " + f.Detail
		}
	}
	if f.Hint != "" {
		s += " (" + f.Hint + ")"
	}
	return s
}

// processSource is the log source of a process type's instances
// (APP/PROC/WEB), as the cell tags their output.
func processSource(processType string) string {
	if processType == "" {
		processType = "web"
	}
	return "APP/PROC/" + strings.ToUpper(processType)
}
