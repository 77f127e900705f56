package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// typed runs the CLI with its own PANDO_HOME (home; "" is the admin's)
// and stdin, as someone typing answers to its prompts.
func (s *server) typed(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(baseEnv(), "PANDO_HOME="+s.cliHome, "PANDO_DATA_DIR="+s.dataDir, "NO_COLOR=1")
	if home != "" {
		cmd.Env = append(baseEnv(), "PANDO_HOME="+home, "NO_COLOR=1")
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("pando %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// TestTenancy_cliTeamVerbs: with pando's own CLI only, an admin creates an
// org, two spaces and a user who is space developer in one of them; the
// user logs in, targets, pushes and sees only their space's apps; domains,
// routes, space quotas and services work (cliDomainsRoutesAndQuotas); what
// they may not do is refused with the role they lack; deleting the org
// waits for its job.
func TestTenancy_cliTeamVerbs(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	s.mustPando(t, "create-org", "team")
	s.mustPando(t, "create-space", "A", "-o", "team")
	s.mustPando(t, "create-space", "B", "-o", "team")
	if r := s.typed(t, "", "dev-pw\n", "create-user", "dev"); r.code != 0 {
		t.Fatalf("create-user, password on stdin: %s", r)
	}
	s.mustPando(t, "set-space-role", "dev", "team", "A", "SpaceDeveloper")
	requireOutput(t, s.mustPando(t, "space-users", "team", "A"), `(?s)SPACE DEVELOPER\n(\s+\S+ \(uaa\)\n)*\s+dev \(uaa\)\n`)
	requireOutput(t, s.mustPando(t, "org-users", "team"), `(?s)ORG USER\n.*dev \(uaa\)`)

	// The admin pushes an app into B.
	s.mustPando(t, "target", "-o", "team", "-s", "B")
	s.mustPando(t, "push", "bapp", "-p", staticSite(t, "B's app\n"))

	// The developer logs in on another machine: org team and space A are
	// all they see, so they are targeted at once.
	devHome := filepath.Join(t.TempDir(), "dev")
	api := "http://" + s.apiAddr
	r := s.as(t, devHome, "login", "-a", api, "-u", "dev", "-p", "dev-pw")
	if r.code != 0 {
		t.Fatalf("dev login: %s", r)
	}
	requireOutput(t, r, `(?m)org:\s+team$`, `(?m)space:\s+A$`)
	requireOutput(t, s.as(t, devHome, "orgs"), `(?m)^team$`)
	if r := s.as(t, devHome, "target", "-o", "team", "-s", "A"); r.code != 0 {
		t.Fatalf("dev target: %s", r)
	}
	site := writeFiles(t, t.TempDir(), map[string]string{"index.html": "A's app\n", "shop/index.html": "A's shop\n", "Staticfile": ""})
	if r := s.as(t, devHome, "push", "aapp", "-p", site); r.code != 0 {
		t.Fatalf("dev push to A: %s", r)
	}
	waitBody(t, s, "aapp.localhost", "A's app\n")
	apps := s.as(t, devHome, "apps")
	requireOutput(t, apps, `(?m)^aapp\s`)
	if strings.Contains(apps.out(), "bapp") {
		t.Errorf("the developer sees B's app: %s", apps)
	}

	// Services, routes and quotas with the same CLI, against the real API.
	if r := s.as(t, devHome, "cups", "db", "-p", `{"pw":"s3cret"}`); r.code != 0 {
		t.Fatalf("dev cups: %s", r)
	}
	if r := s.as(t, devHome, "bind-service", "aapp", "db"); r.code != 0 {
		t.Fatalf("dev bind-service: %s", r)
	}
	requireOutput(t, s.as(t, devHome, "services"), `(?m)^db\s+user-provided\s+aapp$`)
	for _, args := range [][]string{{"unbind-service", "aapp", "db"}, {"delete-service", "db", "-f"}} {
		if r := s.as(t, devHome, args...); r.code != 0 {
			t.Fatalf("dev %s", r)
		}
	}
	requireOutput(t, s.as(t, devHome, "services"), `No service instances found`)
	s.mustPando(t, "create-domain", "example.test")
	if r := s.as(t, devHome, "map-route", "aapp", "example.test", "--hostname", "www", "--path", "/shop"); r.code != 0 {
		t.Fatalf("dev map-route: %s", r)
	}
	requireOutput(t, s.as(t, devHome, "routes"), `(?m)^www\.example\.test/shop\s+www\s+/shop\s+aapp$`, `(?m)^aapp\.localhost\s`)
	eventually(t, "www.example.test/shop answers", waitTimeout, func() (bool, string) {
		code, got, err := s.get("www.example.test", "/shop/index.html")
		return err == nil && code == 200 && got == "A's shop\n", got
	})
	if r := s.as(t, devHome, "unmap-route", "aapp", "example.test", "--hostname", "www", "--path", "/shop"); r.code != 0 {
		t.Fatalf("dev unmap-route: %s", r)
	}
	requireOutput(t, s.as(t, devHome, "routes"), `(?m)^www\.example\.test/shop\s+www\s+/shop\s*$`)
	s.mustPando(t, "create-quota", "small", "-m", "2G", "-r", "10")
	s.mustPando(t, "set-quota", "team", "small")
	requireOutput(t, s.mustPando(t, "quotas"), `(?m)^small\s+2G\s+unlimited\s+unlimited\s+10\s.*team$`)
	// An instance bigger than the quota lets one be is refused before its
	// files are uploaded and staged (Cloud Foundry refuses it at the start
	// after the staging).
	s.mustPando(t, "update-quota", "small", "-i", "256M")
	big := s.as(t, devHome, "push", "big", "-m", "512M", "-p", site)
	requireOutput(t, big, `web process asks for 512M per instance, but the org's quota caps one instance at 256M: nothing was uploaded or staged`)
	if big.code == 0 || strings.Contains(big.out(), "Uploading") {
		t.Errorf("a push past the instance memory cap: %s", big)
	}
	s.mustPando(t, "update-quota", "small", "-i", "-1")
	if r := s.as(t, devHome, "delete", "big", "-f", "-r"); r.code != 0 {
		t.Fatalf("dev delete big: %s", r)
	}
	cliDomainsRoutesAndQuotas(t, s, devHome)

	// What the developer may not do is refused, saying why.
	if r := s.as(t, devHome, "target", "-o", "team", "-s", "B"); r.code == 0 || !strings.Contains(r.out(), "space 'B' not found in org team") {
		t.Errorf("the developer targeted space B: %s", r)
	}
	if r := s.as(t, devHome, "create-org", "mine"); r.code == 0 || !strings.Contains(r.out(), "not authorized: admin rights needed (logged in as dev)") {
		t.Errorf("the developer created an org: %s", r)
	}

	// The developer changes their password and stays logged in; the old
	// one no longer works.
	if r := s.typed(t, devHome, "dev-pw\nnew-pw\n", "passwd"); r.code != 0 {
		t.Fatalf("dev passwd: %s", r)
	}
	requireOutput(t, s.as(t, devHome, "apps"), `(?m)^aapp\s`)
	if r := s.as(t, filepath.Join(t.TempDir(), "x"), "login", "-a", api, "-u", "dev", "-p", "dev-pw"); r.code == 0 {
		t.Errorf("login with the old password: %s", r)
	}

	// Deleting the org waits for its job: the admin's apps are gone then.
	if r := s.mustPando(t, "delete-org", "team", "-f"); !strings.Contains(r.out(), "OK") {
		t.Errorf("delete-org: %s", r)
	}
	requireOutput(t, s.pando(t, "orgs"), `(?m)^name$`)
	s.mustPando(t, "delete-user", "dev", "-f")
	if r := s.as(t, filepath.Join(t.TempDir(), "y"), "login", "-a", api, "-u", "dev", "-p", "new-pw"); r.code == 0 {
		t.Errorf("a deleted user logged in: %s", r)
	}
	if r := s.pando(t, "orgs"); strings.Contains(r.out(), "team") {
		t.Errorf("org team still listed after delete-org: %s", r)
	}
}
