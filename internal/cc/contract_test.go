package cc

// Contract tests: the request sequences the real cf CLI v8 sends (recorded
// in shared/cf-traces, one test per trace), replayed in order with the
// CLI's own headers and bodies against the real API over HTTP: SQLite
// CCDB, filesystem blobstore, UAA and log-cache, the real BBS and
// simulated cells (realruntime_test.go: the real cell code on fake
// containers). Each test asserts the fields the CLI reads or needs.
// Helpers here are prefixed ct.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pandoplatform/pando"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/logs"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/uaa"
)

// What every cf CLI request carries (trace "Surprises" 4).
const (
	ctUserAgent = "cf/8.18.4+3fcd823a1.2026-11-26 (go1.26.8; amd64 linux)"
	// ctBasicCF is `Authorization: Basic base64("cf:")`, the CLI's UAA client.
	ctBasicCF = "Basic Y2Y6"
	// ctStartTime is the log-cache start_time the CLI sends for "from the
	// beginning".
	ctStartTime   = "-6795364578871345152"
	ctAdminPass   = "secret"
	ctStagingFail = "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
)

// --- environment ---

// ctClock is the API's clock: real time plus an offset a test may advance
// to skip the 2 s STAGING settle of GET /v3/builds.
type ctClock struct{ off atomic.Int64 }

func (c *ctClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *ctClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// ctTokenAuth adapts UAA to the API's Authenticator, as internal/server does.
type ctTokenAuth struct{ s *uaa.Service }

func (a ctTokenAuth) Authenticate(r *http.Request) (Identity, error) {
	id, err := a.s.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return Identity{}, err
	}
	return Identity{UserGUID: id.UserGUID, UserName: id.UserName, Scopes: id.Scopes}, nil
}

// ctKey is one UAA signing key for the whole test binary: RSA generation
// is the slowest part of an environment.
var ctKey struct {
	once sync.Once
	pem  []byte
	err  error
}

func ctKeyFile(tb testing.TB, dir string) string {
	tb.Helper()
	ctKey.once.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			ctKey.err = err
			return
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		ctKey.pem, ctKey.err = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), err
	})
	if ctKey.err != nil {
		tb.Fatalf("uaa key: %v", ctKey.err)
	}
	p := filepath.Join(dir, "uaa-key.pem")
	if err := os.WriteFile(p, ctKey.pem, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// ctOpts tunes an environment.
type ctOpts struct {
	hold     bool               // staging waits for the test
	noFollow bool               // the API does not follow the runtime's events
	cell     func(*cell.Config) // last word on every cell's config
	noLogin  bool               // start without a token
	mod      func(*Config)      // last word on the API's config
	uaaMod   func(*uaa.Config)
}

type ctEnv struct {
	t      testing.TB
	api    *API
	store  *sqlstore.Store
	blobs  *fsblob.Store
	logs   *logs.Store
	uaa    *uaa.Service
	rt     *rrRuntime
	cfg    Config // the API's
	clock  *ctClock
	srv    *httptest.Server
	client *http.Client
	base   string
	// root holds everything on disk; tmp is the API's TempDir inside it.
	root, tmp string

	token, refresh string
}

// ctNew starts the API on a loopback httptest server the way
// internal/server wires it, seeded as the traces were (one org, one
// space, the staticfile, go and binary buildpacks), and logs in as admin.
func ctNew(tb testing.TB, o ctOpts) *ctEnv {
	tb.Helper()
	ctx := context.Background()
	root := tb.TempDir()
	e := &ctEnv{t: tb, root: root, tmp: filepath.Join(root, "tmp"), clock: &ctClock{}}
	for _, d := range []string{"tmp", "blobs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	st, err := sqlstore.Open(ctx, filepath.Join(root, "ccdb.sqlite"), quiet)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	e.store = st
	if e.blobs, err = fsblob.New(filepath.Join(root, "blobs")); err != nil {
		tb.Fatalf("blobstore: %v", err)
	}
	// As internal/server wires it: app_name tags from the CCDB.
	e.logs = logs.New(logs.Config{AppName: func(ctx context.Context, id string) string {
		app, err := st.GetApp(ctx, id)
		if err != nil {
			return ""
		}
		return app.Name
	}})
	tb.Cleanup(e.logs.Close)

	e.srv = httptest.NewUnstartedServer(nil)
	e.base = "http://" + e.srv.Listener.Addr().String()
	ucfg := uaa.Config{
		Users: st, KeyPath: ctKeyFile(tb, root), Issuer: e.base + "/oauth/token",
		BcryptCost: bcrypt.MinCost, Logger: quiet,
	}
	if o.uaaMod != nil {
		o.uaaMod(&ucfg)
	}
	e.uaa, err = uaa.New(ucfg)
	if err != nil {
		tb.Fatalf("uaa: %v", err)
	}
	if err := e.uaa.EnsureAdmin(ctx, "admin", ctAdminPass); err != nil {
		tb.Fatalf("admin: %v", err)
	}
	blobPath := func(key string) (string, bool) {
		p, err := e.blobs.Path(key)
		return p, err == nil
	}
	e.rt = rrStart(tb, e.blobs, blobPath, e.logs, rrOpts{hold: o.hold, cell: o.cell})
	cfg := Config{
		BaseURL: e.base, Domain: "localhost", RouterURL: "http://127.0.0.1:8080",
		TempDir: e.tmp, Store: st, Blobs: e.blobs, Runtime: e.rt.board, Stats: rrStats{e.rt.board}, Logs: e.logs,
		Auth: ctTokenAuth{e.uaa}, Logger: quiet, Now: e.clock.Now,
		PublicRoutes: e.uaa.Routes, AuthedRoutes: e.logs.Routes,
	}
	if o.mod != nil {
		o.mod(&cfg)
	}
	if e.api, err = New(cfg); err != nil {
		tb.Fatalf("New: %v", err)
	}
	e.cfg = cfg
	builtins := []BuiltinBuildpack{
		{Name: "staticfile_buildpack", Position: 1, Zip: ptZipFunc(map[string]string{"bin/detect": "#!/bin/sh\n", "bin/finalize": "#!/bin/sh\n", "bin/release": "#!/bin/sh\n"})},
		{Name: "go_buildpack", Position: 2, Zip: ptZipFunc(map[string]string{"bin/detect": "#!/bin/sh\nexit 1\n", "bin/supply": "#!/bin/sh\n", "bin/finalize": "#!/bin/sh\n"})},
		{Name: "binary_buildpack", Position: 3, Zip: ptZipFunc(map[string]string{"bin/detect": "#!/bin/sh\nexit 1\n", "bin/compile": "#!/bin/sh\n"})},
	}
	if err := e.api.Seed(ctx, builtins); err != nil {
		tb.Fatalf("Seed: %v", err)
	}
	e.srv.Config.Handler = e.api
	e.srv.Start()
	tb.Cleanup(e.srv.Close)
	if !o.noFollow {
		e.follow()
	}
	e.client = e.srv.Client()
	if !o.noLogin {
		e.auth("admin", ctAdminPass)
	}
	return e
}

// follow runs the API's FollowRuntime until the test ends, stopping it
// before the cells and the BBS (cleanups run last first).
func (e *ctEnv) follow() {
	ctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); e.api.FollowRuntime(ctx) }()
	e.t.Cleanup(func() { stop(); <-followed })
}

// restarted is the environment after a server restart: a new BBS and
// cells, an API on the same CCDB, blobstore and log store restored from
// the CCDB and following the new BBS, on a new address. The old server
// keeps running (its runtime holds nothing the new one sees).
func (e *ctEnv) restarted() *ctEnv {
	e.t.Helper()
	n := *e
	blobPath := func(key string) (string, bool) {
		p, err := e.blobs.Path(key)
		return p, err == nil
	}
	n.rt = rrStart(e.t, e.blobs, blobPath, e.logs, rrOpts{})
	n.srv = httptest.NewUnstartedServer(nil)
	n.base = "http://" + n.srv.Listener.Addr().String()
	n.cfg.Runtime, n.cfg.Stats, n.cfg.BaseURL = n.rt.board, rrStats{n.rt.board}, n.base
	var err error
	if n.api, err = New(n.cfg); err != nil {
		e.t.Fatalf("New: %v", err)
	}
	if err := n.api.Restore(context.Background()); err != nil {
		e.t.Fatalf("Restore: %v", err)
	}
	n.srv.Config.Handler = n.api
	n.srv.Start()
	e.t.Cleanup(n.srv.Close)
	n.client = n.srv.Client()
	n.follow()
	return &n
}

// --- HTTP as the cf CLI speaks it ---

type ctResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r ctResp) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

func (e *ctEnv) abs(target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target
	}
	return e.base + target
}

// send makes one request with the CLI's headers and the current token;
// opts may change the request before it goes. Every answer must carry
// X-Vcap-Request-Id, which the CLI echoes in unexpected-error messages.
func (e *ctEnv) send(method, target, ctype string, body []byte, opts ...func(*http.Request)) ctResp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.abs(target), rd)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", ctUserAgent)
	req.Header.Set("X-B3-Traceid", "804390faf01c4c18bc05ea48ad6e73eb")
	req.Header.Set("X-B3-Spanid", "b6cc6267e695bfad")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "bearer "+e.token)
	}
	for _, o := range opts {
		o(req)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	if res.Header.Get("X-Vcap-Request-Id") == "" {
		e.t.Errorf("%s %s: response has no X-Vcap-Request-Id", method, target)
	}
	return ctResp{Status: res.StatusCode, Header: res.Header, Body: data}
}

// get is a CLI GET: Content-Type application/json and no body.
func (e *ctEnv) get(target string) ctResp {
	e.t.Helper()
	return e.send("GET", target, "application/json", nil)
}

func (e *ctEnv) sendJSON(method, target string, v any) ctResp {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(method, target, "application/json", b)
}

// action is a CLI POST without a body (start, stop, restart).
func (e *ctEnv) action(target string) ctResp {
	e.t.Helper()
	return e.send("POST", target, "application/json", nil)
}

func ctWithHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func ctWithoutHeader(k string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Del(k) }
}

// expect asserts the status and decodes a JSON object body.
func (e *ctEnv) expect(r ctResp, status int) map[string]any {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("status %d, want %d; body: %s", r.Status, status, bytes.TrimSpace(r.Body))
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(r.Body)) > 0 {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			e.t.Fatalf("decode %q: %v", r.Body, err)
		}
	}
	return out
}

// expectCFError asserts CF's error body; an empty detail accepts any
// non-empty one. It returns the first error's detail.
func (e *ctEnv) expectCFError(r ctResp, status int, title, detail string) string {
	e.t.Helper()
	body := e.expect(r, status)
	first, err := ctFirstCFError(body)
	if err != nil {
		e.t.Fatalf("%v in %s", err, r.Body)
	}
	if title != "" && first["title"] != title {
		e.t.Errorf("title = %v, want %s (body %s)", first["title"], title, r.Body)
	}
	d, _ := first["detail"].(string)
	if detail != "" && d != detail {
		e.t.Errorf("detail = %q, want %q", d, detail)
	}
	return d
}

// ctFirstCFError checks body is {"errors":[{"code":N,"title":"CF-...","detail":"..."}]}.
func ctFirstCFError(body map[string]any) (map[string]any, error) {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return nil, fmt.Errorf("no errors[]")
	}
	first, ok := errs[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("errors[0] is not an object")
	}
	if _, ok := first["code"].(float64); !ok {
		return nil, fmt.Errorf("errors[0].code is not a number")
	}
	if t, _ := first["title"].(string); !strings.HasPrefix(t, "CF-") && t != "UnknownError" {
		return nil, fmt.Errorf("errors[0].title %q is not a CF title", first["title"])
	}
	if d, _ := first["detail"].(string); d == "" {
		return nil, fmt.Errorf("errors[0].detail is empty")
	}
	return first, nil
}

// ctJ walks a decoded JSON value: "links.login.href", "resources.0.guid".
func ctJ(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func ctStr(v any, path string) string {
	s, _ := ctJ(v, path).(string)
	return s
}

func ctNum(v any, path string) float64 {
	n, _ := ctJ(v, path).(float64)
	return n
}

func (e *ctEnv) list(r ctResp) []map[string]any {
	e.t.Helper()
	body := e.expect(r, http.StatusOK)
	if _, ok := body["pagination"].(map[string]any); !ok {
		e.t.Fatalf("list without pagination: %s", r.Body)
	}
	raw, ok := body["resources"].([]any)
	if !ok {
		e.t.Fatalf("list without resources: %s", r.Body)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// firstJobPoll follows a 202's Location once, as the CLI's first poll
// does, and returns the job.
func (e *ctEnv) firstJobPoll(r ctResp) map[string]any {
	e.t.Helper()
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("status %d, want 202; body: %s", r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, e.base+"/v3/jobs/") {
		e.t.Fatalf("Location %q is not an absolute job URL under %s", loc, e.base)
	}
	return e.expect(e.get(loc), http.StatusOK)
}

// completeJob asserts the job is COMPLETE on the CLI's first poll.
func (e *ctEnv) completeJob(r ctResp) map[string]any {
	e.t.Helper()
	job := e.firstJobPoll(r)
	if job["state"] != pando.JobComplete {
		e.t.Fatalf("job state %v on first poll, want COMPLETE; job %v", job["state"], job)
	}
	return job
}

// --- UAA ---

func (e *ctEnv) tokenRequest(loginHref string, form url.Values) ctResp {
	e.t.Helper()
	return e.send("POST", loginHref+"/oauth/token", "application/x-www-form-urlencoded", []byte(form.Encode()),
		ctWithHeader("Authorization", ctBasicCF), ctWithHeader("Connection", "close"))
}

// auth is `cf auth USER PASS`: one token request, nothing else.
func (e *ctEnv) auth(user, pass string) map[string]any {
	e.t.Helper()
	tok := e.expect(e.tokenRequest(e.base, url.Values{"grant_type": {"password"}, "password": {pass}, "username": {user}}), http.StatusOK)
	e.token, e.refresh = ctStr(tok, "access_token"), ctStr(tok, "refresh_token")
	return tok
}

// ctClaims decodes a JWT's claims the way the CLI does (no verification).
func ctClaims(tb testing.TB, token string) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("access token is not a compact JWS: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatalf("JWT payload: %v", err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(raw, &c); err != nil {
		tb.Fatalf("JWT claims: %v", err)
	}
	return c
}

// checkToken asserts what the CLI reads from a token response.
func (e *ctEnv) checkToken(tok map[string]any) {
	e.t.Helper()
	for _, k := range []string{"access_token", "refresh_token"} {
		if ctStr(tok, k) == "" {
			e.t.Errorf("token response has no %s", k)
		}
	}
	if tok["token_type"] != "bearer" {
		e.t.Errorf("token_type = %v, want bearer (used verbatim after a refresh)", tok["token_type"])
	}
	if ctNum(tok, "expires_in") <= 60 {
		e.t.Errorf("expires_in = %v", tok["expires_in"])
	}
	c := ctClaims(e.t, ctStr(tok, "access_token"))
	exp, ok := c["exp"].(float64)
	// The CLI refreshes before every request when < 60 s remain; a push
	// takes minutes.
	if !ok || time.Unix(int64(exp), 0).Before(time.Now().Add(10*time.Minute)) {
		e.t.Errorf("exp = %v, want a number well in the future", c["exp"])
	}
	if c["user_name"] != "admin" {
		e.t.Errorf("user_name = %v", c["user_name"])
	}
	for _, k := range []string{"user_id", "origin"} {
		if s, _ := c[k].(string); s == "" {
			e.t.Errorf("claim %s = %v, want a string", k, c[k])
		}
	}
	scopes, _ := c["scope"].([]any)
	if len(scopes) == 0 {
		e.t.Errorf("scope = %v, want a list of strings", c["scope"])
	}
	for _, s := range scopes {
		if _, ok := s.(string); !ok {
			e.t.Errorf("scope entry %v is not a string", s)
		}
	}
}

// --- push ---

// ctFile is one file of an app directory.
type ctFile struct {
	Path string
	Mode fs.FileMode
	Body string
}

func ctSHA1(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func ctOctal(m fs.FileMode) string { return strconv.FormatUint(uint64(m.Perm()), 8) }

// ctStaticApp is the traces' app/: index.html and an empty Staticfile.
func ctStaticApp() []ctFile {
	return []ctFile{
		{Path: "Staticfile", Mode: 0o644},
		{Path: "index.html", Mode: 0o644, Body: "<html><body><h1>Hello from a cf CLI contract test!</h1></body></html>"},
	}
}

// ctResource is a file as resource_matches and the upload's resources
// part carry it.
func ctResource(f ctFile) map[string]any {
	return map[string]any{
		"checksum":      map[string]any{"value": ctSHA1(f.Body)},
		"mode":          ctOctal(f.Mode),
		"path":          f.Path,
		"size_in_bytes": len(f.Body),
	}
}

// ctZip zips files with their unix modes, as the CLI's package.zip.
func ctZip(tb testing.TB, files []ctFile) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		fh := &zip.FileHeader{Name: f.Path, Method: zip.Deflate}
		fh.SetMode(f.Mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(w, f.Body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// ctUpload builds the CLI's multipart upload: `resources` first, then
// `bits` as package.zip. A nil part is left out.
func ctUpload(tb testing.TB, resources []byte, bits []byte) (string, []byte) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if resources != nil {
		w, err := mw.CreateFormField("resources")
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(resources)
	}
	if bits != nil {
		w, err := mw.CreateFormFile("bits", "package.zip")
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(bits)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func (e *ctEnv) spaceGUID() string {
	e.t.Helper()
	spaces := e.list(e.get("/v3/spaces?names=" + SeedSpaceName))
	if len(spaces) != 1 {
		e.t.Fatalf("spaces named %s: %v", SeedSpaceName, spaces)
	}
	return ctStr(spaces[0], "guid")
}

// ctApp is a pushed app's GUIDs.
type ctApp struct {
	Name, Space, GUID, Package, Build, Droplet string
}

func (e *ctEnv) appsNamed(name, space string) []map[string]any {
	e.t.Helper()
	return e.list(e.get("/v3/apps?names=" + url.QueryEscape(name) + "&space_guids=" + space))
}

// applyManifest is push's first step: apply_manifest, then the job.
func (e *ctEnv) applyManifest(space, manifest string) map[string]any {
	e.t.Helper()
	return e.completeJob(e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte(manifest)))
}

// uploadBits is push's bits step: resource_matches, package, upload.
// Matched files go in the resources part, the rest (and every zero-byte
// file, never asked about) in package.zip.
func (e *ctEnv) uploadBits(appGUID string, files []ctFile) string {
	e.t.Helper()
	var ask []any
	for _, f := range files {
		if len(f.Body) > 0 {
			ask = append(ask, ctResource(f))
		}
	}
	if ask == nil {
		ask = []any{}
	}
	matches := e.expect(e.sendJSON("POST", "/v3/resource_matches", map[string]any{"resources": ask}), http.StatusCreated)
	matched := map[string]bool{}
	list, ok := matches["resources"].([]any)
	if !ok {
		e.t.Fatalf("resource_matches without resources: %v", matches)
	}
	for _, m := range list {
		if ctStr(m, "mode") == "" {
			e.t.Fatalf("matched resource without an octal mode: %v (the CLI dies parsing it)", m)
		}
		matched[ctStr(m, "path")] = true
	}
	var zipped []ctFile
	resources := []any{}
	for _, f := range files {
		if matched[f.Path] {
			resources = append(resources, ctResource(f))
		} else {
			zipped = append(zipped, f)
		}
	}
	pkg := e.expect(e.sendJSON("POST", "/v3/packages", map[string]any{
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}},
		"type":          "bits",
	}), http.StatusCreated)
	guid := ctStr(pkg, "guid")
	if guid == "" || pkg["state"] != pando.PackageAwaitingUpload {
		e.t.Fatalf("new package: %v", pkg)
	}
	resJSON, _ := json.Marshal(resources)
	ctype, body := ctUpload(e.t, resJSON, ctZip(e.t, zipped))
	up := e.expect(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body), http.StatusOK)
	// READY at once spares the CLI its 3 s sleep before polling.
	if up["state"] != pando.PackageReady {
		e.t.Errorf("upload answered state %v, want READY", up["state"])
	}
	if got := e.expect(e.get("/v3/packages/"+guid), http.StatusOK); got["state"] != pando.PackageReady {
		e.t.Fatalf("package state %v, want READY", got["state"])
	}
	return guid
}

// pushToBuild replays `cf push` (trace 05) up to POST /v3/builds.
func (e *ctEnv) pushToBuild(name, manifest string, files []ctFile) ctApp {
	e.t.Helper()
	app := ctApp{Name: name, Space: e.spaceGUID()}
	e.applyManifest(app.Space, manifest)
	apps := e.appsNamed(name, app.Space)
	if len(apps) != 1 {
		e.t.Fatalf("after apply_manifest, apps named %s: %v", name, apps)
	}
	a := apps[0]
	app.GUID = ctStr(a, "guid")
	if (a["state"] != pando.AppStopped && a["state"] != pando.AppStarted) || ctStr(a, "lifecycle.type") != pando.LifecycleBuildpack {
		e.t.Errorf("new app: state %v lifecycle %v", a["state"], a["lifecycle"])
	}
	if _, ok := ctJ(a, "lifecycle.data.buildpacks").([]any); !ok {
		e.t.Errorf("lifecycle.data.buildpacks = %v, want a list", ctJ(a, "lifecycle.data.buildpacks"))
	}
	if ctStr(a, "lifecycle.data.stack") == "" {
		e.t.Errorf("lifecycle.data.stack is empty")
	}
	app.Package = e.uploadBits(app.GUID, files)
	e.appsNamed(name, app.Space)
	b := e.expect(e.sendJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": app.Package}}), http.StatusCreated)
	app.Build = ctStr(b, "guid")
	// An unchanged push's build is STAGED at once with its old droplet.
	reused := b["state"] == pando.BuildStaged && ctStr(b, "droplet.guid") != ""
	if app.Build == "" || (b["state"] != pando.BuildStaging && !reused) {
		e.t.Fatalf("new build: %v", b)
	}
	if got := b["staging_log_rate_limit_bytes_per_second"]; got != float64(pando.StagingLogRateLimit) {
		e.t.Errorf("staging_log_rate_limit_bytes_per_second = %v, want the cell's bound %d", got, pando.StagingLogRateLimit)
	}
	return app
}

// waitBuild polls GET /v3/builds/:guid as the CLI does until it leaves
// STAGING. The API keeps a finished build STAGING for stgSettle; unless
// realTime is set, the clock jumps over that once the store shows the
// build finished.
func (e *ctEnv) waitBuild(guid string, realTime bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	skipped := false
	for {
		b := e.expect(e.get("/v3/builds/"+guid), http.StatusOK)
		if b["state"] != pando.BuildStaging {
			return b
		}
		if b["droplet"] != nil || b["error"] != nil {
			e.t.Fatalf("a STAGING build shows droplet %v, error %v", b["droplet"], b["error"])
		}
		if !realTime && !skipped {
			if sb, err := e.store.GetBuild(context.Background(), guid); err == nil && sb.State != pando.BuildStaging {
				e.clock.Advance(stgSettle)
				skipped = true
				continue
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("build %s still STAGING after 10 s", guid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// staged asserts a finished build is a success the CLI can use.
func (e *ctEnv) staged(b map[string]any) string {
	e.t.Helper()
	if b["state"] != pando.BuildStaged {
		e.t.Fatalf("build state %v (error %v), want STAGED", b["state"], b["error"])
	}
	d := ctStr(b, "droplet.guid")
	if d == "" {
		e.t.Fatalf("STAGED build without droplet.guid: the CLI would unassign the droplet (B3)")
	}
	if ctStr(b, "created_at") == "" {
		e.t.Errorf("build without created_at")
	}
	return d
}

// checkStats waits, as `cf push` and `cf app` poll, until the cells report
// every instance RUNNING, then asserts what `cf app` shows.
func (e *ctEnv) checkStats(processGUID string, instances, memMB int) []map[string]any {
	e.t.Helper()
	var body map[string]any
	var raw []any
	for deadline, advanced := time.Now().Add(10*time.Second), false; ; time.Sleep(5 * time.Millisecond) {
		body = e.expect(e.get("/v3/processes/"+processGUID+"/stats"), http.StatusOK)
		raw, _ = body["resources"].([]any)
		running := len(raw) == instances
		young := false
		for _, x := range raw {
			s, _ := x.(map[string]any)
			running = running && s["state"] == "RUNNING" && ctNum(s, "usage.mem") != 0
			young = young || ctNum(s, "uptime") < 1
		}
		if running && young && !advanced {
			// The CLI reads stats seconds after the start: so does
			// the test, on the API's clock.
			e.clock.Advance(2 * time.Second)
			advanced = true
			continue
		}
		if running || time.Now().After(deadline) {
			break
		}
	}
	if len(raw) != instances {
		e.t.Fatalf("stats has %d instances, want %d: %v", len(raw), instances, body)
	}
	var out []map[string]any
	for i, x := range raw {
		s := x.(map[string]any)
		out = append(out, s)
		if s["state"] != "RUNNING" {
			e.t.Errorf("instance %d state %v, want RUNNING", i, s["state"])
		}
		if s["type"] != "web" || ctNum(s, "index") != float64(i) {
			e.t.Errorf("instance %d: type %v index %v", i, s["type"], s["index"])
		}
		if up, ok := s["uptime"].(float64); !ok || up < 1 {
			e.t.Errorf("instance %d uptime %v, want seconds since start", i, s["uptime"])
		}
		// pando_started_at is the start the uptime counts from: the same
		// instant on every call, where uptime moves by whole seconds.
		started, err := time.Parse(time.RFC3339, fmt.Sprint(s["pando_started_at"]))
		if err != nil {
			e.t.Errorf("instance %d pando_started_at %v: %v", i, s["pando_started_at"], err)
		} else if d := e.clock.Now().Sub(started); d < time.Duration(ctNum(s, "uptime"))*time.Second || d > time.Duration(ctNum(s, "uptime")+60)*time.Second {
			e.t.Errorf("instance %d started %s, %s ago, but uptime %vs", i, started, d, s["uptime"])
		}
		if ctNum(s, "mem_quota") != float64(memMB<<20) {
			e.t.Errorf("instance %d mem_quota %v, want %d", i, s["mem_quota"], memMB<<20)
		}
		for _, k := range []string{"disk_quota", "log_rate_limit"} {
			if _, ok := s[k].(float64); !ok {
				e.t.Errorf("instance %d %s = %v, want a number", i, k, s[k])
			}
		}
		if _, ok := s["details"]; !ok {
			e.t.Errorf("instance %d has no details", i)
		}
		if s["routable"] != true {
			e.t.Errorf("instance %d routable %v", i, s["routable"])
		}
		for _, k := range []string{"cpu", "mem", "disk", "log_rate", "cpu_entitlement"} {
			if _, ok := ctJ(s, "usage."+k).(float64); !ok {
				e.t.Errorf("instance %d usage.%s = %v", i, k, ctJ(s, "usage."+k))
			}
		}
		if ctNum(s, "usage.mem") != rrMemUsage {
			e.t.Errorf("instance %d usage.mem %v, want the cell's %d", i, ctJ(s, "usage.mem"), rrMemUsage)
		}
	}
	return out
}

// webProcess returns the app's web process from GET /v3/apps/:guid/processes.
func (e *ctEnv) webProcess(appGUID string) map[string]any {
	e.t.Helper()
	for _, p := range e.list(e.get("/v3/apps/" + appGUID + "/processes")) {
		if p["type"] == "web" {
			for _, k := range []string{"guid", "instances", "memory_in_mb", "disk_in_mb", "health_check"} {
				if p[k] == nil {
					e.t.Errorf("process has no %s: %v", k, p)
				}
			}
			if ctStr(p, "health_check.type") == "" {
				e.t.Errorf("process health_check.type empty")
			}
			return p
		}
	}
	e.t.Fatalf("app %s has no web process", appGUID)
	return nil
}

// summary is what `cf app` (and the end of `cf push`) asks for.
func (e *ctEnv) summary(app ctApp, instances, memMB int) {
	e.t.Helper()
	apps := e.appsNamed(app.Name, app.Space)
	if len(apps) != 1 || apps[0]["state"] != pando.AppStarted {
		e.t.Fatalf("summary: apps %v", apps)
	}
	web := e.webProcess(app.GUID)
	pg := ctStr(web, "guid")
	if pg != app.GUID {
		e.t.Errorf("web process guid %s, want the app's (as CF)", pg)
	}
	e.expect(e.get("/v3/processes/"+pg), http.StatusOK)
	if s := e.list(e.get("/v3/processes/" + pg + "/sidecars")); len(s) != 0 {
		e.t.Errorf("sidecars = %v, want none", s)
	}
	e.checkStats(pg, instances, memMB)
	for _, rt := range e.list(e.get("/v3/apps/" + app.GUID + "/routes")) {
		if ctStr(rt, "url") == "" {
			e.t.Errorf("route without url: %v", rt)
		}
	}
	cur := e.expect(e.get("/v3/apps/"+app.GUID+"/droplets/current"), http.StatusOK)
	if app.Droplet != "" && cur["guid"] != app.Droplet {
		e.t.Errorf("current droplet %v, want %s", cur["guid"], app.Droplet)
	}
	if d := e.list(e.get("/v3/deployments?app_guids=" + app.GUID + "&order_by=-created_at&page=1&per_page=1&status_values=ACTIVE")); len(d) != 0 {
		e.t.Errorf("deployments = %v, want none", d)
	}
}

// startPushed is push after staging: droplet, current_droplet, restart,
// wait for instances, summary.
func (e *ctEnv) startPushed(app *ctApp, droplet string, instances, memMB int) {
	e.t.Helper()
	d := e.expect(e.get("/v3/droplets/"+droplet), http.StatusOK)
	if d["state"] != pando.DropletStaged {
		e.t.Fatalf("droplet state %v", d["state"])
	}
	if ctStr(d, "created_at") == "" || ctStr(d, "buildpacks.0.name") == "" {
		e.t.Errorf("droplet lacks created_at or buildpacks[].name: %v", d)
	}
	rel := e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", map[string]any{"data": map[string]any{"guid": droplet}}), http.StatusOK)
	if ctStr(rel, "data.guid") != droplet {
		e.t.Errorf("current_droplet answered %v", rel)
	}
	app.Droplet = droplet
	if a := e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK); a["state"] != pando.AppStarted {
		e.t.Errorf("restart answered state %v", a["state"])
	}
	web := e.webProcess(app.GUID)
	// The instances are RUNNING once the cell finds them healthy.
	e.checkStats(ctStr(web, "guid"), instances, memMB)
	e.summary(*app, instances, memMB)
}

// push is a whole `cf push NAME` of the static app (auto staging).
func (e *ctEnv) push(name string) ctApp {
	e.t.Helper()
	return e.pushFiles(name, ctStaticApp())
}

// pushFiles is a whole `cf push NAME` of files (auto staging).
func (e *ctEnv) pushFiles(name string, files []ctFile) ctApp {
	e.t.Helper()
	manifest := "applications:\n- name: " + name + "\n  path: /home/dev/work/app\n  default-route: true\n"
	app := e.pushToBuild(name, manifest, files)
	droplet := e.staged(e.waitBuild(app.Build, false))
	e.startPushed(&app, droplet, 1, 256)
	return app
}

func ctManifest(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cf-manifests", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// nextTask is the next held staging: its builder runs on a cell and
// waits for the test.
func (e *ctEnv) nextTask() *rrStaging {
	e.t.Helper()
	return e.rt.nextStaging(e.t)
}

// recorded waits until the CCDB shows the build finished (the cell's
// report reached the API through the BBS's events) and returns when.
func (e *ctEnv) recorded(build string) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := e.store.GetBuild(context.Background(), build)
		if err != nil {
			e.t.Fatal(err)
		}
		if b.State != pando.BuildStaging {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("build %s not recorded as finished", build)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// --- log-cache ---

type ctEnvelope struct {
	Timestamp  string            `json:"timestamp"`
	SourceID   string            `json:"source_id"`
	InstanceID string            `json:"instance_id"`
	Tags       map[string]string `json:"tags"`
	Log        struct {
		Payload string `json:"payload"`
		Type    string `json:"type"`
	} `json:"log"`
}

// readLogs is GET {log_cache}/api/v1/read/:guid?query, checked as strictly
// as the CLI's protojson parser would.
func (e *ctEnv) readLogs(guid, query string) []ctEnvelope {
	e.t.Helper()
	r := e.get("/api/v1/read/" + guid + "?" + query)
	if r.Status != http.StatusOK {
		e.t.Fatalf("log-cache read: %s", r)
	}
	var body struct {
		Envelopes struct {
			Batch []ctEnvelope `json:"batch"`
		} `json:"envelopes"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		e.t.Fatalf("log-cache read: %v in %s", err, r.Body)
	}
	for _, env := range body.Envelopes.Batch {
		if _, err := strconv.ParseInt(env.Timestamp, 10, 64); err != nil {
			e.t.Errorf("timestamp %q is not an int64 string", env.Timestamp)
		}
		if env.SourceID != guid || env.InstanceID == "" {
			e.t.Errorf("envelope source_id %q instance_id %q", env.SourceID, env.InstanceID)
		}
		if !slices.Contains([]string{"STG", "APP/PROC/WEB", "API", "CELL", "RTR"}, env.Tags["source_type"]) {
			e.t.Errorf("tags.source_type = %q", env.Tags["source_type"])
		}
		if env.Log.Type != "OUT" && env.Log.Type != "ERR" {
			e.t.Errorf("log.type = %q: protojson only takes OUT or ERR", env.Log.Type)
		}
		if _, err := base64.StdEncoding.DecodeString(env.Log.Payload); err != nil {
			e.t.Errorf("log.payload %q is not base64", env.Log.Payload)
		}
	}
	return body.Envelopes.Batch
}

func ctPayload(env ctEnvelope) string {
	b, _ := base64.StdEncoding.DecodeString(env.Log.Payload)
	return string(b)
}

func ctTS(env ctEnvelope) int64 {
	n, _ := strconv.ParseInt(env.Timestamp, 10, 64)
	return n
}

// ================================ tests ================================

func TestContract01_api(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{noLogin: true})
	root := e.expect(e.get("/"), http.StatusOK)
	if v := ctStr(root, "links.cloud_controller_v3.meta.version"); v != "3.180.0" {
		t.Errorf("cloud_controller_v3.meta.version = %q, want 3.180.0 (newer changes cf apps)", v)
	}
	if h := ctStr(root, "links.cloud_controller_v3.href"); h != e.base+"/v3" {
		t.Errorf("cloud_controller_v3.href = %q", h)
	}
	for _, k := range []string{"self", "login", "uaa", "log_cache"} {
		if h := ctStr(root, "links."+k+".href"); h != e.base {
			t.Errorf("links.%s.href = %q, want the absolute %s", k, h, e.base)
		}
	}
}

func TestContract02_login(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{noLogin: true})
	root := e.expect(e.get("/"), http.StatusOK)
	login := ctStr(root, "links.login.href")

	info := e.expect(e.send("GET", login+"/login", "", nil, ctWithHeader("Authorization", ctBasicCF), ctWithHeader("Connection", "close")), http.StatusOK)
	prompts, _ := info["prompts"].(map[string]any)
	for k, v := range prompts {
		// Any other prompt is asked interactively: `cf login -u -p` hangs.
		if k != "username" && k != "password" && k != "passcode" {
			t.Errorf("unknown prompt %q", k)
		}
		if pair, _ := v.([]any); len(pair) != 2 {
			t.Errorf("prompt %s = %v, want [type, label]", k, v)
		}
	}
	if prompts["username"] == nil || prompts["password"] == nil {
		t.Fatalf("prompts = %v, want username and password", prompts)
	}

	bad := e.tokenRequest(login, url.Values{"grant_type": {"password"}, "password": {"wrong"}, "username": {"admin"}})
	if bad.Status != http.StatusUnauthorized {
		t.Errorf("wrong password: %s", bad)
	}
	tok := e.expect(e.tokenRequest(login, url.Values{"grant_type": {"password"}, "password": {ctAdminPass}, "username": {"admin"}}), http.StatusOK)
	e.checkToken(tok)
	e.token = ctStr(tok, "access_token")

	// Exactly one org and one space: both are targeted without asking.
	orgs := e.list(e.get("/v3/organizations?order_by=name"))
	if len(orgs) != 1 || ctStr(orgs[0], "guid") == "" || ctStr(orgs[0], "name") == "" {
		t.Fatalf("orgs = %v, want exactly one", orgs)
	}
	spaces := e.list(e.get("/v3/spaces?order_by=name&organization_guids=" + ctStr(orgs[0], "guid")))
	if len(spaces) != 1 || ctStr(spaces[0], "guid") == "" || ctStr(spaces[0], "name") != SeedSpaceName {
		t.Fatalf("spaces = %v, want exactly one", spaces)
	}
}

func TestContract03_authAndRefresh(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{noLogin: true})
	e.checkToken(e.auth("admin", ctAdminPass))
	e.expect(e.get("/v3/organizations"), http.StatusOK)

	tok := e.expect(e.tokenRequest(e.base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.refresh}}), http.StatusOK)
	e.checkToken(tok)
	e.token = ctStr(tok, "access_token")
	// After a refresh the CLI sends token_type verbatim as the scheme.
	e.expect(e.send("GET", "/v3/organizations", "application/json", nil, ctWithHeader("Authorization", ctStr(tok, "token_type")+" "+e.token)), http.StatusOK)
	e.expect(e.send("GET", "/v3/organizations", "application/json", nil, ctWithHeader("Authorization", "Bearer "+e.token)), http.StatusOK)

	// A refresh token is not an access token.
	e.expectCFError(e.send("GET", "/v3/organizations", "application/json", nil, ctWithHeader("Authorization", "bearer "+e.refresh)), http.StatusUnauthorized, "CF-InvalidAuthToken", "")
}

func TestContract04_target(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	orgs := e.list(e.get("/v3/organizations?names=" + SeedOrgName + "&page=1&per_page=1"))
	if len(orgs) != 1 || orgs[0]["name"] != SeedOrgName {
		t.Fatalf("orgs = %v", orgs)
	}
	spaces := e.list(e.get("/v3/spaces?names=" + SeedSpaceName + "&organization_guids=" + ctStr(orgs[0], "guid") + "&page=1&per_page=1"))
	if len(spaces) != 1 || spaces[0]["name"] != SeedSpaceName {
		t.Fatalf("spaces = %v", spaces)
	}
	if none := e.list(e.get("/v3/spaces?names=nope&organization_guids=" + ctStr(orgs[0], "guid") + "&page=1&per_page=1")); len(none) != 0 {
		t.Errorf("unknown space matched %v", none)
	}
}

// TestContract05_push replays `cf push myapp -p app` with the staging held
// so the log-cache reads and the STAGING settle can be checked in real
// time.
func TestContract05_push(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{hold: true})
	app := e.pushToBuild("myapp", ctManifest(t, "05-push.yml"), ctStaticApp())
	task := e.nextTask()
	if task.GUID != app.Build || task.Staging == nil || task.Staging.PackageKey != pando.PackageBlobKey(app.Package) {
		t.Fatalf("staging task %+v does not stage build %s of package %s", task, app.Build, app.Package)
	}

	// While staging the CLI reads log-cache: info, then the newest envelope.
	info := e.expect(e.get("/api/v1/info"), http.StatusOK)
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(ctStr(info, "version")) {
		t.Errorf("log-cache version %v is not semver", info["version"])
	}
	probe := "descending=true&limit=1&start_time=" + ctStartTime
	// Before the buildpack prints, the newest line is the cell's own.
	if got := e.readLogs(app.GUID, probe); len(got) != 1 || ctPayload(got[0]) != "Creating container and staging..." || got[0].Tags["source_type"] != "STG" {
		t.Errorf("probe before the buildpack's output: %v", got)
	}
	if b := e.expect(e.get("/v3/builds/"+app.Build), http.StatusOK); b["state"] != pando.BuildStaging || b["droplet"] != nil {
		t.Fatalf("build while staging: %v", b)
	}

	lines := []string{"Downloading staticfile_buildpack...", "-----> Installing nginx", "-----> Done"}
	task.succeed(lines...)
	done := e.recorded(app.Build)

	// The cell's last line ends the staging log.
	newest := e.readLogs(app.GUID, probe)
	if len(newest) != 1 || ctPayload(newest[0]) != "Uploading complete" || newest[0].Tags["source_type"] != "STG" || newest[0].InstanceID != "0" {
		t.Fatalf("newest envelope = %+v", newest)
	}
	// The walk starts 1 s before the newest line, bounds inclusive: every
	// line from then on, the buildpack's among them in order.
	from := ctTS(newest[0]) - int64(time.Second)
	walk := e.readLogs(app.GUID, "envelope_types=LOG&start_time="+strconv.FormatInt(from, 10))
	var got, want []string
	for _, env := range walk {
		got = append(got, ctPayload(env))
	}
	for _, env := range e.readLogs(app.GUID, "envelope_types=LOG&start_time="+ctStartTime) {
		if ctTS(env) >= from {
			want = append(want, ctPayload(env))
		}
	}
	if i := slices.Index(got, lines[0]); !slices.Equal(got, want) || i < 0 || !slices.Equal(got[i:min(i+len(lines), len(got))], lines) || got[len(got)-1] != "Uploading complete" {
		t.Errorf("walk = %q, want %q with the buildpack's %q in order", got, want, lines)
	}
	if tail := e.readLogs(app.GUID, "envelope_types=LOG&start_time="+newest[0].Timestamp); len(tail) != 1 {
		t.Errorf("start_time equal to the last line's timestamp returned %d envelopes, want 1 (inclusive)", len(tail))
	}

	// The build reads STAGING for a while after staging ends so the CLI's
	// walk (which skips lines younger than 2 s) prints the last lines.
	b := e.expect(e.get("/v3/builds/"+app.Build), http.StatusOK)
	if time.Since(done) < time.Second && b["state"] != pando.BuildStaging {
		t.Errorf("build is %v right after staging ended, want STAGING for ~2 s", b["state"])
	}
	b = e.waitBuild(app.Build, true)
	if settled := time.Since(done); settled < stgSettle-500*time.Millisecond {
		t.Errorf("build left STAGING %v after staging ended, want about %v", settled, stgSettle)
	}
	droplet := e.staged(b)
	e.startPushed(&app, droplet, 1, 256)

	// The default route myapp.<domain> exists and is mapped.
	routes := e.list(e.get("/v3/apps/" + app.GUID + "/routes"))
	if len(routes) != 1 || routes[0]["url"] != "myapp.localhost" {
		t.Errorf("routes = %v, want myapp.localhost", routes)
	}
	lrp, ok := e.rt.desiredLRP(app.GUID)
	if !ok || lrp.Instances != 1 || lrp.DropletKey != pando.DropletBlobKey(droplet) || lrp.StartCommand != "sh boot.sh" {
		t.Errorf("desired LRP = %+v", lrp)
	}
}

func TestContract06_pushManifest(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	manifest := ctManifest(t, "06-push-manifest.yml")
	space := e.spaceGUID()
	diff := e.expect(e.send("POST", "/v3/spaces/"+space+"/manifest_diff", "application/x-yaml", []byte(manifest)), http.StatusCreated)
	entries, ok := diff["diff"].([]any)
	if !ok || len(entries) == 0 {
		t.Fatalf("manifest_diff = %v, want diff[]", diff)
	}
	for _, d := range entries {
		if ctStr(d, "op") == "" || ctStr(d, "path") == "" {
			t.Errorf("diff entry %v lacks op or path", d)
		}
	}

	app := e.pushToBuild("myapp", manifest, ctStaticApp())
	droplet := e.staged(e.waitBuild(app.Build, false))
	// The staging the BBS was asked to run.
	tasks := e.rt.waitTasks(t, 1)
	st := tasks[len(tasks)-1].Staging
	if len(st.Buildpacks) != 1 || st.Buildpacks[0].Name != "staticfile_buildpack" || !st.SkipDetect {
		t.Errorf("staging buildpacks %+v skip detect %v, want the manifest's staticfile_buildpack", st.Buildpacks, st.SkipDetect)
	}
	e.startPushed(&app, droplet, 2, 256)

	web := e.webProcess(app.GUID)
	if web["command"] != "$HOME/boot.sh" || ctNum(web, "instances") != 2 || ctNum(web, "memory_in_mb") != 256 {
		t.Errorf("web process = %v", web)
	}
	var urls []string
	for _, r := range e.list(e.get("/v3/apps/" + app.GUID + "/routes")) {
		urls = append(urls, ctStr(r, "url"))
	}
	slices.Sort(urls)
	if !slices.Equal(urls, []string{"myapp.localhost", "www.localhost/myapp"}) {
		t.Errorf("route urls = %v", urls)
	}
	env := e.expect(e.get("/v3/apps/"+app.GUID+"/env"), http.StatusOK)
	if ctStr(env, "environment_variables.GREETING") != "hello" || ctStr(env, "environment_variables.MODE") != "production" {
		t.Errorf("env = %v", env["environment_variables"])
	}
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.StartCommand != "$HOME/boot.sh" || lrp.Instances != 2 {
		t.Errorf("desired LRP command %q instances %d", lrp.StartCommand, lrp.Instances)
	}
}

func TestContract08_apps(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	b := e.push("bapp")
	a := e.push("aapp")
	apps := e.list(e.get("/v3/apps?order_by=name&per_page=5000&space_guids=" + a.Space))
	if len(apps) != 2 || apps[0]["name"] != "aapp" || apps[1]["name"] != "bapp" {
		t.Fatalf("apps = %v, want aapp, bapp", apps)
	}
	// Multi-value filters come comma-joined and %2C-encoded.
	procs := e.list(e.get("/v3/processes?app_guids=" + a.GUID + "%2C" + b.GUID))
	if len(procs) != 2 {
		t.Fatalf("processes of both apps = %v", procs)
	}
	for _, p := range procs {
		e.checkStats(ctStr(p, "guid"), 1, 256)
	}
	routes := e.list(e.get("/v3/routes?app_guids=" + a.GUID + "%2C" + b.GUID))
	byApp := map[string]string{}
	for _, r := range routes {
		byApp[ctStr(r, "destinations.0.app.guid")] = ctStr(r, "url")
	}
	if byApp[a.GUID] != "aapp.localhost" || byApp[b.GUID] != "bapp.localhost" {
		t.Errorf("routes by app = %v", byApp)
	}
}

func TestContract09_appBeforeAndAfterStaging(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	e.applyManifest(space, "applications:\n- name: fresh\n  default-route: true\n")
	apps := e.appsNamed("fresh", space)
	if len(apps) != 1 {
		t.Fatalf("apps = %v", apps)
	}
	guid := ctStr(apps[0], "guid")
	web := e.webProcess(guid)
	e.list(e.get("/v3/processes/" + ctStr(web, "guid") + "/sidecars"))
	// A stopped app's instances read DOWN, one per desired instance, as CF
	// reports them.
	if s := e.expect(e.get("/v3/processes/"+ctStr(web, "guid")+"/stats"), http.StatusOK); len(s["resources"].([]any)) != 1 ||
		s["resources"].([]any)[0].(map[string]any)["state"] != "DOWN" {
		t.Errorf("stats of a stopped app = %v", s)
	}
	// Exactly this detail, or `cf app` fails on a never-staged app (D2).
	e.expectCFError(e.get("/v3/apps/"+guid+"/droplets/current"), http.StatusNotFound, "CF-ResourceNotFound", "Droplet not found")
	e.expectCFError(e.get("/v3/droplets/not-a-droplet"), http.StatusNotFound, "", "Droplet not found")
	e.expectCFError(e.get("/v3/apps/not-an-app"), http.StatusNotFound, "", "App not found")
	e.expectCFError(e.action("/v3/apps/"+guid+"/actions/start"), http.StatusUnprocessableEntity, "", "Assign a droplet before starting this app.")

	app := e.push("myapp")
	e.summary(app, 1, 256)
}

func TestContract10_logsRecent(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.appsNamed("myapp", app.Space)
	e.expect(e.get("/api/v1/info"), http.StatusOK)
	all := e.readLogs(app.GUID, "descending=true&envelope_types=LOG&limit=1000&start_time="+ctStartTime)
	var stg, appOut, appErr int
	for i, env := range all {
		if i > 0 && ctTS(all[i-1]) < ctTS(env) {
			t.Errorf("descending read is not newest first at %d", i)
		}
		switch {
		case env.Tags["source_type"] == "STG":
			stg++
		case env.Tags["source_type"] == "APP/PROC/WEB" && env.Log.Type == "OUT":
			appOut++
		case env.Tags["source_type"] == "APP/PROC/WEB" && env.Log.Type == "ERR":
			appErr++
		}
	}
	if stg == 0 || appOut == 0 || appErr == 0 {
		t.Errorf("recent logs: %d STG, %d app OUT, %d app ERR lines; want some of each", stg, appOut, appErr)
	}
	if one := e.readLogs(app.GUID, "descending=true&envelope_types=LOG&limit=1&start_time="+ctStartTime); len(one) != 1 || one[0].Timestamp != all[0].Timestamp {
		t.Errorf("limit=1 = %+v, want the newest line", one)
	}
	// Log-cache is behind the API's token check too.
	saved := e.token
	e.token = ""
	e.expectCFError(e.get("/api/v1/read/"+app.GUID+"?start_time="+ctStartTime), http.StatusUnauthorized, "CF-NotAuthenticated", "")
	e.token = saved
}

func TestContract11And12_scale(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")

	// cf scale -i 3: no restart.
	e.appsNamed("myapp", app.Space)
	p := e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"instances": 3}), http.StatusAccepted)
	if ctNum(p, "instances") != 3 {
		t.Errorf("scale answered %v", p)
	}
	web := e.webProcess(app.GUID)
	e.checkStats(ctStr(web, "guid"), 3, 256)
	e.summary(app, 3, 256)

	// cf scale -m 512M -f: scale, stop, start.
	p = e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"memory_in_mb": 512}), http.StatusAccepted)
	if ctNum(p, "memory_in_mb") != 512 || ctNum(p, "instances") != 3 {
		t.Errorf("scale answered %v", p)
	}
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK)
	web = e.webProcess(app.GUID)
	if ctNum(web, "memory_in_mb") != 512 {
		t.Errorf("memory_in_mb = %v", web["memory_in_mb"])
	}
	e.checkStats(ctStr(web, "guid"), 3, 512)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.MemoryMB != 512 || lrp.Instances != 3 {
		t.Errorf("desired LRP memory %d instances %d", lrp.MemoryMB, lrp.Instances)
	}
}

func TestContract13And19_restartAndStart(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	for _, cmd := range []string{"restart", "start"} {
		e.appsNamed("myapp", app.Space)
		pkgs := e.list(e.get("/v3/packages?app_guids=" + app.GUID + "&order_by=-created_at&page=1&per_page=1"))
		if len(pkgs) != 1 || pkgs[0]["guid"] != app.Package {
			t.Fatalf("%s: newest package = %v, want %s", cmd, pkgs, app.Package)
		}
		// Non-empty: no re-staging.
		drops := e.list(e.get("/v3/packages/" + app.Package + "/droplets?page=1&per_page=1&states=STAGED"))
		if len(drops) != 1 || drops[0]["guid"] != app.Droplet {
			t.Fatalf("%s: staged droplets of the package = %v", cmd, drops)
		}
		if cmd == "restart" {
			if a := e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK); a["state"] != pando.AppStopped {
				t.Errorf("stop answered %v", a["state"])
			}
			if _, ok := e.rt.desiredLRP(app.GUID); ok {
				t.Errorf("a stopped app is still desired")
			}
		}
		if a := e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK); a["state"] != pando.AppStarted {
			t.Errorf("start answered %v", a["state"])
		}
		e.checkStats(ctStr(e.webProcess(app.GUID), "guid"), 1, 256)
		e.summary(app, 1, 256)
	}
}

func TestContract14_restage(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.appsNamed("myapp", app.Space)
	pkgs := e.list(e.get("/v3/packages?app_guids=" + app.GUID + "&order_by=-created_at&page=1&per_page=1&states=READY"))
	if len(pkgs) != 1 || pkgs[0]["guid"] != app.Package {
		t.Fatalf("newest READY package = %v", pkgs)
	}
	e.appsNamed("myapp", app.Space)
	e.appsNamed("myapp", app.Space)
	e.expect(e.get("/api/v1/info"), http.StatusOK)
	if p := e.list(e.get("/v3/packages?app_guids=" + app.GUID + "&guids=" + app.Package + "&page=1&per_page=1")); len(p) != 1 {
		t.Fatalf("package by guid = %v", p)
	}
	b := e.expect(e.sendJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": app.Package}}), http.StatusCreated)
	droplet := e.staged(e.waitBuild(ctStr(b, "guid"), false))
	if droplet == app.Droplet {
		t.Fatalf("restage reused droplet %s", droplet)
	}
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK)
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", map[string]any{"data": map[string]any{"guid": droplet}}), http.StatusOK)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/start"), http.StatusOK)
	app.Droplet = droplet
	e.summary(app, 1, 256)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.DropletKey != pando.DropletBlobKey(droplet) {
		t.Errorf("desired LRP runs %s, want the new droplet %s", lrp.DropletKey, droplet)
	}
}

func TestContract15And16_setEnvAndEnv(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.appsNamed("myapp", app.Space)
	vars := e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/environment_variables", map[string]any{"var": map[string]any{"K": "V"}}), http.StatusOK)
	if ctStr(vars, "var.K") != "V" {
		t.Errorf("set-env answered %v", vars)
	}
	e.appsNamed("myapp", app.Space)
	env := e.expect(e.get("/v3/apps/"+app.GUID+"/env"), http.StatusOK)
	if ctStr(env, "environment_variables.K") != "V" {
		t.Errorf("environment_variables = %v", env["environment_variables"])
	}
	if _, ok := ctJ(env, "system_env_json.VCAP_SERVICES").(map[string]any); !ok {
		t.Errorf("system_env_json.VCAP_SERVICES = %v", ctJ(env, "system_env_json"))
	}
	if ctStr(env, "application_env_json.VCAP_APPLICATION.application_name") != "myapp" {
		t.Errorf("VCAP_APPLICATION = %v", ctJ(env, "application_env_json.VCAP_APPLICATION"))
	}
	for _, k := range []string{"running_env_json", "staging_env_json"} {
		if _, ok := env[k].(map[string]any); !ok {
			t.Errorf("%s = %v, want an object", k, env[k])
		}
	}
}

func TestContract17_events(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"instances": 3}), http.StatusAccepted)
	e.appsNamed("myapp", app.Space)
	events := e.list(e.get("/v3/audit_events?order_by=-created_at&page=1&target_guids=" + app.GUID))
	if len(events) < 3 {
		t.Fatalf("events = %v", events)
	}
	var prev time.Time
	types := map[string]bool{}
	for i, ev := range events {
		at, err := time.Parse(time.RFC3339, ctStr(ev, "created_at"))
		if err != nil {
			t.Fatalf("created_at %q is not RFC 3339 (fatal to the CLI): %v", ev["created_at"], err)
		}
		if i > 0 && at.After(prev) {
			t.Errorf("events are not newest first at %d", i)
		}
		prev = at
		if ctStr(ev, "type") == "" || ctStr(ev, "actor.name") != "admin" {
			t.Errorf("event type %v actor %v", ev["type"], ev["actor"])
		}
		if _, ok := ev["data"].(map[string]any); !ok {
			t.Errorf("event data = %v, want an object", ev["data"])
		}
		types[ctStr(ev, "type")] = true
		if ev["type"] == "audit.app.process.scale" && ctNum(ev, "data.request.instances") != 3 {
			t.Errorf("scale event data = %v, want request.instances 3", ev["data"])
		}
	}
	for _, want := range []string{"audit.app.create", "audit.app.process.scale"} {
		if !types[want] {
			t.Errorf("no %s event among %v", want, types)
		}
	}
}

func TestContract18_stop(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.appsNamed("myapp", app.Space)
	if a := e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK); a["state"] != pando.AppStopped {
		t.Errorf("stop answered %v", a)
	}
	if _, ok := e.rt.desiredLRP(app.GUID); ok {
		t.Errorf("stopped app still desired")
	}
	// Stopping twice is fine.
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/stop"), http.StatusOK)
}

func TestContract20And21_buildpacks(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	bp := e.expect(e.sendJSON("POST", "/v3/buildpacks", map[string]any{"enabled": true, "name": "mybp", "position": 1}), http.StatusCreated)
	if bp["state"] != pando.BuildpackAwaitingUpload || bp["stack"] != nil || ctNum(bp, "position") != 1 {
		t.Errorf("created buildpack = %v", bp)
	}
	zipped := ctZip(t, []ctFile{
		{Path: "bin/detect", Mode: 0o755, Body: "#!/bin/sh\necho mybp\nexit 0\n"},
		{Path: "bin/compile", Mode: 0o755, Body: "#!/bin/sh\necho compiling the app\n"},
		{Path: "bin/release", Mode: 0o755, Body: "#!/bin/sh\necho '---'\necho 'default_process_types: {}'\n"},
	})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("bits", "mybp.zip")
	w.Write(zipped)
	mw.Close()
	r := e.send("POST", "/v3/buildpacks/"+ctStr(bp, "guid")+"/upload", mw.FormDataContentType(), buf.Bytes())
	e.completeJob(r)

	list := e.list(e.get("/v3/buildpacks"))
	var names []string
	for i, b := range list {
		names = append(names, ctStr(b, "name"))
		if ctNum(b, "position") != float64(i+1) {
			t.Errorf("buildpack %s at position %v listed %d-th: the CLI prints server order", b["name"], b["position"], i+1)
		}
		for _, k := range []string{"name", "position", "enabled", "locked", "state", "lifecycle"} {
			if b[k] == nil {
				t.Errorf("buildpack %s has no %s", b["name"], k)
			}
		}
		for _, k := range []string{"stack", "filename"} {
			if _, ok := b[k]; !ok {
				t.Errorf("buildpack %s has no %s key", b["name"], k)
			}
		}
	}
	if !slices.Equal(names, []string{"mybp", "staticfile_buildpack", "go_buildpack", "binary_buildpack"}) {
		t.Errorf("buildpacks = %v", names)
	}
	if list[0]["state"] != pando.BuildpackReady || list[0]["filename"] != "mybp.zip" {
		t.Errorf("uploaded buildpack = %v", list[0])
	}
}

func TestContract22_stacks(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	stacks := e.list(e.get("/v3/stacks"))
	if len(stacks) == 0 {
		t.Fatal("no stacks")
	}
	for _, s := range stacks {
		if ctStr(s, "name") == "" {
			t.Errorf("stack without name: %v", s)
		}
		if _, ok := s["description"].(string); !ok {
			t.Errorf("stack %v description = %v", s["name"], s["description"])
		}
	}
}

func TestContract25_deleteWithRoutes(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.appsNamed("myapp", app.Space)
	routes := e.list(e.get("/v3/apps/" + app.GUID + "/routes"))
	if len(routes) == 0 {
		t.Fatal("the pushed app has no route")
	}
	e.completeJob(e.send("DELETE", "/v3/apps/"+app.GUID, "application/json", nil))
	for _, r := range routes {
		e.completeJob(e.send("DELETE", "/v3/routes/"+ctStr(r, "guid"), "application/json", nil))
		e.expectCFError(e.get("/v3/routes/"+ctStr(r, "guid")), http.StatusNotFound, "", "")
	}
	if apps := e.appsNamed("myapp", app.Space); len(apps) != 0 {
		t.Errorf("apps after delete = %v", apps)
	}
	e.expectCFError(e.get("/v3/apps/"+app.GUID), http.StatusNotFound, "", "App not found")
	if _, ok := e.rt.desiredLRP(app.GUID); ok {
		t.Errorf("deleted app is still desired")
	}
	if ok, _ := e.blobs.Exists(context.Background(), pando.PackageBlobKey(app.Package)); ok {
		t.Errorf("package blob survived the app")
	}
}

func TestContract26_failedPush(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{hold: true})
	app := e.pushToBuild("failapp", ctManifest(t, "26-push-staging-failed.yml"), ctStaticApp())
	// The builder's compile phase fails: the cell reports it.
	e.nextTask().fail(223)
	b := e.waitBuild(app.Build, true)
	if b["state"] != pando.BuildFailed {
		t.Fatalf("build state %v, want FAILED", b["state"])
	}
	// Printed verbatim by the CLI.
	if b["error"] != ctStagingFail {
		t.Errorf("build error = %q, want %q", b["error"], ctStagingFail)
	}
	if b["droplet"] != nil {
		t.Errorf("failed build has droplet %v", b["droplet"])
	}
	e.expectCFError(e.get("/v3/apps/"+app.GUID+"/droplets/current"), http.StatusNotFound, "", "Droplet not found")
	var sawErr bool
	for _, env := range e.readLogs(app.GUID, "envelope_types=LOG&start_time="+ctStartTime) {
		if env.Tags["source_type"] == "STG" && env.Log.Type == "ERR" {
			sawErr = true
		}
	}
	if !sawErr {
		t.Errorf("no STG ERR line for the failure")
	}
}

// TestContract27_stagingLogs walks the staging log as the CLI does while
// lines keep coming.
func TestContract27_stagingLogs(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{hold: true})
	app := e.pushToBuild("logapp", ctManifest(t, "27-push-staging-logs.yml"), ctStaticApp())
	task := e.nextTask()
	probe := "descending=true&limit=1&start_time=" + ctStartTime
	var steps, got []string
	start, first := "", ""
	next := func() {
		for _, env := range e.readLogs(app.GUID, "envelope_types=LOG&start_time="+start) {
			got = append(got, ctPayload(env))
			start = strconv.FormatInt(ctTS(env)+1, 10)
		}
	}
	for i := range 32 {
		line := fmt.Sprintf("-----> staging step %d", i)
		steps = append(steps, line)
		task.print(line)
		if start == "" {
			newest := e.readLogs(app.GUID, probe)
			if len(newest) != 1 || ctPayload(newest[0]) != line {
				t.Fatalf("probe = %v, want %q", newest, line)
			}
			start = strconv.FormatInt(ctTS(newest[0])-int64(time.Second), 10)
			first = start
		}
		if i%5 == 0 {
			next()
		}
	}
	task.succeed()
	e.recorded(app.Build)
	next()
	// Every line from the walk's start, once and in order: the cell's
	// lines around the buildpack's 32 steps.
	var want []string
	for _, env := range e.readLogs(app.GUID, "envelope_types=LOG&start_time="+first) {
		want = append(want, ctPayload(env))
	}
	i := slices.Index(got, steps[0])
	if !slices.Equal(got, want) || i < 0 || !slices.Equal(got[i:min(i+len(steps), len(got))], steps) {
		t.Errorf("walked %d lines %q, want %d with the %d steps in order", len(got), got, len(want), len(steps))
	}
	e.staged(e.waitBuild(app.Build, false))
}

func TestContract_paginationAndFilters(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	var guids []string
	for _, n := range []string{"p1", "p2", "p3"} {
		a := e.expect(e.sendJSON("POST", "/v3/apps", map[string]any{"name": n, "relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}}), http.StatusCreated)
		guids = append(guids, ctStr(a, "guid"))
	}
	if got := e.list(e.get("/v3/apps?order_by=name&per_page=5000&space_guids=" + space)); len(got) != 3 {
		t.Fatalf("per_page=5000: %d apps", len(got))
	}
	page1 := e.expect(e.get("/v3/apps?order_by=name&per_page=2&space_guids="+space), http.StatusOK)
	if ctNum(page1, "pagination.total_results") != 3 || ctNum(page1, "pagination.total_pages") != 2 {
		t.Errorf("pagination = %v", page1["pagination"])
	}
	for _, k := range []string{"first", "last", "next"} {
		if h := ctStr(page1, "pagination."+k+".href"); !strings.HasPrefix(h, e.base+"/v3/apps?") {
			t.Errorf("pagination.%s.href = %q, want absolute (followed verbatim)", k, h)
		}
	}
	page2 := e.expect(e.get(ctStr(page1, "pagination.next.href")), http.StatusOK)
	if n := len(page2["resources"].([]any)); n != 1 || ctStr(page2, "resources.0.name") != "p3" {
		t.Errorf("page 2 = %v", page2["resources"])
	}
	if !strings.HasPrefix(ctStr(page2, "pagination.previous.href"), e.base+"/") || page2["pagination"].(map[string]any)["next"] != nil {
		t.Errorf("page 2 pagination = %v", page2["pagination"])
	}
	if got := e.list(e.get("/v3/apps?guids=" + guids[0] + "%2C" + guids[2])); len(got) != 2 {
		t.Errorf("guids=a%%2Cb matched %d apps", len(got))
	}
	if got := e.list(e.get("/v3/processes?app_guids=" + guids[0] + "%2C" + guids[1] + "&per_page=5000")); len(got) != 2 {
		t.Errorf("app_guids=a%%2Cb matched %d processes", len(got))
	}
}

func TestContract_errorsAndAuth(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	// → "API endpoint not found at ..."
	e.expectCFError(e.get("/v3/service_brokers"), http.StatusNotFound, "CF-NotFound", "Unknown request")
	e.expectCFError(e.get("/v2/info"), http.StatusNotFound, "CF-NotFound", "Unknown request")
	e.expectCFError(e.send("GET", "/v3/apps", "application/json", nil, ctWithoutHeader("Authorization")), http.StatusUnauthorized, "CF-NotAuthenticated", "")
	e.expectCFError(e.send("GET", "/v3/apps", "application/json", nil, ctWithHeader("Authorization", "bearer not.a.token")), http.StatusUnauthorized, "CF-InvalidAuthToken", "")
	// A token signed by another key.
	forged := strings.Split(e.token, ".")
	forged[2] = base64.RawURLEncoding.EncodeToString([]byte("forged signature"))
	e.expectCFError(e.send("GET", "/v3/apps", "application/json", nil, ctWithHeader("Authorization", "bearer "+strings.Join(forged, "."))), http.StatusUnauthorized, "CF-InvalidAuthToken", "")
	// A known path with a method it does not serve is an unknown request
	// too, in CF's body (not Go's plain-text 405).
	e.expectCFError(e.send("PUT", "/v3/apps", "application/json", []byte(`{}`)), http.StatusNotFound, "CF-NotFound", "Unknown request")
	r := e.send("GET", "/v3/apps", "application/json", nil, ctWithHeader("X-Vcap-Request-Id", "from-the-client"))
	if r.Header.Get("X-Vcap-Request-Id") == "" {
		t.Errorf("no X-Vcap-Request-Id")
	}
}

// TestContract_secondPushUsesTheResourceCache: what the first upload
// brought is matched on the next push and left out of its zip; the server
// assembles the whole package from the cache.
func TestContract_secondPushUsesTheResourceCache(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	files := []ctFile{
		{Path: "Staticfile", Mode: 0o644},
		{Path: "index.html", Mode: 0o644, Body: "<h1>cached</h1>\n"},
		{Path: "bin/run.sh", Mode: 0o755, Body: "#!/bin/sh\nexec ./server\n"},
		{Path: "assets/css/site.css", Mode: 0o600, Body: "body { color: teal; }\n"},
	}
	first := e.push("first")
	e.uploadBits(first.GUID, files)

	fresh := ctFile{Path: "new.txt", Mode: 0o644, Body: "not seen before " + first.GUID}
	ask := []any{ctResource(fresh)}
	for _, f := range files {
		if f.Body != "" {
			ask = append(ask, ctResource(f))
		}
	}
	m := e.expect(e.sendJSON("POST", "/v3/resource_matches", map[string]any{"resources": ask}), http.StatusCreated)
	matched := map[string]any{}
	for _, x := range m["resources"].([]any) {
		matched[ctStr(x, "path")] = x
	}
	if len(matched) != 3 || matched[fresh.Path] != nil {
		t.Fatalf("matched = %v, want the 3 uploaded non-empty files only", m["resources"])
	}
	for _, f := range files[1:] {
		x := matched[f.Path]
		if ctStr(x, "mode") != ctOctal(f.Mode) || ctStr(x, "checksum.value") != ctSHA1(f.Body) || ctNum(x, "size_in_bytes") != float64(len(f.Body)) {
			t.Errorf("match for %s = %v, want mode %q echoed as an octal string", f.Path, x, ctOctal(f.Mode))
		}
	}

	second := e.applyAndFind("second")
	var resources []any
	for _, f := range files[1:] {
		resources = append(resources, ctResource(f))
	}
	resJSON, _ := json.Marshal(resources)
	cases := []struct {
		name string
		bits []byte
		want []ctFile
	}{
		{"zip of the rest", ctZip(t, []ctFile{files[0], fresh}), append(slices.Clone(files), fresh)},
		{"empty zip", []byte{}, files[1:]},
		{"no bits part", nil, files[1:]},
	}
	for _, c := range cases {
		pkg := e.expect(e.sendJSON("POST", "/v3/packages", map[string]any{"type": "bits", "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": second}}}}), http.StatusCreated)
		guid := ctStr(pkg, "guid")
		ctype, body := ctUpload(t, resJSON, c.bits)
		if up := e.expect(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body), http.StatusOK); up["state"] != pando.PackageReady {
			t.Errorf("%s: upload state %v", c.name, up["state"])
		}
		dl := e.send("GET", "/v3/packages/"+guid+"/download", "application/json", nil)
		if dl.Status != http.StatusOK {
			t.Fatalf("%s: download: %s", c.name, dl)
		}
		ctCheckZip(t, c.name, dl.Body, c.want)
	}
}

// applyAndFind creates an app through apply_manifest and returns its GUID.
func (e *ctEnv) applyAndFind(name string) string {
	e.t.Helper()
	space := e.spaceGUID()
	e.applyManifest(space, "applications:\n- name: "+name+"\n  default-route: true\n")
	apps := e.appsNamed(name, space)
	if len(apps) != 1 {
		e.t.Fatalf("apps named %s: %v", name, apps)
	}
	return ctStr(apps[0], "guid")
}

// ctCheckZip asserts a zip holds exactly want, with contents and modes.
func ctCheckZip(tb testing.TB, label string, data []byte, want []ctFile) {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatalf("%s: package is not a zip: %v", label, err)
	}
	got := map[string]ctFile{}
	for _, f := range zr.File {
		if f.Mode().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = ctFile{Path: f.Name, Mode: f.Mode(), Body: string(b)}
	}
	if len(got) != len(want) {
		tb.Errorf("%s: package has %d files %v, want %d", label, len(got), slices.Sorted(maps.Keys(got)), len(want))
	}
	for _, w := range want {
		g, ok := got[w.Path]
		if !ok {
			tb.Errorf("%s: %s missing from the package", label, w.Path)
			continue
		}
		if g.Body != w.Body {
			tb.Errorf("%s: %s = %q, want %q", label, w.Path, g.Body, w.Body)
		}
		if g.Mode.Perm() != w.Mode.Perm() || !g.Mode.IsRegular() {
			tb.Errorf("%s: %s mode %v, want %v", label, w.Path, g.Mode, w.Mode)
		}
	}
}

// TestContract05_repush pushes the same app again with changed bits: the
// app keeps its route and runs the new droplet under a new revision.
func TestContract05_repush(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	first := e.push("myapp")
	lrp1, _ := e.rt.desiredLRP(first.GUID)
	files := append(ctStaticApp(), ctFile{Path: "about.html", Mode: 0o644, Body: "<p>v2</p>"})
	app := e.pushToBuild("myapp", ctManifest(t, "05-push.yml"), files)
	if app.GUID != first.GUID {
		t.Fatalf("re-push created app %s, want %s", app.GUID, first.GUID)
	}
	droplet := e.staged(e.waitBuild(app.Build, false))
	e.startPushed(&app, droplet, 1, 256)
	lrp2, _ := e.rt.desiredLRP(app.GUID)
	if lrp2.DropletKey != pando.DropletBlobKey(droplet) || lrp2.Revision <= lrp1.Revision {
		t.Errorf("after re-push the LRP runs %s at revision %d (was %s at %d)", lrp2.DropletKey, lrp2.Revision, lrp1.DropletKey, lrp1.Revision)
	}
	if routes := e.list(e.get("/v3/apps/" + app.GUID + "/routes")); len(routes) != 1 {
		t.Errorf("routes after re-push = %v", routes)
	}
}

// TestContract_J3_manifestOnUnknownDomain: the CLI prints the detail
// verbatim, whether it comes from the POST or from a FAILED job.
func TestContract_J3_manifestOnUnknownDomain(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	manifest := "applications:\n- name: exp3\n  default-route: true\n  routes:\n  - route: exp3.unknown.example\n"
	e.expect(e.send("POST", "/v3/spaces/"+space+"/manifest_diff", "application/x-yaml", []byte(manifest)), http.StatusCreated)
	r := e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte(manifest))
	want := "For application 'exp3': The route 'exp3.unknown.example' did not match any existing domains."
	if r.Status == http.StatusAccepted {
		job := e.firstJobPoll(r)
		if job["state"] != pando.JobFailed || ctStr(job, "errors.0.detail") != want {
			t.Errorf("job = %v, want FAILED with %q", job, want)
		}
	} else {
		e.expectCFError(r, http.StatusUnprocessableEntity, "", want)
	}
	if apps := e.appsNamed("exp3", space); len(apps) != 0 {
		t.Errorf("a refused manifest created %v", apps)
	}
}

// TestContract_S1_instancesStartingAndCrashed: the start wait ends on any
// RUNNING, on all CRASHED (details printed), or on an empty list, so an
// instance not yet placed must read STARTING, not vanish.
func TestContract_S1_instancesStartingAndCrashed(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.push("myapp")
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"instances": 2}), http.StatusAccepted)

	// Instances a cell started that are not healthy yet read STARTING.
	e.rt.unhealthyApp(app.GUID)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		as := e.rt.actualLRPs(t, app.GUID)
		if len(as) == 2 && as[0].State == pando.ActualClaimed && as[1].State == pando.ActualClaimed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances in the BBS %+v, want 2 CLAIMED", as)
		}
	}
	stats := e.expect(e.get("/v3/processes/"+app.GUID+"/stats"), http.StatusOK)
	if n := len(stats["resources"].([]any)); n != 2 || ctStr(stats, "resources.0.state") != "STARTING" || ctStr(stats, "resources.1.state") != "STARTING" {
		t.Errorf("stats before the instances are healthy = %v, want 2 STARTING", stats["resources"])
	}
	// An instance its cell holds back says why in its details.
	held := e.rt.actualLRPs(t, app.GUID)[0]
	held.Details = "waiting for a start slot on cell cell-0 (3 ahead)"
	if err := e.rt.board.ActualLRPChanged(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	stats = e.expect(e.get("/v3/processes/"+app.GUID+"/stats"), http.StatusOK)
	if at := fmt.Sprintf("resources.%d.", held.Index); ctStr(stats, at+"state") != "STARTING" || ctStr(stats, at+"details") != held.Details {
		t.Errorf("stats of a waiting instance = %v, want STARTING with details %q", stats["resources"], held.Details)
	}
	// Instances no cell can take (16 GB on a cell of 8) read DOWN with
	// the reason.
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"memory_in_mb": 16384}), http.StatusAccepted)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	stats = e.expect(e.get("/v3/processes/"+app.GUID+"/stats"), http.StatusOK)
	for i, s := range stats["resources"].([]any) {
		if ctStr(s, "state") != "DOWN" || ctStr(s, "details") != "insufficient resources: memory" {
			t.Errorf("unplaceable instance %d = %v, want DOWN: insufficient resources: memory", i, s)
		}
	}

	// Instances that exit at once crash, are restarted at once three
	// times, then wait CRASHED for the backoff: the cell's exit status is
	// the detail.
	e.rt.crash(app.GUID, 1)
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/processes/web/actions/scale", map[string]any{"memory_in_mb": 256}), http.StatusAccepted)
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		stats = e.expect(e.get("/v3/processes/"+app.GUID+"/stats"), http.StatusOK)
		if ctStr(stats, "resources.0.state") == "CRASHED" && ctStr(stats, "resources.1.state") == "CRASHED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %v, want every instance CRASHED", stats["resources"])
		}
	}
	for i, s := range stats["resources"].([]any) {
		if reason := fmt.Sprintf("APP/PROC/WEB/%d Exited with status 1", i); ctStr(s, "details") != reason {
			t.Errorf("instance %d = %v, want CRASHED with details %q", i, s, reason)
		}
	}
}
