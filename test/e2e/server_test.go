package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/childproc"
	"github.com/pandoplatform/pando/internal/mountinfo"
)

// Bounds of the server fixture.
const (
	startTimeout    = 60 * time.Second
	shutdownTimeout = 30 * time.Second // a clean SIGTERM shutdown must fit
	maxLogShown     = 64 << 10
)

// server is one `pando server` process on its own temp data dir and free
// loopback ports. stop and start again reuse both, like an operator
// restarting the service.
type server struct {
	bin        string
	root       string // everything of this server lives below
	dataDir    string
	cliHome    string // PANDO_HOME of the CLI runner
	loNet      string // this server's loopback network, "127.A.B."
	logPath    string // the server's stdout and stderr, across restarts
	apiAddr    string
	routerAddr string
	// cellAPIAddr is the listener joined cells use (--cell-api-addr).
	cellAPIAddr string
	password    string // admin's, read on the first start
	// verb is the command the process runs: "server" (when empty) or
	// "api" (set before start).
	verb string
	// args are more flags for `pando server` (set before start).
	args []string
	// cliEnv is more environment for the CLI runner (NAME=VALUE).
	cliEnv []string
	// env is more environment for `pando server` (set before start).
	env []string
	// copiedSecrets: its data dir holds another API replica's secrets
	// (admin password included), so its first start prints none.
	copiedSecrets bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	waitErr  error
	starts   int
	apiToken string
	http     *http.Client
}

func newServer(bin string) (*server, error) {
	parent := env.scratch
	if parent == "" {
		parent = os.TempDir()
	}
	root, err := os.MkdirTemp(parent, "server-")
	if err != nil {
		return nil, err
	}
	s := &server{
		bin:     bin,
		root:    root,
		dataDir: filepath.Join(root, "data"),
		cliHome: filepath.Join(root, "cli-home"),
		logPath: filepath.Join(root, "server.log"),
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			// The router's answers are what the tests check, not where
			// they would redirect to.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	// A loopback network of its own (127.A.B.0/24): the server listens on
	// .1 and its joined cells on .2, .3, ..., so ports other tests' apps
	// and servers take on 127.0.0.1 never collide with this server's.
	s.loNet = fmt.Sprintf("127.%d.%d.", 1+rand.IntN(254), 1+rand.IntN(254))
	if err := s.pickAddrs(); err != nil {
		return nil, err
	}
	return s, nil
}

// pickAddrs chooses the server's listen addresses on its own IP.
func (s *server) pickAddrs() error {
	var err error
	ip := s.loNet + "1"
	if s.apiAddr, err = freeLoopbackAddr(ip); err != nil {
		return err
	}
	if s.routerAddr, err = freeLoopbackAddr(ip); err != nil {
		return err
	}
	if s.cellAPIAddr, err = freeLoopbackAddr(ip); err != nil {
		return err
	}
	return nil
}

// cellAPIArgs is the --cell-api-addr flag, none when a test wants the
// server's default (its API port + 1).
func (s *server) cellAPIArgs() []string {
	if s.cellAPIAddr == "" {
		return nil
	}
	return []string{"--cell-api-addr", s.cellAPIAddr}
}

// loopbackIP maps a test's cell address 127.0.0.N onto this server's own
// loopback network (127.A.B.N).
func (s *server) loopbackIP(ip string) string {
	if rest, ok := strings.CutPrefix(ip, "127.0.0."); ok {
		return s.loNet + rest
	}
	return ip
}

// start runs the server and returns once its API answers GET / (and, on
// the first start, the CLI is logged in as admin), one start of the run
// at a time (startTurn). A first start whose
// port was taken between picking and binding (another test's process got
// it) is tried again on new ports; later starts keep their addresses.
func (s *server) start() error {
	defer env.gates.startTurn()()
	for attempt := 1; ; attempt++ {
		err := s.startOnce()
		if err == nil || attempt == 3 || !s.lostPortRace() {
			return err
		}
		if err := s.pickAddrs(); err != nil {
			return err
		}
	}
}

// lostPortRace reports whether the server has only run once and exited
// because one of its addresses was in use.
func (s *server) lostPortRace() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.starts != 1 || s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
	default:
		return false
	}
	log, _ := os.ReadFile(s.logPath)
	if !bytes.Contains(log, []byte("address already in use")) {
		return false
	}
	s.cmd, s.exited, s.starts = nil, nil, 0
	return true
}

func (s *server) startOnce() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("server already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	verb := s.verb
	if verb == "" {
		verb = "server"
	}
	cmd := exec.Command(s.bin, append([]string{verb,
		"--data-dir", s.dataDir, "--api-addr", s.apiAddr, "--router-addr", s.routerAddr},
		append(s.cellAPIArgs(), s.args...)...)...)
	cmd.Env = append(baseEnv(), s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: stopping it never signals the test binary. Dies
	// with the test binary if that is killed (childproc).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waited, err := childproc.Start(cmd)
	logf.Close()
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start pando server: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	s.starts++
	first := s.starts == 1
	s.mu.Unlock()
	go func() {
		err := <-waited
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()

	if err := s.waitReady(exited); err != nil {
		return err
	}
	if !first {
		return nil
	}
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		return fmt.Errorf("admin password file: %w", err)
	}
	s.password = strings.TrimSpace(string(pw))
	if s.password == "" {
		return errors.New("admin password file is empty")
	}
	log, _ := os.ReadFile(s.logPath)
	if !bytes.Contains(log, []byte("Admin password: "+s.password)) && !s.copiedSecrets {
		return fmt.Errorf("first start did not print the admin password stored in %s/admin-password", s.dataDir)
	}
	r := s.runCLI(context.Background(), time.Minute, "login", "-a", "http://"+s.apiAddr, "-u", "admin", "-p", s.password)
	if r.err != nil || r.code != 0 {
		return fmt.Errorf("log in as admin: %s", r)
	}
	return nil
}

// waitReady polls GET / on the API until it answers 200, the process
// exits, or the start timeout passes.
func (s *server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var last string
	for {
		resp, err := s.http.Get("http://" + s.apiAddr + "/")
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return fmt.Errorf("pando server exited before its API answered (%v)", s.exitErr())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pando server API did not answer GET / within %s (last: %s)", startTimeout, last)
		}
	}
}

func (s *server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

func (s *server) running() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.exited
}

// stop sends SIGTERM and requires a clean exit: status 0 within the
// shutdown timeout, no runc container and no mount left behind. A server
// that hangs gets SIGQUIT (its goroutine dump lands in the log), then
// SIGKILL.
func (s *server) stop() error {
	cmd, exited := s.running()
	if cmd == nil {
		return nil
	}
	defer func() {
		s.mu.Lock()
		s.cmd, s.exited = nil, nil
		s.mu.Unlock()
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	began := time.Now()
	select {
	case <-exited:
	case <-time.After(shutdownTimeout):
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			s.killGroup(cmd)
			<-exited
		}
		return fmt.Errorf("pando server did not exit within %s of SIGTERM (sent SIGQUIT: goroutine dump in the log)", shutdownTimeout)
	}
	if err := s.exitErr(); err != nil {
		return fmt.Errorf("pando server exited with %v after SIGTERM, want status 0", err)
	}
	var problems []string
	if ids, err := s.containers(); err != nil {
		problems = append(problems, err.Error())
	} else if len(ids) > 0 {
		problems = append(problems, fmt.Sprintf("runc containers left after shutdown: %v", ids))
	}
	if ms, err := mountinfo.Under(s.root); err != nil {
		problems = append(problems, err.Error())
	} else if len(ms) > 0 {
		problems = append(problems, fmt.Sprintf("mounts left after shutdown: %v", ms))
	}
	if len(problems) > 0 {
		return fmt.Errorf("pando server exited 0 after %s but not cleanly: %s", time.Since(began).Round(time.Millisecond), strings.Join(problems, "; "))
	}
	return nil
}

func (s *server) killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

// killAll kills the server's process group with SIGKILL (the server and
// whatever it started that did not leave the group) and waits for it.
func (s *server) killAll() {
	cmd, exited := s.running()
	if cmd == nil {
		return
	}
	s.killGroup(cmd)
	<-exited
	s.mu.Lock()
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
}

// cleanup kills the server if it still runs, then removes what it left
// (cleanNode): runc containers, mounts, cgroups and its directory.
func (s *server) cleanup() error {
	s.killAll()
	return cleanNode(s.root, s.dataDir, defaultRunDir)
}

// runcRoot is where the runc backend keeps runc's state:
// <data-dir>/containers/runc (internal/container/runc).
func (s *server) runcRoot() string { return filepath.Join(s.dataDir, "containers", "runc") }

// containers lists the runc containers of this server's runc root.
func (s *server) containers() ([]string, error) { return runcContainers(s.runcRoot()) }

// logSize is the current length of the server log.
func (s *server) logSize() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns what the server logged after offset, at most max bytes
// (the end).
func (s *server) logTail(offset int64, max int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)\n", err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	b = b[offset:]
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// showLogOnFailure prints what the server logs during t when t fails.
func (s *server) showLogOnFailure(t *testing.T) {
	from := s.logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (%s) during %s:\n%s", s.logPath, t.Name(), s.logTail(from, maxLogShown))
		}
	})
}

// baseEnv is the environment without any PANDO_ setting of the caller.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PANDO_") {
			out = append(out, kv)
		}
	}
	return out
}
