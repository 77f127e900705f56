package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// imageServerSource answers with what its process sees.
const imageServerSource = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/idmap", func(w http.ResponseWriter, r *http.Request) {
		m, _ := os.ReadFile("/proc/self/uid_map")
		w.Write(m)
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		cwd, _ := os.Getwd()
		fmt.Fprintf(w, "args=%q uid=%d gid=%d cwd=%s greeting=%s image=%s port=%s\n", os.Args[1:],
			os.Getuid(), os.Getgid(), cwd, os.Getenv("GREETING"), os.Getenv("IMAGE_ONLY"), os.Getenv("PORT"))
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(":"+os.Getenv("PORT"), nil))
	os.Exit(1)
}
`

// dockerWebLayer is a layer with a static Go HTTP server at /app/server,
// a busybox /bin/sh (for -c) and /srv owned by 1000:1000.
func dockerWebLayer(t *testing.T) v1.Layer {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox is not installed (the image's /bin/sh)")
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/imageserver\n\ngo 1.22\n", "main.go": imageServerSource}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "server")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the image's server: %v\n%s", err, out)
	}
	server, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "app/server", Typeflag: tar.TypeReg, Mode: 0o755}, server},
		{tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, busybox},
		{tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"}, nil},
		{tar.Header{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000}, nil},
	} {
		hdr := h.hdr
		hdr.Size = int64(len(h.body))
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(h.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.DockerUncompressedLayer)
}

// dockerWebImage is the layer with ENTRYPOINT+CMD, user, WORKDIR /srv,
// ENV and EXPOSE 8000.
func dockerWebImage(t *testing.T, layer v1.Layer, user string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Entrypoint: []string{"/app/server"}, Cmd: []string{"serve", "--fast"}, User: user, WorkingDir: "/srv",
		Env:          []string{"PATH=/bin:/app", "GREETING=from-image", "IMAGE_ONLY=kept"},
		ExposedPorts: map[string]struct{}{"8000/tcp": {}},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// A docker image pushed from a loopback registry runs on the cell as its
// config says (ENTRYPOINT+CMD, USER 1000:1000, WORKDIR, ENV, EXPOSE 8000)
// and answers through the router; set-env wins over the image's ENV;
// a task runs in the image; scale runs more; -c runs the user's command
// instead. An image without
// USER runs as root of its user namespace only. A restart needs no registry.
func TestDockerPush_runsTheImageAsItsConfigSays(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	// The registry can go down: a restarted server must not need it.
	var down atomic.Bool
	host := registrytest.InProcess(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "registry down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	layer := dockerWebLayer(t)
	registrytest.Push(t, host+"/e2e/web:v1", dockerWebImage(t, layer, "1000:1000"), "", "")
	registrytest.Push(t, host+"/e2e/root:v1", dockerWebImage(t, layer, ""), "", "")
	s := ownServer(t, "--insecure-registry", host)
	const name = "dockerweb"
	route := name + ".localhost"
	ref := host + "/e2e/web:v1"

	r := s.mustPando(t, "push", name, "--docker-image", ref)
	requireOutput(t, r, `Using Docker image `+ref, `web: 1 of 1 instances running`)
	if body, want := s.curlRoute(t, route, "/"), `args=["serve" "--fast"] uid=1000 gid=1000 cwd=/srv greeting=from-image image=kept port=8000`+"\n"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}

	s.mustPando(t, "set-env", name, "GREETING", "from-app")
	s.mustPando(t, "restart", name)
	if body, want := s.curlRoute(t, route, "/"), `args=["serve" "--fast"] uid=1000 gid=1000 cwd=/srv greeting=from-app image=kept port=8000`+"\n"; body != want {
		t.Fatalf("after set-env and restart GET / = %q, want %q", body, want)
	}

	task := s.mustPando(t, "run-task", name, "--command", `echo "task $(id -u) $(pwd) $GREETING $IMAGE_ONLY"`, "--name", "probe", "--wait")
	requireOutput(t, task, `\[APP/TASK/probe/0\] OUT task 1000 /srv from-app kept`, `completed successfully`)

	s.mustPando(t, "scale", name, "-i", "3")
	requireOutput(t, s.mustPando(t, "app", name), `instances:\s+3/3`)

	r = s.mustPando(t, "push", name, "--docker-image", ref, "-c", "GREETING=from-c exec server")
	requireOutput(t, r, `web: 3 of 3 instances running`)
	_, body := s.waitRoute(t, route, "/", "the -c command's answer", func(status int, body string) bool {
		return status == 200 && strings.Contains(body, "greeting=from-c")
	})
	if want := `args=[] uid=1000 gid=1000 cwd=/srv greeting=from-c image=kept port=8000` + "\n"; body != want {
		t.Fatalf("with -c GET / = %q, want %q", body, want)
	}

	// An image without USER runs as root inside, which the user namespace
	// maps to an unprivileged host uid.
	s.mustPando(t, "push", "dockerroot", "--docker-image", host+"/e2e/root:v1")
	if body, want := s.curlRoute(t, "dockerroot.localhost", "/"), `args=["serve" "--fast"] uid=0 gid=0 cwd=/srv greeting=from-image image=kept port=8000`+"\n"; body != want {
		t.Fatalf("root image GET / = %q, want %q", body, want)
	}
	idmap := strings.Fields(s.curlRoute(t, "dockerroot.localhost", "/idmap"))
	if len(idmap) != 3 || idmap[0] != "0" || len(idmap[1]) < 6 {
		t.Fatalf("root image uid_map %q, want uid 0 mapped to an unprivileged host uid (a block above the host's users)", idmap)
	}

	// A server restart brings both apps back from the cached layers, with
	// the registry down.
	down.Store(true)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	if body := s.curlRoute(t, route, "/"); !strings.Contains(body, "greeting=from-c") {
		t.Fatalf("after a restart with the registry down GET / = %q", body)
	}
	if body := s.curlRoute(t, "dockerroot.localhost", "/"); !strings.Contains(body, "uid=0 ") {
		t.Fatalf("after a restart with the registry down the root image says %q", body)
	}
}

// A docker app that asks for service-binding-k8s reads its bindings as
// files, as a buildpack app does: an image running as root (of its user
// namespace) in its instances after a restart, and in a task at once.
func TestDockerPush_getsServiceBindingFiles(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/e2e/root:v1", dockerWebImage(t, dockerWebLayer(t), ""), "", "")
	s := ownServer(t, "--insecure-registry", host)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	const name = "dockerbind"
	seen := `mkdir -p /tmp/w; { echo "uid=$(id -u) env=${VCAP_SERVICES-unset}"; ` +
		`f=$SERVICE_BINDING_ROOT/db/uri; [ -n "$SERVICE_BINDING_ROOT" ] && echo "uri=$(cat $f) owner=$(stat -c %u:%a $f)"; } > /tmp/w/index.html; ` +
		`exec busybox httpd -f -p "$PORT" -h /tmp/w`
	s.mustPando(t, "push", name, "--docker-image", host+"/e2e/root:v1", "-c", seen)
	app := s.appGUID(t, name)
	space := s.must(t, admin, "GET", "/v3/apps/"+app, "", 200)["relationships"].(map[string]any)["space"].(map[string]any)["data"].(map[string]any)["guid"].(string)
	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db","credentials":{"uri":"postgres://u:s3cret@db/x"},"relationships":{"space":{"data":{"guid":"`+space+`"}}}}`, 201)["guid"].(string)
	s.must(t, admin, "POST", "/v3/service_credential_bindings", `{"type":"app","name":"db","relationships":{"app":{"data":{"guid":"`+app+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)
	s.must(t, admin, "PATCH", "/v3/apps/"+app+"/features/service-binding-k8s", `{"enabled":true}`, 200)

	task := s.mustPando(t, "run-task", name, "--command", `echo "task $(id -u) $(cat $SERVICE_BINDING_ROOT/db/uri) ${VCAP_SERVICES-unset}"`, "--name", "probe", "--wait")
	requireOutput(t, task, `\[APP/TASK/probe/0\] OUT task 0 postgres://u:s3cret@db/x unset`, `completed successfully`)

	s.mustPando(t, "restart", name)
	if body, want := s.curlRoute(t, name+".localhost", "/"), "uid=0 env=unset\nuri=postgres://u:s3cret@db/x owner=0:600\n"; body != want {
		t.Fatalf("the instance saw %q, want %q", body, want)
	}
}
