package cc

import (
	"fmt"
	"strings"

	"github.com/pandoplatform/pando"
)

// crashDescription words why an instance crashed as CF does (processes
// stats details, exit_description of crash events). This file is the one
// place where a cell's pando.Failure becomes text. An instance reported by a cell that
// predates Failure keeps the words that cell sent.
func crashDescription(al pando.ActualLRP, processType string) string {
	f := al.Crash
	if f == nil {
		return al.CrashReason
	}
	inst := fmt.Sprintf("%s/%d", processSource(processType), al.Index)
	var s string
	switch f.Kind {
	case pando.FailureExited, pando.FailureOOM, pando.FailureDiskFull:
		s = exitWords(inst, f)
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

// taskFailureDescription words why a CF task failed as CF does (the
// task's result.failure_reason). The runtime's own verdicts (a lost cell,
// a cancel) and a report from a cell that predates Failure keep their words.
func taskFailureDescription(t pando.Task) string {
	f := t.Failure
	if f == nil {
		return t.FailureReason
	}
	name := t.GUID
	if t.Run != nil && t.Run.Name != "" {
		name = t.Run.Name
	}
	src := "APP/TASK/" + name
	switch f.Kind {
	case pando.FailureExited, pando.FailureOOM, pando.FailureDiskFull:
		return exitWords(src, f)
	case pando.FailureStartFailed:
		s := "failed to create container: " + f.Detail
		if f.Hint != "" {
			s += " (" + f.Hint + ")"
		}
		return s
	case pando.FailureLost:
		return src + ": " + f.Detail
	case pando.FailureCancelled:
		return TaskCancelledReason
	case pando.FailureCellShutdown:
		return fmt.Sprintf("cell %s shut down before the task completed", t.CellID)
	case pando.FailureStopped:
		return "task stopped: " + f.Detail
	}
	s := src + " " + f.Kind
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// exitWords words a process's exit: "<who> Exited with status N", and
// why when the cell knows (out of memory, disk quota full).
func exitWords(who string, f *pando.Failure) string {
	s := fmt.Sprintf("%s Exited with status %d", who, f.ExitCode)
	switch f.Kind {
	case pando.FailureOOM:
		s += " (out of memory)"
	case pando.FailureDiskFull:
		s += fmt.Sprintf(" (disk quota of %d MB full)", f.LimitMB)
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
