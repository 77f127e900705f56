// Package cellapi is the protocol between the server and cells on other
// machines, over mutual TLS (internal/cellauth): the rep API a cell serves
// on its --addr (pando.Cell: start and stop instances, run and cancel
// tasks, state, stats) with the client the BBS calls it through, and the
// server's cell API (join, presence, reports as pando.CellReporter, blobs,
// logs) with the client a cell reports and fetches through.
package cellapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Bounds.
const (
	maxJSONBody  = 8 << 20
	maxErrorBody = 64 << 10
)

func writeError(w http.ResponseWriter, err error) {
	kind := pando.ErrorKindOf(err)
	msg := err.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		kind = pando.EUnavailable
	}
	wireerr.Write(w, kind, msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return pando.Errorf(pando.EBadRequest, "read request body: %v", err)
	}
	if len(body) > maxJSONBody {
		return pando.Errorf(pando.ETooLarge, "request body exceeds %d bytes", maxJSONBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return pando.Errorf(pando.EBadRequest, "request body: invalid JSON: %v", err)
	}
	return nil
}

// errorFrom turns an error answer into a *pando.Error.
func errorFrom(what string, resp *http.Response) error {
	return wireerr.Read(what, resp)
}

// newCAHint says what a cell's refusal of the server's certificate means:
// the server's cell CA is not the one the cell joined.
const newCAHint = "the server's cell CA is not the one this cell joined (were its cell-ca files replaced?): " +
	"start the cell again with the server's current <data-dir>/cell-token"

// call makes one JSON request: in sent when not nil, a 2xx answer decoded
// into out when not nil, an error answer returned as the peer's error.
func call(ctx context.Context, hc *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, url, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ua := (x509.UnknownAuthorityError{}); errors.As(err, &ua) {
			return pando.Errorf(pando.EUnavailable, "%s %s: %v: %s", method, url, err, newCAHint)
		}
		return pando.Errorf(pando.EUnavailable, "%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errorFrom(method+" "+url, resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
	}
	return nil
}

// route adapts a handler that returns an error.
func route(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// peer authenticates a request; only peers for which allow is true pass.
func peer(r *http.Request, allow func(cellauth.Peer) bool) (cellauth.Peer, error) {
	p, err := cellauth.PeerOf(r)
	if err != nil {
		return p, err
	}
	if !allow(p) {
		return p, pando.Errorf(pando.EForbidden, "this certificate may not call %s", r.URL.Path)
	}
	return p, nil
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, maxJSONBody)).Decode(v)
}
