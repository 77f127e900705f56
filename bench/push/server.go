package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/container/runc"
)

// server is a `pando server` child process with its own data dir and
// loopback ports.
type server struct {
	bin        string
	dataDir    string
	logPath    string
	apiURL     string
	routerAddr string
	password   string
	cmd        *exec.Cmd
	exited     chan struct{}
	log        *slog.Logger
}

// startServer runs `pando server` in dir and waits until its API answers.
func startServer(ctx context.Context, bin, dir string, debug bool, log *slog.Logger, extra ...string) (*server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &server{
		bin:        bin,
		dataDir:    filepath.Join(dir, "data"),
		logPath:    filepath.Join(dir, "server.log"),
		apiURL:     fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		routerAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		exited:     make(chan struct{}),
		log:        log,
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	level := "info"
	if debug {
		level = "debug"
	}
	cmd := exec.Command(bin, append([]string{"server",
		"--data-dir", s.dataDir,
		"--api-addr", strings.TrimPrefix(s.apiURL, "http://"),
		"--router-addr", s.routerAddr,
		"--log-level", level}, extra...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: ^C on the bench must not stop the server
	// before the bench has cleaned up through it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = serverEnv()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s server: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.awaitReady(ctx, 60*time.Second); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		_ = s.stop(sctx)
		return nil, fmt.Errorf("%w\n%s", err, s.logTail(20))
	}
	pw, err := os.ReadFile(filepath.Join(s.dataDir, "admin-password"))
	if err != nil {
		return nil, fmt.Errorf("read admin password: %w", err)
	}
	s.password = strings.TrimSpace(string(pw))
	log.Info("pando server up", "api", s.apiURL, "router", s.routerAddr, "data_dir", s.dataDir)
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

// awaitReady polls the API root until it answers 200, the process exits or
// the timeout passes.
func (s *server) awaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	delay := 10 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(filepath.Join(s.dataDir, "admin-password")); err == nil {
					return nil
				}
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-s.exited:
			t.Stop()
			return fmt.Errorf("pando server exited during start-up (%s)", s.cmd.ProcessState)
		case <-deadline.C:
			t.Stop()
			return fmt.Errorf("pando server did not answer on %s within %s", s.apiURL, timeout)
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// shutdownWait bounds the server's clean shutdown: it stops each instance
// with a grace period of up to 10 s, in parallel.
const shutdownWait = 30 * time.Second

// stop sends SIGTERM and waits for the server's clean shutdown (it stops
// its containers); SIGKILL when ctx ends first. Containers a killed server
// left behind are removed with the runc backend's Cleanup.
func (s *server) stop(ctx context.Context) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	var errs []error
	select {
	case <-s.exited:
	default:
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signal server: %w", err))
		}
		t := time.NewTimer(shutdownWait)
		select {
		case <-s.exited:
		case <-t.C:
			errs = append(errs, fmt.Errorf("pando server did not exit within %s of SIGTERM; killed it", shutdownWait))
			_ = s.cmd.Process.Kill()
			<-s.exited
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("pando server did not exit before the clean-up deadline; killed it"))
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		t.Stop()
	}
	// The server cleans up after itself; this catches what a kill left.
	stateDir := filepath.Join(s.dataDir, "containers")
	be, err := runc.New(runc.Config{StateDir: stateDir, LifecycleBinary: s.bin})
	if err == nil {
		err = be.Cleanup(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove leftover containers: %w", err))
	} else {
		removeCgroupParent(defaultCgroupParent(stateDir))
	}
	return errors.Join(errs...)
}

// logTail returns the last n lines of the server's log.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "server log (last lines):\n" + string(bytes.Join(lines, []byte("\n")))
}

// freePorts returns n distinct free loopback ports. Another process may
// take one before the server binds it; the server then fails to start and
// says so.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
