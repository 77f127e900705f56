package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/childproc"
)

// cellProc is one `pando cell` process joined to a server: its own
// loopback IP, data dir and rep port, as a cell on another machine would
// have. The next steps (cell loss, evacuation, restarts) reuse it.
type cellProc struct {
	s       *server
	id      string
	ip      string
	addr    string // the rep's IP:PORT (--addr)
	root    string
	dataDir string
	logPath string
	token   string // --token (default: the server's cell-token)
	args    []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// cellView is one cell of GET /pando/v1/cells.
type cellView struct {
	ID       string `json:"id"`
	Zone     string `json:"zone"`
	State    string `json:"state"`
	MemoryMB struct {
		Total int `json:"total"`
		Used  int `json:"used"`
	} `json:"memory_mb"`
	Instances []struct {
		AppName string `json:"app_name"`
		Index   int    `json:"index"`
		State   string `json:"state"`
	} `json:"instances"`
}

// cells lists the server's cells through its API.
func (s *server) cells(t *testing.T) []cellView {
	t.Helper()
	var v struct {
		Resources []cellView `json:"resources"`
	}
	s.api(t, "/pando/v1/cells", &v)
	return v.Resources
}

// cellToken is the server's join token.
func (s *server) cellToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "cell-token"))
	if err != nil {
		t.Fatalf("join token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// newCell prepares (does not start) cell id on ip (a 127.0.0.0/8
// address); args are more `pando cell` flags. It is killed and cleaned
// up when t ends.
func (s *server) newCell(t *testing.T, id, ip string, args ...string) *cellProc {
	t.Helper()
	ip = s.loopbackIP(ip)
	root, err := os.MkdirTemp(env.scratch, "cell-")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	c := &cellProc{s: s, id: id, ip: ip, addr: addr, root: root, dataDir: filepath.Join(root, "data"),
		logPath: filepath.Join(root, "cell.log"), token: s.cellToken(t), args: args}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cell %s log:\n%s", id, c.logTail(maxLogShown))
		}
		if err := c.cleanup(); err != nil {
			t.Errorf("clean up cell %s: %v", id, err)
		}
	})
	return c
}

// joinCell starts cell id on ip and waits until the server lists it
// healthy.
func (s *server) joinCell(t *testing.T, id, ip string, args ...string) *cellProc {
	t.Helper()
	c := s.newCell(t, id, ip, args...)
	c.startHealthy(t)
	return c
}

// startHealthy starts the cell process and waits until the server lists
// the cell healthy.
func (c *cellProc) startHealthy(t *testing.T) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cell "+c.id+" registered and healthy", startTimeout, func() (bool, string) {
		if err := c.exitedErr(); err != nil {
			t.Fatalf("cell %s exited: %v\n%s", c.id, err, c.logTail(maxLogShown))
		}
		cs := c.s.cells(t)
		for _, v := range cs {
			if v.ID == c.id && v.State == "healthy" {
				return true, ""
			}
		}
		return false, fmt.Sprint(cs)
	})
}

// start runs the cell process.
func (c *cellProc) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("cell already running")
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.s.bin, append([]string{"cell", "--join", "http://" + c.s.apiAddr, "--token", c.token,
		"--data-dir", c.dataDir, "--addr", c.addr, "--id", c.id}, c.args...)...)
	cmd.Env = baseEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waited, err := childproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("start pando cell: %w", err)
	}
	exited := make(chan struct{})
	c.cmd, c.exited, c.waitErr = cmd, exited, nil
	go func() {
		err := <-waited
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		close(exited)
	}()
	return nil
}

// exitedErr is nil while the cell runs, else how it exited.
func (c *cellProc) exitedErr() error {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	if exited == nil {
		return errors.New("not started")
	}
	select {
	case <-exited:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.waitErr == nil {
			return errors.New("exit status 0")
		}
		return c.waitErr
	default:
		return nil
	}
}

// wait waits up to timeout for the cell to exit and returns how it did.
func (c *cellProc) wait(timeout time.Duration) error {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	select {
	case <-exited:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("cell %s still running after %s", c.id, timeout)
	}
}

// stop sends SIGTERM and requires a clean exit within the shutdown
// timeout.
func (c *cellProc) stop() error {
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err := c.wait(shutdownTimeout)
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
	return err
}

// kill sends SIGKILL to the cell's process group (its containers live
// on, as after a crash).
func (c *cellProc) kill() {
	c.mu.Lock()
	cmd := c.cmd
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = c.wait(shutdownTimeout)
}

// cleanup kills the cell and removes its containers, mounts, cgroups and
// directory, as the server fixture does for its own.
func (c *cellProc) cleanup() error {
	c.kill()
	return (&server{root: c.root, dataDir: c.dataDir}).cleanup()
}

// logTail is the end of the cell's log.
func (c *cellProc) logTail(max int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no cell log: %v)", err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
