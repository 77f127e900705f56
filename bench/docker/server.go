package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is a `pando server` child with its own data dir (so its own,
// empty, layer cache) and loopback ports.
type server struct {
	bin                 string
	dir, dataDir, home  string
	apiAddr, routerAddr string
	logPath             string
	cmd                 *exec.Cmd
	exited              chan struct{}
	client              *http.Client
}

func startServer(ctx context.Context, bin, dir, insecureRegistry string) (*server, error) {
	s := &server{bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), home: filepath.Join(dir, "cli"),
		logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second}}
	var err error
	if s.apiAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.routerAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	s.cmd = exec.Command(bin, "server", "--data-dir", s.dataDir, "--api-addr", s.apiAddr,
		"--router-addr", s.routerAddr, "--insecure-registry", insecureRegistry, "--log-level", "info")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.cmd.Env = serverEnv()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s server: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := s.client.Get("http://" + s.apiAddr + "/")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(filepath.Join(s.dataDir, "admin-password")); err == nil {
				break
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("pando server exited during start-up (log in %s)", s.logPath)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("server did not come up: %v (log in %s)", err, s.logPath)
		}
		time.Sleep(50 * time.Millisecond) // polling for the server, with a deadline
	}
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		s.stop()
		return nil, err
	}
	if out, err := s.cli(ctx, nil, "login", "-a", "http://"+s.apiAddr, "-u", "admin", "-p", strings.TrimSpace(string(pw))); err != nil {
		s.stop()
		return nil, fmt.Errorf("log in: %w: %s", err, out)
	}
	return s, nil
}

// serverEnv drops what would make the server use another data dir or a
// fixed admin password.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PANDO_DATA_DIR=") || strings.HasPrefix(kv, "PANDO_ADMIN_PASSWORD=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *server) cli(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(append(os.Environ(), "PANDO_HOME="+s.home, "PANDO_DATA_DIR="+s.dataDir, "NO_COLOR=1"), env...)
	return cmd.CombinedOutput()
}

// stop sends SIGTERM (the server stops its containers) and kills the
// process group after 30 s.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// get200 is one GET / through the router for the app's route.
func (s *server) get200(ctx context.Context, app string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.routerAddr+"/", nil)
	if err != nil {
		return false
	}
	req.Host = app + ".localhost"
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func (s *server) token(ctx context.Context) (string, error) {
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {strings.TrimSpace(string(pw))}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.apiAddr+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.doJSON(req, &tok); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tok.AccessToken, nil
}

func (s *server) getJSON(ctx context.Context, token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.apiAddr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "bearer "+token)
	return s.doJSON(req, v)
}

func (s *server) doJSON(req *http.Request, v any) error {
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// appGUID finds the app named name.
func (s *server) appGUID(ctx context.Context, token, name string) (string, error) {
	var apps struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	if err := s.getJSON(ctx, token, "/v3/apps?names="+url.QueryEscape(name), &apps); err != nil {
		return "", err
	}
	if len(apps.Resources) != 1 {
		return "", fmt.Errorf("app %s: %d found", name, len(apps.Resources))
	}
	return apps.Resources[0].GUID, nil
}

// running counts the web process's RUNNING instances.
func (s *server) running(ctx context.Context, token, guid string) (int, error) {
	var stats struct {
		Resources []struct {
			State string `json:"state"`
		} `json:"resources"`
	}
	if err := s.getJSON(ctx, token, "/v3/apps/"+guid+"/processes/web/stats", &stats); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range stats.Resources {
		if r.State == "RUNNING" {
			n++
		}
	}
	return n, nil
}
