package cc

// The docker push contract (trace 07) with docker apps enabled: the real
// docker stager resolves the image against an in-process registry on
// loopback, run by the real cell code (a simulated cell of
// realruntime_test.go), whose docker instances run on fake containers.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/lifecycle/dockerstager"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/secrets"
)

// ctImage is a random 1-layer linux/amd64 image with cfg.
func ctImage(tb testing.TB, cfg v1.Config) v1.Image {
	tb.Helper()
	return registrytest.RandomImage(tb, 128, 1, "amd64", cfg)
}

var ctWebImage = v1.Config{
	Entrypoint:   []string{"/bin/web"},
	Cmd:          []string{"--listen", ":8000"},
	Env:          []string{"GREETING=hello"},
	User:         "app",
	WorkingDir:   "/srv",
	ExposedPorts: map[string]struct{}{"8000/tcp": {}},
}

// ctDocker is a contract environment with docker apps on, a registry on
// loopback and the real docker stager.
type ctDocker struct {
	*ctEnv
	host string
	// stager is what the cell stages docker packages with.
	stager ctStager
}

type ctStager interface {
	Stage(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error)
}

// ctStagerFunc is a stager that returns what the test says.
type ctStagerFunc func(pando.StagingRequest) (pando.StagingResult, error)

func (f ctStagerFunc) Stage(_ context.Context, req pando.StagingRequest, _ func(string)) (pando.StagingResult, error) {
	return f(req)
}

func ctNewDocker(t *testing.T, mod func(*Config)) *ctDocker {
	t.Helper()
	host := registrytest.InProcess(t, nil)
	client, err := registry.New(registry.Options{Insecure: []string{host}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &ctDocker{host: host, stager: dockerstager.New(client)}
	images := rrImages(t)
	d.ctEnv = ctNew(t, ctOpts{
		mod: func(c *Config) {
			c.DockerEnabled = true
			if mod != nil {
				mod(c)
			}
		},
		// The cell stages with the test's stager (tests may replace it
		// before they push).
		cell: func(c *cell.Config) {
			c.DockerStager = func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
				return d.stager.Stage(ctx, req, out)
			}
			c.Images = images
		},
	})
	return d
}

// stageNext checks the staging the BBS was asked to run for build: a
// docker staging, which the cell runs with the docker stager.
func (e *ctDocker) stageNext(build string) pando.Task {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		for _, task := range e.rt.stagingTasks() {
			if task.GUID != build {
				continue
			}
			if task.Staging == nil || task.Staging.DockerImage == "" || task.Staging.PackageKey != "" {
				e.t.Fatalf("staging task %+v, want a docker staging of build %s", task.Staging, build)
			}
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no staging of build %s was desired", build)
		}
	}
}

// rrImagePuller hands every image out as one layer holding the passwd
// and group files that name the images' user "app".
type rrImagePuller struct{ layer string }

// rrImages is a puller with its layer in a temp dir.
func rrImages(tb testing.TB) rrImagePuller {
	tb.Helper()
	layer := filepath.Join(tb.TempDir(), "layer")
	if err := os.MkdirAll(filepath.Join(layer, "etc"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, body := range map[string]string{"passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n", "group": "root:x:0:\napp:x:1000:\n"} {
		if err := os.WriteFile(filepath.Join(layer, "etc", name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return rrImagePuller{layer}
}

func (p rrImagePuller) Pull(ctx context.Context, image string, _ *pando.ImageCredentials, _ int64) ([]string, func(), error) {
	return []string{p.layer}, func() {}, ctx.Err()
}

// pushDocker replays `cf push NAME --docker-image REF` (trace 07) up to
// POST /v3/builds and returns the app with its build.
func (e *ctDocker) pushDocker(name, ref string, creds map[string]any) ctApp {
	e.t.Helper()
	app := ctApp{Name: name, Space: e.spaceGUID()}
	manifest := strings.ReplaceAll(strings.ReplaceAll(ctManifest(e.t, "07-push-docker.yml"), "myimg", name), "registry.example/web:v1", ref)
	e.applyManifest(app.Space, manifest)
	apps := e.appsNamed(name, app.Space)
	if len(apps) != 1 {
		e.t.Fatalf("after apply_manifest, apps named %s: %v", name, apps)
	}
	app.GUID = ctStr(apps[0], "guid")
	if ctStr(apps[0], "lifecycle.type") != pando.LifecycleDocker {
		e.t.Errorf("new app lifecycle %v, want docker", apps[0]["lifecycle"])
	}
	data := map[string]any{"image": ref}
	for k, v := range creds {
		data[k] = v
	}
	pkg := e.expect(e.sendJSON("POST", "/v3/packages", map[string]any{
		"data":          data,
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.GUID}}},
		"type":          "docker",
	}), http.StatusCreated)
	app.Package = ctStr(pkg, "guid")
	if pkg["state"] != pando.PackageReady || ctStr(pkg, "data.image") != ref {
		e.t.Fatalf("docker package %v", pkg)
	}
	e.appsNamed(name, app.Space)
	b := e.expect(e.sendJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": app.Package}}), http.StatusCreated)
	app.Build = ctStr(b, "guid")
	if b["state"] != pando.BuildStaging || ctStr(b, "lifecycle.type") != pando.LifecycleDocker {
		e.t.Fatalf("new build %v", b)
	}
	return app
}

// droplet checks a staged docker droplet as the CLI reads it and returns
// its execution metadata.
func (e *ctDocker) droplet(guid, image string) pando.ExecutionMetadata {
	e.t.Helper()
	d := e.expect(e.get("/v3/droplets/"+guid), http.StatusOK)
	if d["state"] != pando.DropletStaged || ctStr(d, "lifecycle.type") != pando.LifecycleDocker || d["image"] != image {
		e.t.Fatalf("droplet state %v lifecycle %v image %v, want STAGED docker %s", d["state"], d["lifecycle"], d["image"], image)
	}
	if d["stack"] != nil || d["checksum"] != nil || d["error"] != nil {
		e.t.Errorf("docker droplet stack %v checksum %v error %v, want null", d["stack"], d["checksum"], d["error"])
	}
	var md pando.ExecutionMetadata
	if err := json.Unmarshal([]byte(ctStr(d, "execution_metadata")), &md); err != nil {
		e.t.Fatalf("execution_metadata %q: %v", d["execution_metadata"], err)
	}
	if ctStr(d, "process_types.web") != md.StartCommand() {
		e.t.Errorf("process_types %v, want web: %q", d["process_types"], md.StartCommand())
	}
	return md
}

func TestContract07_pushDocker(t *testing.T) {
	t.Parallel()
	e := ctNewDocker(t, nil)
	ref := e.host + "/team/web:v1"
	first := registrytest.Push(t, ref, ctImage(t, ctWebImage), "", "")
	pinned := e.host + "/team/web@" + first.String()

	app := e.pushDocker("myimg", ref, nil)
	e.stageNext(app.Build)
	droplet := e.staged(e.waitBuild(app.Build, false))
	if b := e.expect(e.get("/v3/builds/"+app.Build), http.StatusOK); ctStr(b, "lifecycle.type") != pando.LifecycleDocker {
		t.Errorf("staged build lifecycle %v", b["lifecycle"])
	}
	md := e.droplet(droplet, pinned)
	if md.StartCommand() != "/bin/web --listen :8000" || md.User != "app" || md.Workdir != "/srv" ||
		len(md.Ports) != 1 || md.Ports[0] != (pando.Port{Port: 8000, Protocol: "tcp"}) || len(md.Env) != 1 {
		t.Errorf("execution metadata %+v", md)
	}
	// The staging log the CLI tails says what was resolved.
	var logged []string
	for _, env := range e.readLogs(app.GUID, "envelope_types=LOG&start_time=0") {
		logged = append(logged, ctPayload(env))
	}
	for _, want := range []string{"Staging docker image " + ref, "Resolved " + ref + " to " + first.String(), "Exposed ports: 8000/tcp", "Start command: /bin/web --listen :8000"} {
		if !strings.Contains(strings.Join(logged, "\n"), want) {
			t.Errorf("staging log lacks %q: %q", want, logged)
		}
	}

	// current_droplet, restart, then `cf app`'s reads.
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", map[string]any{"data": map[string]any{"guid": droplet}}), http.StatusOK)
	app.Droplet = droplet
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	web := e.webProcess(app.GUID)
	mem := int(ctNum(web, "memory_in_mb"))
	e.summary(app, 1, mem)
	proc := e.expect(e.get("/v3/processes/"+app.GUID), http.StatusOK)
	if proc["command"] != "/bin/web --listen :8000" {
		t.Errorf("web process command %v, want the image's", proc["command"])
	}
	if cur := e.expect(e.get("/v3/apps/"+app.GUID+"/droplets/current"), http.StatusOK); cur["image"] != pinned {
		t.Errorf("current droplet image %v, want %s", cur["image"], pinned)
	}
	if lrp, ok := e.rt.desiredLRP(app.GUID); !ok || lrp.Image != pinned || lrp.DropletKey != "" {
		t.Errorf("desired LRP %+v, want image %s", lrp, pinned)
	} else if lrp.Docker == nil || lrp.Docker.StartCommand() != "/bin/web --listen :8000" || lrp.Docker.User != "app" ||
		lrp.StartCommand != "" || len(lrp.Ports) != 1 || lrp.Ports[0] != 8000 {
		// The cell runs ENTRYPOINT+CMD itself, on the exposed port.
		t.Errorf("desired LRP command %q, ports %v, execution metadata %+v", lrp.StartCommand, lrp.Ports, lrp.Docker)
	}

	// A moved tag changes nothing until the app is staged again.
	moved := ctWebImage
	moved.Cmd = []string{"--listen", ":9000"}
	second := registrytest.Push(t, ref, ctImage(t, moved), "", "")
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.Image != pinned {
		t.Errorf("after the tag moved, a restart runs %s, want the staged %s", lrp.Image, pinned)
	}
	b := e.expect(e.sendJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": app.Package}}), http.StatusCreated)
	e.stageNext(ctStr(b, "guid"))
	restaged := e.staged(e.waitBuild(ctStr(b, "guid"), false))
	if md := e.droplet(restaged, e.host+"/team/web@"+second.String()); md.StartCommand() != "/bin/web --listen :9000" {
		t.Errorf("restaged metadata %+v", md)
	}
	if d := e.expect(e.get("/v3/droplets/"+droplet), http.StatusOK); d["image"] != pinned {
		t.Errorf("the first droplet now says %v, want %s", d["image"], pinned)
	}
}

// A start command given by the user (-c, or the process's command) wins
// over the image's.
func TestDockerApp_aUserCommandOverridesTheImages(t *testing.T) {
	t.Parallel()
	e := ctNewDocker(t, nil)
	ref := e.host + "/team/web:v1"
	registrytest.Push(t, ref, ctImage(t, ctWebImage), "", "")
	app := e.pushDocker("cmdimg", ref, nil)
	e.stageNext(app.Build)
	droplet := e.staged(e.waitBuild(app.Build, false))
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/relationships/current_droplet", map[string]any{"data": map[string]any{"guid": droplet}}), http.StatusOK)
	p := e.expect(e.sendJSON("PATCH", "/v3/processes/"+app.GUID, map[string]any{"command": "/bin/web --debug"}), http.StatusOK)
	if p["command"] != "/bin/web --debug" {
		t.Errorf("process command %v", p["command"])
	}
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.StartCommand != "/bin/web --debug" {
		t.Errorf("desired LRP command %q, want the user's", lrp.StartCommand)
	}
	// Unset again: the image's command comes back.
	p = e.expect(e.sendJSON("PATCH", "/v3/processes/"+app.GUID, map[string]any{"command": nil}), http.StatusOK)
	if p["command"] != "/bin/web --listen :8000" {
		t.Errorf("process command after unset %v, want the image's", p["command"])
	}
	e.expect(e.action("/v3/apps/"+app.GUID+"/actions/restart"), http.StatusOK)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.StartCommand != "" || lrp.Docker == nil {
		t.Errorf("desired LRP command %q (want none: the image's ENTRYPOINT+CMD), metadata %+v", lrp.StartCommand, lrp.Docker)
	}

	// A task runs in the same pinned image, not in a droplet blob.
	before := len(e.rt.stagingTasks())
	e.expect(e.sendJSON("POST", "/v3/apps/"+app.GUID+"/tasks", map[string]any{"command": "echo hi"}), http.StatusAccepted)
	lrp, _ := e.rt.desiredLRP(app.GUID)
	tasks := e.rt.waitTasks(t, before+1)
	if run := tasks[len(tasks)-1].Run; run == nil || run.Image == "" || run.Image != lrp.Image || run.DropletKey != "" ||
		run.Docker == nil || run.Docker.User != "app" || run.Command != "echo hi" {
		t.Errorf("docker task run request %+v, want the image %s", run, lrp.Image)
	}
}

// Staging failures of a private registry reach the build within the
// request cycle, say what went wrong and never show the password.
func TestDockerStaging_wrongCredentialsFailTheBuildClearlyAndKeepThePasswordHidden(t *testing.T) {
	t.Parallel()
	const user, pass = "bot", "Regi5try-pa55word"
	box, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	e := ctNewDocker(t, func(c *Config) { c.Secrets = box })
	private := registrytest.InProcess(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	client, err := registry.New(registry.Options{Insecure: []string{private, e.host}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.stager = dockerstager.New(client)
	ref := private + "/team/secret:1"
	digest := registrytest.Push(t, ref, ctImage(t, ctWebImage), user, pass)

	wrong := "not-" + pass
	bad := e.pushDocker("badcreds", ref, map[string]any{"username": user, "password": wrong})
	e.stageNext(bad.Build)
	b := e.waitBuild(bad.Build, false)
	if b["state"] != pando.BuildFailed || !strings.Contains(ctStr(b, "error"), "refused the credentials for "+ref) {
		t.Fatalf("build %v error %v, want FAILED saying the credentials were refused", b["state"], b["error"])
	}
	if _, ok := e.rt.desiredLRP(bad.GUID); ok {
		t.Error("a failed staging desired an LRP")
	}

	good := e.pushDocker("goodcreds", ref, map[string]any{"username": user, "password": pass})
	e.stageNext(good.Build)
	d := e.staged(e.waitBuild(good.Build, false))
	e.droplet(d, private+"/team/secret@"+digest.String())
	// Its instances pull the layers with the package's credentials, which
	// never print.
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+good.GUID+"/relationships/current_droplet", map[string]any{"data": map[string]any{"guid": d}}), http.StatusOK)
	e.expect(e.action("/v3/apps/"+good.GUID+"/actions/start"), http.StatusOK)
	lrp, ok := e.rt.desiredLRP(good.GUID)
	if !ok || lrp.ImageCredentials == nil || *lrp.ImageCredentials != (pando.ImageCredentials{Username: user, Password: pass}) {
		t.Errorf("desired LRP %v, want it to carry the package's credentials", ok)
	}
	if shown := fmt.Sprintf("%v %+v %#v", lrp, lrp, lrp.ImageCredentials); strings.Contains(shown, pass) || !strings.Contains(shown, "password ***") {
		t.Errorf("a printed desired LRP shows the password: %s", shown)
	}

	unknown := e.pushDocker("notag", e.host+"/team/none:1", nil)
	e.stageNext(unknown.Build)
	if b := e.waitBuild(unknown.Build, false); b["state"] != pando.BuildFailed || !strings.Contains(ctStr(b, "error"), "not found") {
		t.Errorf("unknown image build %v error %v", b["state"], b["error"])
	}

	// Nothing the API answers or logs shows either password.
	for _, app := range []ctApp{bad, good} {
		for _, target := range []string{
			"/v3/builds/" + app.Build, "/v3/packages/" + app.Package, "/v3/apps/" + app.GUID,
			"/v3/audit_events?target_guids=" + app.GUID, "/api/v1/read/" + app.GUID + "?envelope_types=LOG&start_time=0",
		} {
			body := string(e.get(target).Body)
			if strings.Contains(body, pass) || strings.Contains(body, wrong) {
				t.Errorf("GET %s shows the password: %s", target, body)
			}
		}
	}
}

// A docker staging result without an image cannot be run: the build fails.
func TestDockerStaging_aResultWithoutAnImageFailsTheBuild(t *testing.T) {
	t.Parallel()
	e := ctNewDocker(t, nil)
	e.stager = ctStagerFunc(func(pando.StagingRequest) (pando.StagingResult, error) {
		return pando.StagingResult{ProcessTypes: map[string]string{"web": "x"}}, nil
	})
	app := e.pushDocker("noimage", e.host+"/team/web:v1", nil)
	e.stageNext(app.Build)
	if b := e.waitBuild(app.Build, false); b["state"] != pando.BuildFailed || !strings.Contains(ctStr(b, "error"), "no image") {
		t.Errorf("build %v error %v", b["state"], b["error"])
	}
}
