// Package wireerr carries a *pando.Error over HTTP between Pando's own
// processes (the runtime API, the cell protocol): its kind as the status
// and a small JSON body, and back into a *pando.Error on the other side.
package wireerr

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	pando "github.com/pandoplatform/pando"
)

// MaxBody bounds an error answer a client reads.
const MaxBody = 64 << 10

// Body is an error on the wire.
type Body struct {
	Kind    pando.ErrorKind `json:"kind"`
	Message string          `json:"message"`
}

// Status is the HTTP status an error kind is sent with.
func Status(kind pando.ErrorKind) int {
	switch kind {
	case pando.ENotFound:
		return http.StatusNotFound
	case pando.EInvalid, pando.EInsufficient:
		return http.StatusUnprocessableEntity
	case pando.EBadRequest:
		return http.StatusBadRequest
	case pando.EConflict:
		return http.StatusConflict
	case pando.EUnauthenticated:
		return http.StatusUnauthorized
	case pando.EForbidden:
		return http.StatusForbidden
	case pando.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case pando.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Write answers with an error of kind and message.
func Write(w http.ResponseWriter, kind pando.ErrorKind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(Status(kind))
	_ = json.NewEncoder(w).Encode(Body{Kind: kind, Message: msg})
}

// Read turns an error answer into a *pando.Error. An answer without an
// error body (a proxy's, say) gets a kind guessed from its status and a
// message starting with what.
func Read(what string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	var we Body
	if err := json.Unmarshal(b, &we); err != nil || we.Kind == "" {
		return pando.Errorf(kindOf(resp.StatusCode), "%s: %s: %s", what, resp.Status, strings.TrimSpace(string(b)))
	}
	return &pando.Error{Kind: we.Kind, Message: we.Message}
}

func kindOf(status int) pando.ErrorKind {
	switch status {
	case http.StatusNotFound:
		return pando.ENotFound
	case http.StatusUnauthorized:
		return pando.EUnauthenticated
	case http.StatusForbidden:
		return pando.EForbidden
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return pando.EUnavailable
	}
	return pando.EInternal
}
