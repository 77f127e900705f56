package cc

// Bad-input tests: hostile archives, oversize bodies, malformed JSON and
// YAML, and a sweep sending garbage to every registered endpoint. The API
// must answer each with a 4xx and CF's error body: never a 500, a panic,
// or a file written outside its extraction directory.

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// ctZipEntry is a raw zip entry: any name, any mode (symlinks included).
type ctZipEntry struct {
	Name string
	Mode fs.FileMode
	Body string
}

func ctRawZip(tb testing.TB, entries ...ctZipEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, en := range entries {
		fh := &zip.FileHeader{Name: en.Name, Method: zip.Deflate}
		fh.SetMode(en.Mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			tb.Fatal(err)
		}
		io.WriteString(w, en.Body)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// newPackage creates a bits package for app and returns its GUID.
func (e *ctEnv) newPackage(app string) string {
	e.t.Helper()
	pkg := e.expect(e.sendJSON("POST", "/v3/packages", map[string]any{"type": "bits", "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}}}), http.StatusCreated)
	return ctStr(pkg, "guid")
}

// uploadRaw uploads a resources part (nil: none) and bits to a new package.
func (e *ctEnv) uploadRaw(app string, resources any, bits []byte) (string, ctResp) {
	e.t.Helper()
	guid := e.newPackage(app)
	var res []byte
	if resources != nil {
		var err error
		if res, err = json.Marshal(resources); err != nil {
			e.t.Fatal(err)
		}
	}
	ctype, body := ctUpload(e.t, res, bits)
	return guid, e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body)
}

// checkNothingEscaped asserts the API's TempDir holds no leftovers and that
// nothing named like the attack's target appeared in the test's root, its
// parent, or anywhere under them.
func (e *ctEnv) checkNothingEscaped() {
	e.t.Helper()
	left, err := os.ReadDir(e.tmp)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(left) != 0 {
		var names []string
		for _, d := range left {
			names = append(names, d.Name())
		}
		e.t.Errorf("TempDir holds leftovers after a refused upload: %v", names)
	}
	filepath.WalkDir(filepath.Dir(e.root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(d.Name(), "evil") {
			e.t.Errorf("an archive wrote %s", p)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			e.t.Errorf("an archive left a symlink at %s", p)
		}
		return nil
	})
}

func TestBadInput_uploadZipEscapesAreRefused(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("victim")
	// The extraction dir is root/tmp/upload-*/app: three ".." reach root,
	// four its parent.
	abs := filepath.Join(e.root, "outside", "evil-abs")
	cases := []struct {
		name    string
		entries []ctZipEntry
	}{
		{"dot-dot", []ctZipEntry{{Name: "../evil-1", Mode: 0o644, Body: "x"}}},
		{"deep dot-dot", []ctZipEntry{{Name: "../../../evil-2", Mode: 0o644, Body: "x"}, {Name: "../../../../evil-3", Mode: 0o644, Body: "x"}}},
		{"dot-dot inside", []ctZipEntry{{Name: "a/b/../../../../../evil-4", Mode: 0o644, Body: "x"}}},
		{"absolute", []ctZipEntry{{Name: abs, Mode: 0o644, Body: "x"}}},
		{"symlink out", []ctZipEntry{{Name: "link", Mode: fs.ModeSymlink | 0o777, Body: "../../etc"}}},
		{"symlink out then through", []ctZipEntry{{Name: "link", Mode: fs.ModeSymlink | 0o777, Body: "../../../"}, {Name: "link/evil-5", Mode: 0o644, Body: "x"}}},
		{"absolute symlink", []ctZipEntry{{Name: "etc", Mode: fs.ModeSymlink | 0o777, Body: "/etc"}}},
		{"symlink chain out", []ctZipEntry{{Name: "a", Mode: fs.ModeSymlink | 0o777, Body: "b/../.."}, {Name: "b/keep", Mode: 0o644, Body: "x"}}},
	}
	for _, c := range cases {
		guid, r := e.uploadRaw(app, []any{}, ctRawZip(t, c.entries...))
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: upload answered %s, want 422", c.name, r)
			continue
		}
		e.expectCFError(r, http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "")
		if p := e.expect(e.get("/v3/packages/"+guid), http.StatusOK); p["state"] == pando.PackageReady {
			t.Errorf("%s: package is READY after a refused upload", c.name)
		}
	}
	if _, err := os.Lstat(abs); err == nil {
		t.Errorf("the absolute entry was written to %s", abs)
	}
	e.checkNothingEscaped()
}

func TestBadInput_uploadResourcesAreValidated(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("victim")
	cached := ctFile{Path: "cached.txt", Mode: 0o644, Body: "in the resource cache"}
	// The first upload puts cached.txt in the cache.
	if _, r := e.uploadRaw(app, []any{}, ctZip(t, []ctFile{cached})); r.Status != http.StatusOK {
		t.Fatalf("seed upload: %s", r)
	}
	res := func(path, sha, mode string) map[string]any {
		return map[string]any{"checksum": map[string]any{"value": sha}, "path": path, "mode": mode, "size_in_bytes": len(cached.Body)}
	}
	sha := ctSHA1(cached.Body)
	cases := []struct {
		name      string
		resources any
		bits      []byte
	}{
		{"dot-dot path", []any{res("../../../evil-r1", sha, "644")}, nil},
		{"dot-dot inside path", []any{res("a/../../evil-r2", sha, "644")}, nil},
		{"absolute path", []any{res(filepath.Join(e.root, "evil-r3"), sha, "644")}, nil},
		{"empty path", []any{res("", sha, "644")}, nil},
		{"dot path", []any{res(".", sha, "644")}, nil},
		{"NUL in path", []any{res("a\x00b", sha, "644")}, nil},
		{"bad sha1", []any{res("ok.txt", "not-a-sha1", "644")}, nil},
		{"sha1 too short", []any{res("ok.txt", sha[:39], "644")}, nil},
		{"unknown sha1", []any{res("ok.txt", strings.Repeat("ab", 20), "644")}, nil},
		{"bad mode", []any{res("ok.txt", sha, "rwxr-xr-x")}, nil},
		{"not an array", map[string]any{"path": "x"}, nil},
		{"through a zip symlink", []any{res("lnk/evil-r4", sha, "644")}, ctRawZip(t, ctZipEntry{Name: "lnk", Mode: fs.ModeSymlink | 0o777, Body: "../../.."})},
		{"under a zip file", []any{res("file/evil-r5", sha, "644")}, ctRawZip(t, ctZipEntry{Name: "file", Mode: 0o644, Body: "x"})},
		{"onto a zip directory", []any{res("dir", sha, "644")}, ctRawZip(t, ctZipEntry{Name: "dir/inner", Mode: 0o644, Body: "x"})},
		{"under another resource", []any{res("f", sha, "644"), res("f/evil-r6", sha, "644")}, nil},
	}
	for _, c := range cases {
		_, r := e.uploadRaw(app, c.resources, c.bits)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: upload answered %s, want 422", c.name, r)
			continue
		}
		e.expectCFError(r, http.StatusUnprocessableEntity, "", "")
	}
	// resource_matches never matches what it cannot use.
	m := e.expect(e.sendJSON("POST", "/v3/resource_matches", map[string]any{"resources": []any{res("ok.txt", "zz", "644"), res("x", "", "")}}), http.StatusCreated)
	if l, _ := m["resources"].([]any); len(l) != 0 {
		t.Errorf("resource_matches matched %v", l)
	}
	e.checkNothingEscaped()
}

func TestBadInput_uploadTooLarge(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{mod: func(c *Config) { c.MaxUploadBytes = 1 << 20 }})
	app := e.applyAndFind("big")
	noise := make([]byte, 2<<20)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	bits := ctRawZip(t, ctZipEntry{Name: "noise.bin", Mode: 0o644, Body: string(noise)})
	guid := e.newPackage(app)
	ctype, body := ctUpload(t, []byte("[]"), bits)
	e.expectCFError(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body), http.StatusRequestEntityTooLarge, "CF-RequestEntityTooLarge", "")
	// Without a Content-Length (chunked), the limit holds while reading.
	chunked := func(r *http.Request) {
		r.ContentLength = -1
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	e.expectCFError(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body, chunked), http.StatusRequestEntityTooLarge, "CF-RequestEntityTooLarge", "")

	bp := e.expect(e.sendJSON("POST", "/v3/buildpacks", map[string]any{"name": "huge_buildpack"}), http.StatusCreated)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("bits", "huge.zip")
	w.Write(bits)
	mw.Close()
	e.expectCFError(e.send("POST", "/v3/buildpacks/"+ctStr(bp, "guid")+"/upload", mw.FormDataContentType(), buf.Bytes(), func(r *http.Request) {
		r.ContentLength = -1
		r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	}), http.StatusRequestEntityTooLarge, "CF-RequestEntityTooLarge", "")
	e.checkNothingEscaped()
}

func TestBadInput_zipBombIsRefused(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{mod: func(c *Config) { c.MaxPackageBytes = 8 << 20 }})
	app := e.applyAndFind("bomb")
	// 200 MB of zeros deflate to about 200 KB.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("zeros.bin")
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for range 200 {
		w.Write(zero)
	}
	zw.Close()
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes", buf.Len())
	}
	guid, r := e.uploadRaw(app, []any{}, buf.Bytes())
	detail := e.expectCFError(r, http.StatusUnprocessableEntity, "", "")
	if !strings.Contains(detail, "invalid") {
		t.Errorf("detail %q does not say the package is invalid", detail)
	}
	if p := e.expect(e.get("/v3/packages/"+guid), http.StatusOK); p["state"] == pando.PackageReady {
		t.Errorf("bomb package is READY")
	}
	e.checkNothingEscaped()
}

func TestBadInput_appNames(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	create := func(name string) ctResp {
		return e.sendJSON("POST", "/v3/apps", map[string]any{"name": name, "relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}})
	}
	for _, name := range []string{"", "   ", "bad\x00name", "tab\tname", "new\nline", "del\x7f", strings.Repeat("n", 256)} {
		e.expectCFError(create(name), http.StatusUnprocessableEntity, "", "")
	}
	first := e.expect(create("dup"), http.StatusCreated)
	e.expectCFError(create("dup"), http.StatusUnprocessableEntity, "", "App with the name 'dup' already exists.")
	other := e.expect(create("other"), http.StatusCreated)
	e.expectCFError(e.sendJSON("PATCH", "/v3/apps/"+ctStr(other, "guid"), map[string]any{"name": "dup"}), http.StatusUnprocessableEntity, "", "App with the name 'dup' already exists.")
	e.expectCFError(e.sendJSON("PATCH", "/v3/apps/"+ctStr(first, "guid"), map[string]any{"name": "ctl\x01"}), http.StatusUnprocessableEntity, "", "")
	r := e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte("applications:\n- name: \"bad\\x01name\"\n"))
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("manifest with a control character in the name: %s", r)
	}
}

func TestBadInput_unknownBuildpackIsNamed(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	r := e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte("applications:\n- name: x\n  buildpack: nope_buildpack\n"))
	if d := e.expectCFError(r, http.StatusUnprocessableEntity, "", ""); !strings.Contains(d, "nope_buildpack") {
		t.Errorf("detail %q does not name the buildpack", d)
	}
	if apps := e.appsNamed("x", space); len(apps) != 0 {
		t.Errorf("a refused manifest created %v", apps)
	}
	r = e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte("applications:\n- name: y\n  buildpacks: [staticfile_buildpack, other_missing_bp]\n"))
	if d := e.expectCFError(r, http.StatusUnprocessableEntity, "", ""); !strings.Contains(d, "other_missing_bp") {
		t.Errorf("detail %q does not name the buildpack", d)
	}
	body := map[string]any{
		"name":          "z",
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}},
		"lifecycle":     map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{"ghost_buildpack"}}},
	}
	if d := e.expectCFError(e.sendJSON("POST", "/v3/apps", body), http.StatusUnprocessableEntity, "", ""); !strings.Contains(d, "ghost_buildpack") {
		t.Errorf("detail %q does not name the buildpack", d)
	}
	ok := e.applyAndFind("w")
	if d := e.expectCFError(e.sendJSON("PATCH", "/v3/apps/"+ok, map[string]any{"lifecycle": map[string]any{"data": map[string]any{"buildpacks": []string{"https://github.com/x/y.git"}}}}), http.StatusUnprocessableEntity, "", ""); !strings.Contains(d, "https://github.com/x/y.git") {
		t.Errorf("detail %q does not name the buildpack", d)
	}
}

func TestBadInput_badManifestsNameTheProblem(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	space := e.spaceGUID()
	cases := []struct{ yaml, want string }{
		{"applications:\n- name: x\n  instances: abc\n", "instances"},
		{"applications:\n- name: x\n  memory: lots\n", "memory"},
		{"applications:\n- name: x\n  instances: -2\n", "instances"},
		{"applications:\n- name: x\n  instances: 99999999999999999999\n", "instances"},
		{"applications:\n- name: x\n  disk_quota: 1Q\n", "disk"},
		{"applications:\n- name: x\n  health-check-type: telepathy\n", "health-check-type"},
		{"applications:\n- name: x\n  routes: [{route: 'x.localhost:8080'}]\n", "port"},
		{"applications:\n- name: x\n  routes: [{route: 'x.nowhere.test'}]\n", "domain"},
		{"applications:\n- name: x\n  env: {VCAP_SERVICES: x}\n", "VCAP_"},
		{"applications:\n- name: x\n  processes: [{type: 'web worker'}]\n", "type"},
		{"applications:\n- instances: 1\n", "name"},
		{"applications: []\n", "applications"},
		{"name: x\n", "applications"},
		{"applications:\n- name: x\n\tinstances: 1\n", "YAML"},
		{"applications: [ {name: [}\n", "YAML"},
		{"", "applications"},
	}
	for _, c := range cases {
		r := e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte(c.yaml))
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%q: %s, want a 4xx", c.yaml, r)
			continue
		}
		first, err := ctFirstCFError(e.expect(r, r.Status))
		if err != nil {
			t.Errorf("%q: %v in %s", c.yaml, err, r.Body)
			continue
		}
		if d, _ := first["detail"].(string); !strings.Contains(d, c.want) {
			t.Errorf("%q: detail %q does not mention %q", c.yaml, d, c.want)
		}
	}
	// Not YAML at all.
	e.expectCFError(e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/json", []byte(`{"applications":[]}`)), http.StatusBadRequest, "", "")
	// Oversize.
	huge := "applications:\n- name: x\n  env:\n" + strings.Repeat("    K: "+strings.Repeat("v", 100)+"\n", 12000)
	e.expectCFError(e.send("POST", "/v3/spaces/"+space+"/actions/apply_manifest", "application/x-yaml", []byte(huge)), http.StatusRequestEntityTooLarge, "CF-RequestEntityTooLarge", "")
}

// ctFixture is one of everything, for requests that need real GUIDs.
type ctFixture struct {
	app, pkg, build, droplet, job, org, space, stack, event, domain, route, dest, buildpack, task string
	orgQuota, spaceQuota, role, user                                                              string
	serviceInstance, binding, routeBinding                                                        string
}

func (e *ctEnv) fixture() ctFixture {
	e.t.Helper()
	app := e.push("fixture")
	f := ctFixture{app: app.GUID, pkg: app.Package, build: "", droplet: app.Droplet, space: app.Space}
	builds := e.list(e.get("/v3/apps/" + app.GUID + "/builds"))
	f.build = ctStr(builds[0], "guid")
	loc := e.send("POST", "/v3/spaces/"+app.Space+"/actions/apply_manifest", "application/x-yaml", []byte("applications:\n- name: fixture\n")).Header.Get("Location")
	f.job = loc[strings.LastIndex(loc, "/")+1:]
	f.org = ctStr(e.list(e.get("/v3/organizations"))[0], "guid")
	f.stack = ctStr(e.list(e.get("/v3/stacks"))[0], "guid")
	f.event = ctStr(e.list(e.get("/v3/audit_events"))[0], "guid")
	f.domain = ctStr(e.list(e.get("/v3/domains"))[0], "guid")
	rt := e.list(e.get("/v3/apps/" + app.GUID + "/routes"))[0]
	f.route, f.dest = ctStr(rt, "guid"), ctStr(rt, "destinations.0.guid")
	f.buildpack = ctStr(e.expect(e.sendJSON("POST", "/v3/buildpacks", map[string]any{"name": "fixture_bp"}), http.StatusCreated), "guid")
	f.task = ctStr(e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/tasks", map[string]any{"command": "true"}), http.StatusAccepted), "guid")
	f.orgQuota = ctStr(e.expect(e.sendJSON("POST", "/v3/organization_quotas", map[string]any{"name": "fixture_q"}), http.StatusCreated), "guid")
	f.spaceQuota = ctStr(e.expect(e.sendJSON("POST", "/v3/space_quotas", map[string]any{"name": "fixture_q",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": f.org}}}}), http.StatusCreated), "guid")
	f.role = ctStr(e.expect(e.sendJSON("POST", "/v3/roles", map[string]any{"type": "organization_auditor", "relationships": map[string]any{
		"organization": map[string]any{"data": map[string]any{"guid": f.org}}, "user": map[string]any{"data": map[string]any{"username": "admin"}}}}), http.StatusCreated), "guid")
	f.user = ctStr(e.list(e.get("/v3/users"))[0], "guid")
	f.serviceInstance = ctStr(e.expect(e.sendJSON("POST", "/v3/service_instances", map[string]any{"type": "user-provided", "name": "fixture-db",
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": f.space}}}}), http.StatusCreated), "guid")
	f.binding = ctStr(e.expect(e.sendJSON("POST", "/v3/service_credential_bindings", map[string]any{"type": "app", "relationships": map[string]any{
		"app": map[string]any{"data": map[string]any{"guid": f.app}}, "service_instance": map[string]any{"data": map[string]any{"guid": f.serviceInstance}}}}), http.StatusCreated), "guid")
	rs := ctStr(e.expect(e.sendJSON("POST", "/v3/service_instances", map[string]any{"type": "user-provided", "name": "fixture-rs", "route_service_url": "https://rs.example.com",
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": f.space}}}}), http.StatusCreated), "guid")
	f.routeBinding = ctStr(e.expect(e.sendJSON("POST", "/v3/service_route_bindings", map[string]any{"relationships": map[string]any{
		"route": map[string]any{"data": map[string]any{"guid": f.route}}, "service_instance": map[string]any{"data": map[string]any{"guid": rs}}}}), http.StatusCreated), "guid")
	return f
}

// ctEndpoint is a registered route pattern.
type ctEndpoint struct{ method, pattern string }

// ctEndpoints reads every route the package registers from its sources, so
// an endpoint added later is swept too.
func ctEndpoints(tb testing.TB) []ctEndpoint {
	tb.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile(`"(GET|POST|PATCH|PUT|DELETE) (/[^"\s]*)"`)
	var out []ctEndpoint
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			ep := ctEndpoint{m[1], m[2]}
			if !slices.Contains(out, ep) {
				out = append(out, ep)
			}
		}
	}
	if len(out) < 60 {
		tb.Fatalf("found only %d endpoints in the sources", len(out))
	}
	// Deletes last, the app's own last of all, so the rest see real GUIDs.
	rank := func(ep ctEndpoint) int {
		switch {
		case ep.method == "DELETE" && ep.pattern == "/v3/apps/{guid}":
			return 4
		case ep.method == "DELETE" && strings.Contains(ep.pattern, "/destinations/"):
			return 2
		case ep.method == "DELETE":
			return 3
		case ep.method == "GET":
			return 0
		}
		return 1
	}
	slices.SortStableFunc(out, func(a, b ctEndpoint) int { return rank(a) - rank(b) })
	return out
}

// path fills a pattern's wildcards with real GUIDs (or with garbage).
func (f ctFixture) path(pattern, garbage string) string {
	segs := strings.Split(strings.TrimSuffix(pattern, "{$}"), "/")
	byCollection := map[string]string{
		"apps": f.app, "processes": f.app, "packages": f.pkg, "builds": f.build, "droplets": f.droplet,
		"jobs": f.job, "organizations": f.org, "spaces": f.space, "stacks": f.stack, "audit_events": f.event,
		"domains": f.domain, "routes": f.route, "buildpacks": f.buildpack, "tasks": f.task,
		"organization_quotas": f.orgQuota, "space_quotas": f.spaceQuota, "roles": f.role, "users": f.user,
		"service_instances": f.serviceInstance, "service_credential_bindings": f.binding,
		"service_route_bindings": f.routeBinding,
	}
	for i, s := range segs {
		var v string
		switch s {
		case "{guid}":
			v = byCollection[segs[i-1]]
		case "{type}":
			v = "web"
		case "{dest}":
			v = f.dest
		case "{name}":
			v = map[string]string{"feature_flags": "task_creation", "environment_variable_groups": "running"}[segs[i-1]]
			if v == "" {
				v = "ssh"
			}
		case "{index}":
			v = "0"
		case "{space_guid}":
			v = f.space
		default:
			continue
		}
		if garbage != "" {
			v = garbage
		}
		segs[i] = v
	}
	return strings.Join(segs, "/")
}

type ctBody struct {
	name, ctype string
	body        []byte
}

func ctGarbageBodies() []ctBody {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 2048)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	j := func(name, s string) ctBody { return ctBody{name, "application/json", []byte(s)} }
	return []ctBody{
		{"no body", "application/json", nil},
		{"random bytes", "application/json", random},
		{"random bytes, no type", "", random},
		j("truncated", `{"name":`),
		j("array", `[1,2,3]`),
		j("string", `"hello"`),
		j("null", `null`),
		j("wrong types", `{"name":123,"instances":"three","memory_in_mb":"big","disk_in_mb":[],"relationships":"x","lifecycle":5,"var":[1],"data":"x","package":[],"type":{},"resources":{"a":1},"destinations":"x","position":"first","enabled":"yes","locked":1,"stack":7,"health_check":7,"command":["a"],"host":1,"path":2,"domain":3}`),
		j("huge numbers", `{"instances":1e300,"memory_in_mb":99999999999999999999,"disk_in_mb":-9223372036854775808,"position":9223372036854775807,"staging_memory_in_mb":2147483648,"log_rate_limit_in_bytes_per_second":-2}`),
		j("negative", `{"instances":-1,"memory_in_mb":-5,"disk_in_mb":0,"position":-3,"staging_disk_in_mb":-1,"health_check":{"type":"http","data":{"timeout":-1,"invocation_timeout":0,"endpoint":"no-slash"}}}`),
		j("too many", `{"instances":1001,"memory_in_mb":70000,"disk_in_mb":70000,"position":0,"health_check":{"data":{"timeout":100000}}}`),
		j("unicode", `{"name":"😀\u202e名前\u0000","var":{"Ü":"ß","\u0000":"x","VCAP_X":"y","PORT":"1"},"host":"😀","path":"/ü\u0000","command":"\u2028","stack":"😀","type":"😀","data":{"guid":"😀","image":"\u0000"},"package":{"guid":"\u0000"},"relationships":{"app":{"data":{"guid":"😀"}},"space":{"data":{"guid":"😀"}},"domain":{"data":{"guid":"😀"}}},"destinations":[{"app":{"guid":"😀","process":{"type":"\u0000"}},"port":-1}]}`),
		j("nested null", `{"relationships":null,"lifecycle":{"data":null},"data":null,"var":null,"health_check":{"data":null},"destinations":[null],"resources":[null,{"checksum":null}]}`),
		j("deep nesting", strings.Repeat("[", 5000)+strings.Repeat("]", 5000)),
		{"yaml garbage", "application/x-yaml", []byte("applications: [ {name: [}\n")},
		{"yaml alias bomb", "application/x-yaml", []byte("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\napplications: [{name: *c}]\n")},
		{"multipart garbage", "multipart/form-data; boundary=xyz", []byte("--xyz\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"a.zip\"\r\n\r\nnot a zip\r\n--xyz\r\nContent-Disposition: form-data; name=\"resources\"\r\n\r\n[{\"path\":\"../x\"}]\r\n--xyz--\r\n")},
		{"multipart truncated", "multipart/form-data; boundary=xyz", []byte("--xyz\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"a.zip\"\r\n\r\nPK\x03\x04")},
		{"multipart without boundary", "multipart/form-data", []byte("junk")},
	}
}

// plausibleBodies are well-formed bodies naming the fixture's resources,
// in range, at the edges and just past them, to reach past the parsers.
func (f ctFixture) plausibleBodies() []ctBody {
	j := func(name, s string) ctBody { return ctBody{name, "application/json", []byte(s)} }
	rels := fmt.Sprintf(`"relationships":{"app":{"data":{"guid":%q}},"space":{"data":{"guid":%q}},"domain":{"data":{"guid":%q}}},"package":{"guid":%q},"data":{"guid":%q}`, f.app, f.space, f.domain, f.pkg, f.droplet)
	dest := func(typ string, port int) string {
		return fmt.Sprintf(`"destinations":[{"app":{"guid":%q,"process":{"type":%q}},"port":%d}]`, f.app, typ, port)
	}
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	return []ctBody{
		j("plausible", `{"name":"sweep","type":"bits","enabled":false,"position":2,`+rels+`,"host":"sweep","path":"/sweep",`+dest("web", 8080)+`,"var":{"SWEEP":"1","GONE":null},"instances":2,"memory_in_mb":128,"disk_in_mb":512,"command":"./run","health_check":{"type":"http","data":{"endpoint":"/health","timeout":10,"invocation_timeout":2}},"resources":[{"checksum":{"value":"`+ctSHA1("a")+`"},"path":"a","mode":"644","size_in_bytes":1}]}`),
		j("edges", `{"name":"`+long("n", 250)+`","type":"bits","position":1,`+rels+`,"host":"`+long("h", 63)+`","path":"/`+long("p", 100)+`",`+dest("worker", 65535)+`,"instances":1000,"memory_in_mb":65536,"disk_in_mb":65536,"log_rate_limit_in_bytes_per_second":-1,"command":"`+long("c", 4096)+`","health_check":{"type":"process","data":{"timeout":180,"invocation_timeout":60}},"staging_memory_in_mb":65536,"staging_disk_in_mb":65536}`),
		j("past the edges", `{"name":"`+long("n", 256)+`","type":"bits","position":0,`+rels+`,"host":"`+long("h", 64)+`","path":"nopath",`+dest("web", 0)+`,"instances":1001,"memory_in_mb":65537,"disk_in_mb":65537,"log_rate_limit_in_bytes_per_second":-2,"command":"`+long("c", 4097)+`","health_check":{"type":"none","data":{"timeout":181,"invocation_timeout":61}},"staging_memory_in_mb":65537}`),
		j("docker", `{"type":"docker","data":{"image":"registry.example/web:v1","username":"u","password":"p"},"relationships":{"app":{"data":{"guid":"`+f.app+`"}}}}`),
		j("unassign", `{"data":null,"var":{},"destinations":[]}`),
		j("other ports", `{`+dest("web", 70000)+`}`),
	}
}

var ctGarbageQueries = []string{
	"?page=0",
	"?per_page=0",
	"?per_page=5001&page=-1",
	"?page=99999999999999999999&per_page=abc",
	"?order_by=-nope",
	"?names=%00&guids=,,,&app_guids=%ff&space_guids=😀&states=x&label_selector=!!&types=%00&stacks=&default=maybe",
	"?start_time=x&end_time=-&limit=-5&descending=perhaps&envelope_types=%00&wait=abc&since=%00&unmapped=perhaps&hosts=&paths=",
}

// ctServe sends one request straight to the API's handler.
func ctServe(api *API, token, method, target, ctype string, body []byte) *httptest.ResponseRecorder {
	u, err := url.Parse(target)
	if err != nil {
		return nil // no client could send it
	}
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL, req.RequestURI = u, target
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "bearer "+token)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	return rec
}

// ctCheckNo500 asserts an answer is below 500 and, if an error, CF's body.
func ctCheckNo500(t *testing.T, label string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec == nil {
		return
	}
	if rec.Code >= 500 {
		t.Errorf("%s: %d %s", label, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
		return
	}
	if rec.Code < 400 {
		return
	}
	body := map[string]any{}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Errorf("%s: %d with a non-JSON body %q", label, rec.Code, rec.Body.String())
		return
	}
	if _, err := ctFirstCFError(body); err != nil {
		t.Errorf("%s: %d: %v in %s", label, rec.Code, err, rec.Body.String())
	}
}

// TestBadInput_garbageToEveryEndpoint sends garbage bodies, queries and
// path values to every route the package registers.
func TestBadInput_garbageToEveryEndpoint(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	f := e.fixture()
	// The plausible bodies scale the app to 1,000 instances of 64 GB that
	// no cell takes: the BBS places (and fails to place) them on every
	// request, which must stay cheap.
	bodies := append(ctGarbageBodies(), f.plausibleBodies()...)
	garbageIDs := []string{"does-not-exist", "%F0%9F%98%80%00", "..%2F..%2Fetc", strings.Repeat("x", 4000)}
	var n int
	for _, ep := range ctEndpoints(t) {
		for _, g := range garbageIDs {
			if !strings.Contains(ep.pattern, "{") {
				break
			}
			p := f.path(ep.pattern, g)
			ctCheckNo500(t, ep.method+" "+p, ctServe(e.api, e.token, ep.method, p, "application/json", []byte(`{}`)))
			n++
		}
		p := f.path(ep.pattern, "")
		if ep.method == "GET" {
			for _, q := range ctGarbageQueries {
				ctCheckNo500(t, "GET "+p+q, ctServe(e.api, e.token, "GET", p+q, "application/json", nil))
				n++
			}
			continue
		}
		for _, b := range bodies {
			ctCheckNo500(t, fmt.Sprintf("%s %s [%s]", ep.method, p, b.name), ctServe(e.api, e.token, ep.method, p, b.ctype, b.body))
			n++
		}
	}
	// UAA and log-cache share the address; their errors have their own
	// shapes, but must not be 500s either.
	for _, target := range []string{"/login", "/oauth/token", "/api/v1/info", "/api/v1/read/" + f.app, "/pando/v1/logs/" + f.app + "/stream?start_time=abc"} {
		for _, method := range []string{"GET", "POST"} {
			for _, q := range append([]string{""}, ctGarbageQueries...) {
				if strings.Contains(target, "?") {
					q = ""
				}
				for _, b := range bodies[:8] {
					rec := ctServe(e.api, e.token, method, target+q, "application/x-www-form-urlencoded", b.body)
					if rec != nil && rec.Code >= 500 {
						t.Errorf("%s %s%s [%s]: %d %s", method, target, q, b.name, rec.Code, rec.Body.String())
					}
					n++
				}
			}
		}
	}
	t.Logf("%d requests", n)
}

// TestBadInput_malformedJSONIsAParseError: every endpoint that reads JSON
// answers CF-MessageParseError for a body that is not JSON, and 413 for one
// that is too large.
func TestBadInput_malformedJSONIsAParseError(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	f := e.fixture()
	var jsonEndpoints []ctEndpoint
	for _, ep := range ctEndpoints(t) {
		switch {
		case ep.method != "POST" && ep.method != "PATCH" && ep.method != "PUT":
		case strings.Contains(ep.pattern, "/actions/") && !strings.HasSuffix(ep.pattern, "/scale"),
			strings.HasSuffix(ep.pattern, "/cancel"), strings.HasSuffix(ep.pattern, "/drain"), strings.HasSuffix(ep.pattern, "/undrain"):
			// start, stop, restart, cancel, drain, undrain (no body) and apply_manifest (YAML)
		case strings.HasSuffix(ep.pattern, "/upload"), strings.HasSuffix(ep.pattern, "/manifest_diff"):
		default:
			jsonEndpoints = append(jsonEndpoints, ep)
		}
	}
	if len(jsonEndpoints) < 15 {
		t.Fatalf("only %d JSON endpoints: %v", len(jsonEndpoints), jsonEndpoints)
	}
	huge := []byte(`{"name":"` + strings.Repeat("a", 1<<20+10) + `"}`)
	for _, ep := range jsonEndpoints {
		p := f.path(ep.pattern, "")
		for _, bad := range []string{`{"name":`, `{]`, `not json`, "\xff\xfe"} {
			rec := ctServe(e.api, e.token, ep.method, p, "application/json", []byte(bad))
			label := fmt.Sprintf("%s %s %q", ep.method, p, bad)
			ctCheckNo500(t, label, rec)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"CF-MessageParseError"`) {
				t.Errorf("%s: %d %s, want 400 CF-MessageParseError", label, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
			}
		}
		if ep.pattern == "/v3/resource_matches" {
			continue // bounded at 64 MiB: a CLI sends one entry per file
		}
		rec := ctServe(e.api, e.token, ep.method, p, "application/json", huge)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"CF-RequestEntityTooLarge"`) {
			t.Errorf("%s %s with %d bytes: %d %s, want 413", ep.method, p, len(huge), rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
		}
	}
}

// FuzzApplyManifest feeds manifests to apply_manifest and manifest_diff;
// its seed corpus (the manifests the cf CLI sent in the traces, and some
// hostile ones) runs in every `go test`.
func FuzzApplyManifest(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "cf-manifests", "*.yml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("seed manifests: %v %v", seeds, err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"applications:\n- name: a\n  memory: 99999999T\n  disk_quota: 0M\n  instances: 2147483648\n",
		"applications:\n- name: a\n  processes:\n  - type: web\n    instances: 3\n  - type: worker\n    command: run\n    memory: 1G\n  - type: web\n",
		"applications:\n- &x {name: a, routes: [{route: a.localhost}, {route: a.localhost}]}\n- *x\n",
		"applications:\n- name: a\n  routes: [{route: ''}, {route: '*.localhost'}, {route: 'a.localhost/../x'}, {route: 'A.LOCALHOST'}]\n",
		"applications:\n- name: a\n  docker: {image: ''}\n  buildpacks: [x]\n",
		"applications:\n- name: a\n  env: {'': x, A: [1], B: {c: d}, C: null, D: 1.10}\n",
		"applications:\n- name: a\n  no-route: true\n  random-route: true\n  default-route: yes\n",
		"applications:\n- name: \"\\u202e\\u0000\"\n",
		"applications:\n- name: 😀\n  routes: [{route: 😀.localhost}]\n",
		"applications: !!binary aGVsbG8=\n",
		"%YAML 1.1\n---\napplications:\n- name: a\n...\n---\napplications: []\n",
		"? [a]\n: b\napplications:\n- {? [n] : x, name: b}\n",
	} {
		f.Add([]byte(s))
	}
	e := ctNew(f, ctOpts{})
	space := e.spaceGUID()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range []string{"actions/apply_manifest", "manifest_diff"} {
			rec := ctServe(e.api, e.token, "POST", "/v3/spaces/"+space+"/"+op, "application/x-yaml", body)
			ctCheckNo500(t, op, rec)
			if op != "actions/apply_manifest" || rec.Code != http.StatusAccepted {
				continue
			}
			loc := rec.Header().Get("Location")
			if !strings.HasPrefix(loc, e.base+"/v3/jobs/") {
				t.Fatalf("202 with Location %q", loc)
			}
			job := ctServe(e.api, e.token, "GET", strings.TrimPrefix(loc, e.base), "", nil)
			var j map[string]any
			if err := json.Unmarshal(job.Body.Bytes(), &j); err != nil {
				t.Fatalf("job: %v", err)
			}
			switch j["state"] {
			case pando.JobComplete:
			case pando.JobFailed:
				// A failed job is the CLI's error message: it must be a
				// user error, not an internal one.
				if title := ctStr(j, "errors.0.title"); title == "" || title == "UnknownError" {
					t.Errorf("apply_manifest job failed internally: %v (manifest %q)", j["errors"], body)
				}
			default:
				t.Errorf("job state %v on the first poll", j["state"])
			}
		}
	})
}

// TestBadInput_internalSymlinksAreKept is the control for the escape
// tests: links that stay inside the app (node_modules/.bin) are normal.
func TestBadInput_internalSymlinksAreKept(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("linked")
	guid, r := e.uploadRaw(app, []any{}, ctRawZip(t,
		ctZipEntry{Name: "node_modules/tool/cli.js", Mode: 0o755, Body: "#!/usr/bin/env node\n"},
		ctZipEntry{Name: "node_modules/.bin/tool", Mode: fs.ModeSymlink | 0o777, Body: "../tool/cli.js"},
	))
	if up := e.expect(r, http.StatusOK); up["state"] != pando.PackageReady {
		t.Fatalf("upload state %v", up["state"])
	}
	dl := e.send("GET", "/v3/packages/"+guid+"/download", "application/json", nil)
	zr, err := zip.NewReader(bytes.NewReader(dl.Body), int64(len(dl.Body)))
	if err != nil {
		t.Fatalf("download: %v (%s)", err, dl)
	}
	var found bool
	for _, f := range zr.File {
		if f.Name == "node_modules/.bin/tool" {
			rc, _ := f.Open()
			target, _ := io.ReadAll(rc)
			rc.Close()
			found = f.Mode()&fs.ModeSymlink != 0 && string(target) == "../tool/cli.js"
		}
	}
	if !found {
		t.Errorf("the internal symlink did not survive the upload")
	}
	e.checkNothingEscaped()
}

// TestBadInput_oddZipsNever500: archives that are broken or contradict
// themselves are refused (or, when harmless, accepted), never a 500.
func TestBadInput_oddZipsNever500(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("odd")
	valid := ctRawZip(t, ctZipEntry{Name: "index.html", Mode: 0o644, Body: strings.Repeat("hello ", 100)})
	cases := []struct {
		name string
		bits []byte
	}{
		{"not a zip", []byte("this is not a zip file at all")},
		{"truncated", valid[:len(valid)/2]},
		{"corrupt data", bytes.Replace(valid, []byte("index.html"), []byte("index.htmX"), 1)},
		{"file then dir", ctRawZip(t, ctZipEntry{Name: "a", Mode: 0o644, Body: "x"}, ctZipEntry{Name: "a/b", Mode: 0o644, Body: "y"})},
		{"dir then file", ctRawZip(t, ctZipEntry{Name: "a/b", Mode: 0o644, Body: "y"}, ctZipEntry{Name: "a", Mode: 0o644, Body: "x"})},
		{"duplicate", ctRawZip(t, ctZipEntry{Name: "a", Mode: 0o644, Body: "x"}, ctZipEntry{Name: "a", Mode: 0o600, Body: "y"})},
		{"link then file through it", ctRawZip(t, ctZipEntry{Name: "l", Mode: fs.ModeSymlink | 0o777, Body: "d"}, ctZipEntry{Name: "d/x", Mode: 0o644, Body: "x"}, ctZipEntry{Name: "l/y", Mode: 0o644, Body: "y"})},
		{"empty name", ctRawZip(t, ctZipEntry{Name: "", Mode: 0o644, Body: "x"})},
		{"dot", ctRawZip(t, ctZipEntry{Name: "./", Mode: fs.ModeDir | 0o755}, ctZipEntry{Name: "./a", Mode: 0o644, Body: "x"})},
		{"NUL in name", ctRawZip(t, ctZipEntry{Name: "a\x00b", Mode: 0o644, Body: "x"})},
		{"device", ctRawZip(t, ctZipEntry{Name: "dev", Mode: fs.ModeDevice | 0o644})},
		{"fifo", ctRawZip(t, ctZipEntry{Name: "fifo", Mode: fs.ModeNamedPipe | 0o644})},
		{"setuid", ctRawZip(t, ctZipEntry{Name: "suid", Mode: fs.ModeSetuid | 0o755, Body: "#!/bin/sh\n"})},
		{"no permissions", ctRawZip(t, ctZipEntry{Name: "locked/x", Mode: 0o000, Body: "x"}, ctZipEntry{Name: "locked/", Mode: fs.ModeDir})},
	}
	for _, c := range cases {
		guid, r := e.uploadRaw(app, []any{}, c.bits)
		switch {
		case r.Status >= 500:
			t.Errorf("%s: %s", c.name, r)
		case r.Status >= 400:
			e.expectCFError(r, r.Status, "", "")
		default:
			if p := e.expect(e.get("/v3/packages/"+guid), http.StatusOK); p["state"] != pando.PackageReady {
				t.Errorf("%s: accepted but package state %v", c.name, p["state"])
			}
		}
	}
	e.checkNothingEscaped()
}
