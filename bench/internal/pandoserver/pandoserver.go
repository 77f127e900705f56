// Package pandoserver runs a `pando server` child for the benchmarks: its
// own data dir and free loopback ports, the CLI logged in as admin, and the
// few API reads the benchmarks need.
package pandoserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/childproc"
)

// Server is a running `pando server` child.
type Server struct {
	Bin                 string
	Dir, DataDir, Home  string
	APIAddr, RouterAddr string
	LogPath             string
	Password            string // admin's
	Client              *http.Client
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// FreeAddr is a free loopback HOST:PORT (free when asked).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs `bin server` with its data dir under dir, free loopback
// ports and the extra flags args, waits for the API and logs the CLI in
// as admin (PANDO_HOME under dir).
func Start(ctx context.Context, bin, dir string, args ...string) (*Server, error) {
	s := &Server{Bin: bin, Dir: dir, DataDir: filepath.Join(dir, "data"), Home: filepath.Join(dir, "cli"),
		LogPath: filepath.Join(dir, "server.log"), exited: make(chan struct{}),
		Client: &http.Client{Timeout: 5 * time.Second}}
	var err error
	if s.APIAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if s.RouterAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	s.cmd = exec.Command(bin, append([]string{"server", "--data-dir", s.DataDir, "--api-addr", s.APIAddr,
		"--router-addr", s.RouterAddr}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Env = serverEnv()
	// Dies with the bench, and only then (childproc).
	waited, err := childproc.Start(s.cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s server: %w", bin, err)
	}
	go func() {
		<-waited
		close(s.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := s.Client.Get("http://" + s.APIAddr + "/")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(filepath.Join(s.DataDir, "admin-password")); err == nil {
				break
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("pando server exited during start-up (log in %s)\n%s", s.LogPath, s.LogTail(20))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("server did not come up: %v (log in %s)\n%s", err, s.LogPath, s.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond) // polling for the server, with a deadline
	}
	pw, err := os.ReadFile(filepath.Join(s.DataDir, "admin-password"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Password = strings.TrimSpace(string(pw))
	if out, err := s.CLI(ctx, nil, "login", "-a", "http://"+s.APIAddr, "-u", "admin", "-p", s.Password); err != nil {
		s.Stop()
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

// CLI runs the pando CLI as this server's admin, with env added.
func (s *Server) CLI(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = append(append(os.Environ(), "PANDO_HOME="+s.Home, "PANDO_DATA_DIR="+s.DataDir, "NO_COLOR=1"), env...)
	return cmd.CombinedOutput()
}

// Pid is the server process's id (0 before it started).
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// shutdownWait bounds the server's clean shutdown: it stops each instance
// with a grace period of up to 10 s, in parallel.
const shutdownWait = 30 * time.Second

// Stop sends SIGTERM (the server stops its containers) and kills the
// process group after 30 s; the error says when it had to.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(shutdownWait):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("pando server did not exit within %s of SIGTERM; killed it", shutdownWait)
	}
}

// LogTail is the last n lines of the server's log, for an error message.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "server log (last lines):\n" + string(bytes.Join(lines, []byte("\n")))
}

// Token is an admin access token.
func (s *Server) Token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {s.Password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.APIAddr+"/oauth/token", strings.NewReader(form.Encode()))
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

// GetJSON reads path from the API into v.
func (s *Server) GetJSON(ctx context.Context, token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.APIAddr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "bearer "+token)
	return s.doJSON(req, v)
}

func (s *Server) doJSON(req *http.Request, v any) error {
	resp, err := s.Client.Do(req)
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

// AppGUID finds the app named name.
func (s *Server) AppGUID(ctx context.Context, token, name string) (string, error) {
	var apps struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	if err := s.GetJSON(ctx, token, "/v3/apps?names="+url.QueryEscape(name), &apps); err != nil {
		return "", err
	}
	if len(apps.Resources) != 1 {
		return "", fmt.Errorf("app %s: %d found", name, len(apps.Resources))
	}
	return apps.Resources[0].GUID, nil
}
