package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// Mistakes a first-time user makes, and what they are told.

func TestNormalizeAPI_everyLoopbackAddressIsPlainHTTP(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9022":    "http://127.0.0.1:9022",
		"127.0.0.61:9022":   "http://127.0.0.61:9022",
		"localhost:9022":    "http://localhost:9022",
		"[::1]:9022":        "http://[::1]:9022",
		"10.0.0.5:9022":     "https://10.0.0.5:9022",
		"api.example.com":   "https://api.example.com",
		"127.example.com":   "https://127.example.com",
		"https://127.0.0.1": "https://127.0.0.1",
	} {
		got, err := normalizeAPI(in)
		if err != nil || got != want {
			t.Errorf("normalizeAPI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestReportError_saysWhatToDo(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9022}, Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ctrl-c", fmt.Errorf("upload package: %w", context.Canceled), "error: interrupted (the server keeps what it already did"},
		{"server down", fmt.Errorf("list apps: %w", refused), "is the server running there, and is the API URL right? 'pando endpoint' shows it"},
		{"https to an http server", errors.New(`read API root: GET https://10.1.2.3:9022/: http: server gave HTTP response to HTTPS client`), "log in with an http:// URL"},
	} {
		var b bytes.Buffer
		if code := ReportError(&b, tc.err); code != 1 {
			t.Errorf("%s: exit status %d", tc.name, code)
		}
		if !strings.Contains(b.String(), tc.want) || strings.Count(b.String(), "\n") != 1 {
			t.Errorf("%s: printed %q, want one line with %q", tc.name, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	ReportError(&b, context.Canceled)
	if strings.Contains(b.String(), "context canceled") {
		t.Errorf("Ctrl-C printed Go's wording: %q", b.String())
	}
}

func TestPush_missingPathIsOneClearLine(t *testing.T) {
	h := newHarness(t)
	missing := filepath.Join(t.TempDir(), "nope")
	err := h.run("push", "myapp", "-p", missing)
	if err == nil || !strings.Contains(err.Error(), "app path "+missing+" does not exist") || strings.Contains(err.Error(), "stat ") {
		t.Fatalf("err = %v, want 'app path %s does not exist' without stat's wording", err, missing)
	}
}

func TestArgs_wrongCountShowsTheUsageLine(t *testing.T) {
	h := newHarness(t)
	err := h.run("app")
	if err == nil || !strings.Contains(err.Error(), "usage: pando app NAME ('pando help app' for more)") {
		t.Fatalf("err = %v, want the usage line", err)
	}
}

func TestConfirm_withoutInputTellsAboutForce(t *testing.T) {
	h := newHarness(t)
	if h.env.confirm("Really?") {
		t.Fatal("confirmed with no input")
	}
	if !strings.Contains(h.err.String(), "add -f to go ahead without asking") {
		t.Errorf("stderr = %q, want the -f hint", h.err.String())
	}
}

func TestManifest_unknownKeysWarnWithTheNearestKnownOne(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "manifest.yml")
	writeFiles(t, dir, map[string]string{"manifest.yml": "applications:\n- name: web\n  memroy: 64M\n  host: www\n  instances: 2\n  colour: blue\n"})
	apps, err := readManifest(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := unknownKeyWarnings(apps[0])
	want := []string{
		`manifest: application web: unknown key "colour" is ignored`,
		`manifest: application web: unknown key "host" is ignored (the cf CLI v7 removed it: use routes:)`,
		`manifest: application web: unknown key "memroy" is ignored (did you mean "memory"?)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestManifest_applicationsNotAListSaysHowToWriteIt(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"manifest.yml": "applications:\n  name: web\n"})
	_, err := readManifest(filepath.Join(dir, "manifest.yml"), nil)
	if err == nil || !strings.Contains(err.Error(), "applications must be a list, each app starting with '- name: APP'") || strings.Contains(err.Error(), "unmarshal") {
		t.Fatalf("err = %v", err)
	}
}

func TestPush_appNotListeningOnPORTIsToldSo(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"main.txt": "x"})
	f.lastLine = "done"
	f.stats = [][]statEntry{{{state: "CRASHED", details: "health check timed out after 1m0s: instance never healthy: Failed to make TCP connection to port 8080: connection refused"}}}
	if err := h.run("push", "myapp", "-p", app); err == nil {
		t.Fatal("push of a crashing app succeeded")
	}
	if want := "The app never listened on port 8080: it must listen on the port in $PORT (8080)"; !strings.Contains(h.err.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, h.err)
	}
	if crashHint("APP/PROC/WEB/0 Exited with status 1") != "" {
		t.Error("an exit has the port hint")
	}
}

func TestLargestFiles_namesTheBiggestFirst(t *testing.T) {
	files := []appFile{{rel: "a.txt", size: 10}, {rel: "dump.sql", size: 3 << 30}, {rel: "logs/x.log", size: 200 << 20}, {rel: "b", size: 1}}
	if got, want := largestFiles(files, 2), "dump.sql (3.0 GiB), logs/x.log (200.0 MiB)"; got != want {
		t.Errorf("largestFiles = %q, want %q", got, want)
	}
	if got := largestFiles(files[:1], 3); got != "a.txt (10 B)" {
		t.Errorf("largestFiles of one = %q", got)
	}
}

func TestSession_expiredSaysLogInFirst(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	// Tokens the server no longer accepts (e.g. a server with a new key).
	if err := h.env.saveConfig(&Config{Target: f.url(), AccessToken: "stale", RefreshToken: "stale",
		OrgGUID: orgGUID, OrgName: "myorg", SpaceGUID: spaceGUID, SpaceName: "dev"}); err != nil {
		t.Fatal(err)
	}
	err := h.run("apps")
	if err == nil || !strings.HasPrefix(strings.TrimPrefix(err.Error(), "list apps: "), "session expired: log in again with 'pando login'") {
		t.Fatalf("err = %v, want it to start with what to do", err)
	}
	if !api.IsStatus(err, http.StatusUnauthorized) || strings.Contains(err.Error(), "Invalid Auth Token") {
		t.Errorf("err = %v: the API's 401 should stay in the chain, out of the text", err)
	}
}

func TestScale_toZeroWaitsForNothingToStart(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.mu.Lock()
	f.appExists, f.appState, f.instances = true, "STARTED", 1
	f.mu.Unlock()
	scaled := false
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/apps/"+appGUID+"/processes/web/actions/scale" {
			return false
		}
		f.mu.Lock()
		f.instances, scaled = 0, true
		f.mu.Unlock()
		f.writeJSON(w, 202, map[string]any{"guid": appGUID, "type": "web", "instances": 0, "memory_in_mb": 256, "disk_in_mb": 1024})
		return true
	}
	if err := h.run("scale", "myapp", "-i", "0"); err != nil {
		t.Fatalf("scale: %v\n%s", err, h.err)
	}
	if !scaled {
		t.Fatal("no scale request")
	}
	if strings.Contains(h.out.String(), "Waiting for app myapp to start") {
		t.Errorf("scale to 0 says it waits for a start:\n%s", h.out)
	}
}
