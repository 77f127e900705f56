package buildpacks_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/lifecycle/launcher"
	"github.com/pandoplatform/pando/internal/testenv"
)

func TestBuiltin_namesOrderAndZips(t *testing.T) {
	t.Parallel()
	bps := buildpacks.Builtin()
	want := []string{"staticfile_buildpack", "java_buildpack", "ruby_buildpack", "nodejs_buildpack", "go_buildpack", "python_buildpack", "binary_buildpack"}
	if len(bps) != len(want) {
		t.Fatalf("got %d builtins, want %d", len(bps), len(want))
	}
	for i, bp := range bps {
		if bp.Name != want[i] || bp.Position != i+1 || bp.Version == "" {
			t.Fatalf("builtin %d = %+v, want %s at position %d with a version", i, bp, want[i], i+1)
		}
		var a, b bytes.Buffer
		if err := bp.Zip(&a); err != nil {
			t.Fatal(err)
		}
		if err := bp.Zip(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%s: zip is not deterministic", bp.Name)
		}
		zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]os.FileMode{}
		for _, f := range zr.File {
			seen[f.Name] = f.Mode()
		}
		for _, s := range []string{"bin/detect", "bin/finalize", "bin/release"} {
			if m, ok := seen[s]; !ok || m.Perm() != 0o755 {
				t.Fatalf("%s: %s mode %v (present %v), want 0755", bp.Name, s, m, ok)
			}
		}
		if m := seen["VERSION"]; m.Perm() != 0o644 {
			t.Fatalf("%s: VERSION mode %v", bp.Name, m)
		}
	}
}

// stage installs the builtins into a temp buildpacks dir (as the cell would,
// from their zips) and runs the builder on app.
type stage struct {
	cfg builder.Config
	out bytes.Buffer
}

func newStage(t *testing.T, app map[string]string) *stage {
	t.Helper()
	root := t.TempDir()
	s := &stage{cfg: builder.Config{
		BuildDir:       filepath.Join(root, "app"),
		BuildpacksDir:  filepath.Join(root, "buildpacks"),
		CacheDir:       filepath.Join(root, "cache"),
		DepsDir:        filepath.Join(root, "deps"),
		ProfileDir:     filepath.Join(root, "profile.d"),
		OutputDroplet:  filepath.Join(root, "output", "droplet.tgz"),
		OutputMetadata: filepath.Join(root, "output", "result.json"),
		Env:            os.Environ(),
	}}
	writeFiles(t, s.cfg.BuildDir, app)
	for _, bp := range buildpacks.Builtin() {
		s.cfg.BuildpackOrder = append(s.cfg.BuildpackOrder, bp.Name)
		var buf bytes.Buffer
		must(t, bp.Zip(&buf))
		unzip(t, buf.Bytes(), filepath.Join(s.cfg.BuildpacksDir, bp.Name))
	}
	return s
}

func (s *stage) build(t *testing.T) (pando.StagingResult, error) {
	t.Helper()
	s.out.Reset()
	// A bound that stops a hung build, not a speed target: pip and npm on
	// a machine shared with other builds can take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	return builder.Build(ctx, s.cfg, &s.out, &s.out)
}

func TestStaticfile_detectsAndServesRootWithOptions(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{
		"Staticfile":        "root: public/ # the site\npushstate: enabled\nforce_https: true\n",
		"public/index.html": "<h1>hi</h1>",
	})
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if res.BuildpackName != "staticfile_buildpack" || res.DetectedBuildpack != "staticfile 1.0.0" {
		t.Fatalf("result = %+v", res)
	}
	want := "/tmp/lifecycle/pando static-serve --root /home/vcap/app/public --port $PORT --pushstate"
	if res.StartCommand != want {
		t.Fatalf("start command = %q, want %q", res.StartCommand, want)
	}
	if !strings.Contains(s.out.String(), "option 'force_https' is not supported") {
		t.Fatalf("unsupported option not reported:\n%s", s.out.String())
	}
}

func TestStaticfile_defaultRootIsTheAppDir(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{"Staticfile": "", "index.html": "hi"})
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if want := "/tmp/lifecycle/pando static-serve --root /home/vcap/app --port $PORT"; res.StartCommand != want {
		t.Fatalf("start command = %q, want %q", res.StartCommand, want)
	}
}

func TestStaticfile_badRootFailsFinalize(t *testing.T) {
	t.Parallel()
	for _, root := range []string{"../etc", "missing", "/etc", "a b"} {
		t.Run(root, func(t *testing.T) {
			s := newStage(t, map[string]string{"Staticfile": "root: " + root + "\n", "index.html": "hi"})
			_, err := s.build(t)
			if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "Staticfile root") {
				t.Fatalf("err = %v\n%s", err, s.out.String())
			}
		})
	}
}

func TestBinary_neverDetectedAndWarnsWithoutProcfile(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{"server": "#!/bin/sh\n"})
	_, err := s.build(t)
	if builder.ExitCode(err) != builder.ExitNoAppDetected {
		t.Fatalf("err = %v, want no app detected", err)
	}

	s.cfg.SkipDetect, s.cfg.BuildpackOrder = true, []string{"binary_buildpack"}
	res, err := s.build(t)
	if err != nil || res.StartCommand != "" || !strings.Contains(s.out.String(), "without one the app cannot start") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}

	must(t, os.WriteFile(filepath.Join(s.cfg.BuildDir, "Procfile"), []byte("web: ./server --port $PORT\n"), 0o644))
	res, err = s.build(t)
	if err != nil || res.StartCommand != "./server --port $PORT" || strings.Contains(s.out.String(), "without one the app cannot start") {
		t.Fatalf("res %+v err %v\n%s", res, err, s.out.String())
	}
}

const helloGo = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from go") })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// goSeed returns the Go build cache seed a cell offers the go buildpack:
// the machine's, where servers keep it (buildpacks.GoCacheSeedDir under
// /var/cache/pando), warmed by buildpacks.WarmGoCache if it is not yet
// (once per machine and Go version: the standard library, ~100 MB), or a
// seed of the test's own where that dir is not writable. Not the host's
// GOCACHE: it grows with every build on the machine (many GB on a shared
// one), and seeding copies all of it.
func goSeed(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "no Go toolchain on this machine")
	}
	// A bound that stops a hung build, not a speed target.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := buildpacks.GoCacheSeedDir(ctx, "/var/cache/pando")
	if err != nil {
		t.Fatal(err)
	}
	if err := buildpacks.WarmGoCache(ctx, dir, ""); err != nil {
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatal(err)
		}
		dir = filepath.Join(t.TempDir(), "go-build-seed")
		must(t, buildpacks.WarmGoCache(ctx, dir, ""))
	}
	if !buildpacks.GoCacheReady(dir) {
		t.Fatalf("WarmGoCache left no ready seed in %s", dir)
	}
	return dir
}

func TestGo_buildsModulesOffline(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{
		"go.mod":  "module example.com/hello/v2\n\ngo 1.22\n",
		"main.go": helloGo,
	})
	s.cfg.Env = append(s.cfg.Env, "PANDO_GO_CACHE_SEED="+goSeed(t))
	res, err := s.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, s.out.String())
	}
	if res.BuildpackName != "go_buildpack" || res.StartCommand != "./bin/hello" {
		t.Fatalf("result = %+v\n%s", res, s.out.String())
	}
	for _, want := range []string{"Using go version go1.", "Seeding the Go build cache", "Running: go build"} {
		if !strings.Contains(s.out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, s.out.String())
		}
	}

	// The binary is in the droplet's app dir, on PATH through profile.d (as
	// for a Procfile `web: hello`), and serves.
	if body := serve(t, s, "hello"); body != "hello from go" {
		t.Fatalf("GET / = %q", body)
	}

	// Second staging with the same cache: no seeding needed.
	res, err = s.build(t)
	if err != nil || res.StartCommand != "./bin/hello" || strings.Contains(s.out.String(), "Seeding") {
		t.Fatalf("restage: %+v %v\n%s", res, err, s.out.String())
	}

	// A vendored dependency and a main package below the root. (It shares the
	// warm cache of the app above only to keep this test fast.)
	v := newStage(t, map[string]string{
		"go.mod":                          "module example.com/svc\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n",
		"cmd/server/main.go":              "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n",
		"vendor/modules.txt":              "# example.com/greet v1.0.0\n## explicit; go 1.22\nexample.com/greet\n",
		"vendor/example.com/greet/g.go":   "package greet\n\nfunc Hello() string { return \"hello vendored\" }\n",
		"vendor/example.com/greet/go.mod": "module example.com/greet\n\ngo 1.22\n",
	})
	v.cfg.CacheDir = s.cfg.CacheDir
	v.cfg.BuildpackOrder = []string{"go_buildpack"}
	v.cfg.Env = append(v.cfg.Env, "GO_INSTALL_PACKAGE_SPEC=./cmd/server")
	res, err = v.build(t)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, v.out.String())
	}
	if res.StartCommand != "./bin/server" || !strings.Contains(v.out.String(), "Using vendored dependencies") {
		t.Fatalf("result = %+v\n%s", res, v.out.String())
	}
	out, err := exec.Command(filepath.Join(v.cfg.BuildDir, "bin", "server")).Output()
	if err != nil || string(out) != "hello vendored\n" {
		t.Fatalf("server: %q %v", out, err)
	}
}

func TestGo_requirementsWithoutVendorFailClearly(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{
		"go.mod":  "module example.com/app\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n",
		"main.go": "package main\n\nfunc main() {}\n",
	})
	s.cfg.BuildpackOrder = []string{"go_buildpack"}
	_, err := s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "Run 'go mod vendor' and push again") {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}
}

func TestGo_noMainPackageFailsClearly(t *testing.T) {
	t.Parallel()
	s := newStage(t, map[string]string{
		"go.mod": "module example.com/lib\n\ngo 1.22\n",
		"lib.go": "package lib\n\nfunc F() int { return 1 }\n",
	})
	s.cfg.BuildpackOrder = []string{"go_buildpack"}
	_, err := s.build(t)
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || !strings.Contains(s.out.String(), "GO_INSTALL_PACKAGE_SPEC") {
		t.Fatalf("err = %v\n%s", err, s.out.String())
	}
}

// serve runs startCommand in the staged droplet the way `pando launcher`
// does (profile.d sourced, HOME the app dir), with a free PORT, and returns
// the body of GET /. A port taken between picking and binding it (other
// tests run beside this one) is retried with another.
func serve(t *testing.T, s *stage, startCommand string) string {
	t.Helper()
	// The launcher's layout: profile.d beside the app dir, as in newStage.
	if filepath.Dir(s.cfg.ProfileDir) != filepath.Dir(s.cfg.BuildDir) {
		t.Fatalf("profile dir %s is not beside the app dir %s", s.cfg.ProfileDir, s.cfg.BuildDir)
	}
	for attempt := 1; ; attempt++ {
		body, out, taken := serveOnce(t, s, startCommand)
		if !taken {
			return body
		}
		if attempt == 3 {
			t.Fatalf("%q: every port picked was taken before it bound\n%s", startCommand, out)
		}
	}
}

// serveOnce is one try of serve; taken says the app exited because its
// port was already in use.
func serveOnce(t *testing.T, s *stage, startCommand string) (body, output string, taken bool) {
	t.Helper()
	// Probed on all addresses: apps may bind 0.0.0.0.
	ln, err := net.Listen("tcp", ":0")
	must(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	env := []string{"PORT=" + port, "PATH=/usr/local/bin:/usr/bin:/bin"}
	plan, err := launcher.NewPlan(s.cfg.BuildDir, startCommand, env, exec.LookPath)
	must(t, err)
	var out bytes.Buffer
	cmd := exec.Command(plan.Path, plan.Args[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = plan.Env, plan.Dir, &out, &out
	// Its own process group, killed whole: `npm start` runs node as a child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	kill := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	defer kill()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			if o := out.String(); strings.Contains(o, "already in use") || strings.Contains(o, "EADDRINUSE") {
				return "", o, true
			}
			t.Fatalf("%q exited before serving: %v\n%s", startCommand, cmd.ProcessState, out.String())
		default:
		}
		if r, err := http.Get("http://127.0.0.1:" + port + "/"); err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			return string(b), "", false
		}
		time.Sleep(20 * time.Millisecond) // polling the port until it listens
	}
	kill()
	t.Fatalf("%q did not listen on %s in time\n%s", startCommand, port, out.String())
	return "", "", false
}

func unzip(t *testing.T, b []byte, dst string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	must(t, err)
	for _, f := range zr.File {
		p := filepath.Join(dst, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(p, dst+string(filepath.Separator)) {
			t.Fatalf("zip entry %q escapes", f.Name)
		}
		if f.FileInfo().IsDir() {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rc, err := f.Open()
		must(t, err)
		data, err := io.ReadAll(rc)
		rc.Close()
		must(t, err)
		must(t, os.WriteFile(p, data, f.Mode().Perm()))
	}
}

// writeFiles is writeTree in a test.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	must(t, writeTree(dir, files))
}

// writeTree writes files (path below dir: content) into dir, making dir
// and the dirs the paths name.
func writeTree(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
}
