package cc

import (
	"context"
	"errors"
	"net/http"

	"github.com/pandoplatform/pando"
)

// cfError is CF's code, title and HTTP status for an error kind.
type cfError struct {
	status int
	code   int
	title  string
}

// errorTable is the one place error kinds become CF errors.
var errorTable = map[pando.ErrorKind]cfError{
	pando.ENotFound:        {http.StatusNotFound, 10010, "CF-ResourceNotFound"},
	pando.EInvalid:         {http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity"},
	pando.EConflict:        {http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity"},
	pando.EBadRequest:      {http.StatusBadRequest, 1001, "CF-MessageParseError"},
	pando.EUnauthenticated: {http.StatusUnauthorized, 1000, "CF-InvalidAuthToken"},
	pando.EForbidden:       {http.StatusForbidden, 10003, "CF-NotAuthorized"},
	pando.ETooLarge:        {http.StatusRequestEntityTooLarge, 10004, "CF-RequestEntityTooLarge"},
	pando.EUnavailable:     {http.StatusServiceUnavailable, 10015, "CF-ServiceUnavailable"},
	pando.EBadZip:          {http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity"},
	pando.EUnknownBuildpk:  {http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity"},
	pando.EInsufficient:    {http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity"},
	pando.EStaging:         {http.StatusUnprocessableEntity, 170001, "CF-StagingError"},
	pando.EInternal:        {http.StatusInternalServerError, 10001, "UnknownError"},
}

func cfErrorFor(err error) (cfError, string) {
	var pe *pando.Error
	if !errors.As(err, &pe) {
		return errorTable[pando.EInternal], "An unknown error occurred."
	}
	ce, ok := errorTable[pe.Kind]
	if !ok {
		ce = errorTable[pando.EInternal]
	}
	if pe.Title != "" {
		ce.title = pe.Title
	}
	if pe.Code != 0 {
		ce.code = pe.Code
	}
	detail := pe.Message
	if pe.Kind == pando.EInternal {
		detail = "An unknown error occurred."
	}
	return ce, detail
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The server is stopping (or the client left): not a server fault.
		writeCFError(w, http.StatusServiceUnavailable, 10015, "CF-ServiceUnavailable", "The server is shutting down; try again in a moment")
		return
	}
	ce, detail := cfErrorFor(err)
	if ce.status >= 500 {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		a.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeCFError(w, ce.status, ce.code, ce.title, detail)
}

func writeCFError(w http.ResponseWriter, status, code int, title, detail string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"code": code, "title": title, "detail": detail}},
	})
}

// notFound is CF's 404 for a resource: detail "App not found" etc., which the
// cf CLI matches on.
func notFound(what string) *pando.Error {
	return &pando.Error{Kind: pando.ENotFound, Message: what + " not found"}
}

func invalid(format string, args ...any) *pando.Error {
	return pando.Errorf(pando.EInvalid, format, args...)
}

// asNotFound turns a store's not-found error into CF's "<What> not found".
func asNotFound(err error, what string) error {
	if pando.IsNotFound(err) {
		return notFound(what)
	}
	return err
}
