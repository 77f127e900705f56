package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Per-command bounds of the CLI runner.
const (
	cliTimeout  = 90 * time.Second
	pushTimeout = 4 * time.Minute // a cold Go build in the container
	waitTimeout = 60 * time.Second
)

// result is one CLI invocation.
type result struct {
	args           []string
	stdout, stderr string
	code           int
	err            error // the command could not run or timed out
}

// out is stdout and stderr together, for "the user sees X" checks.
func (r result) out() string { return r.stdout + r.stderr }

func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pando %s: exit %d", strings.Join(r.args, " "), r.code)
	if r.err != nil {
		fmt.Fprintf(&b, " (%v)", r.err)
	}
	fmt.Fprintf(&b, "\n--- stdout:\n%s\n--- stderr:\n%s", r.stdout, r.stderr)
	return b.String()
}

// runCLI runs `pando args...` as this server's user: its own PANDO_HOME,
// PANDO_DATA_DIR pointing at the server's data dir.
func (s *server) runCLI(ctx context.Context, timeout time.Duration, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(baseEnv(), "PANDO_HOME="+s.cliHome, "PANDO_DATA_DIR="+s.dataDir, "NO_COLOR=1")
	cmd.Env = append(cmd.Env, s.cliEnv...)
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code, r.err = -1, fmt.Errorf("timed out after %s", timeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		r.code, r.err = -1, err
	}
	return r
}

// pando runs a CLI verb with the default timeout.
func (s *server) pando(t *testing.T, args ...string) result {
	t.Helper()
	return s.pandoWithin(t, cliTimeout, args...)
}

func (s *server) pandoWithin(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	r := s.runCLI(context.Background(), timeout, args...)
	if r.err != nil {
		t.Fatalf("%s", r)
	}
	return r
}

// mustPando runs a CLI verb and requires exit status 0.
func (s *server) mustPando(t *testing.T, args ...string) result {
	t.Helper()
	timeout := cliTimeout
	if len(args) > 0 && (args[0] == "push" || args[0] == "restage") {
		timeout = pushTimeout
	}
	r := s.pandoWithin(t, timeout, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	return r
}

// get sends one GET through the router with the given Host header.
func (s *server) get(host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.routerAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// curlRoute GETs host+path through the router until it answers 200 and
// returns the body.
func (s *server) curlRoute(t *testing.T, host, path string) string {
	t.Helper()
	_, body := s.waitRoute(t, host, path, "status 200", func(status int, _ string) bool { return status == http.StatusOK })
	return body
}

// waitRoute GETs host+path through the router until ok accepts the answer
// or the deadline passes.
func (s *server) waitRoute(t *testing.T, host, path, want string, ok func(status int, body string) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last string
	for {
		status, body, err := s.get(host, path)
		if err == nil && ok(status, body) {
			return status, body
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %q", status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s%s through the router: want %s within %s; last answer: %s", host, path, want, waitTimeout, last)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// eventually polls cond until it holds or the deadline passes; cond
// describes the state it saw.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen:\n%s", what, timeout, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// api calls the CF v3 API as admin and decodes a JSON answer into v (or
// returns the raw body when v is nil).
func (s *server) api(t *testing.T, path string, v any) []byte {
	t.Helper()
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+s.apiAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: decode: %v: %s", path, err, body)
		}
	}
	return body
}

// token is an admin access token from the UAA password grant (client cf,
// empty secret), as the cf CLI gets one.
func (s *server) token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiToken != "" {
		return s.apiToken, nil
	}
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {s.password}}
	req, err := http.NewRequest(http.MethodPost, "http://"+s.apiAddr+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("get a token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("get a token: %s: %s", resp.Status, body)
	}
	s.apiToken = tok.AccessToken
	return s.apiToken, nil
}

// appGUID looks an app up by name.
func (s *server) appGUID(t *testing.T, name string) string {
	t.Helper()
	var list struct {
		Resources []struct {
			GUID string `json:"guid"`
			Name string `json:"name"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps?names="+url.QueryEscape(name), &list)
	for _, a := range list.Resources {
		if a.Name == name {
			return a.GUID
		}
	}
	t.Fatalf("app %s not found in GET /v3/apps", name)
	return ""
}

// writeFiles creates dir with the given files (slash paths, contents).
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// staticSite is a directory the staticfile buildpack serves: index.html
// with the given body and an empty Staticfile.
func staticSite(t *testing.T, index string) string {
	t.Helper()
	return writeFiles(t, t.TempDir(), map[string]string{"index.html": index, "Staticfile": ""})
}

// binaryServerSource is a tiny HTTP server that shows what the platform
// gave its instance.
const binaryServerSource = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	fmt.Printf("e2e server listening on %s as instance %s\n", port, os.Getenv("CF_INSTANCE_INDEX"))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "binary app index=%s greeting=%s\n", os.Getenv("CF_INSTANCE_INDEX"), os.Getenv("GREETING"))
	})
	// /echo switches to an echo protocol, as a websocket would.
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw)
	})
	err := http.ListenAndServe(":"+port, nil)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
`

// binaryApp is a directory holding only ./server, built on the host once
// per run (static, CGO-free).
func binaryApp(t *testing.T) string {
	t.Helper()
	env.binaryOnce.Do(func() {
		src := filepath.Join(env.scratch, "binary-src")
		out := filepath.Join(env.scratch, "binary-app")
		for _, d := range []string{src, out} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				env.binaryErr = err
				return
			}
		}
		files := map[string]string{"go.mod": "module example.com/e2eserver\n\ngo 1.22\n", "main.go": binaryServerSource}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
				env.binaryErr = err
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", filepath.Join(out, "server"), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
		if b, err := cmd.CombinedOutput(); err != nil {
			env.binaryErr = fmt.Errorf("build the test server: %w\n%s", err, b)
			return
		}
		env.binaryDir = out
	})
	if env.binaryErr != nil {
		t.Fatal(env.binaryErr)
	}
	return env.binaryDir
}

// buildpackZip writes a buildpack zip with the given executable scripts.
func buildpackZip(t *testing.T, scripts map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "buildpack.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range scripts {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// requireOutput fails unless the output matches every pattern (regular
// expressions).
func requireOutput(t *testing.T, r result, patterns ...string) {
	t.Helper()
	var missing []string
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.out()) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("output lacks %q\n%s", missing, r)
	}
}

// deleteApp removes an app at the end of a test on the shared server, so
// later tests do not share the cell with it.
func (s *server) deleteAppOnCleanup(t *testing.T, name string) {
	t.Cleanup(func() {
		r := s.runCLI(context.Background(), cliTimeout, "delete", name, "-f")
		if r.err != nil || r.code != 0 {
			t.Logf("clean up app %s: %s", name, r)
		}
	})
}

// background is a CLI command running while the test does other things.
type background struct {
	args   []string
	out    *syncBuffer
	done   chan struct{}
	result result
}

// startCLI starts `pando args...` without waiting for it.
func (s *server) startCLI(t *testing.T, timeout time.Duration, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(baseEnv(), "PANDO_HOME="+s.cliHome, "PANDO_DATA_DIR="+s.dataDir, "NO_COLOR=1")
	b := &background{args: args, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pando %v: %v", args, err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		b.result = result{args: args, stdout: b.out.String()}
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			b.result.code, b.result.err = -1, fmt.Errorf("timed out after %s", timeout)
		case errors.As(err, &ee):
			b.result.code = ee.ExitCode()
		case err != nil:
			b.result.code, b.result.err = -1, err
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// wait returns the command's result once it exits, failing t if that
// takes longer than timeout.
func (b *background) wait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	select {
	case <-b.done:
		return b.result
	case <-time.After(timeout):
		t.Fatalf("pando %s still runs after %s; output so far:\n%s", strings.Join(b.args, " "), timeout, b.out.String())
		return result{}
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
