package pando

import "time"

// Failure is why an instance, a CF task or a staging ended, as a cell
// reports it: a kind and its facts, no wording. The API alone words it for
// users (CF's "APP/PROC/WEB/0 Exited with status 1", a build's
// "NoAppDetectedError - ..." and the like), so cells of any version say the
// same thing the same way.
type Failure struct {
	Kind string `json:"kind"`
	// ExitCode is the process's exit status (FailureExited, FailureOOM,
	// FailureDiskFull, and the builder's for the staging kinds).
	ExitCode int `json:"exit_code,omitempty"`
	// LimitMB is the limit that was reached (FailureDiskFull: the disk
	// quota; FailureOOM of a staging: its memory limit).
	LimitMB int `json:"limit_mb,omitempty"`
	// Timeout is the timeout that ran out: the start timeout
	// (FailureHealthCheckTimeout) or the staging timeout
	// (FailureStagingTimeout).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Detail is the short text behind the failure: the last health check's
	// output, the error that stopped the container or the staging, the
	// registry's answer.
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

// Staging failure kinds, besides FailureExited (the builder exited with
// another status), FailureOOM (LimitMB: the staging's memory),
// FailureDiskFull (LimitMB: its disk quota), FailureCancelled and
// FailureCellShutdown.
const (
	FailureNoAppDetected   = "no-app-detected"       // no buildpack's detect accepted the app (ExitCode 222)
	FailureCompileFailed   = "compile-failed"        // a buildpack's finalize or compile failed (223)
	FailureReleaseFailed   = "release-failed"        // a buildpack's release failed (224)
	FailureSupplyFailed    = "supply-failed"         // a supply buildpack failed (225)
	FailureStagingTimeout  = "staging-timeout"       // staging did not finish within Timeout
	FailureStagingError    = "staging-error"         // staging could not run or finish: Detail says why
	FailureRegistryDenied  = "registry-unauthorized" // the registry refused the credentials (Detail: its answer)
	FailureImageNotFound   = "image-not-found"       // no such repository, tag or manifest
	FailureRegistryDown    = "registry-unreachable"  // the registry did not answer
	FailureImageNoPlatform = "image-no-platform"     // the image has no linux/amd64 variant
	FailureImageInvalid    = "image-invalid"         // the reference or the image is malformed
)
