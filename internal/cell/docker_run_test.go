package cell

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
	"github.com/pandoplatform/pando/internal/testenv"
)

// registryPuller is the server's image puller in short: resolve, then
// the layer cache.
type registryPuller struct {
	reg      *registry.Client
	cache    *layers.Cache
	inUse    atomic.Int64
	resolved atomic.Int64
}

func (p *registryPuller) Pull(ctx context.Context, image string, creds *pando.ImageCredentials, _ int64) ([]string, func(), error) {
	var rc *registry.Credentials
	if creds != nil {
		rc = &registry.Credentials{Username: creds.Username, Password: creds.Password}
	}
	img, err := p.reg.Resolve(ctx, image, rc)
	if err != nil {
		return nil, func() {}, err
	}
	p.resolved.Add(1)
	src, err := p.reg.Blobs(img.Pinned, rc)
	if err != nil {
		return nil, func() {}, err
	}
	var ls []layers.Layer
	for _, l := range img.Layers {
		ls = append(ls, layers.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
	}
	dirs, release, err := p.cache.Pull(ctx, src, ls, layers.Shift{})
	if err != nil {
		return nil, release, err
	}
	p.inUse.Add(1)
	var once atomic.Bool
	return dirs, func() {
		if once.CompareAndSwap(false, true) {
			p.inUse.Add(-1)
			release()
		}
	}, nil
}

type tarEntry struct {
	name, body, link string
	mode             int64
	uid, gid         int
	dir              bool
}

func layerOf(t *testing.T, entries []tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.DockerUncompressedLayer)
}

// startScript writes what the process sees into a page and serves it.
const startScript = `mkdir -p /tmp/www
{ id -u; id -g; pwd; echo "$GREETING $IMAGE_VAR $PORT"; test -e /etc/motd && echo motd || echo no motd; } > /tmp/www/index.html
exec busybox httpd -f -p "$1" -h /tmp/www
`

// webImage is a two-layer image: busybox, its own passwd and a motd; then
// the start script and a whiteout deleting the motd.
func webImage(t *testing.T) (v1.Image, pando.ExecutionMetadata) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox is not installed")
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	base := layerOf(t, []tarEntry{
		{name: "bin/", dir: true, mode: 0o755},
		{name: "bin/busybox", body: string(data), mode: 0o755},
		{name: "bin/sh", link: "busybox"},
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/srv:/bin/sh\n", mode: 0o644},
		{name: "etc/group", body: "root:x:0:\nweb:x:1000:\n", mode: 0o644},
		{name: "etc/motd", body: "hi\n", mode: 0o644},
		{name: "srv/", dir: true, mode: 0o755, uid: 1000, gid: 1000},
	})
	top := layerOf(t, []tarEntry{
		{name: "start.sh", body: startScript, mode: 0o755},
		{name: "etc/.wh.motd", mode: 0o644},
	})
	meta := pando.ExecutionMetadata{
		Entrypoint: []string{"/bin/sh", "/start.sh"}, Cmd: []string{"8000"}, User: "web", Workdir: "/srv",
		Env: []string{"PATH=/bin", "GREETING=from-image", "IMAGE_VAR=kept"}, Ports: []pando.Port{{Port: 8000, Protocol: "tcp"}},
	}
	cfg := v1.Config{Entrypoint: meta.Entrypoint, Cmd: meta.Cmd, User: meta.User, WorkingDir: meta.Workdir, Env: meta.Env,
		ExposedPorts: map[string]struct{}{"8000/tcp": {}}}
	return registrytest.ImageOf(t, cfg, base, top), meta
}

// A docker LRP runs on a real cell: layers pulled from a loopback
// registry into the layer cache, ENTRYPOINT+CMD as the image's user in its
// WORKDIR with its ENV under the app's, whiteouts applied, on the exposed
// port; a user command runs under sh -c, as root when the image has no
// USER; the layers are released with the instances. A task runs in the
// image too.
func TestDockerLRP_runsTheImageAsItsConfigSays(t *testing.T) {
	c, pinned, meta, puller := imageCell(t)
	ctx := context.Background()

	lrp := pando.DesiredLRP{
		ProcessGUID: "docker-1", AppGUID: "app-docker", AppName: "web", MemoryMB: 64, DiskMB: 256,
		Image: pinned, Docker: &meta, Ports: meta.TCPPorts(),
		Env: []pando.EnvVar{{Name: "GREETING", Value: "from-app"}},
	}
	get := func(guid string) (pando.ActualLRP, string) {
		t.Helper()
		a := c.rec.wait(t, 60*time.Second, "RUNNING "+guid, isState(guid, pando.ActualRunning)).actual
		return a, httpGet(t, "http://127.0.0.1:"+strconv.Itoa(a.Port)+"/index.html")
	}
	if err := c.rep.StartLRP(ctx, lrp, 0, "docker-inst-1"); err != nil {
		t.Fatal(err)
	}
	running, page := get("docker-inst-1")
	if want := "1000\n1000\n/srv\nfrom-app kept 8000\nno motd\n"; page != want {
		t.Errorf("the image's process said:\n%s\nwant:\n%s\nlogs:\n%s", page, want, c.logs.dump())
	}
	if len(running.Ports) != 1 || running.Ports[0].ContainerPort != 8000 {
		t.Errorf("ports %+v, want the exposed 8000", running.Ports)
	}

	// The user's command, and no USER: root (of the container's user
	// namespace), still in WORKDIR.
	asRoot := lrp
	asRoot.ProcessGUID = "docker-2"
	m := meta
	m.User = ""
	asRoot.Docker = &m
	asRoot.StartCommand = `GREETING=from-c exec /bin/sh /start.sh "$PORT"`
	if err := c.rep.StartLRP(ctx, asRoot, 0, "docker-inst-2"); err != nil {
		t.Fatal(err)
	}
	if _, page := get("docker-inst-2"); page != "0\n0\n/srv\nfrom-c kept 8000\nno motd\n" {
		t.Errorf("with -c as root the process said:\n%s", page)
	}
	if n := puller.inUse.Load(); n != 2 {
		t.Errorf("%d images in use, want 2", n)
	}
	for _, guid := range []string{"docker-inst-1", "docker-inst-2"} {
		if err := c.rep.StopLRP(ctx, "", guid); err != nil {
			t.Fatal(err)
		}
		c.rec.wait(t, 30*time.Second, "removed "+guid, isRemoved(guid))
	}
	eventually(t, 10*time.Second, "layers released", func() bool { return puller.inUse.Load() == 0 })
	// Each instance's host ids and user namespace were made while its
	// layers were pulled, and handed back at its teardown.
	for _, guid := range []string{"docker-inst-1", "docker-inst-2"} {
		if p, r := c.backend.preparedAndReleased(containerID("app", guid)); p != 1 || r != 1 {
			t.Errorf("instance %s: prepared %d times, released %d, want 1 and 1", guid, p, r)
		}
	}

	// A task of the app runs its command under sh -c in the same image.
	task := pando.Task{GUID: "docker-task", Kind: pando.TaskRun, Run: &pando.RunRequest{
		AppGUID: "app-docker", Name: "probe", Image: pinned, Docker: &meta, MemoryMB: 64, DiskMB: 256, LogRateLimitBytes: -1,
		Command: `echo "task $(id -u) $(pwd) $GREETING $IMAGE_VAR"`, Env: []pando.EnvVar{{Name: "GREETING", Value: "from-task"}},
	}}
	if err := c.rep.RunTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if done := c.rec.wait(t, 60*time.Second, "task completion", isTask("docker-task")).task; done.Failed {
		t.Fatalf("docker task failed: %s\nlogs:\n%s", done.FailureReason, c.logs.dump())
	}
	c.logs.wait(t, time.Second, "APP/TASK/probe", "task 1000 /srv from-task kept")
	eventually(t, 10*time.Second, "task layers released", func() bool { return puller.inUse.Load() == 0 })
}

// An image whose USER is not in its /etc/passwd crashes clearly.
func TestDockerLRP_unknownUserCrashesWithAClearReason(t *testing.T) {
	c, pinned, meta, puller := imageCell(t)
	meta.User = "ghost"
	lrp := pando.DesiredLRP{ProcessGUID: "docker-3", AppGUID: "app-docker", MemoryMB: 64, DiskMB: 256,
		Image: pinned, Docker: &meta, Ports: meta.TCPPorts()}
	if err := c.rep.StartLRP(context.Background(), lrp, 0, "docker-inst-3"); err != nil {
		t.Fatal(err)
	}
	crashed := c.rec.wait(t, 30*time.Second, "CRASHED", isState("docker-inst-3", pando.ActualCrashed)).actual
	if want := `user "ghost" is not in the image's /etc/passwd`; crashed.Crash == nil || crashed.Crash.Kind != pando.FailureStartFailed || !strings.Contains(crashed.Crash.Detail, want) {
		t.Errorf("crash %+v, want a start failure that says %q", crashed.Crash, want)
	}
	eventually(t, 10*time.Second, "layers released", func() bool { return puller.inUse.Load() == 0 })
	// No container ran: what was prepared for it is given back.
	eventually(t, 10*time.Second, "prepared ids released", func() bool {
		p, r := c.backend.preparedAndReleased(containerID("app", "docker-inst-3"))
		return p == 1 && r == 1
	})
}
