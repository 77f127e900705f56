package cli

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cli/api"
)

// fakeCF is a hand-written CF v3 + UAA + log-cache + /pando/v1 server with
// just the endpoints the CLI tests use, answering in the shapes of
// shared/cf-traces.
type fakeCF struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []string
	tokenN   int
	valid    map[string]bool // access tokens accepted
	refresh  map[string]bool // refresh tokens accepted
	grants   []url.Values
	password string
	tokenTTL time.Duration

	knownSHA1  map[string]bool
	manifest   string
	matchReq   []api.Resource
	uploadRes  []api.Resource
	pkgReq     map[string]any
	zipEntries map[string][]byte
	zipModes   map[string]fs.FileMode

	appExists bool
	appState  string
	dockerApp bool // the app has the docker lifecycle
	instances int
	stgLines  []string
	lastLine  string // sent after the build is reported finished, then the stream ends
	// lastLineGate, when set, holds the last line back until it is
	// closed (instead of until the build is answered).
	lastLineGate chan struct{}
	buildError   string // the build FAILS with this error when set
	stats        [][]statEntry
	buildpacks   []string
	envelopes    []fakeEnvelope // log-cache content, oldest first
	// readSourceTypes: reads honour source_types, as Pando's store does
	// (log-cache, and the fake by default, ignore it).
	readSourceTypes bool
	// startTimeout is the web process's health check timeout in seconds
	// (nil: none set).
	startTimeout *int

	// routerURL, when set, is the root document's links.pando_router.
	routerURL string

	// extra, when set, answers authorized requests first; it returns
	// false to leave a request to the routes below.
	extra func(w http.ResponseWriter, r *http.Request) bool

	buildCreated  chan struct{}
	linesSent     chan struct{}
	sentOnce      sync.Once
	buildAnswered chan struct{}
	answeredOnce  sync.Once
}

type statEntry struct {
	state   string
	details string
	// startedAt is pando_started_at (RFC 3339); "" leaves it out.
	startedAt string
}

type fakeEnvelope struct {
	ts         int64
	sourceType string
	instance   string
	typ        string
	payload    string
}

const (
	orgGUID   = "9bb4707b-d15b-48fa-8130-b7164bdd6bb7"
	spaceGUID = "8a3aa5bd-31d1-4da5-b53e-daf1aa7eeede"
	appGUID   = "1e2008ff-c801-4e83-b446-7a61a401e594"
	pkgGUID   = "4a8fdc2e-7793-4c20-98d5-4468710b27d3"
	buildGUID = "f2b3e9ed-2c16-42ef-a72b-77b7d23b0f5d"
	dropGUID  = "e6756d0c-1b0c-48f2-8bd2-368f7240b0b3"
	jobGUID   = "46595ee0-85d2-48bc-9ddb-76b4c4ebe313"
)

func newFakeCF(t *testing.T) *fakeCF {
	f := &fakeCF{
		t:             t,
		valid:         map[string]bool{},
		refresh:       map[string]bool{},
		password:      "secret",
		tokenTTL:      time.Hour,
		knownSHA1:     map[string]bool{},
		appState:      "STOPPED",
		instances:     1,
		buildpacks:    []string{"staticfile_buildpack", "go_buildpack", "binary_buildpack"},
		buildCreated:  make(chan struct{}),
		linesSent:     make(chan struct{}),
		buildAnswered: make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCF) url() string { return f.srv.URL }

// token issues a JWT-shaped access token (the CLI does not verify
// signatures) and a refresh token.
func (f *fakeCF) token(ttl time.Duration) (access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenN++
	claims, _ := json.Marshal(map[string]any{
		"exp": time.Now().Add(ttl).Unix(), "user_name": "admin", "user_id": "u1", "origin": "uaa", "scope": []string{"cloud_controller.admin"},
		"n": f.tokenN,
	})
	enc := base64.RawURLEncoding
	access = enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + ".c2ln"
	refresh = fmt.Sprintf("refresh-%d", f.tokenN)
	f.valid[access] = true
	f.refresh[refresh] = true
	return access, refresh
}

func (f *fakeCF) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func (f *fakeCF) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Errorf("encode response: %v", err)
	}
}

func (f *fakeCF) cfError(w http.ResponseWriter, status int, code int, title, detail string) {
	f.writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "title": title, "detail": detail}}})
}

func (f *fakeCF) list(items ...any) map[string]any {
	if items == nil {
		items = []any{}
	}
	return map[string]any{
		"pagination": map[string]any{"total_results": len(items), "total_pages": 1, "next": nil},
		"resources":  items,
	}
}

func (f *fakeCF) appJSON() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	lifecycle := map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{}, "stack": "cflinuxfs4"}}
	if f.dockerApp {
		lifecycle = map[string]any{"type": "docker", "data": map[string]any{}}
	}
	return map[string]any{
		"guid": appGUID, "name": "myapp", "state": f.appState,
		"created_at": "2026-11-26T03:25:49Z", "updated_at": "2026-11-26T03:25:49Z",
		"lifecycle": lifecycle,
	}
}

func (f *fakeCF) buildJSON(state string) map[string]any {
	b := map[string]any{
		"guid": buildGUID, "state": state, "error": nil, "droplet": nil,
		"package":    map[string]any{"guid": pkgGUID},
		"created_at": "2026-11-26T03:25:55Z", "updated_at": "2026-11-26T03:25:55Z",
		"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{}, "stack": "cflinuxfs4"}},
	}
	if state == "STAGED" {
		b["droplet"] = map[string]any{"guid": dropGUID}
	}
	if state == "FAILED" {
		b["error"] = f.buildError
	}
	return b
}

func (f *fakeCF) statsJSON(step int) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stats) == 0 {
		return map[string]any{"resources": []any{}, "pando_state_hash": "h0"}
	}
	step = min(step, len(f.stats)-1)
	var res []any
	for i, e := range f.stats[step] {
		var details any
		if e.details != "" {
			details = e.details
		}
		entry := map[string]any{
			"type": "web", "index": i, "state": e.state, "uptime": 1, "details": details,
			"mem_quota": 268435456, "disk_quota": 1073741824, "routable": e.state == "RUNNING",
			"usage": map[string]any{"cpu": 0.0021, "mem": 12713984, "disk": 13377536, "time": "2026-11-26T03:26:08Z"},
		}
		if e.startedAt != "" {
			entry["pando_started_at"] = e.startedAt
		}
		res = append(res, entry)
	}
	return map[string]any{"resources": res, "pando_state_hash": "h" + strconv.Itoa(step)}
}

func (f *fakeCF) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(strings.ToLower(h), "bearer ") {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.valid[h[len("bearer "):]]
}

func (f *fakeCF) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/" && r.Method == http.MethodGet:
		base := f.url()
		f.writeJSON(w, 200, map[string]any{"links": map[string]any{
			"self":                map[string]any{"href": base},
			"cloud_controller_v2": nil,
			"cloud_controller_v3": map[string]any{"href": base + "/v3", "meta": map[string]any{"version": "3.180.0"}},
			"login":               map[string]any{"href": base},
			"uaa":                 map[string]any{"href": base},
			"log_cache":           map[string]any{"href": base},
			"routing":             nil,
			"pando_router":        map[string]any{"href": f.routerURL},
		}})
		return
	case p == "/oauth/token" && r.Method == http.MethodPost:
		f.serveToken(w, r)
		return
	}
	if !f.authorized(r) {
		f.cfError(w, 401, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
		return
	}
	if f.extra != nil && f.extra(w, r) {
		return
	}
	route := r.Method + " " + p
	switch {
	case route == "GET /v3/organizations":
		f.writeJSON(w, 200, f.list(map[string]any{"guid": orgGUID, "name": "myorg"}))
	case route == "GET /v3/spaces":
		f.writeJSON(w, 200, f.list(map[string]any{"guid": spaceGUID, "name": "dev"}))
	case route == "POST /v3/spaces/"+spaceGUID+"/actions/apply_manifest":
		if ct := r.Header.Get("Content-Type"); ct != "application/x-yaml" {
			f.t.Errorf("apply_manifest Content-Type = %q", ct)
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.manifest = string(b)
		f.appExists = true
		f.mu.Unlock()
		w.Header().Set("Location", f.url()+"/v3/jobs/"+jobGUID)
		w.WriteHeader(202)
	case route == "GET /v3/jobs/"+jobGUID:
		f.writeJSON(w, 200, map[string]any{"guid": jobGUID, "state": "COMPLETE", "errors": []any{}, "warnings": []any{}})
	case route == "GET /v3/apps":
		f.mu.Lock()
		exists := f.appExists
		f.mu.Unlock()
		if !exists || (r.URL.Query().Get("names") != "" && r.URL.Query().Get("names") != "myapp") {
			f.writeJSON(w, 200, f.list())
			return
		}
		f.writeJSON(w, 200, f.list(f.appJSON()))
	case route == "POST /v3/resource_matches":
		var in struct {
			Resources []api.Resource `json:"resources"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("resource_matches body: %v", err)
		}
		f.mu.Lock()
		f.matchReq = in.Resources
		var out []any
		for _, res := range in.Resources {
			if f.knownSHA1[res.Checksum.Value] {
				out = append(out, res)
			}
		}
		f.mu.Unlock()
		if out == nil {
			out = []any{}
		}
		f.writeJSON(w, 201, map[string]any{"resources": out})
	case route == "POST /v3/packages":
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("create package body: %v", err)
		}
		f.mu.Lock()
		f.pkgReq = in
		f.mu.Unlock()
		if in["type"] == "docker" {
			f.writeJSON(w, 201, map[string]any{"guid": pkgGUID, "type": "docker", "state": "READY", "data": in["data"]})
			return
		}
		f.writeJSON(w, 201, map[string]any{"guid": pkgGUID, "type": "bits", "state": "AWAITING_UPLOAD", "data": map[string]any{"error": nil}})
	case route == "GET /v3/processes":
		if r.URL.Query().Get("app_guids") != appGUID {
			f.t.Errorf("processes app_guids = %q", r.URL.Query().Get("app_guids"))
		}
		f.mu.Lock()
		n := f.instances
		f.mu.Unlock()
		f.writeJSON(w, 200, f.list(map[string]any{
			"guid": appGUID, "type": "web", "instances": n, "memory_in_mb": 256, "disk_in_mb": 1024,
			"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}},
		}))
	case route == "GET /v3/routes":
		f.writeJSON(w, 200, f.list(map[string]any{
			"guid": "5cb788f7-a094-48de-a0cc-89d5f999b1df", "host": "myapp", "path": "", "url": "myapp.localhost",
			"destinations": []any{map[string]any{"app": map[string]any{"guid": appGUID, "process": map[string]any{"type": "web"}}}},
		}, map[string]any{
			"guid": "7fdd1adc-4c9d-4c26-8540-09e08536e4a4", "host": "www", "path": "/myapp", "url": "www.localhost/myapp",
			"destinations": []any{map[string]any{"app": map[string]any{"guid": appGUID, "process": map[string]any{"type": "web"}}}},
		}))
	case route == "POST /v3/packages/"+pkgGUID+"/upload":
		f.serveUpload(w, r)
	case route == "GET /v3/packages/"+pkgGUID:
		f.writeJSON(w, 200, map[string]any{"guid": pkgGUID, "type": "bits", "state": "READY", "data": map[string]any{"error": nil}})
	case route == "POST /v3/builds":
		close(f.buildCreated)
		f.writeJSON(w, 201, f.buildJSON("STAGING"))
	case route == "GET /pando/v1/logs/"+appGUID+"/stream":
		f.serveStream(w, r)
	case route == "GET /pando/v1/builds/"+buildGUID:
		select {
		case <-f.linesSent:
		case <-r.Context().Done():
			return
		}
		state := "STAGED"
		if f.buildError != "" {
			state = "FAILED"
		}
		f.writeJSON(w, 200, f.buildJSON(state))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		f.answeredOnce.Do(func() { close(f.buildAnswered) })
	case route == "PATCH /v3/apps/"+appGUID+"/relationships/current_droplet":
		f.writeJSON(w, 200, map[string]any{"data": map[string]any{"guid": dropGUID}})
	case route == "POST /v3/apps/"+appGUID+"/actions/restart", route == "POST /v3/apps/"+appGUID+"/actions/start":
		f.mu.Lock()
		f.appState = "STARTED"
		f.mu.Unlock()
		f.writeJSON(w, 200, f.appJSON())
	case route == "GET /v3/apps/"+appGUID+"/processes":
		f.mu.Lock()
		n, startTimeout := f.instances, f.startTimeout
		f.mu.Unlock()
		f.writeJSON(w, 200, f.list(map[string]any{
			"guid": appGUID, "type": "web", "instances": n, "memory_in_mb": 256, "disk_in_mb": 1024, "command": nil,
			"health_check":  map[string]any{"type": "port", "data": map[string]any{"timeout": startTimeout, "invocation_timeout": nil}},
			"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}},
		}))
	case route == "GET /pando/v1/processes/"+appGUID+"/stats":
		step := 0
		if since := r.URL.Query().Get("since"); since != "" {
			n, _ := strconv.Atoi(strings.TrimPrefix(since, "h"))
			step = n + 1
		}
		f.writeJSON(w, 200, f.statsJSON(step))
	case route == "GET /v3/processes/"+appGUID+"/stats":
		f.writeJSON(w, 200, f.statsJSON(len(f.stats)))
	case route == "GET /v3/apps/"+appGUID+"/routes":
		f.writeJSON(w, 200, f.list(map[string]any{
			"guid": "5cb788f7-a094-48de-a0cc-89d5f999b1df", "host": "myapp", "path": "", "url": "myapp.localhost",
			"destinations": []any{map[string]any{"app": map[string]any{"guid": appGUID, "process": map[string]any{"type": "web"}}}},
		}))
	case route == "GET /v3/apps/"+appGUID+"/droplets/current":
		f.writeJSON(w, 200, map[string]any{
			"guid": dropGUID, "state": "STAGED", "stack": "cflinuxfs4", "image": nil, "created_at": "2026-11-26T03:25:55Z",
			"buildpacks": []any{map[string]any{"name": "staticfile_buildpack", "version": "1.6.12", "detect_output": "staticfile", "buildpack_name": "staticfile"}},
		})
	case route == "GET /v3/buildpacks":
		var items []any
		for i, n := range f.buildpacks {
			items = append(items, map[string]any{"guid": fmt.Sprintf("bp%d", i), "name": n, "position": i + 1, "enabled": true, "locked": false, "state": "READY", "stack": "cflinuxfs4", "lifecycle": "buildpack"})
		}
		f.writeJSON(w, 200, f.list(items...))
	case route == "GET /api/v1/read/"+appGUID:
		f.serveRead(w, r)
	default:
		f.cfError(w, 404, 10000, "CF-NotFound", "Unknown request")
	}
}

func (f *fakeCF) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("cf:")) {
		f.writeJSON(w, 401, map[string]any{"error": "unauthorized", "error_description": "Bad client credentials"})
		return
	}
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("token form: %v", err)
	}
	f.mu.Lock()
	f.grants = append(f.grants, r.PostForm)
	ok := false
	switch r.PostForm.Get("grant_type") {
	case "password":
		ok = r.PostForm.Get("username") == "admin" && r.PostForm.Get("password") == f.password
	case "refresh_token":
		ok = f.refresh[r.PostForm.Get("refresh_token")]
	}
	ttl := f.tokenTTL
	f.mu.Unlock()
	if !ok {
		f.writeJSON(w, 401, map[string]any{"error": "unauthorized", "error_description": "Bad credentials"})
		return
	}
	access, refresh := f.token(ttl)
	f.writeJSON(w, 200, map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": int(ttl.Seconds())})
}

func (f *fakeCF) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength <= 0 {
		f.t.Errorf("upload without Content-Length")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		f.t.Errorf("upload: %v", err)
		return
	}
	var parts []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.t.Errorf("upload part: %v", err)
			return
		}
		parts = append(parts, part.FormName())
		data, _ := io.ReadAll(part)
		switch part.FormName() {
		case "resources":
			var res []api.Resource
			if err := json.Unmarshal(data, &res); err != nil {
				f.t.Errorf("resources part: %v", err)
			}
			f.mu.Lock()
			f.uploadRes = res
			f.mu.Unlock()
		case "bits":
			if part.FileName() != "package.zip" {
				f.t.Errorf("bits filename = %q", part.FileName())
			}
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				f.t.Errorf("bits zip: %v", err)
				break
			}
			entries, modes := map[string][]byte{}, map[string]fs.FileMode{}
			for _, zf := range zr.File {
				rc, err := zf.Open()
				if err != nil {
					f.t.Errorf("zip entry %s: %v", zf.Name, err)
					continue
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				entries[zf.Name], modes[zf.Name] = b, zf.Mode()
			}
			f.mu.Lock()
			f.zipEntries, f.zipModes = entries, modes
			f.mu.Unlock()
		}
	}
	if strings.Join(parts, ",") != "resources,bits" {
		f.t.Errorf("upload parts = %v, want resources then bits", parts)
	}
	f.writeJSON(w, 200, map[string]any{"guid": pkgGUID, "type": "bits", "state": "PROCESSING_UPLOAD", "data": map[string]any{"error": nil}})
}

// serveStream sends the staging lines once the build exists, then the last
// line after the build was reported finished; the stream stays open.
func (f *fakeCF) serveStream(w http.ResponseWriter, r *http.Request) {
	if st := r.URL.Query().Get("source_types"); st != "STG" {
		f.t.Errorf("stream source_types = %q, want STG", st)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	select {
	case <-f.buildCreated:
	case <-r.Context().Done():
		return
	}
	send := func(i int, line string) {
		ev, _ := json.Marshal(map[string]any{"timestamp": stgT0 + int64(i), "source_type": "STG", "instance_id": "0", "type": "OUT", "payload": line})
		fmt.Fprintf(w, ": keep-alive\n\ndata: %s\n\n", ev)
		fl.Flush()
	}
	for i, l := range f.stgLines {
		send(i, l)
	}
	f.sentOnce.Do(func() { close(f.linesSent) })
	if f.lastLine == "" {
		<-r.Context().Done()
		return
	}
	gate := f.buildAnswered
	if f.lastLineGate != nil {
		gate = f.lastLineGate
	}
	select {
	case <-gate:
	case <-r.Context().Done():
		return
	}
	send(len(f.stgLines), f.lastLine)
	<-r.Context().Done()
}

// stgT0 is the timestamp of the fake's first staging line.
const stgT0 = int64(1795663555979653120)

// stagingEnvelopes are the staging lines as the log store holds them
// once the build was reported finished.
func (f *fakeCF) stagingEnvelopes() []fakeEnvelope {
	var envs []fakeEnvelope
	lines := f.stgLines
	if f.lastLine != "" {
		lines = append(slices.Clone(lines), f.lastLine)
	}
	for i, l := range lines {
		envs = append(envs, fakeEnvelope{ts: stgT0 + int64(i), sourceType: "STG", instance: "0", typ: "OUT", payload: l})
	}
	return envs
}

func (f *fakeCF) serveRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("envelope_types") != "LOG" {
		f.t.Errorf("read envelope_types = %q", q.Get("envelope_types"))
	}
	f.mu.Lock()
	envs := append([]fakeEnvelope(nil), f.envelopes...)
	if f.envelopes == nil {
		select {
		case <-f.buildAnswered:
			envs = f.stagingEnvelopes()
		default:
		}
	}
	f.mu.Unlock()
	if types := q.Get("source_types"); f.readSourceTypes && types != "" {
		envs = slices.DeleteFunc(envs, func(e fakeEnvelope) bool {
			return !pando.LogSourceSelected(strings.Split(types, ","), e.sourceType)
		})
	}
	if q.Get("descending") == "true" {
		for i, j := 0, len(envs)-1; i < j; i, j = i+1, j-1 {
			envs[i], envs[j] = envs[j], envs[i]
		}
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n < len(envs) {
		envs = envs[:n]
	}
	batch := []any{}
	for _, e := range envs {
		batch = append(batch, map[string]any{
			"timestamp": strconv.FormatInt(e.ts, 10), "source_id": appGUID, "instance_id": e.instance,
			"tags": map[string]any{"source_type": e.sourceType, "app_name": "myapp"},
			"log":  map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(e.payload)), "type": e.typ},
		})
	}
	f.writeJSON(w, 200, map[string]any{"envelopes": map[string]any{"batch": batch}})
}
