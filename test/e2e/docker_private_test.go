package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// An image in a private registry (Debian's docker-registry with htpasswd)
// runs with the right credentials; wrong ones fail staging within seconds
// with an "unauthorized" message and no instance; neither password shows
// in any API answer, CLI output or the server log.
func TestDockerPush_privateRegistryNeedsTheRightCredentials(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	secret := func() string {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return "pw-" + hex.EncodeToString(b)
	}
	pass, wrong := secret(), secret()
	host := registrytest.Distribution(t, "e2euser", pass)
	ref := host + "/e2e/private:v1"
	registrytest.Push(t, ref, dockerWebImage(t, dockerWebLayer(t), "1000:1000"), "e2euser", pass)
	s := ownServer(t, "--insecure-registry", host)

	// The CLI reads the password from its environment, as cf does.
	s.cliEnv = []string{"CF_DOCKER_PASSWORD=" + pass}
	good := s.mustPando(t, "push", "private", "--docker-image", ref, "--docker-username", "e2euser")
	requireOutput(t, good, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, "private.localhost", "/"); !strings.Contains(body, "uid=1000 ") {
		t.Fatalf("private image GET / = %q", body)
	}

	s.cliEnv = []string{"CF_DOCKER_PASSWORD=" + wrong}
	start := time.Now()
	bad := s.pandoWithin(t, pushTimeout, "push", "badcreds", "--docker-image", ref, "--docker-username", "e2euser")
	took := time.Since(start)
	if bad.code == 0 {
		t.Fatalf("push with a wrong password: want a failure, got %s", bad)
	}
	requireOutput(t, bad, `unauthorized`)
	// A generous bound: staging must not wait for a timeout.
	if took > 30*time.Second {
		t.Fatalf("push with a wrong password failed only after %s", took)
	}
	badGUID := s.appGUID(t, "badcreds")
	var stats struct {
		Resources []struct {
			State string `json:"state"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+badGUID+"/processes/web/stats", &stats)
	for _, r := range stats.Resources {
		if r.State != "DOWN" {
			t.Fatalf("app with wrong credentials has an instance %s: %+v", r.State, stats)
		}
	}
	var builds struct {
		Resources []struct {
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"resources"`
	}
	s.api(t, "/v3/builds?app_guids="+badGUID, &builds)
	if len(builds.Resources) != 1 || builds.Resources[0].State != "FAILED" || !strings.Contains(builds.Resources[0].Error, "unauthorized") {
		t.Fatalf("build with wrong credentials: %+v, want one FAILED with an unauthorized error", builds)
	}

	goodGUID := s.appGUID(t, "private")
	var seen strings.Builder
	for _, path := range []string{
		"/v3/apps/" + goodGUID, "/v3/apps/" + badGUID,
		"/v3/apps/" + goodGUID + "/env", "/v3/apps/" + badGUID + "/env",
		"/v3/packages?app_guids=" + goodGUID + "," + badGUID,
		"/v3/builds?app_guids=" + goodGUID + "," + badGUID,
		"/v3/droplets?app_guids=" + goodGUID + "," + badGUID,
		"/v3/apps/" + goodGUID + "/droplets/current",
		"/v3/audit_events?per_page=5000",
	} {
		seen.Write(s.api(t, path, nil))
	}
	logData, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{
		"API answers": seen.String(), "server log": string(logData),
		"CLI output": good.out() + bad.out(),
	} {
		for _, pw := range []string{pass, wrong} {
			if strings.Contains(text, pw) {
				t.Errorf("a registry password appears in the %s", what)
			}
		}
	}
	if !strings.Contains(seen.String(), `"username":"e2euser"`) {
		t.Errorf("the docker package does not show its username: the API answers checked may not include it")
	}
}
