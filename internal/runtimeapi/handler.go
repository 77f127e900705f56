// Package runtimeapi carries the runtime contract (pando.Runtime) over
// HTTP: Handler serves any pando.Runtime (the BBS) as JSON, the event
// stream as newline-delimited JSON that resumes from a sequence number,
// and Client implements pando.Runtime against it, so the API, routers and
// cells in other processes use the same contract as in-process callers.
// Authentication is the caller's (Config.Authenticate); the handler is not
// mounted on a public listener.
package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Defaults of Config.
const (
	DefaultMaxStreams = 64
	DefaultHeartbeat  = 15 * time.Second
	// maxRequestBody bounds a request body (a desired LRP or task with its
	// environment).
	maxRequestBody = 8 << 20
)

// Config configures a Handler.
type Config struct {
	// Authenticate admits a request, or refuses it (401) with the error it
	// returns. Required: the seam where the cell's and router's client
	// certificates are checked once cells join with mutual TLS.
	Authenticate func(r *http.Request) error
	// MaxStreams bounds concurrent event streams (default
	// DefaultMaxStreams); more get 503.
	MaxStreams int
	// Heartbeat is how often an idle event stream sends an empty line, so
	// clients and proxies see it alive (default DefaultHeartbeat).
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// Unauthenticated admits every request. Only for tests and loopback
// listeners nothing else can reach.
func Unauthenticated(*http.Request) error { return nil }

type handler struct {
	rt      pando.Runtime
	cfg     Config
	log     *slog.Logger
	streams atomic.Int64
	mux     *http.ServeMux
}

// NewHandler serves rt over HTTP under /v1/.
func NewHandler(rt pando.Runtime, cfg Config) (http.Handler, error) {
	if rt == nil || cfg.Authenticate == nil {
		return nil, errors.New("runtimeapi: a runtime and Config.Authenticate are required")
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{rt: rt, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	routes := map[string]func(w http.ResponseWriter, r *http.Request) error{
		"POST /v1/desired_lrps":                                      h.desireLRP,
		"GET /v1/desired_lrps":                                       h.desiredLRPs,
		"GET /v1/desired_lrps/{guid}":                                h.desiredLRP,
		"PATCH /v1/desired_lrps/{guid}":                              h.updateDesiredLRP,
		"DELETE /v1/desired_lrps/{guid}":                             h.removeDesiredLRP,
		"GET /v1/actual_lrps":                                        h.actualLRPs,
		"POST /v1/actual_lrps/{process_guid}/{instance_guid}/retire": h.retireActualLRP,
		"POST /v1/tasks":                                             h.desireTask,
		"GET /v1/tasks":                                              h.tasks,
		"GET /v1/tasks/{guid}":                                       h.task,
		"POST /v1/tasks/{guid}/cancel":                               h.cancelTask,
		"POST /v1/tasks/{guid}/resolve":                              h.resolveTask,
		"GET /v1/cells":                                              h.cells,
		"POST /v1/cells/{id}/drain":                                  h.drainCell,
		"POST /v1/cells/{id}/undrain":                                h.undrainCell,
		"GET /v1/events":                                             h.events,
	}
	for pattern, fn := range routes {
		h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, err)
			}
		})
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Authenticate(r); err != nil {
		h.log.Info("runtime API request refused", "remote_addr", r.RemoteAddr, "path", r.URL.Path, "err", err)
		writeError(w, &pando.Error{Kind: pando.EUnauthenticated, Message: "runtime API: not authenticated", Err: err})
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) desireLRP(w http.ResponseWriter, r *http.Request) error {
	var d pando.DesiredLRP
	if err := readJSON(r, &d); err != nil {
		return err
	}
	return noContent(w, h.rt.DesireLRP(r.Context(), d))
}

func (h *handler) desiredLRPs(w http.ResponseWriter, r *http.Request) error {
	ds, err := h.rt.DesiredLRPs(r.Context())
	return writeResult(w, ds, err)
}

func (h *handler) desiredLRP(w http.ResponseWriter, r *http.Request) error {
	d, err := h.rt.DesiredLRP(r.Context(), r.PathValue("guid"))
	return writeResult(w, d, err)
}

func (h *handler) updateDesiredLRP(w http.ResponseWriter, r *http.Request) error {
	var u pando.DesiredLRPUpdate
	if err := readJSON(r, &u); err != nil {
		return err
	}
	return noContent(w, h.rt.UpdateDesiredLRP(r.Context(), r.PathValue("guid"), u))
}

func (h *handler) removeDesiredLRP(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.RemoveDesiredLRP(r.Context(), r.PathValue("guid")))
}

func (h *handler) actualLRPs(w http.ResponseWriter, r *http.Request) error {
	as, err := h.rt.ActualLRPs(r.Context(), r.URL.Query().Get("process_guid"))
	return writeResult(w, as, err)
}

func (h *handler) retireActualLRP(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.RetireActualLRP(r.Context(), r.PathValue("process_guid"), r.PathValue("instance_guid")))
}

func (h *handler) desireTask(w http.ResponseWriter, r *http.Request) error {
	var t pando.Task
	if err := readJSON(r, &t); err != nil {
		return err
	}
	return noContent(w, h.rt.DesireTask(r.Context(), t))
}

func (h *handler) tasks(w http.ResponseWriter, r *http.Request) error {
	ts, err := h.rt.Tasks(r.Context())
	return writeResult(w, ts, err)
}

func (h *handler) task(w http.ResponseWriter, r *http.Request) error {
	t, err := h.rt.Task(r.Context(), r.PathValue("guid"))
	return writeResult(w, t, err)
}

func (h *handler) cancelTask(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.CancelTask(r.Context(), r.PathValue("guid")))
}

func (h *handler) resolveTask(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.ResolveTask(r.Context(), r.PathValue("guid")))
}

func (h *handler) cells(w http.ResponseWriter, r *http.Request) error {
	cs, err := h.rt.Cells(r.Context())
	return writeResult(w, cs, err)
}

func (h *handler) drainCell(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.DrainCell(r.Context(), r.PathValue("id")))
}

func (h *handler) undrainCell(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, h.rt.UndrainCell(r.Context(), r.PathValue("id")))
}

// events streams the runtime's events after ?after=N as one JSON object
// per line, with an empty line every Heartbeat while idle.
func (h *handler) events(w http.ResponseWriter, r *http.Request) error {
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return pando.Errorf(pando.EBadRequest, "after: %q is not an event sequence number", s)
		}
		after = n
	}
	if h.streams.Add(1) > int64(h.cfg.MaxStreams) {
		h.streams.Add(-1)
		return pando.Errorf(pando.EUnavailable, "runtime API: too many event streams (at most %d)", h.cfg.MaxStreams)
	}
	defer h.streams.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := h.rt.Subscribe(ctx, after)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil // the client is gone
	}
	enc := json.NewEncoder(w)
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if _, err := io.WriteString(w, "\n"); err != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			// Write what is queued in one flush.
			for more := true; more; {
				select {
				case ev, ok := <-events:
					if !ok {
						more = false
						break
					}
					if err := enc.Encode(ev); err != nil {
						return nil
					}
				default:
					more = false
				}
			}
			beat.Reset(h.cfg.Heartbeat)
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

func writeError(w http.ResponseWriter, err error) {
	kind := pando.ErrorKindOf(err)
	msg := err.Error()
	var pe *pando.Error
	if errors.As(err, &pe) && kind == pando.EUnauthenticated {
		msg = pe.Message // the reason stays in the server's logs
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		kind, msg = pando.EUnavailable, "runtime API: request ended before the runtime answered: "+err.Error()
	}
	wireerr.Write(w, kind, msg)
}

func writeResult(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
	return nil
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return pando.Errorf(pando.EBadRequest, "read request body: %v", err)
	}
	if len(body) > maxRequestBody {
		return pando.Errorf(pando.ETooLarge, "request body exceeds %d bytes", maxRequestBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return pando.Errorf(pando.EBadRequest, "request body: %v", fmt.Errorf("invalid JSON: %w", err))
	}
	return nil
}
