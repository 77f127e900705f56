package pando

import "time"

// Failure is why an instance or a CF task ended, as a cell reports it: a
// kind and its facts, no wording. The API alone words it for users (CF's
// "APP/PROC/WEB/0 Exited with status 1" and the like), so cells of any
// version say the same thing the same way.
type Failure struct {
	Kind string `json:"kind"`
	// ExitCode is the process's exit status (FailureExited, FailureOOM,
	// FailureDiskFull).
	ExitCode int `json:"exit_code,omitempty"`
	// LimitMB is the limit that was reached (FailureDiskFull: the quota).
	LimitMB int `json:"limit_mb,omitempty"`
	// Timeout is the start timeout that ran out (FailureHealthCheckTimeout).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Detail is the short text behind the failure: the last health check's
	// output, or the error that stopped the container.
	Detail string `json:"detail,omitempty"`
	// Hint is what the cell saw that may explain it (where the app listens
	// when the health check cannot reach it).
	Hint string `json:"hint,omitempty"`
}

// Failure kinds.
const (
	FailureExited             = "exited"               // the process exited
	FailureOOM                = "oom"                  // killed at its memory limit
	FailureDiskFull           = "disk-full"            // exited with its disk quota full
	FailureHealthCheckTimeout = "health-check-timeout" // never healthy within its start timeout
	FailureUnhealthy          = "unhealthy"            // failed a liveness check while running
	FailureStartFailed        = "start-failed"         // its container could not be created
	FailureLost               = "lost"                 // the cell lost track of its process
	FailureStopped            = "stopped-by-platform"  // stopped before it ended on its own
	FailureCancelled          = "cancelled"            // a CF task cancelled by its user
	FailureCellShutdown       = "cell-shutdown"        // its cell shut down before it ended
)
