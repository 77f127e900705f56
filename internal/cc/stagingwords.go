package cc

import (
	"fmt"
	"regexp"

	"github.com/pandoplatform/pando"
)

// CF's staging error codes and messages (cloud_controller_ng errors v2:
// 170001 StagingError "Staging error: %s", 170003 NoAppDetectedError,
// 170004 BuildpackCompileFailed, 170005 BuildpackReleaseFailed, 170007
// StagingTimeExpired "Staging time expired: %s"). A build's error is
// "<code> - <message>", which the cf CLI prints and scripts match.
const (
	cfNoAppDetected  = "NoAppDetectedError - An app was not successfully detected by any available buildpack"
	cfCompileFailed  = "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
	cfReleaseFailed  = "BuildpackReleaseFailed - App staging failed in the buildpack release phase"
	cfStagingError   = "StagingError - Staging error: "
	cfStagingTimeout = "StagingTimeExpired - Staging time expired: "
)

// stagingError words why a staging failed as CF's build error. This file
// is the one place where a staging's pando.Failure becomes text, whether a
// cell reported it or the API decided it (a timeout, a restart); cellID
// names the cell that ran it, if any.
func stagingError(f pando.Failure, cellID string) string {
	var s string
	switch f.Kind {
	case pando.FailureNoAppDetected:
		s = cfNoAppDetected
	case pando.FailureCompileFailed:
		s = cfCompileFailed
	case pando.FailureReleaseFailed:
		s = cfReleaseFailed
	case pando.FailureSupplyFailed:
		s = cfStagingError + "App staging failed in the buildpack supply phase"
	case pando.FailureExited:
		s = cfStagingError + fmt.Sprintf("staging failed (exit status %d)", f.ExitCode)
	case pando.FailureOOM:
		s = cfStagingError + fmt.Sprintf("staging failed: out of memory (limit %d MB)", f.LimitMB)
	case pando.FailureDiskFull:
		s = cfStagingError + fmt.Sprintf("staging exceeded its disk quota of %d MB", f.LimitMB)
	case pando.FailureStagingTimeout:
		s = cfStagingTimeout + fmt.Sprintf("staging did not finish within %s", f.Timeout)
	case pando.FailureCancelled:
		s = cfStagingError + "staging was cancelled"
	case pando.FailureCellShutdown:
		cell := "its cell"
		if cellID != "" {
			cell = "cell " + cellID
		}
		s = cfStagingError + cell + " shut down before staging completed; push again"
	case pando.FailureImageNoPlatform:
		s = cfStagingError + orKind(f) + ": Pando runs linux/amd64 images"
	case pando.FailureStagingError, pando.FailureRegistryDenied, pando.FailureImageNotFound,
		pando.FailureRegistryDown, pando.FailureImageInvalid:
		s = cfStagingError + orKind(f)
	default:
		// A kind from a newer cell: say what is known.
		s = cfStagingError + "staging failed: " + f.Kind
		if f.Detail != "" {
			s += ": " + f.Detail
		}
	}
	if f.Hint != "" {
		s += " (" + f.Hint + ")"
	}
	return s
}

// orKind is f's detail, or its kind when it has none.
func orKind(f pando.Failure) string {
	if f.Detail != "" {
		return f.Detail
	}
	return f.Kind
}

// cfWorded matches a reason already in CF's "<Code> - <message>" form.
var cfWorded = regexp.MustCompile(`^[A-Z][A-Za-z]+ - `)

// stagingOutcome is the build error for a failed staging task and whether
// the staging log still needs it as its last line. A cell reports a
// Failure and prints nothing about it; a cell that predates Failure sent
// CF's words and printed them itself; the runtime's own verdicts (a lost
// cell, a placement failure) are free text nobody printed.
func stagingOutcome(t pando.Task) (reason string, note bool) {
	switch {
	case t.Failure != nil:
		return stagingError(*t.Failure, t.CellID), true
	case cfWorded.MatchString(t.FailureReason):
		return t.FailureReason, false
	case t.FailureReason != "":
		return stagingError(pando.Failure{Kind: pando.FailureStagingError, Detail: t.FailureReason}, t.CellID), true
	}
	return stagingError(pando.Failure{Kind: pando.FailureStagingError, Detail: "staging failed"}, t.CellID), true
}

// stagingLogLine is the staging log's last line for a failed build.
func stagingLogLine(reason string) string {
	return "Staging failed: " + reason
}
