package builder_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/lifecycle/builder"
)

// env is a staging sandbox: temp dirs standing in for /tmp/app, /tmp/buildpacks, ...
type env struct {
	t    *testing.T
	root string
	cfg  builder.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, cfg: builder.Config{
		BuildDir:       filepath.Join(root, "app"),
		BuildpacksDir:  filepath.Join(root, "buildpacks"),
		CacheDir:       filepath.Join(root, "cache"),
		DepsDir:        filepath.Join(root, "deps"),
		ProfileDir:     filepath.Join(root, "profile.d"),
		OutputDroplet:  filepath.Join(root, "output", "droplet.tgz"),
		OutputMetadata: filepath.Join(root, "output", "result.json"),
		Env:            append(os.Environ(), "PHASE_LOG="+filepath.Join(root, "phases.log")),
	}}
	e.write("app/index.html", "<h1>hi</h1>", 0o644)
	return e
}

func (e *env) write(rel, content string, mode os.FileMode) {
	e.t.Helper()
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		e.t.Fatal(err)
	}
}

// buildpack writes a fake buildpack; scripts maps bin/<name> to a sh body.
// Every script appends "<bp> <script> <args>" to $PHASE_LOG first.
func (e *env) buildpack(name string, scripts map[string]string) {
	for script, body := range scripts {
		e.write(filepath.Join("buildpacks", name, "bin", script),
			"#!/bin/sh\necho \""+name+" "+script+" $*\" >> \"$PHASE_LOG\"\n"+body+"\n", 0o755)
	}
}

func (e *env) phases() []string {
	b, err := os.ReadFile(filepath.Join(e.root, "phases.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), e.root, ""))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (e *env) build(order ...string) (pando.StagingResult, string, error) {
	e.t.Helper()
	e.cfg.BuildpackOrder = order
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := builder.Build(ctx, e.cfg, &out, &out)
	return res, out.String(), err
}

func requireExit(t *testing.T, err error, code int, bp string) *builder.ExitError {
	t.Helper()
	var ee *builder.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error = %v, want *ExitError with code %d", err, code)
	}
	if ee.Code != code || builder.ExitCode(err) != code {
		t.Fatalf("exit code = %d, want %d (%v)", ee.Code, code, err)
	}
	if ee.Buildpack != bp {
		t.Fatalf("buildpack = %q, want %q", ee.Buildpack, bp)
	}
	if bp != "" && !strings.Contains(err.Error(), bp) {
		t.Fatalf("error %q does not name buildpack %s", err, bp)
	}
	return ee
}

const okRelease = `echo '---'; echo 'default_process_types:'; echo '  web: ./run --port $PORT'`

func TestBuild_detectRunsInOrderAndFirstMatchWins(t *testing.T) {
	e := newEnv(t)
	e.buildpack("one", map[string]string{"detect": "exit 1"})
	e.buildpack("two", map[string]string{"detect": `echo "two 1.2.3"`, "finalize": "", "release": okRelease})
	e.buildpack("three", map[string]string{"detect": "exit 0", "finalize": "", "release": okRelease})
	e.write("buildpacks/two/VERSION", "1.2.3\n", 0o644)

	res, out, err := e.build("one", "two", "three")
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	want := pando.StagingResult{DetectedBuildpack: "two 1.2.3", BuildpackName: "two", BuildpackVersion: "1.2.3",
		StartCommand: "./run --port $PORT", ProcessTypes: map[string]string{"web": "./run --port $PORT"}}
	if !equalResult(res, want) {
		t.Fatalf("result = %+v, want %+v", res, want)
	}
	wantPhases := []string{"one detect /app", "two detect /app", "two finalize /app /cache/two /deps 0 /profile.d", "two release /app"}
	if got := e.phases(); strings.Join(got, "|") != strings.Join(wantPhases, "|") {
		t.Fatalf("phases = %q, want %q", got, wantPhases)
	}
	if !strings.Contains(out, "-----> Running detect") || !strings.Contains(out, "Detected two") {
		t.Fatalf("missing progress lines:\n%s", out)
	}
	var meta pando.StagingResult
	b, err := os.ReadFile(e.cfg.OutputMetadata)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil || !equalResult(meta, want) {
		t.Fatalf("result.json = %s (%v), want %+v", b, err, want)
	}
}

func TestBuild_noBuildpackDetectedExits222(t *testing.T) {
	e := newEnv(t)
	e.buildpack("one", map[string]string{"detect": "exit 1"})
	e.buildpack("two", map[string]string{"detect": "exit 3"})
	_, out, err := e.build("one", "two")
	requireExit(t, err, builder.ExitNoAppDetected, "")
	if !strings.Contains(err.Error(), "None of the buildpacks detected a compatible application") {
		t.Fatalf("error = %v", err)
	}
	if _, serr := os.Stat(e.cfg.OutputDroplet); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("droplet written after failed detect:\n%s", out)
	}
}

func TestBuild_skipDetectSuppliesThenFinalizesWithLast(t *testing.T) {
	e := newEnv(t)
	e.buildpack("dep", map[string]string{
		"detect": "exit 1", // never asked: the user chose the buildpacks
		"supply": `mkdir -p "$3/$4/bin" && echo tool > "$3/$4/bin/tool" && echo "supplying"`,
	})
	e.buildpack("main", map[string]string{
		"supply":   `echo main-supply > "$3/$4/marker"`,
		"finalize": `test -f "$3/0/bin/tool" || exit 9; echo 'export GREETING=hi' > "$5/main.sh"; echo finalizing; echo oops >&2`,
		"release":  okRelease,
	})
	e.cfg.SkipDetect = true
	res, out, err := e.build("dep", "main")
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	wantPhases := []string{"dep supply /app /cache/dep /deps 0", "main supply /app /cache/main /deps 1",
		"main finalize /app /cache/main /deps 1 /profile.d", "main release /app"}
	if got := e.phases(); strings.Join(got, "|") != strings.Join(wantPhases, "|") {
		t.Fatalf("phases = %q, want %q", got, wantPhases)
	}
	if res.BuildpackName != "main" || res.DetectedBuildpack != "main" {
		t.Fatalf("result = %+v", res)
	}
	for _, s := range []string{"supplying", "finalizing", "oops", "-----> Running supply for dep", "-----> Running finalize for main"} {
		if !strings.Contains(out, s) {
			t.Fatalf("output lacks %q:\n%s", s, out)
		}
	}
	d := readDroplet(t, e.cfg.OutputDroplet)
	d.requireFile(t, "./deps/0/bin/tool", "tool\n")
	d.requireFile(t, "./deps/1/marker", "main-supply\n")
	d.requireFile(t, "./profile.d/main.sh", "export GREETING=hi\n")
}

func TestBuild_skipDetectNonFinalWithoutSupplyExits225(t *testing.T) {
	e := newEnv(t)
	e.cfg.SkipDetect = true
	e.buildpack("legacy", map[string]string{"compile": ""})
	e.buildpack("main", map[string]string{"finalize": "", "release": okRelease})
	_, _, err := e.build("legacy", "main")
	requireExit(t, err, builder.ExitSupplyFailed, "legacy")
	if !strings.Contains(err.Error(), "does not support multi-buildpack") {
		t.Fatalf("error = %v", err)
	}
}

func TestBuild_compileFallbackWhenNoFinalize(t *testing.T) {
	e := newEnv(t)
	e.buildpack("old", map[string]string{"detect": "", "compile": `echo compiled > "$1/compiled"`, "release": okRelease})
	_, out, err := e.build("old")
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	if got := e.phases(); strings.Join(got, "|") != "old detect /app|old compile /app /cache/old|old release /app" {
		t.Fatalf("phases = %q", got)
	}
	readDroplet(t, e.cfg.OutputDroplet).requireFile(t, "./app/compiled", "compiled\n")
}

func TestBuild_failureExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		scripts map[string]string
		code    int
		inErr   string
	}{
		{"finalize fails", map[string]string{"finalize": "echo broken >&2; exit 1", "release": okRelease}, builder.ExitFinalizeFailed, "finalize failed"},
		{"compile fails", map[string]string{"compile": "exit 2", "release": okRelease}, builder.ExitFinalizeFailed, "compile failed"},
		{"no finalize nor compile", map[string]string{"release": okRelease}, builder.ExitFinalizeFailed, "neither bin/finalize nor bin/compile"},
		{"supply of final fails", map[string]string{"supply": "exit 1", "finalize": "", "release": okRelease}, builder.ExitSupplyFailed, "supply failed"},
		{"release fails", map[string]string{"finalize": "", "release": "exit 1"}, builder.ExitReleaseFailed, "release failed"},
		{"release prints garbage", map[string]string{"finalize": "", "release": `echo 'default_process_types: [unclosed'`}, builder.ExitReleaseFailed, "not valid YAML"},
		{"release missing", map[string]string{"finalize": ""}, builder.ExitReleaseFailed, "release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.SkipDetect = true
			e.buildpack("bp", tt.scripts)
			_, out, err := e.build("bp")
			requireExit(t, err, tt.code, "bp")
			if !strings.Contains(err.Error(), tt.inErr) {
				t.Fatalf("error %q lacks %q\n%s", err, tt.inErr, out)
			}
		})
	}
}

func TestBuild_supplyFailureExits225(t *testing.T) {
	e := newEnv(t)
	e.cfg.SkipDetect = true
	e.buildpack("dep", map[string]string{"supply": "exit 4"})
	e.buildpack("main", map[string]string{"finalize": "", "release": okRelease})
	_, _, err := e.build("dep", "main")
	requireExit(t, err, builder.ExitSupplyFailed, "dep")
	if got := e.phases(); len(got) != 1 {
		t.Fatalf("phases after failed supply = %q, want only the supply", got)
	}
}

func TestBuild_nonExecutableScriptIsReported(t *testing.T) {
	e := newEnv(t)
	e.cfg.SkipDetect = true
	e.buildpack("bp", map[string]string{"release": okRelease})
	e.write("buildpacks/bp/bin/finalize", "#!/bin/sh\n", 0o644)
	_, _, err := e.build("bp")
	requireExit(t, err, builder.ExitFinalizeFailed, "bp")
	if !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("error = %v", err)
	}
}

func TestBuild_procfileOverridesReleaseProcessTypes(t *testing.T) {
	e := newEnv(t)
	e.buildpack("bp", map[string]string{"detect": "", "finalize": "",
		"release": `printf -- '---\ndefault_process_types:\n  web: default-web\n  worker: default-worker\n'`})
	e.write("app/Procfile", "# processes\nweb: bundle exec puma -p $PORT -e production:x\nclock: \"bin/clock --every 5s\"\nnot a process line\n", 0o644)
	res, out, err := e.build("bp")
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	want := map[string]string{"web": "bundle exec puma -p $PORT -e production:x", "worker": "default-worker", "clock": "bin/clock --every 5s"}
	if len(res.ProcessTypes) != len(want) {
		t.Fatalf("process types = %q, want %q", res.ProcessTypes, want)
	}
	for k, v := range want {
		if res.ProcessTypes[k] != v {
			t.Fatalf("process types = %q, want %q", res.ProcessTypes, want)
		}
	}
	if res.StartCommand != want["web"] {
		t.Fatalf("start command = %q", res.StartCommand)
	}
	if !strings.Contains(out, "line 4 ignored") {
		t.Fatalf("no warning for the bad Procfile line:\n%s", out)
	}
}

func TestBuild_dropletLayout(t *testing.T) {
	e := newEnv(t)
	e.write("app/bin/run", "#!/bin/sh\necho run\n", 0o750)
	if err := os.Symlink("bin/run", filepath.Join(e.cfg.BuildDir, "run-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(e.cfg.BuildDir, "outside")); err != nil {
		t.Fatal(err)
	}
	e.buildpack("bp", map[string]string{"detect": "echo bp", "finalize": `echo 'export A=1' > "$5/a.sh"`,
		"release": `printf -- '---\ndefault_process_types:\n  web: bin/run\n'`})
	_, out, err := e.build("bp")
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	d := readDroplet(t, e.cfg.OutputDroplet)
	for _, dir := range []string{"./app/", "./deps/", "./deps/0/", "./profile.d/", "./tmp/", "./logs/"} {
		if h, ok := d.hdr[dir]; !ok || h.Typeflag != tar.TypeDir {
			t.Fatalf("droplet lacks directory %s; has %v", dir, d.names())
		}
	}
	d.requireFile(t, "./app/index.html", "<h1>hi</h1>")
	d.requireFile(t, "./profile.d/a.sh", "export A=1\n")
	if h := d.hdr["./app/bin/run"]; h == nil || h.Mode&0o777 != 0o750 {
		t.Fatalf("./app/bin/run mode not kept: %+v", h)
	}
	if h := d.hdr["./app/run-link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "bin/run" {
		t.Fatalf("symlink not kept as a link: %+v", h)
	}
	if h := d.hdr["./app/outside"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Size != 0 {
		t.Fatalf("symlink out of the tree must be stored as a link, not followed: %+v", h)
	}
	var info map[string]string
	if err := json.Unmarshal([]byte(d.content["./staging_info.yml"]), &info); err != nil {
		t.Fatalf("staging_info.yml: %v", err)
	}
	if info["detected_buildpack"] != "bp" || info["start_command"] != "bin/run" {
		t.Fatalf("staging_info.yml = %v", info)
	}
	for name, h := range d.hdr {
		if h.Uid != 2000 || h.Gid != 2000 {
			t.Fatalf("%s owned by %d:%d, want vcap", name, h.Uid, h.Gid)
		}
		if !strings.HasPrefix(name, "./") {
			t.Fatalf("entry %q is not under ./", name)
		}
	}
}

func TestBuild_cancelKillsBuildpackAndItsChildren(t *testing.T) {
	e := newEnv(t)
	e.cfg.SkipDetect = true
	e.buildpack("bp", map[string]string{"finalize": `sleep 60 & echo started; wait`, "release": okRelease})
	e.cfg.BuildpackOrder = []string{"bp"}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := builder.Build(ctx, e.cfg, pw, io.Discard)
		pw.Close()
		errc <- err
	}()
	buf := make([]byte, 0, 512)
	for !strings.Contains(string(buf), "started") {
		p := make([]byte, 256)
		n, err := pr.Read(p)
		if err != nil {
			t.Fatalf("finalize never started: %v (%s)", err, buf)
		}
		buf = append(buf, p[:n]...)
	}
	start := time.Now()
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-errc:
		if builder.ExitCode(err) == 0 {
			t.Fatal("cancelled build succeeded")
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("cancel took %v", time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Build did not return after cancel")
	}
}

func TestExitCode(t *testing.T) {
	if builder.ExitCode(nil) != 0 || builder.ExitCode(errors.New("x")) != 1 {
		t.Fatal("ExitCode of nil/plain error")
	}
	wrapped := errors.Join(errors.New("ctx"), &builder.ExitError{Code: 224})
	if builder.ExitCode(wrapped) != 224 {
		t.Fatal("ExitCode does not unwrap")
	}
}

func TestCommand_flagsAndExitCode(t *testing.T) {
	e := newEnv(t)
	e.buildpack("bp", map[string]string{"detect": "exit 1"})
	cmd := builder.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--build-dir", e.cfg.BuildDir, "--buildpacks-dir", e.cfg.BuildpacksDir,
		"--buildpack-order", "bp", "--cache-dir", e.cfg.CacheDir, "--deps-dir", e.cfg.DepsDir,
		"--profile-dir", e.cfg.ProfileDir, "--output-droplet", e.cfg.OutputDroplet, "--output-metadata", e.cfg.OutputMetadata})
	err := cmd.Execute()
	var ee *builder.ExitError
	if builder.ExitCode(err) != 222 || !errors.As(err, &ee) || err.Error() != "" {
		t.Fatalf("exit code = %d, err %q (already reported errors have no message)", builder.ExitCode(err), err)
	}
	if !cmd.Hidden || !strings.Contains(out.String(), "Staging failed: detect failed: None of the buildpacks") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func equalResult(a, b pando.StagingResult) bool {
	if a.DetectedBuildpack != b.DetectedBuildpack || a.BuildpackName != b.BuildpackName ||
		a.BuildpackVersion != b.BuildpackVersion || a.StartCommand != b.StartCommand || len(a.ProcessTypes) != len(b.ProcessTypes) {
		return false
	}
	for k, v := range b.ProcessTypes {
		if a.ProcessTypes[k] != v {
			return false
		}
	}
	return true
}

type dropletContents struct {
	hdr     map[string]*tar.Header
	content map[string]string
}

func readDroplet(t *testing.T, path string) dropletContents {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	d := dropletContents{hdr: map[string]*tar.Header{}, content: map[string]string{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return d
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := d.hdr[h.Name]; dup {
			t.Fatalf("duplicate entry %s", h.Name)
		}
		d.hdr[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			d.content[h.Name] = string(b)
		}
	}
}

func (d dropletContents) names() []string {
	var n []string
	for k := range d.hdr {
		n = append(n, k)
	}
	return n
}

func (d dropletContents) requireFile(t *testing.T, name, content string) {
	t.Helper()
	if got, ok := d.content[name]; !ok || got != content {
		t.Fatalf("droplet %s = %q (present %v), want %q; entries %v", name, got, ok, content, d.names())
	}
}
