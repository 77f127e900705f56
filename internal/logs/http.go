package logs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
)

// LogCacheVersion is the log-cache version advertised by /api/v1/info. The
// cf CLI needs a semver here; a 404 would make it fall back to the old
// /v1/read path.
const LogCacheVersion = "3.0.0"

// Routes registers the log-cache API and Pando's stream on mux. They do
// not check tokens: the API wraps mux with its auth middleware.
func (s *Store) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/info", s.handleInfo)
	mux.HandleFunc("GET /api/v1/read/{source_id}", s.handleRead)
	mux.HandleFunc("GET /pando/v1/logs/{app_guid}/stream", s.handleStream)
}

func (s *Store) handleInfo(w http.ResponseWriter, r *http.Request) {
	uptime := int64(s.now().Sub(s.start) / time.Second)
	writeJSON(w, http.StatusOK, map[string]string{
		"version":   LogCacheVersion,
		"vm_uptime": strconv.FormatInt(uptime, 10),
	})
}

// envelopeJSON is a log-cache v2 envelope as protojson renders it: int64
// timestamp as a string, bytes payload as base64.
type envelopeJSON struct {
	Timestamp  string            `json:"timestamp"`
	SourceID   string            `json:"source_id"`
	InstanceID string            `json:"instance_id"`
	Tags       map[string]string `json:"tags"`
	Log        logJSON           `json:"log"`
}

type logJSON struct {
	Payload []byte `json:"payload"`
	Type    string `json:"type"`
}

type readResponse struct {
	Envelopes struct {
		Batch []envelopeJSON `json:"batch"`
	} `json:"envelopes"`
}

func (s *Store) handleRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var rq ReadQuery
	var err error
	if rq.Start, err = nsParam(q.Get("start_time")); err != nil {
		badRequest(w, "start_time: "+err.Error())
		return
	}
	if rq.End, err = nsParam(q.Get("end_time")); err != nil {
		badRequest(w, "end_time: "+err.Error())
		return
	}
	if v := q.Get("limit"); v != "" {
		if rq.Limit, err = strconv.Atoi(v); err != nil || rq.Limit < 0 {
			badRequest(w, "limit must be a non-negative integer")
			return
		}
	}
	if v := q.Get("descending"); v != "" {
		if rq.Descending, err = strconv.ParseBool(v); err != nil {
			badRequest(w, "descending must be true or false")
			return
		}
	}
	rq.EnvelopeTypes = listParam(q["envelope_types"])
	// source_types is Pando's own (log-cache has no such filter), as on
	// the stream: a client asking for the newest line of some source
	// types gets it in one envelope.
	if rq.SourceTypes, err = sourceTypesParam(q["source_types"]); err != nil {
		badRequest(w, err.Error())
		return
	}
	var resp readResponse
	resp.Envelopes.Batch = []envelopeJSON{}
	sourceID := r.PathValue("source_id")
	batch := s.Read(sourceID, rq)
	appName := ""
	if s.cfg.AppName != nil && len(batch) > 0 {
		appName = s.cfg.AppName(r.Context(), sourceID)
	}
	for _, e := range batch {
		resp.Envelopes.Batch = append(resp.Envelopes.Batch, envelopeJSON{
			Timestamp:  strconv.FormatInt(e.Timestamp.UnixNano(), 10),
			SourceID:   e.SourceID,
			InstanceID: e.InstanceID,
			Tags:       envelopeTags(e, appName),
			Log:        logJSON{Payload: e.Payload, Type: e.Type},
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

// envelopeTags are the tags log-cache's envelopes carry: the source type
// the cf CLI prints, the component that emitted the line (origin, as
// Loggregator names them), the app and the instance.
func envelopeTags(e pando.LogEnvelope, appName string) map[string]string {
	origin := "rep" // the cell: app, task, staging and CELL lines
	switch e.SourceType {
	case pando.LogSourceAPI:
		origin = "cloud_controller"
	case pando.LogSourceRouter:
		origin = "gorouter"
	}
	tags := map[string]string{
		"source_type": e.SourceType,
		"origin":      origin,
		"instance_id": e.InstanceID,
		"app_id":      e.SourceID,
	}
	if appName != "" {
		tags["app_name"] = appName
	}
	return tags
}

// nsParam parses a log-cache time in ns since the epoch. Empty and
// negative values (the cf CLI sends a large negative start) are unbounded.
func nsParam(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	if ns < 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, ns), nil
}

// listParam accepts repeated and comma-separated values.
func listParam(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// maxSourceTypes bounds a source_types filter: each stored line a read
// scans (under the store's lock) and each line a stream is offered is
// matched against every entry, so a URL listing thousands would cost
// every app's logging. Pando's source types are a handful.
const maxSourceTypes = 16

// sourceTypesParam is the source_types filter of a request.
func sourceTypesParam(vs []string) ([]string, error) {
	types := listParam(vs)
	if len(types) > maxSourceTypes {
		return nil, fmt.Errorf("source_types: at most %d source types, got %d", maxSourceTypes, len(types))
	}
	return types, nil
}

// badRequest answers as log-cache's gateway does (gRPC InvalidArgument).
func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg, "code": 3, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// streamEvent is one line of Pando's SSE stream (docs/contracts.md).
type streamEvent struct {
	Timestamp  int64  `json:"timestamp"`
	SourceType string `json:"source_type"`
	InstanceID string `json:"instance_id"`
	Type       string `json:"type"`
	Payload    string `json:"payload"`
}

// handleStream serves GET /pando/v1/logs/{app_guid}/stream: the stored
// lines from start_time (ns; default now, so none) or after the
// Last-Event-ID a reconnecting client sends, then live lines, one
// server-sent event each, until the client goes away.
func (s *Store) handleStream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("app_guid")
	q := r.URL.Query()
	types, err := sourceTypesParam(q["source_types"])
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	var (
		start   time.Time
		history bool
	)
	if v := q.Get("start_time"); v != "" {
		if start, err = nsParam(v); err != nil {
			badRequest(w, "start_time: "+err.Error())
			return
		}
		history = true
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
			start, history = time.Unix(0, ns+1), true
		}
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// Subscribe before reading history so nothing falls between the two;
	// lines in both are skipped by timestamp (strictly increasing per
	// source).
	live := s.Subscribe(ctx, id, types)
	bw := bufio.NewWriter(w)
	var last int64 = minInt64
	write := func(e pando.LogEnvelope) bool {
		data, err := json.Marshal(streamEvent{
			Timestamp:  e.Timestamp.UnixNano(),
			SourceType: e.SourceType,
			InstanceID: e.InstanceID,
			Type:       e.Type,
			Payload:    string(e.Payload),
		})
		if err != nil {
			return false
		}
		if e.SourceType != SourceTypeLoss {
			bw.WriteString("id: " + strconv.FormatInt(e.Timestamp.UnixNano(), 10) + "\n")
		}
		bw.WriteString("data: ")
		bw.Write(data)
		bw.WriteString("\n\n")
		return bw.Flush() == nil && rc.Flush() == nil
	}
	bw.WriteString(": stream open\n\n")
	if err := bw.Flush(); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			s.log.Warn("log stream: the response writer cannot flush; events would never arrive", "source_id", id)
		}
		return
	}
	if history {
		for _, e := range s.read(id, ReadQuery{Start: start, SourceTypes: types, Limit: s.cfg.PerSourceCapacity}) {
			if !write(e) {
				return
			}
			last = e.Timestamp.UnixNano()
		}
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			bw.WriteString(": heartbeat\n\n")
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		case e, ok := <-live:
			if !ok {
				return
			}
			if e.SourceType != SourceTypeLoss && e.Timestamp.UnixNano() <= last {
				continue // already sent from history
			}
			if !write(e) {
				return
			}
		}
	}
}
