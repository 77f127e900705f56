package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/buildpacks"
)

// routerNotFound is the router's body for a host it has no route for.
func routerNotFound(host string) string {
	return fmt.Sprintf("Requested route ('%s') does not exist.", host)
}

func TestPush_staticSiteIsStagedAndServedThroughTheRouter(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "static-site"
	s.deleteAppOnCleanup(t, name)
	page := "<h1>Hello from a static site</h1>\n"

	r := s.mustPando(t, "push", name, "-p", staticSite(t, page))

	requireOutput(t, r,
		`Staging app`,
		`Detected staticfile_buildpack`,
		`Exit status 0`,
		`Uploading droplet`,
		`web: 1 of 1 instances running`,
		`requested state:\s+started`,
		`#0\s+running`,
	)
	if body := s.curlRoute(t, name+".localhost", "/"); body != page {
		t.Fatalf("GET / = %q, want the pushed index.html %q", body, page)
	}
	if body := s.curlRoute(t, name+".localhost", "/index.html"); body != page {
		t.Fatalf("GET /index.html = %q, want %q", body, page)
	}
	status, body, err := s.get(name+".localhost", "/missing.html")
	if err != nil || status != http.StatusNotFound {
		t.Fatalf("GET /missing.html = %d %q (%v), want 404", status, body, err)
	}
}

func TestPush_goSourceAppIsBuiltByTheGoBuildpack(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "go-source"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"go.mod": "module example.com/gosource\n\ngo 1.22\n",
		"main.go": `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go_buildpack, path %s\n", r.URL.Path)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`,
	})

	// The cell's Go build cache seed (mounted from its data dir's link)
	// fills the new app's empty build cache.
	waitSeed(t, s, "go-build-seed", buildpacks.GoCacheReady, func(ctx context.Context) (string, error) {
		return buildpacks.GoCacheSeedDir(ctx, "/var/cache/pando")
	})
	r := s.mustPando(t, "push", name, "-p", dir)

	requireOutput(t, r, `Detected go_buildpack`, `Seeding the Go build cache from /tmp/go-cache-seed`, `go build`, `web: 1 of 1 instances running`, `buildpacks:\s+go_buildpack`)
	if body, want := s.curlRoute(t, name+".localhost", "/e2e/path"), "hello from go_buildpack, path /e2e/path\n"; body != want {
		t.Fatalf("GET /e2e/path = %q, want %q", body, want)
	}
}

// cloudfoundry-samples/test-app style: the Procfile names the built binary
// alone, which the go_buildpack's profile.d puts on PATH.
func TestPush_goAppProcfileNamingTheBareBinaryStarts(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "go-procfile"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"go.mod":   "module github.com/example/test-app\n\ngo 1.22\n",
		"Procfile": "web: test-app --greeting procfile\n",
		"main.go": `package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
)

func main() {
	greeting := flag.String("greeting", "", "what to answer")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "test-app says %s\n", *greeting) })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`,
	})

	r := s.mustPando(t, "push", name, "-p", dir)

	requireOutput(t, r, `Detected go_buildpack`, `web: 1 of 1 instances running`, `start command:\s+test-app --greeting procfile`)
	if body, want := s.curlRoute(t, name+".localhost", "/"), "test-app says procfile\n"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}
}

func TestPush_prebuiltBinaryRunsWithTheBinaryBuildpack(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "prebuilt"
	s.deleteAppOnCleanup(t, name)

	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server")

	requireOutput(t, r, `binary_buildpack`, `web: 1 of 1 instances running`, `start command:\s+\./server`)
	if body, want := s.curlRoute(t, name+".localhost", "/"), "binary app index=0 greeting=\n"; body != want {
		t.Fatalf("GET / = %q, want %q", body, want)
	}
}

func TestPush_unchangedDirectoryIsAssembledFromTheResourceCache(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "resource-match"
	s.deleteAppOnCleanup(t, name)
	// No empty file: zero-byte files are always uploaded, never matched.
	files := map[string]string{
		"index.html":   "<h1>cached resources</h1>\n",
		"css/site.css": "body { color: teal }\n",
		"Staticfile":   "# resource matching e2e\n",
	}
	dir := writeFiles(t, t.TempDir(), files)

	first := s.mustPando(t, "push", name, "-p", dir)
	requireOutput(t, first, `Uploading 3 files \(\d+ B\), 0 unchanged`)
	cacheDir := filepath.Join(s.dataDir, "blobs", "resources")
	for rel, content := range files {
		sum := sha1.Sum([]byte(content))
		if _, err := os.Stat(filepath.Join(cacheDir, hex.EncodeToString(sum[:]))); err != nil {
			t.Fatalf("after the first push the resource cache lacks %s: %v", rel, err)
		}
	}
	cacheBefore := snapshotDir(t, cacheDir)
	appGUID := s.appGUID(t, name)
	pkgsBefore := s.packageGUIDs(t, appGUID)

	second := s.mustPando(t, "push", name, "-p", dir)

	requireOutput(t, second, `Uploading 0 files \(0 B\), 3 unchanged`, `web: 1 of 1 instances running`)
	if after := snapshotDir(t, cacheDir); !equalSnapshots(cacheBefore, after) {
		t.Fatalf("the second push changed the resource cache:\nbefore %v\nafter  %v", cacheBefore, after)
	}
	var fresh []string
	for g := range s.packageGUIDs(t, appGUID) {
		if !pkgsBefore[g] {
			fresh = append(fresh, g)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("the second push made %d new READY packages %v, want 1", len(fresh), fresh)
	}
	// No bits were uploaded, so the server assembled every file of the
	// package from its cache.
	got := s.packageFiles(t, fresh[0])
	if !equalFiles(got, files) {
		t.Fatalf("package %s assembled from the cache holds %v, want %v", fresh[0], got, files)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != files["index.html"] {
		t.Fatalf("GET / = %q, want %q", body, files["index.html"])
	}
	if body := s.curlRoute(t, name+".localhost", "/css/site.css"); body != files["css/site.css"] {
		t.Fatalf("GET /css/site.css = %q, want %q", body, files["css/site.css"])
	}
}

func TestPush_failingBuildpackKeepsThePreviousDropletRunning(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "keeps-running"
	s.deleteAppOnCleanup(t, name)
	host := name + ".localhost"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "version one\n", "Staticfile": ""})
	s.mustPando(t, "push", name, "-p", dir)
	if body := s.curlRoute(t, host, "/"); body != "version one\n" {
		t.Fatalf("GET / = %q, want %q", body, "version one\n")
	}

	// Position 1 makes it detect first for every later push on this
	// server: it only claims apps that carry its marker file.
	zip := buildpackZip(t, map[string]string{
		"bin/detect":   "#!/bin/sh\n[ -f \"$1/FAILBP_MARKER\" ] || exit 1\necho failbp\n",
		"bin/finalize": "#!/bin/sh\necho boom >&2\nexit 1\n",
		"bin/release":  "#!/bin/sh\necho '---'\necho 'default_process_types: {}'\n",
	})
	s.mustPando(t, "create-buildpack", "failbp", zip, "1")
	bps := s.mustPando(t, "buildpacks")
	requireOutput(t, bps, `(?m)^1\s+failbp\s`, `(?m)^\d+\s+staticfile_buildpack\s`)

	writeFiles(t, dir, map[string]string{"index.html": "version two\n"})
	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir, "-b", "failbp")

	if r.code == 0 {
		t.Fatalf("push with a failing buildpack: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `boom`, `failbp`, `223`, `(?i)compile`)
	requireLastStagingLine(t, r, "Staging failed: BuildpackCompileFailed - App staging failed in the buildpack compile phase", "boom")
	if body := s.curlRoute(t, host, "/"); body != "version one\n" {
		t.Fatalf("after the failed staging GET / = %q, want the previous droplet's %q", body, "version one\n")
	}
	app := s.mustPando(t, "app", name)
	requireOutput(t, app, `requested state:\s+started`, `#0\s+running`)
	requireRouteNoteReaches(t, app, "version one\n")

	// The app remembers -b failbp (as in CF) until -b default: then
	// detection runs again, passes over failbp and picks the builtin
	// staticfile buildpack.
	writeFiles(t, dir, map[string]string{"index.html": "version three\n"})
	again := s.mustPando(t, "push", name, "-p", dir, "-b", "default")
	requireOutput(t, again, `Detected staticfile_buildpack`)
	s.waitRoute(t, host, "/", `"version three\n"`, func(status int, body string) bool {
		return status == http.StatusOK && body == "version three\n"
	})
}

// requireLastStagingLine fails unless the staging output `pando push`
// printed ends with last (the API's word on the failure), after a line
// containing each of before (the cell's own output).
func requireLastStagingLine(t *testing.T, r result, last string, before ...string) {
	t.Helper()
	var staging []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "   ") { // staging lines are indented
			staging = append(staging, strings.TrimSpace(l))
		}
	}
	if len(staging) == 0 || staging[len(staging)-1] != last {
		t.Fatalf("the staging output does not end with %q\n%s", last, r)
	}
	for _, b := range before {
		found := false
		for _, l := range staging[:len(staging)-1] {
			found = found || strings.Contains(l, b)
		}
		if !found {
			t.Fatalf("no staging line with %q before %q\n%s", b, last, r)
		}
	}
}

func TestServerRestart_appsComeBackStoppedAppsStayStoppedInterruptedStagingFails(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	s.mustPando(t, "push", "survivor", "-p", staticSite(t, "still here\n"))
	s.mustPando(t, "push", "parked", "-p", staticSite(t, "parked app\n"))
	if body := s.curlRoute(t, "survivor.localhost", "/"); body != "still here\n" {
		t.Fatalf("GET survivor / = %q", body)
	}
	stop := s.mustPando(t, "stop", "parked")
	requireOutput(t, stop, `OK`)
	s.waitRoute(t, "parked.localhost", "/", "404", func(status int, _ string) bool { return status == http.StatusNotFound })

	// A push still staging when the server stops: its container must go
	// with the server.
	sleepy := buildpackZip(t, map[string]string{
		"bin/detect":   "#!/bin/sh\nexit 1\n",
		"bin/finalize": "#!/bin/sh\necho 'sleepy buildpack is sleeping'\nexec sleep 300\n",
		"bin/release":  "#!/bin/sh\necho '---'\necho 'default_process_types: {web: sleep 1000}'\n",
	})
	s.mustPando(t, "create-buildpack", "sleepy", sleepy, "9")
	push := s.startCLI(t, pushTimeout, "push", "interrupted", "-p", staticSite(t, "never staged\n"), "-b", "sleepy")
	eventually(t, "staging of interrupted reaches the sleepy buildpack", waitTimeout, func() (bool, string) {
		out := push.out.String()
		return strings.Contains(out, "sleepy buildpack is sleeping"), out
	})

	if err := s.stop(); err != nil {
		t.Fatalf("stop the server: %v", err)
	}
	if r := push.wait(t, 30*time.Second); r.code == 0 {
		t.Fatalf("push interrupted by the server's shutdown exited 0\n%s", r)
	}
	if status, _, err := s.get("survivor.localhost", "/"); err == nil {
		t.Fatalf("the router still answers (%d) after the server stopped", status)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}

	if body := s.curlRoute(t, "survivor.localhost", "/"); body != "still here\n" {
		t.Fatalf("after the restart GET survivor / = %q, want %q", body, "still here\n")
	}
	apps := s.mustPando(t, "apps")
	requireOutput(t, apps, `(?m)^survivor\s+started\s+web:1/1\s`, `(?m)^parked\s+stopped\s+web:0/1\s`)
	if log := s.logTail(0, 1<<30); strings.Count(log, "Admin password:") != 1 {
		t.Fatalf("the admin password was printed %d times over two starts, want once", strings.Count(log, "Admin password:"))
	}
	parked := s.mustPando(t, "app", "parked")
	requireOutput(t, parked, `requested state:\s+stopped`)
	if regexp.MustCompile(`#\d+\s+running`).MatchString(parked.out()) {
		t.Fatalf("the stopped app runs an instance after the restart:\n%s", parked)
	}
	status, body, err := s.get("parked.localhost", "/")
	if err != nil || status != http.StatusNotFound || !strings.Contains(body, routerNotFound("parked.localhost")) {
		t.Fatalf("GET parked / after the restart = %d %q (%v), want 404 %q", status, body, err, routerNotFound("parked.localhost"))
	}

	// The interrupted staging is a failed build the user can act on, not
	// one staging forever.
	var builds struct {
		Resources []struct {
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+s.appGUID(t, "interrupted")+"/builds", &builds)
	if len(builds.Resources) != 1 || builds.Resources[0].State != "FAILED" || builds.Resources[0].Error == "" {
		t.Fatalf("builds of the push interrupted by the restart = %+v, want one FAILED build with an error", builds.Resources)
	}

	start := s.mustPando(t, "start", "parked")
	requireOutput(t, start, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, "parked.localhost", "/"); body != "parked app\n" {
		t.Fatalf("after start GET parked / = %q, want %q", body, "parked app\n")
	}
}

func TestAppLifecycle_scaleEnvRestartLogsEventsDelete(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "lifecycle"
	host := name + ".localhost"
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server")

	// Scale out: two running instances, requests spread round robin.
	s.mustPando(t, "scale", name, "-i", "2")
	app := s.mustPando(t, "app", name)
	requireOutput(t, app, `instances:\s+2/2`, `(?m)^#0\s+running`, `(?m)^#1\s+running`)
	eventually(t, "both instances answer through the router", waitTimeout, func() (bool, string) {
		seen := map[string]int{}
		for range 4 {
			_, body, _ := s.get(host, "/")
			seen[body]++
		}
		return seen["binary app index=0 greeting=\n"] > 0 && seen["binary app index=1 greeting=\n"] > 0, fmt.Sprint(seen)
	})
	seen := map[string]int{}
	for range 6 {
		status, body, err := s.get(host, "/")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET / = %d %q (%v)", status, body, err)
		}
		seen[body]++
	}
	if seen["binary app index=0 greeting=\n"] != 3 || seen["binary app index=1 greeting=\n"] != 3 {
		t.Fatalf("6 requests over 2 instances: want 3 each (round robin), got %v", seen)
	}

	// Environment: set, restart, visible to the CLI and to the app.
	s.mustPando(t, "set-env", name, "GREETING", "hola")
	s.mustPando(t, "restart", name)
	envOut := s.mustPando(t, "env", name)
	requireOutput(t, envOut, `User-Provided:`, `(?m)^GREETING: hola$`)
	for _, idx := range []string{"0", "1"} {
		want := "binary app index=" + idx + " greeting=hola\n"
		eventually(t, "instance "+idx+" sees GREETING", waitTimeout, func() (bool, string) {
			seen := map[string]bool{}
			for range 4 {
				_, body, _ := s.get(host, "/")
				seen[body] = true
			}
			return seen[want], fmt.Sprint(seen)
		})
	}

	// Logs: staging and app output, tagged as the cf CLI shows them.
	logs := s.mustPando(t, "logs", name, "--recent")
	requireOutput(t, logs,
		`\[STG/0\] OUT .*binary_buildpack`,
		`\[APP/PROC/WEB/0\] OUT e2e server listening on \d+ as instance 0`,
		`\[APP/PROC/WEB/1\] OUT e2e server listening on \d+ as instance 1`,
	)

	events := s.mustPando(t, "events", name)
	requireOutput(t, events, `audit\.app\.create`, `audit\.app\.process\.scale`, `audit\.app\.update`, `audit\.app\.restart`)

	// Delete: the route disappears from the router and the app from apps.
	del := s.mustPando(t, "delete", name, "-f")
	requireOutput(t, del, `OK`)
	_, body := s.waitRoute(t, host, "/", "404", func(status int, _ string) bool { return status == http.StatusNotFound })
	if !strings.Contains(body, routerNotFound(host)) {
		t.Fatalf("GET / after delete = 404 %q, want the router's %q", body, routerNotFound(host))
	}
	apps := s.mustPando(t, "apps")
	if regexp.MustCompile(`(?m)^` + name + `\s`).MatchString(apps.out()) {
		t.Fatalf("apps still lists %s after delete:\n%s", name, apps)
	}
	if gone := s.pando(t, "app", name); gone.code == 0 || !strings.Contains(gone.out(), "not found") {
		t.Fatalf("app %s after delete: want a non-zero exit saying not found\n%s", name, gone)
	}
}

func TestPush_crashingStartCommandFailsAndSaysWhy(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "crasher"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"README": "nothing to run\n"})

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir, "-b", "binary_buildpack", "-c", "echo bye; exit 3")

	if r.code == 0 {
		t.Fatalf("push of an app that exits at once: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `Exited with status 3`, `\[APP/PROC/WEB/0\] OUT bye`, `crash`)
}

// packageGUIDs lists an app's READY packages.
func (s *server) packageGUIDs(t *testing.T, appGUID string) map[string]bool {
	t.Helper()
	var list struct {
		Resources []struct {
			GUID  string `json:"guid"`
			State string `json:"state"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+appGUID+"/packages?per_page=100", &list)
	out := map[string]bool{}
	for _, p := range list.Resources {
		if p.State == "READY" {
			out[p.GUID] = true
		}
	}
	return out
}

// packageFiles downloads a package and returns its regular files.
func (s *server) packageFiles(t *testing.T, guid string) map[string]string {
	t.Helper()
	data := s.api(t, "/v3/packages/"+guid+"/download", nil)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("package %s is not a zip: %v", guid, err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		if !f.Mode().IsRegular() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(f.Name, "./")] = string(b)
	}
	return out
}

func equalFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// snapshotDir lists a directory's entries with size and modification time.
func snapshotDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:%d:%s", e.Name(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano)))
	}
	sort.Strings(out)
	return out
}

func equalSnapshots(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func TestCrashedInstanceIsRestartedAndTheCrashIsAnEvent(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "flaky"
	s.deleteAppOnCleanup(t, name)
	// Serves, then dies a moment later, every time it starts.
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"index.html": "flaky but back\n",
	})
	start := `busybox httpd -f -p $PORT -h /home/vcap/app & sleep 1; echo "going down" >&2; exit 5`
	s.mustPando(t, "push", name, "-p", dir, "-b", "binary_buildpack", "-c", start)

	// Each crash is recorded with its reason, and the instance comes back
	// (the first crashes restart at once).
	eventually(t, "two crash events", 30*time.Second, func() (bool, string) {
		r := s.pando(t, "events", name)
		return strings.Count(r.stdout, "audit.app.process.crash") >= 2 && strings.Contains(r.stdout, "Exited with status 5"), r.out()
	})
	s.waitRoute(t, name+".localhost", "/", "the restarted instance answering", func(status int, body string) bool {
		return status == 200 && body == "flaky but back\n"
	})
}

func TestTasks_runWaitFailAndTerminate(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "tasker"
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "tasks live here\n"))

	ok := s.mustPando(t, "run-task", name, "--command", "echo migrated $((6*7)) rows; ls /home/vcap/app", "--name", "migrate", "--wait")
	requireOutput(t, ok, `\[APP/TASK/migrate/0\] OUT migrated 42 rows`, `index\.html`, `completed successfully`)

	bad := s.pando(t, "run-task", name, "--command", "echo nope; exit 4", "--name", "broken", "--wait")
	if bad.code == 0 {
		t.Fatalf("a task exiting 4: want a non-zero exit\n%s", bad)
	}
	requireOutput(t, bad, `APP/TASK/broken Exited with status 4`)

	s.mustPando(t, "run-task", name, "--command", "sleep 120", "--name", "sleeper")
	eventually(t, "the sleeper running", 30*time.Second, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^3\s+sleeper\s+RUNNING`).MatchString(r.stdout), r.out()
	})
	s.mustPando(t, "terminate-task", name, "3")
	eventually(t, "the sleeper cancelled", 30*time.Second, func() (bool, string) {
		r := s.pando(t, "tasks", name)
		return regexp.MustCompile(`(?m)^3\s+sleeper\s+FAILED`).MatchString(r.stdout), r.out()
	})
	var task struct {
		Resources []struct {
			SequenceID int `json:"sequence_id"`
			Result     struct {
				FailureReason string `json:"failure_reason"`
			} `json:"result"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+s.appGUID(t, name)+"/tasks?sequence_ids=3", &task)
	if len(task.Resources) != 1 || task.Resources[0].Result.FailureReason != "task was cancelled" {
		t.Errorf("terminated task = %+v, want failure_reason %q", task.Resources, "task was cancelled")
	}
}
