package cell

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// imageCell is a real cell with a loopback registry holding webImage,
// that image's pinned reference and execution metadata, and the cell's
// image puller.
func imageCell(t *testing.T) (*runcCell, string, pando.ExecutionMetadata, *registryPuller) {
	t.Helper()
	host := registrytest.InProcess(t, nil)
	img, meta := webImage(t)
	digest := registrytest.Push(t, host+"/team/web:v1", img, "", "")
	reg, err := registry.New(registry.Options{Insecure: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := layers.Open(filepath.Join(t.TempDir(), "layers"), layers.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	puller := &registryPuller{reg: reg, cache: cache}
	c := newRuncCell(t, func(cfg *Config) {
		cfg.Images = puller
		cfg.LayerCacheBytes = func() int64 { n, _ := cache.Usage(); return n }
	})
	return c, host + "/team/web@" + digest.String(), meta, puller
}

// bindingsPage serves what the process finds of its service bindings:
// its uid, a credential and the type of the k8s layout, or the
// vcap_services file, the owner of the files as it sees them, and
// whether VCAP_SERVICES is set.
const bindingsPage = `mkdir -p /tmp/www
{ id -u
  if [ -n "$SERVICE_BINDING_ROOT" ]; then f=$SERVICE_BINDING_ROOT/db/uri; cat "$f"; echo; cat "$SERVICE_BINDING_ROOT/db/type"; echo
  else f=$VCAP_SERVICES_FILE_PATH; cat "$f"; echo; fi
  stat -c 'owner %u:%g' "$f"
  echo "VCAP_SERVICES=${VCAP_SERVICES-unset}"
} > /tmp/www/index.html 2>&1
exec busybox httpd -f -p "$PORT" -h /tmp/www
`

// Docker apps get their service bindings as files when they ask, as
// buildpack apps do: at /etc/cf-service-bindings, readable by the image's
// USER (a named user, and root of the container's user namespace, which
// is no host root: on the host the files belong to an unprivileged uid),
// with VCAP_SERVICES unset; a task of the app gets them too.
func TestDockerLRP_getsServiceBindingFilesItsUserCanRead(t *testing.T) {
	c, pinned, meta, _ := imageCell(t)
	ctx := context.Background()
	services := []pando.EnvVar{{Name: "VCAP_SERVICES", Value: testVCAPServices}}

	asWeb := pando.DesiredLRP{
		ProcessGUID: "bind-web", AppGUID: "app-bind", AppName: "web", MemoryMB: 64, DiskMB: 256,
		Image: pinned, Docker: &meta, Ports: meta.TCPPorts(), Env: services,
		BindingFiles: pando.AppFeatureServiceBindingK8s, StartCommand: bindingsPage,
	}
	rootMeta := meta
	rootMeta.User = ""
	asRoot := asWeb
	asRoot.ProcessGUID, asRoot.Docker, asRoot.BindingFiles = "bind-root", &rootMeta, pando.AppFeatureFileVCAPServices

	for _, tc := range []struct {
		lrp  pando.DesiredLRP
		guid string
		want string
	}{
		{asWeb, "bind-inst-web", "1000\npostgres://u:p@h/d\nuser-provided\nowner 1000:1000\nVCAP_SERVICES=unset\n"},
		{asRoot, "bind-inst-root", "0\n" + testVCAPServices + "\nowner 0:0\nVCAP_SERVICES=unset\n"},
	} {
		if err := c.rep.StartLRP(ctx, tc.lrp, 0, tc.guid); err != nil {
			t.Fatal(err)
		}
		a := c.rec.wait(t, 60*time.Second, "RUNNING "+tc.guid, isState(tc.guid, pando.ActualRunning)).actual
		if page := httpGet(t, "http://127.0.0.1:"+strconv.Itoa(a.Port)+"/index.html"); page != tc.want {
			t.Errorf("%s: the process found:\n%s\nwant:\n%s\nlogs:\n%s", tc.guid, page, tc.want, c.logs.dump())
		}
	}

	// The layers, shared by both instances, count once as used disk.
	s, err := c.rep.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.LayerCacheMB < 1 || s.UsedDiskMB != 2*asWeb.DiskMB+s.LayerCacheMB {
		t.Errorf("disk used %d MB with a layer cache of %d MB, want two instances' %d MB plus the cache", s.UsedDiskMB, s.LayerCacheMB, asWeb.DiskMB)
	}

	// The root image's files, seen from the host: not host root's.
	host := filepath.Join(c.workDir, dirInstances, safeName("bind-inst-root"), "bindings", vcapServicesFile)
	fi, err := os.Stat(host)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid == 0 || st.Gid == 0 {
		t.Errorf("the root image's binding file is %d:%d on the host, want an unprivileged owner", st.Uid, st.Gid)
	}

	// A task of the app, as the image's USER, gets them too.
	task := pando.Task{GUID: "bind-task", Kind: pando.TaskRun, Run: &pando.RunRequest{
		AppGUID: "app-bind", Name: "bindprobe", Image: pinned, Docker: &meta, MemoryMB: 64, DiskMB: 256, LogRateLimitBytes: -1,
		Env: services, BindingFiles: pando.AppFeatureServiceBindingK8s,
		Command: `echo "task $(id -u) $(cat $SERVICE_BINDING_ROOT/db/port) $(stat -c %u $SERVICE_BINDING_ROOT/db/port) VCAP_SERVICES=${VCAP_SERVICES-unset}"`,
	}}
	if err := c.rep.RunTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if done := c.rec.wait(t, 60*time.Second, "task completion", isTask("bind-task")).task; done.Failed {
		t.Fatalf("task failed: %s\nlogs:\n%s", done.FailureReason, c.logs.dump())
	}
	c.logs.wait(t, time.Second, "APP/TASK/bindprobe", "task 1000 5432 1000 VCAP_SERVICES=unset")
}
