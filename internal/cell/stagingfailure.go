package cell

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

var (
	errCancelled = errors.New("cancelled")
	errShutdown  = errors.New("cancelled: cell shutting down")
)

// timeoutError is the cause of a staging context that ran out of time.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("staging did not finish within %s", e.d)
}

// quotaError is a staging that ran into its disk quota.
type quotaError struct{ mb int }

func (e quotaError) Error() string {
	return fmt.Sprintf("staging exceeded its disk quota of %d MB", e.mb)
}

// exitError is a staging container that exited non-zero.
type exitError struct{ st container.ExitStatus }

func (e *exitError) Error() string { return fmt.Sprintf("builder exited with status %d", e.st.Code) }

// maxFailureDetail bounds the text a failure carries.
const maxFailureDetail = 1024

// stagingFailure says why a staging failed as a kind and its facts; the
// API words it (CF's NoAppDetectedError and the like).
func stagingFailure(ctx context.Context, err error, memMB int) pando.Failure {
	if ctx.Err() != nil {
		var te timeoutError
		switch cause := context.Cause(ctx); {
		case errors.As(cause, &te):
			return pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: te.d}
		case errors.Is(cause, errShutdown):
			return pando.Failure{Kind: pando.FailureCellShutdown}
		case errors.Is(cause, errCancelled):
			return pando.Failure{Kind: pando.FailureCancelled}
		default:
			return pando.Failure{Kind: pando.FailureStagingError, Detail: shortDetail(cause.Error())}
		}
	}
	var (
		qe quotaError
		fe stagerError
		ee *exitError
	)
	switch {
	case errors.As(err, &qe):
		return pando.Failure{Kind: pando.FailureDiskFull, LimitMB: qe.mb}
	case errors.As(err, &fe):
		f := fe.StagingFailure()
		f.Detail = shortDetail(f.Detail)
		return f
	case !errors.As(err, &ee):
		return pando.Failure{Kind: pando.FailureStagingError, Detail: shortDetail(err.Error())}
	case ee.st.OOMKilled:
		return pando.Failure{Kind: pando.FailureOOM, ExitCode: ee.st.Code, LimitMB: memMB}
	}
	kind := pando.FailureExited
	switch ee.st.Code {
	case 222:
		kind = pando.FailureNoAppDetected
	case 223:
		kind = pando.FailureCompileFailed
	case 224:
		kind = pando.FailureReleaseFailed
	case 225:
		kind = pando.FailureSupplyFailed
	}
	return pando.Failure{Kind: kind, ExitCode: ee.st.Code}
}

// stagerError is a docker stager's failure that knows its kind (the
// registry refused the credentials, the tag does not exist, ...).
type stagerError interface {
	error
	StagingFailure() pando.Failure
}

// shortDetail cuts s to maxFailureDetail bytes, on a rune boundary.
func shortDetail(s string) string {
	if len(s) <= maxFailureDetail {
		return s
	}
	n := maxFailureDetail
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
