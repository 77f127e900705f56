package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/testenv"
	"golang.org/x/sys/unix"
)

func requireRunc(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "runc containers need root")
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		testenv.Missing(t, "runc is not installed")
	}
	return p
}

func newBackend(t *testing.T, stateDir string) *Backend {
	t.Helper()
	requireRunc(t)
	b, err := New(Config{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	// Each test has its own state dir, hence its own cgroup parent and
	// rootfs dir: remove them.
	t.Cleanup(func() {
		b.Close()
		_ = os.RemoveAll(b.rootfsDir)
		b.cg.removeEmptyUnder(b.cgroupParent)
		for _, mnt := range b.cg.all {
			_ = unix.Rmdir(filepath.Join(mnt, b.cgroupParent))
		}
	})
	return b
}

// syncBuffer is a bytes.Buffer safe for the copy goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runToEnd runs spec, waits for it and destroys it.
func runToEnd(t *testing.T, b *Backend, spec container.Spec) (stdout, stderr string, st container.ExitStatus) {
	t.Helper()
	ctx := testCtx(t)
	var out, errb syncBuffer
	spec.Stdout, spec.Stderr = &out, &errb
	c, err := b.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer func() {
		if err := c.Destroy(ctx); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	}()
	st, err = c.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return out.String(), errb.String(), st
}

func TestRun_echoCapturesStdout(t *testing.T) {
	b := newBackend(t, t.TempDir())
	out, errOut, st := runToEnd(t, b, container.Spec{ID: "echo", Args: []string{"echo", "hi"}})
	if out != "hi\n" || st.Code != 0 {
		t.Fatalf("stdout %q stderr %q status %+v; want \"hi\\n\", exit 0", out, errOut, st)
	}
}

func TestRun_exitCodePropagates(t *testing.T) {
	b := newBackend(t, t.TempDir())
	_, errOut, st := runToEnd(t, b, container.Spec{ID: "exit3", Args: []string{"sh", "-c", "echo oops >&2; exit 3"}})
	if st.Code != 3 || st.Signaled || st.OOMKilled {
		t.Fatalf("status %+v, want exit 3", st)
	}
	if errOut != "oops\n" {
		t.Fatalf("stderr %q, want oops", errOut)
	}
}

func TestRun_hostStackLayoutAsVcap(t *testing.T) {
	b := newBackend(t, t.TempDir())
	script := `
id -u; id -g; whoami; pwd
stat -c %a /tmp
stat -c %u /home/vcap
touch /home/vcap/f /tmp/f && echo writable
touch /usr/f 2>/dev/null || echo usr-ro
touch /f 2>/dev/null || echo root-ro
test -x /tmp/lifecycle/pando && echo lifecycle
cat /etc/hosts | head -1
ls /sys/class/net | tr '\n' ' '; echo
grep CapEff /proc/self/status
echo $HOME
unshare -U true 2>/dev/null || echo no-userns
`
	out, errOut, st := runToEnd(t, b, container.Spec{ID: "layout", Args: []string{"sh", "-c", script}, Env: []string{"A=1"}})
	want := "2000\n2000\nvcap\n/home/vcap\n1777\n2000\nwritable\nusr-ro\nroot-ro\nlifecycle\n127.0.0.1\tlocalhost layout\nlo \nCapEff:\t0000000000000000\n/home/vcap\nno-userns\n"
	if out != want || st.Code != 0 {
		t.Fatalf("got status %+v stderr %q stdout:\n%s\nwant:\n%s", st, errOut, out, want)
	}
}

func TestRun_goToolchainWorksAsVcap(t *testing.T) {
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		testenv.Missing(t, "no Go at /usr/local/go")
	}
	b := newBackend(t, t.TempDir())
	out, errOut, st := runToEnd(t, b, container.Spec{
		ID:   "gover",
		Args: []string{"/usr/local/go/bin/go", "version"},
		Env:  []string{"HOME=/home/vcap"},
	})
	if st.Code != 0 || !strings.HasPrefix(out, "go version go1.") {
		t.Fatalf("status %+v stdout %q stderr %q", st, out, errOut)
	}
}

func TestRun_memoryLimitReportsOOMKilled(t *testing.T) {
	b := newBackend(t, t.TempDir())
	_, errOut, st := runToEnd(t, b, container.Spec{
		ID:          "oom",
		Args:        []string{"sh", "-c", `x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived`},
		MemoryBytes: 30 << 20,
	})
	if !st.OOMKilled || st.Code != 137 || !st.Signaled {
		t.Fatalf("status %+v (stderr %q), want OOM kill with 137", st, errOut)
	}
}

func TestStop_killsAfterGraceAndIsNotOOM(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "killed", Args: []string{"sleep", "1000"}, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	// sleep, as pid 1 without a handler, ignores SIGTERM: Stop must SIGKILL.
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 137 || !st.Signaled || st.OOMKilled {
		t.Fatalf("status %+v, want 137 without OOM", st)
	}
}

// startServer runs busybox httpd on port 8080 inside a container and waits
// until Dial reaches it.
func startServer(t *testing.T, b *Backend, id string) container.Container {
	t.Helper()
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{
		ID:          id,
		Args:        []string{"sh", "-c", "echo hello from $HOSTNAME > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp"},
		Env:         []string{"HOSTNAME=" + id},
		MemoryBytes: 64 << 20,
		PidsLimit:   100,
		CPUShares:   512,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { _ = c.Destroy(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := c.Dial(ctx, 8080)
		if err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never came up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the server, with a deadline
	}
}

func get(t *testing.T, c container.Container) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, 8080)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	return string(body)
}

func TestDial_reachesServerInsideOwnNetns(t *testing.T) {
	b := newBackend(t, t.TempDir())
	c1 := startServer(t, b, "web1")
	c2 := startServer(t, b, "web2") // same port, its own namespace
	if got := get(t, c1); got != "hello from web1\n" {
		t.Fatalf("web1 said %q", got)
	}
	if got := get(t, c2); got != "hello from web2\n" {
		t.Fatalf("web2 said %q", got)
	}
	// Nothing inside listens on 9999: refused, not reached on the host.
	ctx := testCtx(t)
	if conn, err := c1.Dial(ctx, 9999); err == nil {
		conn.Close()
		t.Fatal("Dial to a closed port succeeded")
	}

	s, err := c1.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryLimit != 64<<20 || s.Pids < 1 || s.MemoryBytes == 0 || s.CPUNanos == 0 {
		t.Fatalf("stats %+v", s)
	}

	if err := c1.Stop(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, err := c1.Wait(ctx)
	if err != nil || !st.Signaled || st.OOMKilled {
		t.Fatalf("after Stop: %+v %v", st, err)
	}
	if _, err := c1.Dial(ctx, 8080); err == nil {
		t.Fatal("Dial to a stopped container succeeded")
	}
	if got := get(t, c2); got != "hello from web2\n" {
		t.Fatalf("web2 said %q after web1 stopped", got)
	}
}

func TestStats_reportsDiskOfWritableDirs(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "disk", Args: []string{"sh", "-c", "head -c 3000000 /dev/urandom > /home/vcap/blob && echo done && exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(b.bundles, "disk", "home", "blob"))
		s, serr := c.Stats(ctx)
		if serr != nil {
			t.Fatal(serr)
		}
		if err == nil && s.DiskBytes >= 3000000 {
			if s.MemoryLimit != 0 {
				t.Fatalf("unlimited container reports memory limit %d", s.MemoryLimit)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk never reached 3 MB: %+v", s)
		}
		c.(*Container).diskMu.Lock()
		c.(*Container).diskRead = time.Time{} // skip the cache while polling
		c.(*Container).diskMu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func runcList(t *testing.T, b *Backend) []string {
	t.Helper()
	out, err := exec.Command(b.runc, "--root", b.root, "list", "--format", "json").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	var l []struct{ ID string }
	if len(bytes.TrimSpace(out)) > 0 && string(bytes.TrimSpace(out)) != "null" {
		if err := json.Unmarshal(out, &l); err != nil {
			t.Fatalf("runc list: %v: %s", err, out)
		}
	}
	var ids []string
	for _, c := range l {
		ids = append(ids, c.ID)
	}
	return ids
}

func assertNothingLeft(t *testing.T, b *Backend, stateDir string) {
	t.Helper()
	if ids := runcList(t, b); len(ids) > 0 {
		t.Errorf("runc still lists %v", ids)
	}
	ents, err := os.ReadDir(b.bundles)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("bundle left: %s", e.Name())
	}
	ents, err = os.ReadDir(b.rootfsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != stateDirMarker {
			t.Errorf("rootfs left: %s", e.Name())
		}
	}
	for _, dir := range []string{stateDir, b.rootfsDir} {
		if ms, _ := mountsUnder(dir); len(ms) > 0 {
			t.Errorf("mounts left: %v", ms)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(b.cg.memory, b.cgroupParent)); !b.cg.v2 && len(entries) > 0 {
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", e.Name())
			}
		}
	}
}

func TestDestroy_leavesNothingAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, dir)
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "sleeper", Args: []string{"sleep", "1000"}, MemoryBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if ids := runcList(t, b); len(ids) != 1 {
		t.Fatalf("runc list %v, want the sleeper", ids)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if st, err := c.Wait(ctx); err != nil || st.Code != 137 {
		t.Fatalf("Wait after Destroy: %+v %v", st, err)
	}
	assertNothingLeft(t, b, dir)
	// The id is free again.
	_, _, st := runToEnd(t, b, container.Spec{ID: "sleeper", Args: []string{"true"}})
	if st.Code != 0 {
		t.Fatalf("rerun: %+v", st)
	}
}

func TestCleanup_removesLeftoversOfAPreviousRun(t *testing.T) {
	dir := t.TempDir()
	old := newBackend(t, dir)
	ctx := testCtx(t)
	lower := busyboxRootFS(t)
	var running []container.Container
	for _, spec := range []container.Spec{
		{ID: "left1", Args: []string{"sleep", "1000"}},
		{ID: "left2", RootFS: lower, Args: []string{"/bin/busybox", "sleep", "1000"}},
	} {
		c, err := old.Run(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		running = append(running, c)
	}
	exited, err := old.Run(ctx, container.Spec{ID: "left3", Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exited.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The server dies: its lease descriptors go with it.
	var bases []uint32
	for _, c := range append(running, exited) {
		rc := c.(*Container)
		bases = append(bases, rc.lease.base)
		abandon(t, old, rc)
	}

	// A new server process starts on the same state dir.
	b := newBackend(t, dir)
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range running {
		if _, err := c.Wait(ctx); err != nil {
			t.Fatalf("leftover %s still running: %v", c.ID(), err)
		}
	}
	assertNothingLeft(t, b, dir)
	for _, base := range bases {
		if o := leaseOwner(t, b, base); o != "" {
			t.Errorf("host ids %d still leased to %q", base, o)
		}
	}
}

// busyboxRootFS is a minimal image rootfs: a static busybox.
func busyboxRootFS(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox is not installed")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "data"), DefaultUID, DefaultGID); err != nil {
		t.Fatal(err)
	}
	// A hostile image: its passwd points at the host's shadow file.
	if err := os.Symlink("/etc/shadow", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "group"), []byte("app:x:1000:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestRun_imageRootFSIsCopyOnWrite(t *testing.T) {
	b := newBackend(t, t.TempDir())
	lower := busyboxRootFS(t)
	script := `busybox id -u; echo data > /data/written && busybox cat /data/written; busybox grep -c : /etc/passwd; busybox cat /etc/group`
	out, errOut, st := runToEnd(t, b, container.Spec{
		ID: "image", RootFS: lower, Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/bin"},
	})
	want := "2000\ndata\n2\napp:x:1000:\nroot:x:0:\nvcap:x:2000:\n"
	if st.Code != 0 || out != want {
		t.Fatalf("status %+v stderr %q stdout:\n%s\nwant:\n%s", st, errOut, out, want)
	}
	if _, err := os.Stat(filepath.Join(lower, "data", "written")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("write reached the lower dir: %v", err)
	}
}

func TestRun_callerMountsGoAfterHomeAndTmp(t *testing.T) {
	b := newBackend(t, t.TempDir())
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "Procfile"), []byte("web: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ro := t.TempDir()
	out, errOut, st := runToEnd(t, b, container.Spec{
		ID: "mounts",
		Mounts: []container.Mount{
			{Source: ro, Destination: "/tmp/buildpacks", ReadOnly: true},
			{Source: app, Destination: "/home/vcap/app"},
		},
		Args: []string{"sh", "-c", "cat /home/vcap/app/Procfile; touch /tmp/buildpacks/x 2>/dev/null || echo ro"},
	})
	if st.Code != 0 || out != "web: x\nro\n" {
		t.Fatalf("status %+v stdout %q stderr %q", st, out, errOut)
	}
}

func TestRun_rejectsBadSpecs(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	for _, spec := range []container.Spec{
		{ID: "../etc", Args: []string{"true"}},
		{ID: "", Args: []string{"true"}},
		{ID: "noargs"},
		{ID: "badenv", Args: []string{"true"}, Env: []string{"NOEQUALS"}},
		{ID: "relmount", Args: []string{"true"}, Mounts: []container.Mount{{Source: "x", Destination: "/x"}}},
		{ID: "rootfs", Args: []string{"true"}, RootFS: "/a,upperdir=/b"},
		{ID: "layer", Args: []string{"true"}, Layers: []string{"/a", "/b:/c"}},
		{ID: "both", Args: []string{"true"}, RootFS: "/a", Layers: []string{"/b"}},
		{ID: "bigid", Args: []string{"true"}, User: &container.User{UID: idBlockSize}},
	} {
		if _, err := b.Run(ctx, spec); pando.ErrorKindOf(err) != pando.EInvalid {
			t.Errorf("Run(%q): %v, want invalid", spec.ID, err)
		}
	}
	c, err := b.Run(ctx, container.Spec{ID: "dup", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	if _, err := b.Run(ctx, container.Spec{ID: "dup", Args: []string{"true"}}); pando.ErrorKindOf(err) != pando.EConflict {
		t.Fatalf("duplicate id: %v, want conflict", err)
	}
}

func TestRun_failedStartReturnsErrorAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, dir)
	ctx := testCtx(t)
	_, err := b.Run(ctx, container.Spec{ID: "nocmd", Args: []string{"/no/such/program"}})
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("Run: %v, want an error naming the program", err)
	}
	assertNothingLeft(t, b, dir)
}

// TestDial_costsOneFdAndNoThreadPerConnection holds many connections into
// a container at once: each costs the process one file descriptor, the
// thread count does not grow with them, and closing them gives every fd
// back.
func TestDial_costsOneFdAndNoThreadPerConnection(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{
		ID:          "dialmany",
		Args:        []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/tmp"},
		MemoryBytes: 256 << 20,
		PidsLimit:   1000,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { _ = c.Destroy(context.Background()) })
	waitDialable(t, c, 8080)
	// The spare shim started after the container's start holds fds
	// while it starts: count once it has.
	waitSpareSettled(t, b)

	// fds are told apart by what they refer to, not counted: other
	// tests' shims end meanwhile, and their reapers' fds close with them.
	const n = 300
	before, threads0 := openFds(t), countThreads(t)
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := c.Dial(ctx, 8080)
			if err != nil {
				errs <- err
				return
			}
			conns[k] = conn
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Dial: %v", err)
	}
	during, threads1 := openFds(t), countThreads(t)
	connFds := map[int]bool{}
	for _, conn := range conns {
		fd := connFd(t, conn)
		if !strings.HasPrefix(during[fd], "socket:") || during[fd] == before[fd] {
			t.Errorf("connection's fd %d is %q, %q before: not a new socket", fd, during[fd], before[fd])
		}
		connFds[fd] = true
	}
	if len(connFds) != n {
		t.Errorf("%d connections hold %d fds, want %d", n, len(connFds), n)
	}
	if extra := newNetFds(before, during, connFds); len(extra) > 0 {
		t.Errorf("%d connections also opened %v", n, extra)
	}
	if d := threads1 - threads0; d > 20 {
		t.Errorf("%d connections added %d threads", n, d)
	}
	for _, conn := range conns {
		conn.Close()
	}
	after := openFds(t)
	for fd := range connFds {
		if after[fd] == during[fd] {
			t.Errorf("fd %d (%s) still open after its connection closed", fd, during[fd])
		}
	}
	if extra := newNetFds(before, after, nil); len(extra) > 0 {
		t.Errorf("after closing the connections, still open: %v", extra)
	}
}

// newNetFds lists the sockets and network namespaces open in now that
// were not in before, but for the fds in skip: what dialing a container
// may leak.
func newNetFds(before, now map[int]string, skip map[int]bool) []string {
	var out []string
	for fd, target := range now {
		if skip[fd] || before[fd] == target {
			continue
		}
		if strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:") {
			out = append(out, fmt.Sprintf("fd %d: %s", fd, target))
		}
	}
	return out
}

// connFd returns the fd conn reads and writes through.
func connFd(t *testing.T, conn net.Conn) int {
	t.Helper()
	sc, ok := conn.(syscall.Conn)
	if !ok {
		t.Fatalf("connection %T has no fd", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitSpareSettled waits until b's spare shim has started (or failed to).
func waitSpareSettled(t *testing.T, b *Backend) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.spareMu.Lock()
		settled := !b.spareStarting
		b.spareMu.Unlock()
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the spare shim did not start within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
}

func waitDialable(t *testing.T, c container.Container, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := c.Dial(testCtx(t), port)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never came up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the server, with a deadline
	}
}

// openFds maps the fds the test process holds to what they refer to.
func openFds(t *testing.T) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]string{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		m[fd], _ = os.Readlink("/proc/self/fd/" + e.Name())
	}
	return m
}

func countThreads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			var n int
			fmt.Sscan(strings.TrimSpace(v), &n)
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// TestStop_killsThroughCgroupWhenRuncKillFails: when `runc kill` cannot
// run (here it always fails; on a host out of fds or pids it cannot
// fork), Stop still ends the container, through its cgroup.
func TestStop_killsThroughCgroupWhenRuncKillFails(t *testing.T) {
	real := requireRunc(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "runc-no-kill")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = kill ] && { echo 'kill refused' >&2; exit 1; }; done\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{StateDir: filepath.Join(dir, "state"), RuncPath: wrapper})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.cg.removeEmptyUnder(b.cgroupParent) })
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "nokill", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 137 || !st.Signaled {
		t.Fatalf("status %+v, want killed (137)", st)
	}
	if n, _ := b.cg.killAll(c.(*Container).cgPath); n != 0 {
		t.Fatalf("%d processes still in the container's cgroup", n)
	}
}
