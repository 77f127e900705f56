package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

// The manifests the cf CLI sent in traces 05, 06 and 07 (section 3b).
const (
	ptManifest05 = `applications:
- name: myapp
  path: /home/dev/work/app
  default-route: true
`
	ptManifest06 = `applications:
- name: myapp
  instances: 2
  memory: 256M
  default-route: true
  buildpack: staticfile_buildpack
  command: $HOME/boot.sh
  env:
    GREETING: hello
    MODE: production
  routes:
  - route: myapp.localhost
  - route: www.localhost/myapp
`
	ptManifest07 = `applications:
- name: myimg
  docker:
    image: registry.example/web:v1
  default-route: true
`
)

func (e *ptEnv) applyManifest(yaml string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do("POST", "/v3/spaces/"+e.space().GUID+"/actions/apply_manifest", "application/x-yaml", strings.NewReader(yaml))
}

func (e *ptEnv) appRouteURLs(appGUID string) []string {
	e.t.Helper()
	var urls []string
	for _, r := range ptResources(e.ok(e.do("GET", "/v3/apps/"+appGUID+"/routes", "", nil), http.StatusOK)) {
		urls = append(urls, r["url"].(string))
	}
	slices.Sort(urls)
	return urls
}

func (e *ptEnv) webProcess(appGUID string) pando.Process {
	e.t.Helper()
	procs, err := e.store.ListProcesses(e.t.Context(), nil, []string{appGUID})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range procs {
		if p.Type == "web" {
			return p
		}
	}
	e.t.Fatalf("no web process for %s", appGUID)
	return pando.Process{}
}

func TestApplyManifest_trace06CreatesTheWholeApp(t *testing.T) {
	e := ptNew(t, nil)
	// The job is COMPLETE on the first poll.
	if j := e.job(e.applyManifest(ptManifest06)); j["state"] != pando.JobComplete || j["operation"] != "space.apply_manifest" {
		t.Fatalf("job = %v", j)
	}
	// The cf CLI looks the app up by name right after.
	apps := ptResources(e.ok(e.do("GET", "/v3/apps?names=myapp&space_guids="+e.space().GUID, "", nil), http.StatusOK))
	if len(apps) != 1 {
		t.Fatalf("apps = %v", apps)
	}
	app := e.appByName("myapp")
	if !slices.Equal(app.Buildpacks, []string{"staticfile_buildpack"}) || app.LifecycleType != pando.LifecycleBuildpack {
		t.Errorf("lifecycle = %s %v", app.LifecycleType, app.Buildpacks)
	}
	if app.EnvVars["GREETING"] != "hello" || app.EnvVars["MODE"] != "production" {
		t.Errorf("env = %v", app.EnvVars)
	}
	web := e.webProcess(app.GUID)
	if web.Instances != 2 || web.MemoryMB != 256 || web.Command != "$HOME/boot.sh" {
		t.Errorf("web = %+v", web)
	}
	if got := e.appRouteURLs(app.GUID); !slices.Equal(got, []string{"myapp.localhost", "www.localhost/myapp"}) {
		t.Errorf("routes = %v", got)
	}
	// Applying again changes nothing and duplicates nothing.
	if j := e.job(e.applyManifest(ptManifest06)); j["state"] != pando.JobComplete {
		t.Fatalf("second job = %v", j)
	}
	if got := e.appRouteURLs(app.GUID); len(got) != 2 {
		t.Errorf("routes after re-apply = %v", got)
	}
}

func TestApplyManifest_defaultRouteAndDocker(t *testing.T) {
	e := ptNew(t, nil)
	if j := e.job(e.applyManifest(ptManifest05)); j["state"] != pando.JobComplete {
		t.Fatalf("job = %v", j)
	}
	app := e.appByName("myapp")
	if got := e.appRouteURLs(app.GUID); !slices.Equal(got, []string{"myapp.localhost"}) {
		t.Errorf("routes = %v", got)
	}
	// The app has a route now: default-route adds nothing more.
	e.job(e.applyManifest(ptManifest05))
	if got := e.appRouteURLs(app.GUID); len(got) != 1 {
		t.Errorf("routes = %v", got)
	}
	// no-route unmaps everything.
	e.job(e.applyManifest("applications:\n- name: myapp\n  no-route: true\n"))
	if got := e.appRouteURLs(app.GUID); len(got) != 0 {
		t.Errorf("routes after no-route = %v", got)
	}

	// Docker apps are refused up front while the cells cannot run them.
	j := e.job(e.applyManifest(ptManifest07))
	if errs, _ := j["errors"].([]any); j["state"] != pando.JobFailed || len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "CF-FeatureDisabled") {
		t.Fatalf("docker job with docker disabled = %v", j)
	}
	if apps, _ := e.api.store.ListApps(context.Background(), pando.AppFilter{Names: []string{"myimg"}}); len(apps) != 0 {
		t.Fatalf("a refused docker app was created: %v", apps)
	}
	e = ptNew(t, func(c *Config) { c.DockerEnabled = true })
	if j := e.job(e.applyManifest(ptManifest07)); j["state"] != pando.JobComplete {
		t.Fatalf("docker job = %v", j)
	}
	img := e.appByName("myimg")
	if img.LifecycleType != pando.LifecycleDocker {
		t.Errorf("lifecycle = %s", img.LifecycleType)
	}
	if got := e.appRouteURLs(img.GUID); !slices.Equal(got, []string{"myimg.localhost"}) {
		t.Errorf("docker routes = %v", got)
	}
}

func TestApplyManifest_processesAndRandomRoute(t *testing.T) {
	e := ptNew(t, nil)
	m := `applications:
- name: multi
  random-route: true
  disk_quota: 2G
  health-check-type: http
  health-check-http-endpoint: /health
  log-rate-limit-per-second: 1K
  processes:
  - type: worker
    command: ./work
    instances: 3
    memory: 128M
`
	if j := e.job(e.applyManifest(m)); j["state"] != pando.JobComplete {
		t.Fatalf("job = %v", j)
	}
	app := e.appByName("multi")
	web := e.webProcess(app.GUID)
	if web.DiskMB != 2048 || web.HealthCheckType != "http" || web.HealthCheckEndpoint != "/health" || web.LogRateLimitBytes != 1024 {
		t.Errorf("web = %+v", web)
	}
	procs, _ := e.store.ListProcesses(t.Context(), nil, []string{app.GUID})
	i := slices.IndexFunc(procs, func(p pando.Process) bool { return p.Type == "worker" })
	if i < 0 || procs[i].Instances != 3 || procs[i].MemoryMB != 128 || procs[i].Command != "./work" || procs[i].LogRateLimitBytes != DefaultLogRateLimit {
		t.Errorf("processes = %+v", procs)
	}
	urls := e.appRouteURLs(app.GUID)
	if len(urls) != 1 || !strings.HasPrefix(urls[0], "multi-") || !strings.HasSuffix(urls[0], ".localhost") {
		t.Errorf("random route = %v", urls)
	}
}

func TestApplyManifest_errorsNameTheProblem(t *testing.T) {
	e := ptNew(t, nil)
	cases := []struct {
		name, yaml string
		status     int
		detail     string
	}{
		{"bad yaml", "applications:\n- name: [x\n", http.StatusBadRequest, "not valid YAML"},
		{"bad memory", "applications:\n- name: a\n  memory: 12Q\n", http.StatusUnprocessableEntity, `Manifest is invalid: applications[0].memory: "12Q" is not a valid memory size (e.g. 256M, 1G)`},
		{"missing name", "applications:\n- instances: 1\n", http.StatusUnprocessableEntity, "applications[0].name: Name must not be empty"},
		{"duplicate name", "applications:\n- name: a\n- name: a\n", http.StatusUnprocessableEntity, `applications[1].name: "a" appears more than once`},
		{"bad instances", "applications:\n- name: a\n  instances: many\n", http.StatusUnprocessableEntity, `applications[0].instances: "many" is not a whole number`},
		{"no applications", "foo: bar\n", http.StatusBadRequest, "Invalid app manifest"},
		{"unknown buildpack", "applications:\n- name: a\n  buildpacks: [nope]\n", http.StatusUnprocessableEntity, `For application 'a': Buildpack "nope" must be an existing admin buildpack or a valid git URI`},
		{"unknown domain", "applications:\n- name: a\n  routes:\n  - route: a.unknown.example\n", http.StatusUnprocessableEntity, "For application 'a': The route 'a.unknown.example' did not match any existing domains."},
		{"docker and buildpack", "applications:\n- name: a\n  buildpack: binary_buildpack\n  docker: {image: x}\n", http.StatusUnprocessableEntity, "Buildpack cannot be configured for a docker lifecycle app."},
		{"env not scalar", "applications:\n- name: a\n  env: {A: [1]}\n", http.StatusUnprocessableEntity, "applications[0].env.A: must be a string, number or boolean"},
		{"too many timeouts", "applications:\n- name: a\n  timeout: 999\n", http.StatusUnprocessableEntity, "For application 'a': Health check timeout must be between 1 and 180 seconds"},
		{"services", "applications:\n- name: a\n  services: [mydb, {name: cache}]\n", http.StatusUnprocessableEntity, "For application 'a': Service instance 'mydb' not found"},
		{"sidecars", "applications:\n- name: a\n  sidecars:\n  - name: s\n    command: x\n", http.StatusUnprocessableEntity, "applications[0].sidecars: sidecars are not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.cfErr(e.applyManifest(c.yaml), c.status)
			if !strings.Contains(d["detail"].(string), c.detail) {
				t.Errorf("detail = %q, want it to contain %q", d["detail"], c.detail)
			}
		})
	}
	// Nothing was created by any of them.
	if apps, _ := e.store.ListApps(t.Context(), pando.AppFilter{}); len(apps) != 0 {
		t.Errorf("apps created: %v", apps)
	}
	rec := e.do("POST", "/v3/spaces/"+e.space().GUID+"/actions/apply_manifest", "application/json", strings.NewReader(ptManifest05))
	if d := e.cfErr(rec, http.StatusBadRequest); d["detail"] != "Content-Type must be yaml" {
		t.Errorf("detail = %v", d["detail"])
	}
	rec = e.do("POST", "/v3/spaces/nope/actions/apply_manifest", "application/x-yaml", strings.NewReader(ptManifest05))
	if d := e.cfErr(rec, http.StatusNotFound); d["detail"] != "Space not found" {
		t.Errorf("detail = %v", d["detail"])
	}
}

func TestApplyManifest_envValuesAreStringified(t *testing.T) {
	apps, err := parseManifest([]byte("applications:\n- name: a\n  env:\n    N: 1.10\n    B: true\n    I: 42\n    E:\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"N": "1.10", "B": "true", "I": "42", "E": ""}
	for k, v := range want {
		if apps[0].Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, apps[0].Env[k], v)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		bare int64
		want int64
		ok   bool
	}{
		{"256M", 1 << 20, 256 << 20, true},
		{"256MB", 1 << 20, 256 << 20, true},
		{"1G", 1 << 20, 1 << 30, true},
		{"1gb", 1 << 20, 1 << 30, true},
		{"512", 1 << 20, 512 << 20, true},
		{"2048K", 1 << 20, 2 << 20, true},
		{"10B", 1 << 20, 10, true},
		{"1T", 1 << 20, 1 << 40, true},
		{"12Q", 1 << 20, 0, false},
		{"-1M", 1 << 20, 0, false},
		{"", 1 << 20, 0, false},
		{"1.5G", 1 << 20, 0, false},
	} {
		got, ok := parseBytes(c.in, c.bare)
		if got != c.want || ok != c.ok {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestManifestDiff_trace06(t *testing.T) {
	// Trace 06 diffs against the app trace 05 pushed: 1 instance, 1024M.
	e := ptNew(t, func(c *Config) { c.DefaultMemoryMB = 1024 })
	e.job(e.applyManifest(ptManifest05))
	rec := e.do("POST", "/v3/spaces/"+e.space().GUID+"/manifest_diff", "application/x-yaml", strings.NewReader(ptManifest06))
	body := e.ok(rec, http.StatusCreated)
	var ops []map[string]any
	raw, _ := json.Marshal(body["diff"])
	if err := json.Unmarshal(raw, &ops); err != nil {
		t.Fatal(err)
	}
	find := func(path string) map[string]any {
		for _, op := range ops {
			if op["path"] == path {
				return op
			}
		}
		t.Errorf("no op for %s in %v", path, ops)
		return map[string]any{}
	}
	if op := find("/applications/0/instances"); op["op"] != "replace" || op["was"] != float64(1) || op["value"] != float64(2) {
		t.Errorf("instances op = %v", op)
	}
	if op := find("/applications/0/memory"); op["op"] != "replace" || op["was"] != "1024M" || op["value"] != "256M" {
		t.Errorf("memory op = %v", op)
	}
	if op := find("/applications/0/command"); op["op"] != "add" || op["value"] != "$HOME/boot.sh" || op["was"] != nil {
		t.Errorf("command op = %v", op)
	}
	if op := find("/applications/0/env"); op["op"] != "add" || op["value"].(map[string]any)["GREETING"] != "hello" {
		t.Errorf("env op = %v", op)
	}
	// myapp.localhost exists already; only the second route is new.
	if op := find("/applications/0/routes/1"); op["op"] != "add" || op["value"].(map[string]any)["route"] != "www.localhost/myapp" {
		t.Errorf("routes op = %v", op)
	}
	for _, op := range ops {
		if op["path"] == "/applications/0/routes/0" || op["path"] == "/applications/0/default-route" {
			t.Errorf("unexpected op %v", op)
		}
	}

	// Unchanged settings give no ops; no-route shows the routes it removes.
	e.job(e.applyManifest(ptManifest06))
	rec = e.do("POST", "/v3/spaces/"+e.space().GUID+"/manifest_diff", "application/x-yaml", strings.NewReader(ptManifest06))
	if d := e.ok(rec, http.StatusCreated)["diff"].([]any); len(d) != 0 {
		t.Errorf("diff after apply = %v", d)
	}
	rec = e.do("POST", "/v3/spaces/"+e.space().GUID+"/manifest_diff", "application/x-yaml", strings.NewReader("applications:\n- name: myapp\n  no-route: true\n  memory: 1G\n"))
	d := e.ok(rec, http.StatusCreated)["diff"].([]any)
	if len(d) != 2 || d[0].(map[string]any)["op"] != "remove" || d[0].(map[string]any)["path"] != "/applications/0/routes" {
		t.Errorf("no-route diff = %v", d)
	}

	// A new app: everything is an addition, never a 404.
	rec = e.do("POST", "/v3/spaces/"+e.space().GUID+"/manifest_diff", "application/x-yaml", strings.NewReader("applications:\n- name: fresh\n  instances: 3\n  routes:\n  - route: fresh.localhost\n"))
	d = e.ok(rec, http.StatusCreated)["diff"].([]any)
	if len(d) != 2 || d[0].(map[string]any)["op"] != "add" || d[1].(map[string]any)["path"] != "/applications/0/routes" {
		t.Errorf("new app diff = %v", d)
	}
}
