package cc

import (
	"bytes"
	"context"
	"net/http"
	"strings"
)

// ExternalURLs are where a request's client reaches the API and its
// companions when that is not Config.BaseURL: the router serves the API
// on the system domain's hosts (api., login., uaa., log-cache.) and on
// IP addresses, over HTTPS too, and the links a client follows (the root
// document's, pagination, job Locations) must work from where it is.
type ExternalURLs struct {
	API, Login, UAA, LogCache string
	// Router is the router as the client reached it: apps are at the same
	// scheme and port (links.pando_router).
	Router string
}

type externalKey struct{}

// WithExternalURLs marks a request's context with the URLs its client
// uses; the router's system routes set it.
func WithExternalURLs(ctx context.Context, u ExternalURLs) context.Context {
	return context.WithValue(ctx, externalKey{}, u)
}

func externalURLs(ctx context.Context) (ExternalURLs, bool) {
	u, ok := ctx.Value(externalKey{}).(ExternalURLs)
	return u, ok && u.API != ""
}

// externalLinks serves a request that came in on other URLs than
// BaseURL with its links moved there.
func (a *API) externalLinks(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	u, ok := externalURLs(r.Context())
	if !ok || u.API == a.cfg.BaseURL {
		return w
	}
	return &linkWriter{
		ResponseWriter: w,
		fromBase:       a.cfg.BaseURL,
		toBase:         strings.TrimRight(u.API, "/"),
		from:           []byte(`"href":"` + a.cfg.BaseURL),
		to:             []byte(`"href":"` + strings.TrimRight(u.API, "/")),
	}
}

// linkWriter moves the API's links from one base URL to another as the
// answer is written: the Location header, and every "href" of a JSON
// body (writeJSON writes a body in one piece, unescaped, so `"href":"`
// is only ever a key: user data cannot contain the unescaped quotes).
// Other bodies (downloads, streams) pass untouched.
type linkWriter struct {
	http.ResponseWriter
	fromBase, toBase string
	from, to         []byte
	wroteHeader      bool
}

func (w *linkWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		h := w.Header()
		if loc := h.Get("Location"); strings.HasPrefix(loc, w.fromBase) {
			h.Set("Location", w.toBase+loc[len(w.fromBase):])
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *linkWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && bytes.Contains(p, w.from) {
		if _, err := w.ResponseWriter.Write(bytes.ReplaceAll(p, w.from, w.to)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (w *linkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
