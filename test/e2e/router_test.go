package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/childproc"
)

// routerProc is one `pando router` process following a server, on the
// server's loopback network (.4), with its own data dir.
type routerProc struct {
	s       *server
	addr    string
	root    string
	logPath string
	http    *http.Client
	env     []string // more environment (NAME=VALUE)
	args    []string // more flags
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startRouter runs `pando router` for s with the server's router token.
// It is killed and removed when t ends.
func (s *server) startRouter(t *testing.T) *routerProc {
	t.Helper()
	return s.startRouterWithEnv(t, nil)
}

// startRouterWithEnv is startRouter with more environment (NAME=VALUE)
// for the router process.
func (s *server) startRouterWithEnv(t *testing.T, extra []string) *routerProc {
	t.Helper()
	return s.startRouterWith(t, extra, nil)
}

// startRouterWith is startRouter with more environment (NAME=VALUE) and
// flags for the router process.
func (s *server) startRouterWith(t *testing.T, extra, args []string) *routerProc {
	t.Helper()
	root, err := os.MkdirTemp(env.scratch, "router-")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr(s.loNet + "4")
	if err != nil {
		t.Fatal(err)
	}
	r := &routerProc{s: s, addr: addr, root: root, logPath: filepath.Join(root, "router.log"), env: extra, args: args,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("router log:\n%s", r.logTail())
		}
		r.kill()
		os.RemoveAll(root)
	})
	r.start(t)
	return r
}

// start runs the router process (again, with the same data dir) and
// waits until it listens.
func (r *routerProc) start(t *testing.T) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(r.s.dataDir, "router-token"))
	if err != nil {
		t.Fatalf("router token: %v", err)
	}
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(r.s.bin, append([]string{"router", "--api", "http://" + r.s.apiAddr, "--token", strings.TrimSpace(string(tok)),
		"--data-dir", filepath.Join(r.root, "data"), "--addr", r.addr}, r.args...)...)
	cmd.Env = append(baseEnv(), r.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waited, err := childproc.Start(cmd)
	if err != nil {
		t.Fatalf("start pando router: %v", err)
	}
	exited := make(chan struct{})
	go func() { <-waited; close(exited) }()
	r.cmd, r.exited = cmd, exited
	eventually(t, "the router listening", startTimeout, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("pando router exited:\n%s", r.logTail())
		default:
		}
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// kill stops the router with SIGKILL.
func (r *routerProc) kill() {
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

// get sends one GET through this router with the given Host header.
func (r *routerProc) get(host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+r.addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// waitBody GETs host/ through the router until it answers 200 with a body
// starting with prefix.
func (r *routerProc) waitBody(t *testing.T, host, prefix string) {
	t.Helper()
	eventually(t, "GET http://"+host+"/ through pando router answers "+prefix, waitTimeout, func() (bool, string) {
		status, body, err := r.get(host, "/")
		return err == nil && status == http.StatusOK && strings.HasPrefix(body, prefix), fmt.Sprintf("%d %q %v", status, body, err)
	})
}

func (r *routerProc) logTail() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("(no router log: %v)", err)
	}
	if len(b) > maxLogShown {
		b = b[len(b)-maxLogShown:]
	}
	return string(b)
}

// Separate `pando router`s route to an instance on a joined cell from the
// server's routing table, keep routing to it without a failed request
// while the server is killed (-9) and restarted (a router restarted
// meanwhile uses the table it kept), and get route changes again once the
// server is back.
func TestRouter_separateProcessRoutesThroughAServerCrash(t *testing.T) {
	t.Parallel()
	// The local cell is too small for the app (1 GB, and its staging):
	// both run on the joined cell.
	s := ownServer(t, "--cell-memory-mb", "900")
	s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G")
	// Two routers, as several may run.
	rp, rp2 := s.startRouter(t), s.startRouter(t)

	const name = "routed"
	host := name + ".localhost"
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "1G")
	requireOutput(t, r, `web: 1 of 1 instances running`)
	eventually(t, "the instance on cell-b", waitTimeout, func() (bool, string) {
		cs := s.cells(t)
		for _, v := range cs {
			for _, i := range v.Instances {
				if i.AppName == name && i.State == "RUNNING" {
					return v.ID == "cell-b", fmt.Sprint(cs)
				}
			}
		}
		return false, fmt.Sprint(cs)
	})
	rp.waitBody(t, host, "binary app index=0")
	rp2.waitBody(t, host, "binary app index=0")
	// Its access lines reach the app's logs, as the server's router's do.
	eventually(t, "the separate router's RTR line in pando logs", waitTimeout, func() (bool, string) {
		logs := s.pando(t, "logs", name, "--recent")
		return regexp.MustCompile(`\[RTR/0\] OUT routed\.localhost - \[.*"GET / HTTP/1\.1" 200`).MatchString(logs.out()), logs.out()
	})
	// The API's own hosts go to the API, whose links then point there.
	if status, body, err := rp.get("api.localhost", "/"); err != nil || status != http.StatusOK ||
		!strings.Contains(body, `"cloud_controller_v3"`) || !strings.Contains(body, `"http://login.localhost"`) {
		t.Fatalf("GET api.localhost/ through pando router: %d %q %v, want the API's root with links to the system hosts", status, body, err)
	}

	// kill -9 of the server: the routers keep their table and the cell its
	// instance, past the cell's presence TTL (6 s) and more, and through
	// the server's restart. rp2 is asked throughout; rp for 15 s, then
	// restarted.
	s.kill9(t)
	probe := startProbe(rp2, host)
	var failed []string
	served := 0
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		status, body, err := rp.get(host, "/")
		if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "binary app") {
			failed = append(failed, fmt.Sprintf("%d %q %v", status, body, err))
		} else {
			served++
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(failed) > 0 || served == 0 {
		t.Fatalf("while the server was down: %d served, %d failed through pando router: %v", served, len(failed), failed)
	}
	if status, _, err := rp.get("api.localhost", "/"); err != nil || status != http.StatusBadGateway {
		t.Errorf("the API's host while the server is down: %d %v, want 502", status, err)
	}
	// A router restarted while the server is down routes with the table
	// it kept.
	rp.kill()
	rp.start(t)
	rp.waitBody(t, host, "binary app index=0")
	if log := rp.logTail(); !strings.Contains(log, "serving the routing table kept from the last run") {
		t.Errorf("the restarted router does not say it used its kept table:\n%s", log)
	}

	// The server again: a new route to the app reaches the router.
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	var domains struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	s.api(t, "/v3/domains?names=localhost", &domains)
	if len(domains.Resources) != 1 {
		t.Fatalf("domain localhost: %+v", domains)
	}
	s.newRoute(t, s.appGUID(t, name), domains.Resources[0].GUID, "rerouted", "", 0)
	for _, r := range []*routerProc{rp, rp2} {
		r.waitBody(t, "rerouted.localhost", "binary app index=0")
		r.waitBody(t, host, "binary app index=0")
	}
	if served, failed := probe.stop(); len(failed) > 0 || served == 0 {
		t.Errorf("through the server's kill -9 and restart: %d served, %d failed through pando router: %v", served, len(failed), failed)
	}
	if !strings.Contains(rp.logTail(), "routing table synced") {
		t.Errorf("the router never said it synced:\n%s", rp.logTail())
	}
}

// probe GETs host/ through a router every 50 ms until stopped, counting
// the answers served and keeping the failures.
type probe struct {
	stopc  chan struct{}
	done   chan struct{}
	served int
	failed []string
}

func startProbe(r *routerProc, host string) *probe {
	p := &probe{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			status, body, err := r.get(host, "/")
			if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "binary app") {
				p.failed = append(p.failed, fmt.Sprintf("%s: %d %q %v", time.Now().Format(time.TimeOnly), status, body, err))
			} else {
				p.served++
			}
			select {
			case <-p.stopc:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *probe) stop() (int, []string) {
	close(p.stopc)
	<-p.done
	return p.served, p.failed
}
