package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/bench/internal/pandoserver"
	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/childproc"
	"github.com/pandoplatform/pando/internal/mountinfo"
)

// cluster is the server (with its own cell, cell-0) and the two joined
// cells.
type cluster struct {
	srv    *pandoserver.Server
	cells  []*cellProc
	router *http.Client
	// token is an admin token for the cells view, taken again after
	// tokenLife (the server's last 20 minutes).
	token   string
	tokenAt time.Time
}

const tokenLife = 10 * time.Minute

// startCluster starts the server and joins cell-b and cell-c, each with
// its own data dir and loopback address, and waits until both are listed
// healthy.
func startCluster(ctx context.Context, bin, dir string, stderr io.Writer) (*cluster, error) {
	cellAPI, err := pandoserver.FreeAddr()
	if err != nil {
		return nil, err
	}
	srvDir := filepath.Join(dir, "server")
	if err := os.MkdirAll(srvDir, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintln(stderr, "starting pando server ...")
	srv, err := pandoserver.Start(ctx, bin, srvDir, "--cell-api-addr", cellAPI, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	cl := &cluster{srv: srv, router: &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}}
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "cell-token"))
	if err != nil {
		cl.stop(stderr)
		return nil, fmt.Errorf("join token: %w", err)
	}
	lo := loopbackNet()
	for i, id := range []string{"cell-b", "cell-c"} {
		c, err := newCell(bin, filepath.Join(dir, id), id, lo+strconv.Itoa(i+2), "http://"+srv.APIAddr, strings.TrimSpace(string(token)))
		if err != nil {
			cl.stop(stderr)
			return nil, err
		}
		cl.cells = append(cl.cells, c)
		fmt.Fprintf(stderr, "joining %s at %s ...\n", id, c.addr)
		if err := c.start(); err != nil {
			cl.stop(stderr)
			return nil, err
		}
	}
	for _, c := range cl.cells {
		if err := cl.waitHealthy(ctx, c); err != nil {
			cl.stop(stderr)
			return nil, err
		}
	}
	return cl, nil
}

// waitHealthy waits until the server lists c healthy.
func (cl *cluster) waitHealthy(ctx context.Context, c *cellProc) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if c.exitedEarly() {
			return fmt.Errorf("%s exited (log: %s)", c.id, c.logPath)
		}
		cs, err := cl.cellsView(ctx)
		if err == nil {
			for _, v := range cs {
				if v.ID == c.id && v.State == "healthy" {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within a minute (last: %v %v; log: %s)", c.id, cs, err, c.logPath)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// stop stops the cells (SIGTERM, then SIGKILL and removal of what they
// left) and the server.
func (cl *cluster) stop(stderr io.Writer) {
	for _, c := range cl.cells {
		if err := c.stop(20 * time.Second); err != nil {
			fmt.Fprintf(stderr, "warning: %s: %v\n", c.id, err)
		}
		if err := c.cleanup(); err != nil {
			fmt.Fprintf(stderr, "warning: clean up %s: %v\n", c.id, err)
		}
	}
	cl.srv.Stop()
}

// cellView is one cell of GET /pando/v1/cells.
type cellView struct {
	ID        string         `json:"id"`
	State     string         `json:"state"`
	Instances []cellInstance `json:"instances"`
}

type cellInstance struct {
	AppName string `json:"app_name"`
	Index   int    `json:"index"`
	State   string `json:"state"`
}

func (cl *cluster) cellsView(ctx context.Context) ([]cellView, error) {
	if cl.token == "" || time.Since(cl.tokenAt) > tokenLife {
		token, err := cl.srv.Token(ctx)
		if err != nil {
			return nil, err
		}
		cl.token, cl.tokenAt = token, time.Now()
	}
	var v struct {
		Resources []cellView `json:"resources"`
	}
	if err := cl.srv.GetJSON(ctx, cl.token, "/pando/v1/cells", &v); err != nil {
		return nil, err
	}
	return v.Resources, nil
}

// cellProc is one `pando cell` process.
type cellProc struct {
	bin, id, addr         string
	dir, dataDir, logPath string
	joinURL, token        string
	cmd                   *exec.Cmd
	exited                chan struct{}
}

func newCell(bin, dir, id, ip, joinURL, token string) (*cellProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("a free port on %s: %w", ip, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &cellProc{bin: bin, id: id, addr: addr, dir: dir, dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "cell.log"), joinURL: joinURL, token: token}, nil
}

// start runs the cell (again, on the same data dir after a kill).
func (c *cellProc) start() error {
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(c.bin, "cell", "--join", c.joinURL, "--token", c.token, "--data-dir", c.dataDir,
		"--addr", c.addr, "--id", c.id, "--memory", "4G")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PANDO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Dies with the bench, and only then (childproc).
	waited, err := childproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.id, err)
	}
	exited := make(chan struct{})
	go func() { <-waited; close(exited) }()
	c.cmd, c.exited = cmd, exited
	return nil
}

func (c *cellProc) exitedEarly() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the cell's process group: its containers live on
// (killContainers ends them).
func (c *cellProc) kill() {
	if c.cmd == nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// stop sends SIGTERM and waits up to timeout, then kills.
func (c *cellProc) stop(timeout time.Duration) error {
	if c.cmd == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		c.cmd = nil
		return nil
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("still running %v after SIGTERM: killed", timeout)
	}
}

func (c *cellProc) runcRoot() string { return filepath.Join(c.dataDir, "containers", "runc") }

// containers lists the cell's runc containers.
func (c *cellProc) containers(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(c.runcRoot()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, "runc", "--root", c.runcRoot(), "list", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// killContainers SIGKILLs every process of every container of the cell.
func (c *cellProc) killContainers(ctx context.Context) error {
	ids, err := c.containers(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		out, err := exec.CommandContext(ctx, "runc", "--root", c.runcRoot(), "kill", "--all", id, "KILL").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not running") {
			return fmt.Errorf("runc kill %s: %v: %s", id, err, out)
		}
	}
	return nil
}

// cleanup kills the cell and removes the containers, mounts and cgroups
// it left.
func (c *cellProc) cleanup() error {
	c.kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	ids, err := c.containers(ctx)
	errs = append(errs, err)
	for _, id := range ids {
		if out, err := exec.CommandContext(ctx, "runc", "--root", c.runcRoot(), "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", id, err, out))
		}
	}
	ms, err := mountinfo.Under(c.dir)
	errs = append(errs, err)
	for _, m := range ms {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	cgroupclean.Remove(cgroupclean.DefaultParent(filepath.Join(c.dataDir, "containers")))
	return errors.Join(errs...)
}

// removeUnmounted removes dir unless something is still mounted below it
// (removing through a bind mount of /usr would wipe the host).
func removeUnmounted(dir string) error {
	ms, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		return fmt.Errorf("not removing %s: mounts remain %v", dir, ms)
	}
	return os.RemoveAll(dir)
}

// pause waits d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
