// Package pando holds Pando's domain types (apps, processes, packages,
// builds, droplets, LRPs, tasks, cells) and the service interfaces between
// its components. It has no SQL, HTTP or runc in it: those live in
// internal/ packages behind the interfaces declared here and at their
// consumers.
package pando

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an error so the API can map it to a CF error code and
// HTTP status in one table (internal/cc).
type ErrorKind string

// Error kinds. The API maps each to CF's code, title and status.
const (
	EInternal        ErrorKind = "internal"
	ENotFound        ErrorKind = "not_found"         // 404 CF-ResourceNotFound
	EInvalid         ErrorKind = "invalid"           // 422 CF-UnprocessableEntity
	EBadRequest      ErrorKind = "bad_request"       // 400 CF-MessageParseError
	EConflict        ErrorKind = "conflict"          // 422 uniqueness errors
	EUnauthenticated ErrorKind = "unauthenticated"   // 401 CF-InvalidAuthToken
	EForbidden       ErrorKind = "forbidden"         // 403 CF-NotAuthorized
	ETooLarge        ErrorKind = "too_large"         // 413 CF-RequestEntityTooLarge
	EUnavailable     ErrorKind = "unavailable"       // 503 CF-ServiceUnavailable
	EStaging         ErrorKind = "staging_failed"    // build failures
	EInsufficient    ErrorKind = "insufficient_res"  // placement failures
	EBadZip          ErrorKind = "invalid_zip"       // 422 bits upload errors
	EStagingTimeout  ErrorKind = "staging_time_out"  // staging exceeded its timeout
	ENoAppDetected   ErrorKind = "no_app_detected"   // 222
	EUnknownBuildpk  ErrorKind = "unknown_buildpack" // 422 buildpack not found
)

// Error is Pando's one error type. Kind selects the CF code; Message is what
// the user reads. Title, when set, overrides the CF title chosen for Kind
// (e.g. "CF-AppNotFound" instead of "CF-ResourceNotFound").
type Error struct {
	Kind    ErrorKind
	Title   string
	Code    int
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// ErrorKindOf returns the kind of the first *Error in err's chain, or
// EInternal.
func ErrorKindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return EInternal
}

// IsNotFound reports whether err is a not-found error.
func IsNotFound(err error) bool { return ErrorKindOf(err) == ENotFound }
