package cc

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore"
)

// Test helpers of the platform/routes/buildpacks/manifest tests; all
// prefixed pt so they never clash with the rest of the package's tests.

const ptBase = "http://api.pando.test"

// ptBlobs is an in-memory blobstore.
type ptBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (b *ptBlobs) Put(_ context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	s1, s256 := sha1.Sum(data), sha256.Sum256(data)
	b.mu.Lock()
	b.blobs[key] = data
	b.mu.Unlock()
	return pando.BlobInfo{Size: int64(len(data)), SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:])}, nil
}

func (b *ptBlobs) Get(_ context.Context, key string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[key]
	if !ok {
		return nil, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *ptBlobs) Exists(_ context.Context, key string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.blobs[key]
	return ok, nil
}

func (b *ptBlobs) Delete(_ context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.blobs, key)
	return nil
}

func (b *ptBlobs) get(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.blobs[key]
	return d, ok
}

// ptAuth accepts "bearer test" in any case, an admin's token, and
// "bearer scopes:a,b" for a token with just those scopes.
type ptAuth struct{}

func (ptAuth) Authenticate(r *http.Request) (Identity, error) {
	h := r.Header.Get("Authorization")
	if strings.EqualFold(h, "bearer test") {
		return Identity{UserGUID: "user-guid", UserName: "admin", Scopes: []string{ScopeAdmin, ScopeRead, ScopeWrite}}, nil
	}
	if s, ok := strings.CutPrefix(h, "bearer scopes:"); ok {
		return Identity{UserGUID: "other-guid", UserName: "someone", Scopes: strings.Split(s, ",")}, nil
	}
	return Identity{}, errors.New("bad token")
}

type ptEnv struct {
	t     testing.TB
	api   *API
	cfg   Config // the API's
	store pando.Store
	rt    *rrRuntime
	blobs *ptBlobs
}

// ptNew builds an API on a real SQLite CCDB in a temp dir, seeded with
// the given builtin buildpacks (or staticfile/binary test ones), on the
// real BBS with a simulated cell (realruntime_test.go). The API does not
// follow the runtime's events: stagings and tasks it sends are recorded
// in the BBS only.
func ptNew(t testing.TB, mod func(*Config), builtins ...BuiltinBuildpack) *ptEnv {
	t.Helper()
	return ptNewOn(t, filepath.Join(t.TempDir(), "ccdb.sqlite"), mod, builtins...)
}

// ptNewOn is ptNew on the CCDB dsn names (a SQLite path or a PostgreSQL
// URL from pgtest).
func ptNewOn(t testing.TB, dsn string, mod func(*Config), builtins ...BuiltinBuildpack) *ptEnv {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	env := &ptEnv{t: t, store: st, blobs: &ptBlobs{blobs: map[string][]byte{}}}
	env.rt = rrStart(t, env.blobs, nil, nil, rrOpts{})
	cfg := Config{
		BaseURL: ptBase, Store: st, Blobs: env.blobs, Runtime: env.rt.board, Auth: ptAuth{},
		TempDir: t.TempDir(), MaxUploadBytes: 64 << 10,
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.api, env.cfg = api, cfg
	if len(builtins) == 0 {
		builtins = []BuiltinBuildpack{
			{Name: "staticfile_buildpack", Position: 1, Zip: ptZipFunc(map[string]string{"bin/detect": "#!/bin/sh\n", "bin/finalize": "#!/bin/sh\n", "bin/release": "#!/bin/sh\n"})},
			{Name: "binary_buildpack", Position: 2, Zip: ptZipFunc(map[string]string{"bin/detect": "#!/bin/sh\nexit 1\n", "bin/compile": "#!/bin/sh\n"})},
		}
	}
	if err := api.Seed(ctx, builtins); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return env
}

// restarted is the environment after a server restart: a new BBS and
// cell, an API on the same CCDB and blobstore restored from the CCDB.
func (e *ptEnv) restarted() *ptEnv {
	e.t.Helper()
	n := *e
	n.rt = rrStart(e.t, e.blobs, nil, nil, rrOpts{})
	n.cfg.Runtime = n.rt.board
	var err error
	if n.api, err = New(n.cfg); err != nil {
		e.t.Fatalf("New: %v", err)
	}
	if err := n.api.Restore(e.t.Context()); err != nil {
		e.t.Fatalf("Restore: %v", err)
	}
	return &n
}

func ptZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ptZipFunc(files)(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ptZipFunc(files map[string]string) func(io.Writer) error {
	return func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for name, body := range files {
			fh := &zip.FileHeader{Name: name, Method: zip.Deflate}
			fh.SetMode(0o755)
			f, err := zw.CreateHeader(fh)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(f, body); err != nil {
				return err
			}
		}
		return zw.Close()
	}
}

// doAs sends a request with this Authorization header.
func (e *ptEnv) doAs(authorization, method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequestWithContext(e.t.Context(), method, path, strings.NewReader(body))
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

// do sends a request with the test token and returns the recorder.
func (e *ptEnv) do(method, path, contentType string, body io.Reader) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequestWithContext(e.t.Context(), method, path, body)
	req.Header.Set("Authorization", "bearer test")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

func (e *ptEnv) doJSON(method, path string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	return e.do(method, path, "application/json", r)
}

// ok asserts status and decodes the JSON body.
func (e *ptEnv) ok(rec *httptest.ResponseRecorder, status int) map[string]any {
	e.t.Helper()
	if rec.Code != status {
		e.t.Fatalf("status %d, want %d; body: %s", rec.Code, status, rec.Body.String())
	}
	out := map[string]any{}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			e.t.Fatalf("decode %q: %v", rec.Body.String(), err)
		}
	}
	return out
}

// cfErr asserts a CF error body and returns its first error.
func (e *ptEnv) cfErr(rec *httptest.ResponseRecorder, status int) map[string]any {
	e.t.Helper()
	body := e.ok(rec, status)
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		e.t.Fatalf("no errors in %v", body)
	}
	return errs[0].(map[string]any)
}

// job follows a 202's absolute Location and returns the job.
func (e *ptEnv) job(rec *httptest.ResponseRecorder) map[string]any {
	e.t.Helper()
	if rec.Code != http.StatusAccepted {
		e.t.Fatalf("status %d, want 202; body: %s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("Location")
	if !strings.HasPrefix(loc, ptBase+"/v3/jobs/") {
		e.t.Fatalf("Location %q is not an absolute job URL", loc)
	}
	return e.ok(e.do("GET", strings.TrimPrefix(loc, ptBase), "", nil), http.StatusOK)
}

func ptResources(body map[string]any) []map[string]any {
	list, _ := body["resources"].([]any)
	out := make([]map[string]any, len(list))
	for i, r := range list {
		out[i] = r.(map[string]any)
	}
	return out
}

// space returns the seeded space's GUID.
func (e *ptEnv) space() pando.Space {
	e.t.Helper()
	spaces, err := e.store.ListSpaces(e.t.Context(), nil, []string{SeedSpaceName}, nil)
	if err != nil || len(spaces) != 1 {
		e.t.Fatalf("seeded space: %v %v", spaces, err)
	}
	return spaces[0]
}

func (e *ptEnv) domain() pando.Domain {
	e.t.Helper()
	ds, err := e.store.ListDomains(e.t.Context(), nil, []string{"localhost"})
	if err != nil || len(ds) != 1 {
		e.t.Fatalf("seeded domain: %v %v", ds, err)
	}
	return ds[0]
}

func (e *ptEnv) appByName(name string) pando.App {
	e.t.Helper()
	apps, err := e.store.ListApps(e.t.Context(), pando.AppFilter{Names: []string{name}})
	if err != nil || len(apps) != 1 {
		e.t.Fatalf("app %s: %v %v", name, apps, err)
	}
	return apps[0]
}

// startedApp creates an app with a staged droplet, started, so syncApp
// desires its web LRP.
func (e *ptEnv) startedApp(name string) pando.App {
	e.t.Helper()
	ctx := e.t.Context()
	app, err := e.api.createApp(ctx, Identity{UserGUID: "user-guid", UserName: "admin"}, appCreate{Name: name, SpaceGUID: e.space().GUID})
	if err != nil {
		e.t.Fatalf("create app: %v", err)
	}
	d := pando.Droplet{GUID: "droplet-" + name, AppGUID: app.GUID, State: pando.DropletStaged, LifecycleType: pando.LifecycleBuildpack, ProcessTypes: map[string]string{"web": "./run"}, Stack: "host"}
	d.SHA256 = rrDroplet(e.t, e.blobs, pando.DropletBlobKey(d.GUID)) // the cell runs it
	if err := e.store.CreateDroplet(ctx, d); err != nil {
		e.t.Fatalf("create droplet: %v", err)
	}
	app.DropletGUID = d.GUID
	app.State = pando.AppStarted
	if err := e.store.UpdateApp(ctx, app); err != nil {
		e.t.Fatalf("start app: %v", err)
	}
	return app
}

func ptMultipart(t testing.TB, field, filename string, data []byte) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}
