package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// call sends one API request with a bearer token and decodes a JSON answer.
func (s *server) call(t *testing.T, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.apiAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		out["Location"] = loc
	}
	return resp.StatusCode, out
}

// must is call that requires want.
func (s *server) must(t *testing.T, token, method, path, body string, want int) map[string]any {
	t.Helper()
	code, out := s.call(t, token, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %v", method, path, code, want, out)
	}
	return out
}

// as runs the CLI with its own PANDO_HOME, as another user on another machine.
func (s *server) as(t *testing.T, home string, args ...string) result {
	t.Helper()
	saved := s.cliEnv
	s.cliEnv = append(append([]string{}, saved...), "PANDO_HOME="+home, "PANDO_DATA_DIR=")
	defer func() { s.cliEnv = saved }()
	timeout := cliTimeout
	if args[0] == "push" {
		timeout = pushTimeout
	}
	return s.pandoWithin(t, timeout, args...)
}

// TestTenancy_teamWithRoles: an admin makes an org with two spaces and
// two users; the space developer pushes to A and cannot reach B, and a
// 512M org quota refuses their push of 3×256M; the space auditor sees B's
// apps but not their environment and cannot push; deleting the org removes
// its apps and their containers.
func TestTenancy_teamWithRoles(t *testing.T) {
	t.Parallel()
	// Over HTTPS on :443 of a loopback address, as a team's cf or pando
	// CLIs reach it.
	ip, err := freeLoopback443()
	if err != nil {
		t.Fatal(err)
	}
	s := ownServer(t, "--router-tls-addr", net.JoinHostPort(ip, "443"))
	s.cliEnv = []string{"SSL_CERT_FILE=" + filepath.Join(s.dataDir, "router-cert.pem")}
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	org := s.must(t, admin, "POST", "/v3/organizations", `{"name":"team"}`, 201)["guid"].(string)
	space := func(name string) string {
		return s.must(t, admin, "POST", "/v3/spaces", `{"name":"`+name+`","relationships":{"organization":{"data":{"guid":"`+org+`"}}}}`, 201)["guid"].(string)
	}
	spaceA, spaceB := space("A"), space("B")
	user := func(name, pw string) {
		id := s.must(t, admin, "POST", "/Users", `{"userName":"`+name+`","password":"`+pw+`","origin":"","name":{"familyName":"`+name+`","givenName":"`+name+`"},"emails":[{"value":"`+name+`","primary":true}]}`, 201)["id"].(string)
		s.must(t, admin, "POST", "/v3/users", `{"guid":"`+id+`"}`, 201)
	}
	user("dev", "dev-pw")
	user("aud", "aud-pw")
	role := func(typ, rel, guid, name string) {
		s.must(t, admin, "POST", "/v3/roles", `{"type":"`+typ+`","relationships":{"`+rel+`":{"data":{"guid":"`+guid+`"}},"user":{"data":{"username":"`+name+`"}}}}`, 201)
	}
	role("organization_user", "organization", org, "dev")
	role("organization_user", "organization", org, "aud")
	role("space_developer", "space", spaceA, "dev")
	role("space_auditor", "space", spaceB, "aud")

	api := "https://" + ip
	root := t.TempDir()
	adminHome, devHome, audHome := filepath.Join(root, "admin"), filepath.Join(root, "dev"), filepath.Join(root, "aud")

	// The admin pushes an app with a secret into B.
	if r := s.as(t, adminHome, "login", "-a", api, "-u", "admin", "-p", s.password, "-o", "team", "-s", "B"); r.code != 0 {
		t.Fatalf("admin login: %s", r)
	}
	if r := s.as(t, adminHome, "push", "bapp", "-p", staticSite(t, "B's app\n")); r.code != 0 {
		t.Fatalf("admin push to B: %s", r)
	}
	bGUID := s.must(t, admin, "GET", "/v3/apps?names=bapp&space_guids="+spaceB, "", 200)["resources"].([]any)[0].(map[string]any)["guid"].(string)
	s.must(t, admin, "PATCH", "/v3/apps/"+bGUID+"/environment_variables", `{"var":{"SECRET":"hunter2"}}`, 200)

	// The developer works in A and cannot reach B.
	if r := s.as(t, devHome, "login", "-a", api, "-u", "dev", "-p", "dev-pw", "-o", "team", "-s", "A"); r.code != 0 {
		t.Fatalf("dev login: %s", r)
	}
	requireOutput(t, s.as(t, devHome, "target"), `https://`+regexp.QuoteMeta(ip), `(?m)space:\s+A$`)
	if r := s.as(t, devHome, "push", "aapp", "-p", staticSite(t, "A's app\n")); r.code != 0 {
		t.Fatalf("dev push to A: %s", r)
	}
	waitBody(t, s, "aapp.localhost", "A's app\n")
	if r := s.as(t, devHome, "target", "-o", "team", "-s", "B"); r.code == 0 {
		t.Errorf("the developer targeted space B: %s", r)
	}
	devToken := userToken(t, s, "dev", "dev-pw")
	if code, _ := s.call(t, devToken, "GET", "/v3/apps/"+bGUID, ""); code != 404 {
		t.Errorf("dev GET B's app: %d, want 404", code)
	}
	if code, _ := s.call(t, devToken, "POST", "/v3/apps/"+bGUID+"/actions/stop", ""); code != 404 {
		t.Errorf("dev stops B's app: %d, want 404", code)
	}

	// A quota of 512M on the org (its two apps use 256M each) refuses a
	// push of 3 instances of 256M with CF's text.
	q := s.must(t, admin, "POST", "/v3/organization_quotas", `{"name":"small","apps":{"total_memory_in_mb":512}}`, 201)["guid"].(string)
	s.must(t, admin, "POST", "/v3/organization_quotas/"+q+"/relationships/organizations", `{"data":[{"guid":"`+org+`"}]}`, 200)
	r := s.as(t, devHome, "push", "big", "-i", "3", "-m", "256M", "-p", staticSite(t, "big\n"))
	if r.code == 0 || !strings.Contains(r.out(), "memory quota_exceeded") {
		t.Errorf("push past the quota: %s", r)
	}

	// The auditor sees B's app but not its environment, and cannot push.
	if r := s.as(t, audHome, "login", "-a", api, "-u", "aud", "-p", "aud-pw", "-o", "team", "-s", "B"); r.code != 0 {
		t.Fatalf("auditor login: %s", r)
	}
	requireOutput(t, s.as(t, audHome, "apps"), `bapp`)
	audToken := userToken(t, s, "aud", "aud-pw")
	if code, body := s.call(t, audToken, "GET", "/v3/apps/"+bGUID+"/env", ""); code != 403 || strings.Contains(body2s(body), "hunter2") {
		t.Errorf("auditor reads B's env: %d %v", code, body)
	}
	if r := s.as(t, audHome, "push", "audapp", "-p", staticSite(t, "no\n")); r.code == 0 {
		t.Errorf("the auditor pushed: %s", r)
	}

	// Deleting the org removes its apps and their containers.
	before, err := s.containers()
	if err != nil || len(before) == 0 {
		t.Fatalf("containers before: %v %v", before, err)
	}
	loc := s.must(t, admin, "DELETE", "/v3/organizations/"+org, "", 202)["Location"].(string)
	u, _ := url.Parse(loc)
	if job := s.must(t, admin, "GET", u.Path, "", 200); job["state"] != "COMPLETE" {
		t.Fatalf("delete-org job: %v", job)
	}
	if code, _ := s.call(t, admin, "GET", "/v3/apps/"+bGUID, ""); code != 404 {
		t.Errorf("B's app after delete-org: %d", code)
	}
	eventually(t, "the org's containers are gone", waitTimeout, func() (bool, string) {
		ids, err := s.containers()
		return err == nil && len(ids) == 0, strings.Join(ids, ",")
	})
}

func body2s(v map[string]any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitBody waits until the app answers body through the router.
func waitBody(t *testing.T, s *server, host, body string) {
	t.Helper()
	eventually(t, host+" answers", waitTimeout, func() (bool, string) {
		code, got, err := s.get(host, "/")
		return err == nil && code == 200 && got == body, got
	})
}

// userToken logs a user in with the password grant, as the cf CLI does.
func userToken(t *testing.T, s *server, user, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}}
	req, err := http.NewRequest("POST", "http://"+s.apiAddr+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("%s login: %s %v", user, resp.Status, err)
	}
	return tok.AccessToken
}
