package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pandoplatform/pando/internal/bodyrate"
	"github.com/pandoplatform/pando/internal/headbudget"
)

// APITimeouts bound how long a client may hold a connection of the API
// without doing its part. A response has no overall time limit (log
// streams and long polls last as long as they need), but each write must
// go through within WriteWindow: a client that stops reading is cut off.
type APITimeouts struct {
	// ReadHeader bounds reading a request's line and headers (default 10s).
	ReadHeader time.Duration
	// Idle bounds a kept-alive connection between requests (default 2m).
	Idle time.Duration
	// BodyWindow and BodyMinBytes: a request body must deliver at least
	// BodyMinBytes in every BodyWindow until it ends (default 16 KiB per
	// 60s, about 270 bytes/s), else the read fails and the connection is
	// closed. A slow upload that keeps moving is never cut off.
	BodyWindow   time.Duration
	BodyMinBytes int64
	// WriteWindow bounds one write of a response to the client (default
	// 60s).
	WriteWindow time.Duration
}

func (t APITimeouts) withDefaults() APITimeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
	}
	if t.BodyWindow <= 0 {
		t.BodyWindow = time.Minute
	}
	if t.BodyMinBytes <= 0 {
		t.BodyMinBytes = 16 << 10
	}
	if t.WriteWindow <= 0 {
		t.WriteWindow = time.Minute
	}
	return t
}

// newAPIServer is the API's http.Server with t's bounds.
func newAPIServer(h http.Handler, t APITimeouts, base func(net.Listener) context.Context) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           apiHandler(h, t),
		ReadHeaderTimeout: t.ReadHeader,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       base,
	}
}

// The API reads request heads of up to 64 KiB (the cf CLI lists guids in
// URLs); a head past apiSmallHead costs some 80 KB of heap while it is
// read, so it needs one of apiLargeHeads slots, apiLargeHeadsPerClient of
// them from one address: 64 slots bound what thousands of connections
// trickling large heads hold to ~5 MB instead of hundreds of MBs.
const (
	apiSmallHead           = 16 << 10
	apiLargeHeads          = 64
	apiLargeHeadsPerClient = 16
)

// apiHeads is the budget of the API's large request heads; its Wrap
// bounds those an http.Server reads from a listener.
func apiHeads() *headbudget.Budget {
	return headbudget.New(headbudget.Config{Small: apiSmallHead, Slots: apiLargeHeads, PerClient: apiLargeHeadsPerClient, What: "the API"})
}

// internalServer is the http.Server of a listener only Pando's own
// processes speak to, over TLS (the cell API, a cell's rep): header reads
// and idle connections bounded, its errors logged at debug level.
func internalServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// apiHandler is h under t's bounds on request bodies and response writes,
// wherever it is served: its own listener or the router's system hosts.
func apiHandler(h http.Handler, t APITimeouts) http.Handler {
	t = t.withDefaults()
	return writeProgress(bodyProgress(h, t.BodyWindow, t.BodyMinBytes), t.WriteWindow)
}

// bodyProgress puts every request body under bodyrate's rule.
func bodyProgress(next http.Handler, window time.Duration, minBytes int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bodyrate.Guard(w, r, window, minBytes)
		next.ServeHTTP(w, r)
	})
}

// writeProgress gives each write of a response its own deadline, window
// from when it starts: a client that reads, however slowly, is served; one
// that stops reading fails the write instead of holding the handler (and
// its connection) forever. net/http clears the deadline after each request.
func writeProgress(next http.Handler, window time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), window: window}, r)
	})
}

// deadlineWriter moves the connection's write deadline before each write.
// Unwrap lets http.ResponseController reach the connection's own Flush,
// Hijack and deadlines.
type deadlineWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	window time.Duration
}

func (w *deadlineWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.window)) }

func (w *deadlineWriter) WriteHeader(code int) {
	w.arm()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError is what http.ResponseController.Flush calls.
func (w *deadlineWriter) FlushError() error {
	w.arm()
	return w.rc.Flush()
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
