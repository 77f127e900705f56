package cli

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t        *testing.T
	home     string
	vars     map[string]string
	out, err *syncBuffer
	env      *env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t:    t,
		home: filepath.Join(dir, "pando-home"),
		vars: map[string]string{"HOME": dir, "PANDO_DATA_DIR": filepath.Join(dir, "data")},
		out:  &syncBuffer{},
		err:  &syncBuffer{},
	}
	h.vars["PANDO_HOME"] = h.home
	e := defaultEnv(IOStreams{In: strings.NewReader(""), Out: h.out, Err: h.err})
	e.getenv = func(k string) string { return h.vars[k] }
	e.loc = time.UTC
	e.pollMin, e.pollMax = time.Millisecond, 10*time.Millisecond
	e.statsPoll = 5 * time.Millisecond
	e.cellHintEvery = 0
	// The fakes answer the log-cache read with the lines of the work that
	// ended: a long idle wait proves the drain ends on reaching the newest
	// of them, not on timing.
	e.drainIdle, e.drainMax = 10*time.Second, 10*time.Second
	h.env = e
	return h
}

func (h *harness) run(args ...string) error {
	h.t.Helper()
	root := &cobra.Command{Use: "pando", SilenceUsage: true, SilenceErrors: true}
	root.AddGroup(Groups()...)
	root.AddCommand(h.env.commands()...)
	root.SetArgs(args)
	root.SetOut(h.out)
	root.SetErr(h.err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return root.ExecuteContext(ctx)
}

// loggedIn writes a config targeting the fake with valid tokens.
func (h *harness) loggedIn(f *fakeCF, ttl time.Duration) {
	h.t.Helper()
	access, refresh := f.token(ttl)
	cfg := &Config{Target: f.url(), AccessToken: access, RefreshToken: refresh,
		OrgGUID: orgGUID, OrgName: "myorg", SpaceGUID: spaceGUID, SpaceName: "dev"}
	if err := h.env.saveConfig(cfg); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) config() *Config {
	h.t.Helper()
	cfg, err := h.env.loadConfig()
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

func TestLogin_savesTokensAndTargetsTheOnlyOrgAndSpace(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	if err := h.run("login", "-a", f.url(), "-u", "admin", "-p", "secret"); err != nil {
		t.Fatalf("login: %v\nstderr: %s", err, h.err)
	}
	cfg := h.config()
	if cfg.Target != f.url() || cfg.AccessToken == "" || cfg.RefreshToken == "" {
		t.Fatalf("config = %+v", cfg)
	}
	if cfg.OrgGUID != orgGUID || cfg.SpaceGUID != spaceGUID || cfg.OrgName != "myorg" || cfg.SpaceName != "dev" {
		t.Errorf("target = %s/%s (%s/%s)", cfg.OrgName, cfg.SpaceName, cfg.OrgGUID, cfg.SpaceGUID)
	}
	if cfg.APIVersion != "3.180.0" {
		t.Errorf("api version = %q", cfg.APIVersion)
	}
	for _, want := range []string{"OK", "user:           admin", "org:            myorg", "space:          dev"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, h.out)
		}
	}
	f.mu.Lock()
	g := f.grants[0]
	f.mu.Unlock()
	if g.Get("grant_type") != "password" || g.Get("username") != "admin" {
		t.Errorf("grant = %v", g)
	}
}

// UAA's "Bad credentials" becomes what the user can change, said once.
func TestLogin_badPasswordSaysTheNameOrPasswordIsWrong(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	err := h.run("login", "-a", f.url(), "-u", "admin", "-p", "wrong")
	if err == nil || err.Error() != "wrong user name or password for admin at "+f.url() {
		t.Fatalf("err = %v, want it to say the user name or password is wrong, once", err)
	}
	if h.config().AccessToken != "" {
		t.Error("tokens saved after a failed login")
	}
}

func TestLogin_promptsForMissingCredentials(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.env.streams.In = strings.NewReader("admin\nsecret\n")
	if err := h.run("login", "-a", f.url()); err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.Contains(h.err.String(), "Username: ") || !strings.Contains(h.err.String(), "Password: ") {
		t.Errorf("prompts missing: %q", h.err)
	}
	if h.config().AccessToken == "" {
		t.Error("no token saved")
	}
}

func TestConfig_fileIs0600InA0700Dir(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	if err := h.run("login", "-a", f.url(), "-u", "admin", "-p", "secret"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(h.home, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("config.json mode = %o, want 600", perm)
	}
	di, err := os.Stat(h.home)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("config dir mode = %o, want 700", perm)
	}
}

func TestTokenRefresh_whenExpiryIsUnderAMinute(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, 30*time.Second)
	old := h.config()
	if err := h.run("apps"); err != nil {
		t.Fatalf("apps: %v\nstderr: %s", err, h.err)
	}
	f.mu.Lock()
	grants := append([]url.Values(nil), f.grants...)
	f.mu.Unlock()
	if len(grants) != 1 || grants[0].Get("grant_type") != "refresh_token" || grants[0].Get("refresh_token") != old.RefreshToken {
		t.Fatalf("grants = %v, want one refresh_token grant with %s", grants, old.RefreshToken)
	}
	cfg := h.config()
	if cfg.AccessToken == old.AccessToken || cfg.RefreshToken == old.RefreshToken {
		t.Error("refreshed tokens not saved")
	}
	if !strings.Contains(h.out.String(), "No apps found.") {
		t.Errorf("output:\n%s", h.out)
	}
}

func TestTokenRefresh_notNeededForAFreshToken(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("apps"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	n := len(f.grants)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d token grants, want none", n)
	}
}

func TestLocalServer_logsInAsAdminWithoutAsking(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.env.localAPI = f.url() // the fake plays the local server
	if err := h.run("apps"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("apps without a password anywhere: err = %v", err)
	}
	dataDir := h.vars["PANDO_DATA_DIR"]
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "admin-password"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.run("apps"); err != nil {
		t.Fatalf("apps: %v\nstderr: %s", err, h.err)
	}
	cfg := h.config()
	if cfg.Target != f.url() || cfg.AccessToken == "" || cfg.SpaceGUID != spaceGUID {
		t.Errorf("config after auto-login = %+v", cfg)
	}
	if !strings.Contains(h.out.String(), "Getting apps in org myorg / space dev as admin...") {
		t.Errorf("output:\n%s", h.out)
	}
	// The environment variable wins over the file.
	h.vars["PANDO_ADMIN_PASSWORD"] = "from-env"
	if got := h.env.localAdminPassword(); got != "from-env" {
		t.Errorf("password = %q, want the env's", got)
	}
}

func TestRemoteTarget_neverLogsInByItself(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.vars["PANDO_ADMIN_PASSWORD"] = "secret"
	if err := h.env.saveConfig(&Config{Target: f.url()}); err != nil {
		t.Fatal(err)
	}
	if err := h.run("apps"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Errorf("err = %v, want not logged in", err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestPush_happyPath(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	index := "<html>hello</html>\n"
	writeFiles(t, app, map[string]string{
		"index.html":  index,
		"Staticfile":  "",
		"app.js":      "console.log('hi')\n",
		"lib/util.js": "module.exports = 1\n",
		".git/config": "[core]\n",
		"debug.log":   "noise\n",
		".cfignore":   "*.log\n",
	})
	if err := os.Chmod(filepath.Join(app, "app.js"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.knownSHA1[sha1Hex(index)] = true
	f.instances = 2
	f.stgLines = []string{"-----> Staticfile Buildpack", "-----> Copying project files"}
	f.lastLine = "Uploading complete"
	f.stats = [][]statEntry{
		{{state: "STARTING"}, {state: "STARTING"}},
		{{state: "RUNNING"}, {state: "STARTING"}},
		{{state: "RUNNING"}, {state: "RUNNING"}},
	}

	err := h.run("push", "myapp", "-p", app, "-b", "staticfile_buildpack", "-m", "256M", "-i", "2")
	if err != nil {
		t.Fatalf("push: %v\nstdout:\n%s\nstderr:\n%s", err, h.out, h.err)
	}
	out := h.out.String()
	t.Logf("push output:\n%s", out)

	// The manifest carries the flags, not the local path.
	var m struct {
		Applications []map[string]any `yaml:"applications"`
	}
	if err := yaml.Unmarshal([]byte(f.manifest), &m); err != nil || len(m.Applications) != 1 {
		t.Fatalf("manifest %q: %v", f.manifest, err)
	}
	a := m.Applications[0]
	if a["name"] != "myapp" || a["memory"] != "256M" || a["instances"] != 2 || a["default-route"] != true {
		t.Errorf("manifest app = %v", a)
	}
	if bps, _ := a["buildpacks"].([]any); len(bps) != 1 || bps[0] != "staticfile_buildpack" {
		t.Errorf("manifest buildpacks = %v", a["buildpacks"])
	}
	if _, ok := a["path"]; ok {
		t.Error("manifest carries the client-local path")
	}

	// Resource matching: non-empty files only, ignored files never.
	var asked []string
	for _, r := range f.matchReq {
		asked = append(asked, r.Path+":"+r.Mode)
	}
	sort.Strings(asked)
	if got, want := strings.Join(asked, " "), "app.js:755 index.html:644 lib/util.js:644"; got != want {
		t.Errorf("resource_matches asked %q, want %q", got, want)
	}
	// The zip has what the server lacks, with modes; the matched file goes
	// in the resources part instead.
	var zipped []string
	for n := range f.zipEntries {
		zipped = append(zipped, n)
	}
	sort.Strings(zipped)
	if got, want := strings.Join(zipped, " "), "Staticfile app.js lib/util.js"; got != want {
		t.Errorf("zip entries %q, want %q", got, want)
	}
	if f.zipModes["app.js"].Perm() != 0o755 {
		t.Errorf("app.js zipped with mode %v", f.zipModes["app.js"])
	}
	if string(f.zipEntries["app.js"]) != "console.log('hi')\n" {
		t.Errorf("app.js content %q", f.zipEntries["app.js"])
	}
	if len(f.uploadRes) != 1 || f.uploadRes[0].Path != "index.html" || f.uploadRes[0].Checksum.Value != sha1Hex(index) || f.uploadRes[0].Mode != "644" {
		t.Errorf("upload resources = %+v", f.uploadRes)
	}
	for _, want := range []string{
		"Pushing app myapp to org myorg / space dev as admin...",
		"Uploading 3 files (37 B), 1 unchanged",
		"   -----> Staticfile Buildpack\n",
		"   -----> Copying project files\n",
		"   Uploading complete\n",
		"web: 1 of 2 instances running, 1 starting",
		"web: 2 of 2 instances running",
		"routes:            http://myapp.localhost:8080",
		"buildpacks:        staticfile_buildpack 1.6.12",
		"instances:      2/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Order of the flow.
	reqs := strings.Join(f.requests(), "\n")
	order := []string{"POST /v3/spaces/" + spaceGUID + "/actions/apply_manifest", "POST /v3/resource_matches",
		"POST /v3/packages/" + pkgGUID + "/upload", "POST /v3/builds", "PATCH /v3/apps/" + appGUID + "/relationships/current_droplet",
		"POST /v3/apps/" + appGUID + "/actions/restart", "GET /v3/apps/" + appGUID + "/routes"}
	pos := 0
	for _, o := range order {
		i := strings.Index(reqs[pos:], o)
		if i < 0 {
			t.Fatalf("request %q missing or out of order in:\n%s", o, reqs)
		}
		pos += i
	}
}

func TestPush_stagingFailureIsExplained(t *testing.T) {
	cases := []struct {
		name, buildErr string
		want           []string
	}{
		{"no buildpack detected", "NoAppDetectedError - An app was not successfully detected by any available buildpack",
			[]string{"tried: staticfile_buildpack, go_buildpack).", "binary_buildpack never recognises an app:\na prebuilt binary needs -b binary_buildpack -c CMD", "-b BUILDPACK"}},
		{"compile failed", "BuildpackCompileFailed - App staging failed in the buildpack compile phase",
			[]string{"compile/finalize step failed (exit status 223)", "output above"}},
		{"release failed", "BuildpackReleaseFailed - App staging failed in the buildpack release phase",
			[]string{"release step failed (exit status 224)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCF(t)
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			// No last line: the stream stays open, so the drain must end on
			// its idle timer.
			h.env.drainIdle = 20 * time.Millisecond
			app := t.TempDir()
			writeFiles(t, app, map[string]string{"main.txt": "x"})
			f.stgLines = []string{"**ERROR** something broke"}
			f.buildError = tc.buildErr
			err := h.run("push", "myapp", "-p", app)
			if err == nil {
				t.Fatal("push succeeded, want a staging error")
			}
			if !strings.Contains(err.Error(), tc.buildErr) {
				t.Errorf("err = %v", err)
			}
			if !strings.Contains(h.out.String(), "   **ERROR** something broke") {
				t.Errorf("staging output not shown:\n%s", h.out)
			}
			for _, w := range tc.want {
				if !strings.Contains(h.err.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, h.err)
				}
			}
			for _, r := range f.requests() {
				if strings.Contains(r, "actions/restart") {
					t.Error("app restarted after failed staging")
				}
			}
		})
	}
}

func TestPush_crashShowsReasonAndLastLogs(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"main.txt": "x"})
	f.lastLine = "done"
	f.stats = [][]statEntry{{{state: "CRASHED", details: "APP/PROC/WEB: Exited with status 1"}}}
	f.envelopes = []fakeEnvelope{
		{ts: 1795663555000000000, sourceType: "STG", instance: "0", typ: "OUT", payload: "staging line"},
		{ts: 1795663556000000000, sourceType: "APP/PROC/WEB", instance: "0", typ: "OUT", payload: "starting"},
		{ts: 1795663557000000000, sourceType: "APP/PROC/WEB", instance: "0", typ: "ERR", payload: "panic: no config"},
	}
	err := h.run("push", "myapp", "-p", app)
	if err == nil || !strings.Contains(err.Error(), "crashed: APP/PROC/WEB: Exited with status 1") {
		t.Fatalf("err = %v, want crash", err)
	}
	stderr := h.err.String()
	t.Logf("crash output:\n%s%s", h.out, stderr)
	for _, want := range []string{
		"Instance web/0 crashed: APP/PROC/WEB: Exited with status 1",
		"[APP/PROC/WEB/0] OUT starting",
		"[APP/PROC/WEB/0] ERR panic: no config",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "staging line") {
		t.Error("crash report shows staging lines")
	}
	if strings.Index(stderr, "OUT starting") > strings.Index(stderr, "ERR panic") {
		t.Error("crash log lines not oldest first")
	}
}

func TestLogsRecent_decodesAndPrintsOldestFirst(t *testing.T) {
	f := newFakeCF(t)
	f.appExists = true
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.envelopes = []fakeEnvelope{
		{ts: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixNano(), sourceType: "STG", instance: "0", typ: "OUT", payload: "Downloading buildpack..."},
		{ts: time.Date(2026, 11, 26, 10, 0, 1, 970_000_000, time.UTC).UnixNano(), sourceType: "APP/PROC/WEB", instance: "0", typ: "OUT", payload: "hello\n"},
		{ts: time.Date(2026, 11, 26, 10, 0, 2, 120_000_000, time.UTC).UnixNano(), sourceType: "APP/PROC/WEB", instance: "1", typ: "ERR", payload: "oops ünïcode"},
	}
	if err := h.run("logs", "myapp", "--recent"); err != nil {
		t.Fatalf("logs: %v", err)
	}
	want := "2026-11-26T10:00:00.00+0000 [STG/0] OUT Downloading buildpack...\n" +
		"2026-11-26T10:00:01.97+0000 [APP/PROC/WEB/0] OUT hello\n" +
		"2026-11-26T10:00:02.12+0000 [APP/PROC/WEB/1] ERR oops ünïcode\n"
	if !strings.HasSuffix(h.out.String(), want) {
		t.Errorf("output:\n%s\nwant suffix:\n%s", h.out, want)
	}
	var read string
	for _, r := range f.requests() {
		if strings.Contains(r, "/api/v1/read/") {
			read = r
		}
	}
	for _, p := range []string{"descending=true", "limit=1000", "start_time=-1", "envelope_types=LOG"} {
		if !strings.Contains(read, p) {
			t.Errorf("read request %q lacks %s", read, p)
		}
	}
}

func TestAppNotFound_isOneClearLine(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	err := h.run("app", "nope")
	if err == nil {
		t.Fatal("no error")
	}
	var buf bytes.Buffer
	if code := ReportError(&buf, err); code == 0 {
		t.Error("exit status 0")
	}
	if got := buf.String(); got != "error: app 'nope' not found in org myorg / space dev as admin\n" {
		t.Errorf("error line = %q", got)
	}
}

func TestAPIError_carriesCFDetailAndTitle(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	c, err := h.env.newClient(h.config())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDroplet(context.Background(), "missing")
	if err == nil || !strings.Contains(err.Error(), "Unknown request (CF-NotFound)") || !api.IsNotFound(err) {
		t.Errorf("err = %v", err)
	}
}

func TestPush_dockerImageSkipsUpload(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	h.vars["CF_DOCKER_PASSWORD"] = "hunter2"
	f.lastLine = "Staging complete"
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1", "--docker-username", "bob")
	if err != nil {
		t.Fatalf("push: %v\nstderr: %s", err, h.err)
	}
	if !strings.Contains(f.manifest, "image: registry.example/web:v1") || !strings.Contains(f.manifest, "username: bob") {
		t.Errorf("manifest:\n%s", f.manifest)
	}
	if strings.Contains(f.manifest, "hunter2") {
		t.Error("docker password in the manifest")
	}
	data, _ := f.pkgReq["data"].(map[string]any)
	if f.pkgReq["type"] != "docker" || data["image"] != "registry.example/web:v1" || data["username"] != "bob" || data["password"] != "hunter2" {
		t.Errorf("package request = %v", f.pkgReq)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "resource_matches") || strings.Contains(r, "/upload") {
			t.Errorf("docker push made %s", r)
		}
	}
}

func TestPush_dockerImageOpensTheStagingStreamWhileThePackageIsCreated(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.lastLine = "Staging complete"
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	streamOpened := func() bool {
		for _, r := range f.requests() {
			if strings.Contains(r, "/pando/v1/logs/") {
				return true
			}
		}
		return false
	}
	// The package is answered only once the stream is open: a CLI that
	// opened it after the package would wait here in vain.
	sawStream := false
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/packages" {
			return false
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !sawStream; {
			if sawStream = streamOpened(); !sawStream {
				time.Sleep(2 * time.Millisecond)
			}
		}
		return false
	}
	if err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1"); err != nil {
		t.Fatalf("push: %v\nstderr: %s", err, h.err)
	}
	if !sawStream {
		t.Fatal("the package was created before the staging stream was opened")
	}
	streams := 0
	for _, r := range f.requests() {
		if strings.Contains(r, "/pando/v1/logs/") {
			streams++
		}
	}
	if streams != 1 {
		t.Errorf("%d staging streams opened, want 1", streams)
	}
	if !strings.Contains(h.out.String(), "Staging complete") {
		t.Errorf("staging output missing:\n%s", h.out.String())
	}
}

func TestApps_tableWithProcessesAndRoutes(t *testing.T) {
	f := newFakeCF(t)
	f.appExists, f.appState, f.instances = true, "STARTED", 2
	f.stats = [][]statEntry{{{state: "RUNNING"}, {state: "STARTING"}}}
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("apps"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	last := strings.Join(strings.Fields(lines[len(lines)-1]), " ")
	if want := "myapp started web:1/2 http://myapp.localhost:8080, http://www.localhost:8080/myapp"; last != want {
		t.Errorf("apps row = %q, want %q", last, want)
	}
}
