package cc

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/secrets"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// rsRuntimes is a stack whose node version a test can change, as an
// upgrade of the host's or a rebuilt rootfs's would.
type rsRuntimes struct {
	mu   sync.Mutex
	node string
}

func (r *rsRuntimes) Runtimes(context.Context, string) ([]stackprobe.Runtime, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return []stackprobe.Runtime{{Name: "node", Version: r.node}}, nil
}

func (r *rsRuntimes) set(v string) {
	r.mu.Lock()
	r.node = v
	r.mu.Unlock()
}

// rsNew is a contract-test API with a secrets key (for services) and a
// stack whose runtimes the test controls, with app "web" pushed, staged
// and started.
func rsNew(t *testing.T) (*ctEnv, *rsRuntimes, ctApp) {
	t.Helper()
	box, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	rts := &rsRuntimes{node: "18.19.0"}
	e := ctNew(t, ctOpts{mod: func(c *Config) { c.Secrets, c.StackRuntimes = box, rts }})
	return e, rts, e.push("web")
}

// rebuild uploads files as a new package of the app, as a push does, and
// POSTs a build of it with body's extra fields.
func (e *ctEnv) rebuild(appGUID string, files []ctFile, body map[string]any) (pkg string, build map[string]any) {
	e.t.Helper()
	pkg = e.uploadBits(appGUID, files)
	return pkg, e.buildOf(pkg, body)
}

func (e *ctEnv) buildOf(pkg string, body map[string]any) map[string]any {
	e.t.Helper()
	req := map[string]any{"package": map[string]any{"guid": pkg}}
	for k, v := range body {
		req[k] = v
	}
	return e.expect(e.sendJSON("POST", "/v3/builds", req), http.StatusCreated)
}

// stagingLines are the app's staging log lines so far.
func (e *ctEnv) stagingLines(appGUID string) []string {
	e.t.Helper()
	var lines []string
	for _, env := range e.readLogs(appGUID, "envelope_types=LOG&start_time="+ctStartTime) {
		if env.Tags["source_type"] == pando.LogSourceStaging {
			lines = append(lines, ctPayload(env))
		}
	}
	return lines
}

func TestReuse_unchangedPushReusesTheDropletAtOnceAndSaysSo(t *testing.T) {
	t.Parallel()
	e, _, app := rsNew(t)
	tasks := len(e.rt.stagingTasks())

	pkg, b := e.rebuild(app.GUID, ctStaticApp(), nil)
	if pkg == app.Package {
		t.Fatalf("the push made no new package")
	}
	if b["state"] != pando.BuildStaged || ctStr(b, "droplet.guid") != app.Droplet {
		t.Fatalf("build of the unchanged push: state %v droplet %v, want STAGED with %s", b["state"], b["droplet"], app.Droplet)
	}
	if n := len(e.rt.stagingTasks()); n != tasks {
		t.Errorf("%d staging tasks desired for an unchanged push", n-tasks)
	}
	lines := strings.Join(e.stagingLines(app.GUID), "\n")
	if !strings.Contains(lines, "Reusing droplet "+app.Droplet) || !strings.Contains(lines, "staging inputs unchanged") {
		t.Errorf("staging output does not say the droplet was reused:\n%s", lines)
	}
	// The cf CLI polls GET /v3/builds and then sets the droplet and
	// restarts, as after any staging.
	droplet := e.staged(e.waitBuild(ctStr(b, "guid"), false))
	e.startPushed(&app, droplet, 1, 256)
	if lrp, _ := e.rt.desiredLRP(app.GUID); lrp.DropletKey != pando.DropletBlobKey(app.Droplet) {
		t.Errorf("the app runs %s, want the reused droplet", lrp.DropletKey)
	}
}

func TestReuse_restageOfTheSamePackageAlwaysStages(t *testing.T) {
	t.Parallel()
	e, _, app := rsNew(t)
	pkg, b := e.rebuild(app.GUID, ctStaticApp(), nil)
	if ctStr(b, "droplet.guid") != app.Droplet {
		t.Fatalf("unchanged push did not reuse: %v", b)
	}
	// cf restage and pando restage build the app's newest package again.
	for _, p := range []string{pkg, app.Package} {
		tasks := len(e.rt.stagingTasks())
		rb := e.buildOf(p, nil)
		if rb["state"] != pando.BuildStaging {
			t.Fatalf("restage of package %s: state %v, want STAGING", p, rb["state"])
		}
		d := e.staged(e.waitBuild(ctStr(rb, "guid"), false))
		if d == app.Droplet || len(e.rt.stagingTasks()) != tasks+1 {
			t.Errorf("restage of package %s gave droplet %s (old %s) with %d new tasks", p, d, app.Droplet, len(e.rt.stagingTasks())-tasks)
		}
	}
}

func TestReuse_anyChangedStagingInputStagesAgain(t *testing.T) {
	t.Parallel()
	changes := []struct {
		name   string
		change func(e *ctEnv, rts *rsRuntimes, app ctApp)
		files  []ctFile
		build  map[string]any
	}{
		{name: "a file's content", files: []ctFile{{Path: "Staticfile", Mode: 0o644}, {Path: "index.html", Mode: 0o644, Body: "<p>v2</p>"}}},
		{name: "a file's mode", files: []ctFile{{Path: "Staticfile", Mode: 0o755}, ctStaticApp()[1]}},
		{name: "a new file", files: append(ctStaticApp(), ctFile{Path: "robots.txt", Mode: 0o644, Body: "User-agent: *"})},
		{name: "an app env var", change: func(e *ctEnv, _ *rsRuntimes, app ctApp) {
			e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/environment_variables", map[string]any{"var": map[string]any{"NODE_ENV": "staging"}}), http.StatusOK)
		}},
		{name: "the staging env group", change: func(e *ctEnv, _ *rsRuntimes, _ ctApp) {
			e.expect(e.sendJSON("PATCH", "/v3/environment_variable_groups/staging", map[string]any{"var": map[string]any{"npm_config_registry": "http://npm.internal"}}), http.StatusOK)
		}},
		{name: "a bound service (VCAP_SERVICES)", change: func(e *ctEnv, _ *rsRuntimes, app ctApp) {
			si := e.expect(e.sendJSON("POST", "/v3/service_instances", map[string]any{"type": "user-provided", "name": "db", "credentials": map[string]any{"pw": "x"},
				"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": app.Space}}}}), http.StatusCreated)
			e.expect(e.sendJSON("POST", "/v3/service_credential_bindings", map[string]any{"type": "app", "relationships": map[string]any{
				"app": map[string]any{"data": map[string]any{"guid": app.GUID}}, "service_instance": map[string]any{"data": map[string]any{"guid": ctStr(si, "guid")}}}}), http.StatusCreated)
		}},
		{name: "bindings given as files", change: func(e *ctEnv, _ *rsRuntimes, app ctApp) {
			e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID+"/features/file-based-vcap-services", map[string]any{"enabled": true}), http.StatusOK)
		}},
		{name: "the start command", change: func(e *ctEnv, _ *rsRuntimes, app ctApp) {
			e.expect(e.sendJSON("PATCH", "/v3/processes/"+ctStr(e.webProcess(app.GUID), "guid"), map[string]any{"command": "node server.js"}), http.StatusOK)
		}},
		{name: "the instance memory (VCAP_APPLICATION limits)", change: func(e *ctEnv, _ *rsRuntimes, app ctApp) {
			e.expect(e.sendJSON("POST", "/v3/processes/"+ctStr(e.webProcess(app.GUID), "guid")+"/actions/scale", map[string]any{"memory_in_mb": 512}), http.StatusAccepted)
		}},
		{name: "a buildpack's bits", change: func(e *ctEnv, _ *rsRuntimes, _ ctApp) {
			bps := e.list(e.get("/v3/buildpacks?names=go_buildpack"))
			ctype, rd := ptMultipart(e.t.(*testing.T), "bits", "go_buildpack.zip", ptZip(e.t.(*testing.T), map[string]string{"bin/detect": "#!/bin/sh\nexit 1\n", "bin/supply": "#!/bin/sh\necho v2\n"}))
			body, err := io.ReadAll(rd)
			if err != nil {
				e.t.Fatal(err)
			}
			e.expect(e.send("POST", "/v3/buildpacks/"+ctStr(bps[0], "guid")+"/upload", ctype, body), http.StatusAccepted)
		}},
		{name: "a named buildpack", build: map[string]any{"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{"staticfile_buildpack"}}}}},
		// The same buildpacks in the same order, named: detection is skipped.
		{name: "detection", build: map[string]any{"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{"staticfile_buildpack", "go_buildpack", "binary_buildpack"}}}}},
		{name: "the stack", build: map[string]any{"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"stack": "cflinuxfs4"}}}},
		{name: "the stack's runtimes", change: func(_ *ctEnv, rts *rsRuntimes, _ ctApp) { rts.set("20.11.1") }},
		{name: "the staging memory", build: map[string]any{"staging_memory_in_mb": 2048}},
		{name: "the staging disk", build: map[string]any{"staging_disk_in_mb": 2048}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, rts, app := rsNew(t)
			if c.change != nil {
				c.change(e, rts, app)
			}
			files := c.files
			if files == nil {
				files = ctStaticApp()
			}
			tasks := len(e.rt.stagingTasks())
			_, b := e.rebuild(app.GUID, files, c.build)
			if b["state"] != pando.BuildStaging {
				t.Fatalf("build after changing %s: state %v droplet %v, want STAGING", c.name, b["state"], b["droplet"])
			}
			if d := e.staged(e.waitBuild(ctStr(b, "guid"), false)); d == app.Droplet {
				t.Errorf("build after changing %s reused droplet %s", c.name, d)
			}
			if n := len(e.rt.stagingTasks()); n != tasks+1 {
				t.Errorf("%d staging tasks after changing %s, want 1", n-tasks, c.name)
			}
		})
	}
}

func TestReuse_anEarlierDropletOfTheSameInputsIsReused(t *testing.T) {
	t.Parallel()
	e, _, app := rsNew(t)
	v2 := []ctFile{{Path: "Staticfile", Mode: 0o644}, {Path: "index.html", Mode: 0o644, Body: "<p>v2</p>"}}
	_, b := e.rebuild(app.GUID, v2, nil)
	d2 := e.staged(e.waitBuild(ctStr(b, "guid"), false))
	// Back to the first files: their droplet is still kept.
	_, b = e.rebuild(app.GUID, ctStaticApp(), nil)
	if ctStr(b, "droplet.guid") != app.Droplet {
		t.Errorf("push of the first files again: droplet %v, want %s (not %s)", b["droplet"], app.Droplet, d2)
	}
}

func TestReuse_aDropletWhoseBitsAreGoneIsNotReused(t *testing.T) {
	t.Parallel()
	e, _, app := rsNew(t)
	if err := e.blobs.Delete(context.Background(), pando.DropletBlobKey(app.Droplet)); err != nil {
		t.Fatal(err)
	}
	_, b := e.rebuild(app.GUID, ctStaticApp(), nil)
	if b["state"] != pando.BuildStaging {
		t.Fatalf("build with the old droplet's bits gone: state %v, want STAGING", b["state"])
	}
	if d := e.staged(e.waitBuild(ctStr(b, "guid"), false)); d == app.Droplet {
		t.Errorf("reused droplet %s without bits", d)
	}
}
