package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRouterHoldsUnderThousandsOfIdleConnections: 5,000 idle connections to
// one app (half of them websocket tunnels, half keep-alive) leave the API
// fast, another app untouched and the server well inside its fd limit;
// connections past a cap get a 503; closing them gives fds and threads
// back.
func TestRouterHoldsUnderThousandsOfIdleConnections(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	s.deleteAppOnCleanup(t, "flooded")
	s.deleteAppOnCleanup(t, "bystander")
	s.mustPando(t, "push", "flooded", "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "256M")
	s.mustPando(t, "push", "bystander", "-p", staticSite(t, "still here\n"))
	s.curlRoute(t, "flooded.localhost", "/")
	if body := s.curlRoute(t, "bystander.localhost", "/"); body != "still here\n" {
		t.Fatalf("bystander said %q", body)
	}
	pid := s.pid(t)
	bystander := s.instances(t, "bystander")
	fds0, threads0 := procCount(t, pid, "fd"), procThreads(t, pid)
	limit := procFileLimit(t, pid)
	t.Logf("server before: %d fds (limit %d), %d threads", fds0, limit, threads0)

	// 5,000 connections from ten loopback addresses (500 each, under the
	// per-client cap).
	const perKind, sources = 2500, 10
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	work := make(chan int)
	errs := make(chan error, 2*perKind)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				src := net.IPv4(127, 0, 1, byte(10+k%sources))
				c, err := openIdle(s.routerAddr, src, "flooded.localhost", k%2 == 0)
				if err != nil {
					errs <- fmt.Errorf("connection %d from %s: %w", k, src, err)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	for k := range 2 * perKind {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The API answers quickly.
	var took []time.Duration
	for range 5 {
		start := time.Now()
		var info map[string]any
		s.api(t, "/v3/info", &info)
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if took[2] > 100*time.Millisecond {
		t.Errorf("GET /v3/info took %v (median %v) with 5,000 connections open", took, took[2])
	}
	// The other app answers and its instance was not touched.
	if code, body, err := s.get("bystander.localhost", "/"); err != nil || code != 200 || body != "still here\n" {
		t.Errorf("bystander: %d %q %v", code, body, err)
	}
	if got := s.instances(t, "bystander"); got != bystander {
		t.Errorf("bystander instances changed under load: %s, were %s", got, bystander)
	}
	fds1, threads1 := procCount(t, pid, "fd"), procThreads(t, pid)
	t.Logf("server with %d connections: %d fds, %d threads", len(conns), fds1, threads1)
	if fds1 > limit/2 {
		t.Errorf("server holds %d fds of its limit %d", fds1, limit)
	}
	if per := float64(fds1-fds0) / float64(len(conns)); per > 2.2 {
		t.Errorf("%.2f fds per routed connection, want at most 2 (client and backend)", per)
	}
	if threads1 > threads0+40 {
		t.Errorf("threads grew from %d to %d", threads0, threads1)
	}

	// One client past its cap (a tenth of the router's, which fits the fd
	// limit) gets a 503 that names the cap, exactly there.
	src := net.IPv4(127, 0, 1, 99)
	admitted, code, body := 0, 0, ""
	for admitted < 2000 {
		c, err := openIdle(s.routerAddr, src, "flooded.localhost", false)
		if err != nil {
			code, body = getFrom(t, s.routerAddr, src, "flooded.localhost")
			break
		}
		conns = append(conns, c)
		admitted++
	}
	var capN int
	if _, err := fmt.Sscanf(body[strings.Index(body, "(limit")+1:], "limit %d)", &capN); err != nil ||
		code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections from 127.0.1.99") {
		t.Fatalf("after %d connections of one client: %d %q", admitted, code, body)
	}
	if admitted != capN || capN < 500 {
		t.Errorf("one client got %d connections; the cap it was told is %d", admitted, capN)
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// The router keeps idle keep-alive connections to the instance (one
	// per request that ran at once, here at most the 64 workers) until
	// they idle out after 90 s; nothing else may stay.
	eventually(t, "fds and threads back to their baseline", 15*time.Second, func() (bool, string) {
		fds, threads := procCount(t, pid, "fd"), procThreads(t, pid)
		return fds <= fds0+100 && threads <= threads0+40, fmt.Sprintf("%d fds (%d before), %d threads (%d before)", fds, fds0, threads, threads0)
	})
}

// openIdle opens a connection to the router from src: a websocket-style
// tunnel (upgrade, one echo) or a keep-alive connection after one GET.
func openIdle(routerAddr string, src net.IP, host string, tunnel bool) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", routerAddr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, err }
	if tunnel {
		fmt.Fprintf(c, "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n", host)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fail(fmt.Errorf("upgrade answered %s", resp.Status))
		}
		io.WriteString(c, "ping\n")
		if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
			return fail(fmt.Errorf("echo %q: %v", l, err))
		}
	} else {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fail(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fail(fmt.Errorf("GET answered %s", resp.Status))
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func getFrom(t *testing.T, routerAddr string, src net.IP, host string) (int, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", routerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// instances describes an app's web instances: index, guid and state.
func (s *server) instances(t *testing.T, app string) string {
	t.Helper()
	var stats struct {
		Resources []struct {
			Index        int    `json:"index"`
			State        string `json:"state"`
			InstanceGUID string `json:"instance_guid"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+s.appGUID(t, app)+"/processes/web/stats", &stats)
	var parts []string
	for _, r := range stats.Resources {
		parts = append(parts, fmt.Sprintf("#%d %s %s", r.Index, r.InstanceGUID, r.State))
	}
	return strings.Join(parts, "; ")
}

func (s *server) pid(t *testing.T) int {
	t.Helper()
	cmd, _ := s.running()
	if cmd == nil {
		t.Fatal("server not running")
	}
	return cmd.Process.Pid
}

func procCount(t *testing.T, pid int, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/%s", pid, dir))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func procThreads(t *testing.T, pid int) int { return procCount(t, pid, "task") }

func procFileLimit(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	t.Fatal("no open-file limit in /proc/PID/limits")
	return 0
}
