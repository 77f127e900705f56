package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPush_appThatNeverListensCrashesAtItsStartTimeout: an instance that
// never becomes healthy ends CRASHED with the health check's reason when
// its start timeout passes (not restarted at once to wait the same again),
// and the push exits non-zero at that point, naming the reason.
func TestPush_appThatNeverListensCrashesAtItsStartTimeout(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "deaf"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"README": "listens nowhere\n"})

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir, "-b", "binary_buildpack", "-c", "echo up; exec sleep 3600", "-t", "5")
	if r.code == 0 {
		t.Fatalf("push of an app that never listens: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `health check timed out after 5s: instance never healthy: Failed to make TCP connection to port 8080`,
		`it must listen on the port in \$PORT \(8080\) on all interfaces`)

	// One start attempt, one crash, recorded both ways; the instance reads
	// CRASHED while it waits for its restart.
	ev := s.mustPando(t, "events", name)
	if n := strings.Count(ev.stdout, "audit.app.process.crash"); n != 1 {
		t.Errorf("%d audit.app.process.crash events, want 1:\n%s", n, ev.stdout)
	}
	if !strings.Contains(ev.stdout, " app.crash") {
		t.Errorf("no legacy app.crash event:\n%s", ev.stdout)
	}
	var stats struct {
		Resources []struct {
			State   string `json:"state"`
			Details string `json:"details"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+s.appGUID(t, name)+"/processes/web/stats", &stats)
	if len(stats.Resources) != 1 || stats.Resources[0].State != "CRASHED" || !strings.HasPrefix(stats.Resources[0].Details, "health check timed out") {
		t.Errorf("stats = %+v, want one CRASHED instance with the reason", stats.Resources)
	}
}

// TestPush_appOnTheWrongPortIsToldWhatItListensOn: an app that listens,
// but not on $PORT, is told within seconds in its logs what it listens on;
// pando push shows that line while it waits (before the start timeout),
// and pando push and pando app name it in the crash reason.
func TestPush_appOnTheWrongPortIsToldWhatItListensOn(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "wrongport"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "hi\n"})

	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir, "-b", "binary_buildpack",
		"-c", "exec busybox httpd -f -p 3000 -h /home/vcap/app", "-t", "15")
	if r.code == 0 {
		t.Fatalf("push of an app on the wrong port: want a non-zero exit\n%s", r)
	}
	const said = `app is listening on \[::\]:3000, not on 0\.0\.0\.0:\$PORT=8080: listen on \$PORT on all interfaces`
	requireOutput(t, r,
		`health check timed out after 15s: instance never healthy: Failed to make TCP connection to port 8080: connection refused \(`+said+`\)`,
		`\[CELL/0\] ERR `+said)
	// Shown while waiting: on stdout before the instance reads crashed
	// (the cell logs it after 3 s of failed checks, the push reads the
	// cells' errors every 3 s, the start timeout is 15 s).
	hint := regexp.MustCompile(`\[CELL/0\] ERR ` + said).FindStringIndex(r.stdout)
	crashed := strings.Index(r.stdout, "web: 0 of 1 instances running, 1 crashed")
	if hint == nil || crashed < 0 || hint[0] > crashed {
		t.Errorf("pando push did not show the cell's error while it waited:\n%s", r)
	}

	app := s.mustPando(t, "app", name)
	requireOutput(t, app, said)
}

// TestRestartAppInstance_replacesTheInstance: cf restart-app-instance's
// request stops instance 0 and a fresh one serves in its place.
func TestRestartAppInstance_replacesTheInstance(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "bounced"
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "bounce me\n"))
	guid := s.appGUID(t, name)
	instance := func() (string, string) {
		var stats struct {
			Resources []struct {
				State        string `json:"state"`
				InstanceGUID string `json:"instance_guid"`
			} `json:"resources"`
		}
		s.api(t, "/v3/apps/"+guid+"/processes/web/stats", &stats)
		if len(stats.Resources) != 1 {
			t.Fatalf("stats: %+v", stats.Resources)
		}
		return stats.Resources[0].State, stats.Resources[0].InstanceGUID
	}
	state, before := instance()
	if state != "RUNNING" || before == "" {
		t.Fatalf("before: %s %q", state, before)
	}

	if code, body := s.apiRequest(t, http.MethodDelete, "/v3/apps/"+guid+"/processes/web/instances/0"); code != http.StatusNoContent {
		t.Fatalf("DELETE instance 0: %d %s", code, body)
	}
	eventually(t, "a new instance running", 60*time.Second, func() (bool, string) {
		state, now := instance()
		return state == "RUNNING" && now != before, state + " " + now
	})
	s.waitRoute(t, name+".localhost", "/", "the new instance answering", func(status int, body string) bool {
		return status == 200 && body == "bounce me\n"
	})
	ev := s.mustPando(t, "events", name)
	if !strings.Contains(ev.stdout, "audit.app.process.terminate_instance") {
		t.Errorf("no terminate_instance event:\n%s", ev.stdout)
	}
}

// apiRequest sends a body-less request to the API as admin and returns
// the status and body.
func (s *server) apiRequest(t *testing.T, method, path string) (int, string) {
	t.Helper()
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, "http://"+s.apiAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// TestPush_anAppNamedAfterASystemHostIsRefused: with the system domain the
// apps' domain (the default), login.localhost is the API's: the push fails
// before any upload, saying why, instead of routing to the API forever.
func TestPush_anAppNamedAfterASystemHostIsRefused(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	const name = "login"
	s.deleteAppOnCleanup(t, name)
	dir := writeFiles(t, t.TempDir(), map[string]string{"Staticfile": "", "index.html": "hi\n"})
	r := s.pandoWithin(t, pushTimeout, "push", name, "-p", dir)
	if r.code == 0 {
		t.Fatalf("push of an app named login: want a non-zero exit\n%s", r)
	}
	requireOutput(t, r, `Route login\.localhost is the platform's own`, `--random-route`)
	if strings.Contains(r.out(), "Uploading") {
		t.Errorf("files uploaded before the refusal:\n%s", r)
	}
}
