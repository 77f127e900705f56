package cell

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/archive"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/testenv"
)

// fakeLifecycle stands in for the pando binary's lifecycles (tested in
// their own packages): just enough of `builder` and `launcher` to run
// v2 buildpacks with bin/compile and start a command.
const fakeLifecycle = `#!/bin/bash
set -u
cmd=$1; shift
case "$cmd" in
launcher)
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
	shift
	cd /home/vcap/app || exit 1
	export HOME=/home/vcap/app
	exec bash -c "$*"
	;;
builder)
	order=""; skip=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--build-dir) build=$2; shift 2;;
		--buildpacks-dir) bps=$2; shift 2;;
		--buildpack-order) order=$2; shift 2;;
		--skip-detect) skip=1; shift;;
		--cache-dir) cache=$2; shift 2;;
		--deps-dir) deps=$2; shift 2;;
		--output-droplet) droplet=$2; shift 2;;
		--output-metadata) meta=$2; shift 2;;
		*) echo "unknown flag $1" >&2; exit 1;;
		esac
	done
	echo "-----> Running detect (stack $CF_STACK, memory $MEMORY_LIMIT)"
	chosen=""
	IFS=, read -ra names <<< "$order"
	for n in "${names[@]}"; do
		if [ $skip = 1 ] || "$bps/$n/bin/detect" "$build"; then chosen=$n; break; fi
	done
	[ -n "$chosen" ] || { echo "None of the buildpacks detected a compatible application" >&2; exit 222; }
	"$bps/$chosen/bin/compile" "$build" "$cache" || exit 223
	release=$("$bps/$chosen/bin/release" "$build") || exit 224
	web=$(printf '%s\n' "$release" | sed -n 's/^ *web: *//p' | head -1)
	mkdir -p /tmp/staged/deps /tmp/staged/tmp /tmp/staged/logs /tmp/staged/profile.d
	cp -a "$build" /tmp/staged/app
	printf '{"detected_buildpack":"%s","start_command":"%s"}\n' "$chosen" "$web" > /tmp/staged/staging_info.yml
	tar -czf "$droplet" -C /tmp/staged . || exit 1
	printf '{"detected_buildpack":"%s","buildpack_name":"%s","start_command":"%s","process_types":{"web":"%s"}}\n' \
		"$chosen" "$chosen" "$web" "$web" > "$meta"
	;;
*)
	echo "unknown lifecycle $cmd" >&2; exit 1;;
esac
`

type runcCell struct {
	rep     *Rep
	blobs   *memBlobs
	rec     *recorder
	logs    *sink
	backend *trackingBackend
	workDir string
}

func newRuncCell(t *testing.T, mod func(*Config)) *runcCell {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "runc containers need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		testenv.Missing(t, "runc is not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "lifecycle")
	if err := os.WriteFile(script, []byte(fakeLifecycle), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := runc.New(runc.Config{
		StateDir:        filepath.Join(dir, "state"),
		LifecycleBinary: script,
		ShimBinary:      self, // TestMain runs the shim
		// One parent for all of this package's tests: each test's Cleanup
		// empties it, and no per-test-dir cgroup is left behind.
		CgroupParent: "/pando/cell-tests",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &runcCell{
		blobs:   newMemBlobs(),
		rec:     newRecorder(),
		logs:    newSink(),
		backend: newTrackingBackend(b),
		workDir: filepath.Join(dir, "work"),
	}
	cfg := Config{
		ID:            "cell-test",
		Backend:       c.backend,
		Blobs:         c.blobs,
		Reporter:      c.rec,
		Logs:          c.logs,
		WorkDir:       c.workDir,
		TotalMemoryMB: 8192,
		TotalDiskMB:   16384,
		StopGrace:     2 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	if c.rep, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.rep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if ids := c.backend.liveIDs(); len(ids) > 0 {
			t.Errorf("containers left after shutdown: %v", ids)
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Errorf("backend cleanup: %v", err)
		}
	})
	return c
}

// zipOf builds a zip; names ending in "*" are executable.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dropletOf builds a droplet tgz whose ./app holds files.
func dropletOf(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	src := t.TempDir()
	for name, body := range files {
		p := filepath.Join(src, "app", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := archive.WriteTgz(context.Background(), &buf, src, "."); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}

func (c *runcCell) put(t *testing.T, key string, b []byte) {
	t.Helper()
	if _, err := c.blobs.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func buildpackZip(t *testing.T, compile string) []byte {
	return zipOf(t, map[string]string{
		"bin/detect*":  "#!/bin/bash\n[ -f \"$1/index.html\" ]\n",
		"bin/compile*": "#!/bin/bash\n" + compile + "\n",
		"bin/release*": "#!/bin/bash\nprintf -- '---\\ndefault_process_types:\\n  web: exec busybox httpd -f -p $PORT -h /home/vcap/app\\n'\n",
	})
}

func stagingTask(guid, appGUID string, timeout time.Duration) pando.Task {
	return pando.Task{
		GUID: guid,
		Kind: pando.TaskStaging,
		Staging: &pando.StagingRequest{
			AppGUID:       appGUID,
			DropletGUID:   "droplet-" + guid,
			PackageKey:    "packages/" + appGUID,
			Buildpacks:    []pando.BuildpackRef{{Name: "test_buildpack", Key: "buildpacks/test"}},
			MemoryMB:      256,
			Timeout:       timeout,
			BuildCacheKey: "buildcache/" + appGUID,
		},
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestStagingAndRunning_stagesAPackageThenServesItThroughTheHostPort is
// the cell's whole path: stage with a buildpack, upload droplet and
// cache, run the droplet, become healthy, serve through the forwarder,
// stop.
func TestStagingAndRunning_stagesAPackageThenServesItThroughTheHostPort(t *testing.T) {
	c := newRuncCell(t, nil)
	ctx := context.Background()
	// The buildpack writes its cache marker once, and again when the app
	// has a file named bump.
	c.put(t, "buildpacks/test", buildpackZip(t, `echo "compiling $(ls $1)"; echo "cache: $(cat "$2/marker" 2>/dev/null || echo empty)"; [ -f "$2/marker" ] || echo warm > "$2/marker"; [ ! -f "$1/bump" ] || echo bumped > "$2/marker"; echo built > "$1/compiled.txt"`))
	c.put(t, "packages/app-1", zipOf(t, map[string]string{"index.html": "hello pando\n"}))

	task := stagingTask("task-1", "app-1", time.Minute)
	if err := c.rep.RunTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 60*time.Second, "staging result", isTask("task-1")).task
	if done.Failed {
		t.Fatalf("staging failed: %+v\nlogs:\n%s", done.Failure, c.logs.dump())
	}
	res := done.Result
	if done.State != pando.TaskCompleted || done.CellID != "cell-test" || res == nil {
		t.Fatalf("task %+v", done)
	}
	if !strings.Contains(res.StartCommand, "busybox httpd") || res.BuildpackName != "test_buildpack" {
		t.Errorf("result %+v", res)
	}
	droplet, ok := c.blobs.get(pando.DropletBlobKey("droplet-task-1"))
	if !ok {
		t.Fatal("no droplet uploaded")
	}
	sum := sha256.Sum256(droplet)
	if res.DropletSHA256 != hex.EncodeToString(sum[:]) || res.DropletSize != int64(len(droplet)) || len(res.DropletSHA1) != 40 {
		t.Errorf("droplet checksums %s/%s size %d; blob has %x size %d", res.DropletSHA1, res.DropletSHA256, res.DropletSize, sum, len(droplet))
	}
	cache, ok := c.blobs.get("buildcache/app-1")
	if !ok || !tgzHas(t, cache, "./marker") {
		t.Errorf("build cache not saved with the marker")
	}
	line := c.logs.wait(t, time.Second, pando.LogSourceStaging, "compiling index.html")
	if line.SourceID != "app-1" || line.InstanceID != "0" || line.Type != "OUT" {
		t.Errorf("staging line %+v", line)
	}
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "stack host, memory 256m")
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("staging container left: %v", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.workDir, dirStaging)); len(ents) > 0 {
		t.Errorf("staging dirs left: %d", len(ents))
	}
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "cache: empty")

	// The next staging of the app starts from the saved build cache.
	if err := c.rep.RunTask(ctx, stagingTask("task-2", "app-1", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if again := c.rec.wait(t, 60*time.Second, "staging result", isTask("task-2")).task; again.Failed {
		t.Fatalf("second staging failed: %+v", again.Failure)
	}
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "Downloaded build artifacts cache")
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "cache: warm")
	// It did not write to the cache: the stored one is kept as it is.
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "Build artifacts cache unchanged; keeping the stored one")

	// A staging that writes to the restored cache stores it again.
	c.put(t, "packages/app-1", zipOf(t, map[string]string{"index.html": "hello pando\n", "bump": ""}))
	if err := c.rep.RunTask(ctx, stagingTask("task-3", "app-1", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if bumped := c.rec.wait(t, 60*time.Second, "staging result", isTask("task-3")).task; bumped.Failed {
		t.Fatalf("third staging failed: %+v", bumped.Failure)
	}
	if cache, _ := c.blobs.get("buildcache/app-1"); !tgzContains(t, cache, "./marker", "bumped\n") {
		t.Errorf("the build cache the third staging changed was not stored")
	}

	lrp := pando.DesiredLRP{
		ProcessGUID: "proc-1", AppGUID: "app-1", AppName: "app", MemoryMB: 64, DiskMB: 256,
		DropletKey: pando.DropletBlobKey("droplet-task-1"), DropletSHA256: res.DropletSHA256,
		StartCommand: res.StartCommand,
	}
	start := time.Now()
	if err := c.rep.StartLRP(ctx, lrp, 0, "inst-1"); err != nil {
		t.Fatal(err)
	}
	running := c.rec.wait(t, 30*time.Second, "RUNNING", isState("inst-1", pando.ActualRunning)).actual
	t.Logf("RUNNING %s after StartLRP", time.Since(start))
	if states := c.rec.states("inst-1"); states[0] != pando.ActualClaimed {
		t.Errorf("first state %s, want CLAIMED", states[0])
	}
	if running.Address != "127.0.0.1" || running.Port < 61000 || running.CellID != "cell-test" || running.StartedAt.IsZero() ||
		len(running.Ports) != 1 || running.Ports[0] != (pando.PortMapping{ContainerPort: 8080, HostPort: running.Port}) {
		t.Errorf("running instance %+v", running)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(running.Port)
	if got := httpGet(t, base+"/index.html"); got != "hello pando\n" {
		t.Errorf("index.html: %q", got)
	}
	if got := httpGet(t, base+"/compiled.txt"); got != "built\n" {
		t.Errorf("compiled.txt: %q", got)
	}
	for _, msg := range []string{"Cell cell-test creating container for instance inst-1", "successfully created container for instance inst-1", "Container became healthy"} {
		c.logs.wait(t, time.Second, pando.LogSourceCell, msg)
	}

	st, err := c.rep.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.UsedContainers != 1 || st.UsedMemoryMB != 64 || st.UsedDiskMB != 256 || st.InstancesPerProcess["proc-1"] != 1 || st.StartingContainers != 0 {
		t.Errorf("state %+v", st)
	}
	stats, err := c.rep.Stats(ctx, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	if stats.MemoryQuota != 64<<20 || stats.DiskQuota != 256<<20 || stats.MemoryBytes == 0 || stats.DiskBytes == 0 {
		t.Errorf("stats %+v", stats)
	}

	if err := c.rep.StopLRP(ctx, "proc-1", "inst-1"); err != nil {
		t.Fatal(err)
	}
	c.rec.wait(t, 15*time.Second, "removal", isRemoved("inst-1"))
	c.logs.wait(t, time.Second, pando.LogSourceCell, "Cell cell-test stopping instance inst-1")
	c.logs.wait(t, time.Second, pando.LogSourceCell, "destroying container for instance inst-1")
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
	if st, _ := c.rep.State(ctx); st.UsedContainers != 0 || st.UsedMemoryMB != 0 {
		t.Errorf("state after stop %+v", st)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(running.Port)))
	if err != nil {
		t.Errorf("host port %d not released: %v", running.Port, err)
	} else {
		ln.Close()
	}
	if err := c.rep.StopLRP(ctx, "proc-1", "inst-1"); !pando.IsNotFound(err) {
		t.Errorf("second stop: %v", err)
	}
}

func tgzHas(t *testing.T, b []byte, name string) bool {
	_, ok := tgzFile(t, b, name)
	return ok
}

// tgzContains reports whether the tgz b has a file name holding content.
func tgzContains(t *testing.T, b []byte, name, content string) bool {
	got, ok := tgzFile(t, b, name)
	return ok && got == content
}

// tgzFile returns the content of the file name in the tgz b, and whether
// b has it.
func tgzFile(t *testing.T, b []byte, name string) (string, bool) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", false
		}
		if h.Name == name {
			got, err := io.ReadAll(tr)
			return string(got), err == nil
		}
	}
}

func TestStaging_failuresReportKindsAndExitCodes(t *testing.T) {
	c := newRuncCell(t, nil)
	ctx := context.Background()
	cases := []struct {
		name    string
		compile string
		pkg     map[string]string
		want    pando.Failure
		logLine string
	}{
		{"compile fails", "echo boom >&2; exit 1", map[string]string{"index.html": "x"},
			pando.Failure{Kind: pando.FailureCompileFailed, ExitCode: 223}, "boom"},
		{"nothing detected", "true", map[string]string{"main.go": "x"},
			pando.Failure{Kind: pando.FailureNoAppDetected, ExitCode: 222}, "None of the buildpacks"},
	}
	for k, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := fmt.Sprintf("app-f%d", k)
			guid := fmt.Sprintf("task-f%d", k)
			c.put(t, "packages/"+app, zipOf(t, tc.pkg))
			// A key per case: buildpack zips are cached per key and sha.
			key := "buildpacks/" + guid
			c.put(t, key, buildpackZip(t, tc.compile))
			task := stagingTask(guid, app, time.Minute)
			task.Staging.Buildpacks[0].Key = key
			if err := c.rep.RunTask(ctx, task); err != nil {
				t.Fatal(err)
			}
			done := c.rec.wait(t, 60*time.Second, "staging result", isTask(guid)).task
			wantTaskFailure(t, done, tc.want)
			if line := c.logs.wait(t, time.Second, pando.LogSourceStaging, tc.logLine); line.Type != "ERR" {
				t.Errorf("%q logged as %s", tc.logLine, line.Type)
			}
			c.logs.noCFWords(t, pando.LogSourceStaging)
			if _, ok := c.blobs.get(pando.DropletBlobKey("droplet-" + guid)); ok {
				t.Error("droplet uploaded for a failed staging")
			}
			if ids := c.backend.liveIDs(); len(ids) > 0 {
				t.Errorf("containers left: %v", ids)
			}
		})
	}
}

func TestStaging_timesOutAndCleansUp(t *testing.T) {
	c := newRuncCell(t, nil)
	ctx := context.Background()
	c.put(t, "buildpacks/test", buildpackZip(t, "echo compiling slowly; sleep 30"))
	c.put(t, "packages/app-slow", zipOf(t, map[string]string{"index.html": "x"}))
	start := time.Now()
	if err := c.rep.RunTask(ctx, stagingTask("task-slow", "app-slow", 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 20*time.Second, "staging result", isTask("task-slow")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: 2 * time.Second})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
	if st, _ := c.rep.State(ctx); st.UsedContainers != 0 || st.UsedMemoryMB != 0 {
		t.Errorf("state %+v", st)
	}
}

func TestStaging_cancel(t *testing.T) {
	c := newRuncCell(t, nil)
	ctx := context.Background()
	c.put(t, "buildpacks/test", buildpackZip(t, "echo waiting; sleep 30"))
	c.put(t, "packages/app-c", zipOf(t, map[string]string{"index.html": "x"}))
	if err := c.rep.RunTask(ctx, stagingTask("task-c", "app-c", time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.logs.wait(t, 30*time.Second, pando.LogSourceStaging, "waiting")
	if err := c.rep.CancelTask(ctx, "task-c"); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 15*time.Second, "staging result", isTask("task-c")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureCancelled})
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
}

func (c *runcCell) startApp(t *testing.T, guid string, lrp pando.DesiredLRP) {
	t.Helper()
	b, sum := dropletOf(t, map[string]string{"index.html": "hi\n"})
	key := pando.DropletBlobKey("d-" + guid)
	c.put(t, key, b)
	lrp.DropletKey, lrp.DropletSHA256 = key, sum
	if lrp.ProcessGUID == "" {
		lrp.ProcessGUID = "proc-" + guid
	}
	if lrp.AppGUID == "" {
		lrp.AppGUID = "app-" + guid
	}
	if lrp.MemoryMB == 0 {
		lrp.MemoryMB = 64
	}
	if lrp.LogRateLimitBytes == 0 { // 0 would mean no logs at all, as in CF
		lrp.LogRateLimitBytes = -1
	}
	if err := c.rep.StartLRP(context.Background(), lrp, 0, guid); err != nil {
		t.Fatal(err)
	}
}

func TestLRP_exitedAppIsReportedCrashed(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-exit", pando.DesiredLRP{
		StartCommand: "echo started; echo oops >&2; exit 3",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckProcess},
	})
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-exit", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureExited, ExitCode: 3})
	out := c.logs.wait(t, time.Second, pando.LogSourceApp, "started")
	if out.Type != "OUT" || out.InstanceID != "0" || out.SourceID != "app-inst-exit" {
		t.Errorf("app line %+v", out)
	}
	if e := c.logs.wait(t, time.Second, pando.LogSourceApp, "oops"); e.Type != "ERR" {
		t.Errorf("stderr line typed %s", e.Type)
	}
	eventually(t, 5*time.Second, "container destroyed", func() bool { return len(c.backend.liveIDs()) == 0 })
	if st, _ := c.rep.State(context.Background()); st.UsedContainers != 0 {
		t.Errorf("state %+v", st)
	}
}

func TestLRP_neverHealthyCrashesAfterStartTimeout(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-deaf", pando.DesiredLRP{
		StartCommand: "exec sleep 60",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckPort, StartTimeout: time.Second},
	})
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-deaf", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: time.Second,
		Detail: "Failed to make TCP connection to port 8080: connection refused"})
	eventually(t, 5*time.Second, "container destroyed", func() bool { return len(c.backend.liveIDs()) == 0 })
}

func TestLRP_httpHealthCheckAndShutdown(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-http", pando.DesiredLRP{
		StartCommand: "exec busybox httpd -f -p $PORT -h /home/vcap/app",
		Ports:        []int{9000},
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckHTTP, Endpoint: "/index.html"},
		Env:          []pando.EnvVar{{Name: "GREETING", Value: "hi"}},
	})
	running := c.rec.wait(t, 20*time.Second, "RUNNING", isState("inst-http", pando.ActualRunning)).actual
	if running.Ports[0].ContainerPort != 9000 {
		t.Errorf("ports %+v", running.Ports)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", running.Port)); got != "hi\n" {
		t.Errorf("got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.rep.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.rec.wait(t, time.Second, "removal", isRemoved("inst-http"))
	if err := c.rep.StartLRP(context.Background(), pando.DesiredLRP{ProcessGUID: "p", DropletKey: "k"}, 0, "late"); pando.ErrorKindOf(err) != pando.EUnavailable {
		t.Errorf("start after shutdown: %v", err)
	}
}

func TestLRP_rejectsWhatDoesNotFit(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.TotalMemoryMB = 100 })
	err := c.rep.StartLRP(context.Background(), pando.DesiredLRP{ProcessGUID: "p", DropletKey: "k", MemoryMB: 200}, 0, "big")
	if pando.ErrorKindOf(err) != pando.EInsufficient || !strings.Contains(err.Error(), "memory") {
		t.Errorf("got %v", err)
	}
	err = c.rep.StartLRP(context.Background(), pando.DesiredLRP{ProcessGUID: "p", DropletKey: "k", Stack: "cflinuxfs4"}, 0, "x")
	if pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("unknown stack: %v", err)
	}
}

func TestLRP_failedLivenessCheckCrashes(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.LivenessInterval = 100 * time.Millisecond })
	// The server goes away after a second; the process stays.
	c.startApp(t, "inst-sick", pando.DesiredLRP{
		StartCommand: "timeout 1 busybox httpd -f -p $PORT -h /home/vcap/app; exec sleep 60",
	})
	c.rec.wait(t, 20*time.Second, "RUNNING", isState("inst-sick", pando.ActualRunning))
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-sick", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureUnhealthy, Detail: "Failed to make TCP connection to port 8080: connection refused"})
	c.logs.wait(t, time.Second, pando.LogSourceCell, "Container became unhealthy")
	eventually(t, 5*time.Second, "container destroyed", func() bool { return len(c.backend.liveIDs()) == 0 })
}

func TestLRP_outOfMemoryIsTheCrashReason(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-oom", pando.DesiredLRP{
		MemoryMB:     32,
		StartCommand: "dd if=/dev/zero of=/dev/null bs=200M count=1",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckProcess},
	})
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-oom", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureOOM, ExitCode: 137})
}

func TestLRP_deletedOpenFileStopsAtDiskQuotaAndStatsCountIt(t *testing.T) {
	c := newRuncCell(t, nil)
	// A file no directory lists, filled as fast as dd can, kept open.
	c.startApp(t, "inst-disk", pando.DesiredLRP{
		DiskMB:       16,
		StartCommand: "exec 3>/tmp/hidden; rm /tmp/hidden; dd if=/dev/zero bs=1M count=200 >&3; exec sleep 60",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckProcess},
	})
	c.rec.wait(t, 10*time.Second, "RUNNING", isState("inst-disk", pando.ActualRunning))
	c.logs.wait(t, 10*time.Second, "APP/PROC/WEB", "No space left on device")
	st, err := c.rep.Stats(context.Background(), "inst-disk")
	if err != nil {
		t.Fatal(err)
	}
	if st.DiskQuota != 16<<20 || st.DiskBytes < 15<<20 || st.DiskBytes > 16<<20 {
		t.Errorf("disk %d of quota %d; want about 16 MiB of 16 MiB", st.DiskBytes, st.DiskQuota)
	}
	if err := c.rep.StopLRP(context.Background(), "", "inst-disk"); err != nil {
		t.Fatal(err)
	}
	c.rec.wait(t, 20*time.Second, "removed", isRemoved("inst-disk"))
	c.noVolumeLeft(t)
}

func TestLRP_exitWithAFullDiskSaysSo(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-full", pando.DesiredLRP{
		DiskMB:       16,
		StartCommand: "dd if=/dev/zero of=/home/vcap/app/big bs=1M count=200; exit 3",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckProcess},
	})
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-full", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureDiskFull, ExitCode: 3, LimitMB: 16})
	c.logs.wait(t, time.Second, "APP/PROC/WEB", "No space left on device")
	eventually(t, 5*time.Second, "container destroyed", func() bool { return len(c.backend.liveIDs()) == 0 })
	c.noVolumeLeft(t)
}

func TestStaging_pastItsDiskQuotaFailsAndStoresNoDroplet(t *testing.T) {
	c := newRuncCell(t, nil)
	c.put(t, "buildpacks/test", buildpackZip(t, `dd if=/dev/zero of="$1/big" bs=1M count=300`))
	c.put(t, "packages/app-big", zipOf(t, map[string]string{"index.html": "x"}))
	task := stagingTask("task-big", "app-big", time.Minute)
	task.Staging.DiskMB = 32
	if err := c.rep.RunTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 60*time.Second, "staging result", isTask("task-big")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureDiskFull, LimitMB: 32})
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "No space left on device")
	c.logs.noCFWords(t, pando.LogSourceStaging)
	for _, key := range []string{pando.DropletBlobKey("droplet-task-big"), "buildcache/app-big"} {
		if _, ok := c.blobs.get(key); ok {
			t.Errorf("%s stored for a staging past its quota", key)
		}
	}
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
	c.noVolumeLeft(t)
}

// noVolumeLeft checks that no volume of the cell is mounted.
func (c *runcCell) noVolumeLeft(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], c.workDir+"/") {
			t.Errorf("still mounted: %s", f[4])
		}
	}
}

func TestStaging_hostStackCanPoseAsACFStackForBuildpacks(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.CFStackNames = map[string]string{"host": "cflinuxfs4"} })
	c.put(t, "buildpacks/test", buildpackZip(t, "true"))
	c.put(t, "packages/app-alias", zipOf(t, map[string]string{"index.html": "x"}))
	task := stagingTask("task-alias", "app-alias", time.Minute)
	task.Staging.Stack = "host"
	if err := c.rep.RunTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 60*time.Second, "staging result", isTask("task-alias")).task
	if done.Failed {
		t.Fatalf("staging failed: %+v", done.Failure)
	}
	c.logs.wait(t, time.Second, pando.LogSourceStaging, "stack cflinuxfs4, memory 256m")
}

// TestLRP_cellOutOfFdsIsNotTheAppsFault: when the cell cannot open a
// connection for a liveness check (EMFILE), the healthy instance keeps
// running; checks resume when fds are back.
func TestLRP_cellOutOfFdsIsNotTheAppsFault(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.LivenessInterval = 20 * time.Millisecond })
	c.startApp(t, "inst-emfile", pando.DesiredLRP{
		StartCommand: "exec busybox httpd -f -p $PORT -h /home/vcap/app",
	})
	c.rec.wait(t, 20*time.Second, "RUNNING", isState("inst-emfile", pando.ActualRunning))
	emfile := error(fmt.Errorf("dial container: socket: %w", syscall.EMFILE))
	c.backend.dialErr.Store(&emfile)
	eventually(t, 10*time.Second, "ten liveness checks while out of fds", func() bool { return c.backend.failedDials.Load() >= 10 })
	c.backend.dialErr.Store(nil)
	if got := c.rec.states("inst-emfile"); slices.Contains(got, pando.ActualCrashed) {
		t.Fatalf("instance crashed while the cell was out of fds: %v", got)
	}
	if ids := c.backend.liveIDs(); len(ids) != 1 {
		t.Fatalf("live containers %v, want the instance's", ids)
	}
}

// An app that listens, but not on $PORT (busybox binds [::]), is told so in a CELL line while
// its start check fails, and the crash reason names what it listens on.
func TestLRP_appOnTheWrongPortIsToldWhatItListensOn(t *testing.T) {
	c := newRuncCell(t, nil)
	c.startApp(t, "inst-wrongport", pando.DesiredLRP{
		StartCommand: "busybox httpd -f -p 127.0.0.1:8080 -h /tmp & exec busybox httpd -f -p 3000 -h /tmp",
		HealthCheck:  pando.HealthCheck{Type: pando.HealthCheckPort, StartTimeout: 8 * time.Second},
		Ports:        []int{9000},
	})
	const said = "app is listening on 127.0.0.1:8080 / [::]:3000, not on 0.0.0.0:$PORT=9000: listen on $PORT on all interfaces"
	line := c.logs.wait(t, 7*time.Second, pando.LogSourceCell, "app is listening on")
	if string(line.Payload) != said || line.Type != "ERR" {
		t.Errorf("CELL line %s %q, want ERR %q", line.Type, line.Payload, said)
	}
	crashed := c.rec.wait(t, 20*time.Second, "CRASHED", isState("inst-wrongport", pando.ActualCrashed)).actual
	wantCrash(t, crashed, pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: 8 * time.Second,
		Detail: "Failed to make TCP connection to port 9000: connection refused", Hint: said})
	if n := strings.Count(c.logs.dump(), "app is listening on"); n != 1 {
		t.Errorf("%d CELL lines naming the listeners, want 1:\n%s", n, c.logs.dump())
	}
}
