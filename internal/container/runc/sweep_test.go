package runc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/container"
)

// helperServer makes the test binary a server that starts one container
// on the backend of $PANDO_RUNC_TEST_STATE, says "started LEASE_BASE
// SHIM_PID" and waits to be killed.
const (
	helperServer = "server"
	helperState  = "PANDO_RUNC_TEST_STATE"
)

func serverHelper() int {
	b, err := New(Config{StateDir: os.Getenv(helperState)})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := b.Run(ctx, container.Spec{ID: "survivor", Args: []string{"sleep", "1000"}})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	rc := c.(*Container)
	fmt.Printf("started %d %d\n", rc.lease.base, rc.cmd.Process.Pid)
	select {} // until SIGKILL
}

// leaseOwner is what a host id lease file says ("" when free).
func leaseOwner(t *testing.T, b *Backend, base uint32) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.ids.dir, strconv.FormatUint(uint64(base), 10)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func gone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}

// A container that ends leaves nothing under RunDir once the server has
// its exit status: its shim removes its socket, and the backend's socket
// dir with it (no other shim is left there); Destroy frees its host ids.
func TestShim_removesItsSocketAndDirOnceTheExitIsCollected(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	// The container runs until the test tells it to end: one that ends
	// at once may be collected, and its socket gone, before Run returns.
	var out syncBuffer
	c, err := b.Run(ctx, container.Spec{ID: "brief", Stdout: &out,
		Args: []string{"sh", "-c", "trap 'echo bye; exit 3' TERM; echo ready; sleep 1000 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	rc := c.(*Container)
	sock, base := b.shimSocket("brief"), rc.lease.base
	eventuallyRunc(t, "the container ready", func() bool { return strings.Contains(out.String(), "ready") })
	if gone(sock) {
		t.Fatal("no shim socket while the container runs")
	}
	if err := c.Stop(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx); err != nil || st.Code != 3 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	if got := out.String(); got != "ready\nbye\n" {
		t.Errorf("stdout %q, want ready and bye", got)
	}
	// No Destroy yet: the shim cleans up after itself.
	eventuallyRunc(t, "the shim's socket and dir gone", func() bool { return gone(sock) && gone(b.shimDir) })
	pid := rc.cmd.Process.Pid
	eventuallyRunc(t, "the shim gone", func() bool { return unix.Kill(pid, 0) != nil })
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if o := leaseOwner(t, b, base); o != "" {
		t.Errorf("host ids %d still leased to %q", base, o)
	}
	// The next container makes the dir again.
	_, _, st := runToEnd(t, b, container.Spec{ID: "next", Args: []string{"true"}})
	if st.Code != 0 {
		t.Fatalf("next container: %+v", st)
	}
	assertNothingLeft(t, b, b.stateDir)
}

// A server killed with kill -9 leaves its container, its shim and its
// lease behind; the next backend on its state dir removes the container,
// frees its host ids, and the shim, told by the bundle's removal, goes
// with its socket and the socket dir.
func TestCleanup_afterTheShimsParentIsKilledLeavesNothing(t *testing.T) {
	requireRunc(t)
	dir := t.TempDir()
	ctx := testCtx(t)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+helperServer, helperState+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var base uint32
	var shimPid int
	if _, serr := fmt.Sscanf(line, "started %d %d", &base, &shimPid); err != nil || serr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper server said %q (%v)", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b := newBackend(t, dir)
	if unix.Kill(shimPid, 0) != nil {
		t.Fatal("the shim died with its server")
	}
	owner := leaseOwner(t, b, base)
	if owner != b.stateDir+" survivor" {
		t.Fatalf("lease %d names %q after the kill, want the survivor", base, owner)
	}
	sock := b.shimSocket("survivor")
	if gone(sock) {
		t.Fatal("the shim's socket went with its server")
	}

	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, b, dir)
	if o := leaseOwner(t, b, base); o != "" {
		t.Errorf("host ids %d still leased to %q after Cleanup", base, o)
	}
	eventuallyRunc(t, "the shim gone", func() bool { return unix.Kill(shimPid, 0) != nil })
	eventuallyRunc(t, "its socket and the socket dir gone", func() bool { return gone(sock) && gone(b.shimDir) })
}

// Backends whose state dir was deleted (a test's, a removed data dir) or
// that died with containers runc no longer knows leave leases and socket
// dirs no backend would clean: any backend's Cleanup frees the leases once
// no process has their ids, and removes the dirs, keeping the sockets a
// shim still listens on.
func TestCleanup_reclaimsWhatBackendsOfDeletedStateDirsLeft(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	deleted := filepath.Join(t.TempDir(), "deleted-data-dir")
	// Leases whose holder died: of a state dir that no longer exists, of
	// one that does but where runc no longer knows the container, and of
	// one whose container runc still has (its server may come back and
	// adopt it).
	deadLease, err := b.ids.acquire(deleted + " app-1")
	if err != nil {
		t.Fatal(err)
	}
	deadLease.drop()
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "runc", "app-2"), 0o700); err != nil {
		t.Fatal(err)
	}
	forgotten, err := b.ids.acquire(other + " app-0")
	if err != nil {
		t.Fatal(err)
	}
	forgotten.drop()
	keptLease, err := b.ids.acquire(other + " app-2")
	if err != nil {
		t.Fatal(err)
	}
	keptLease.drop()
	t.Cleanup(func() { _ = (&idLease{base: keptLease.base, f: mustOpen(t, b, keptLease.base)}).release() })
	// A lease of a state dir that no longer exists, whose container still
	// runs: its ids are in use.
	busyLease, err := b.ids.acquire(deleted + " app-3")
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sleep", "1000")
	holder.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: busyLease.base, Gid: busyLease.base}}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
		_ = (&idLease{base: busyLease.base, f: mustOpen(t, b, busyLease.base)}).release()
	})
	busyLease.drop()

	// The socket dir of a backend whose rootfs dir (and state dir) is gone:
	// one socket nobody listens on, one a shim still serves.
	orphan := filepath.Join(filepath.Dir(b.shimDir), "0rphan"+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(orphan) })
	dead := filepath.Join(orphan, "dead.sock")
	dln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dln.SetUnlinkOnClose(false)
	dln.Close() // its shim is gone, the file stays
	alive := filepath.Join(orphan, "alive.sock")
	aln, err := net.ListenUnix("unix", &net.UnixAddr{Name: alive, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer aln.Close()

	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if o := leaseOwner(t, b, deadLease.base); o != "" {
		t.Errorf("lease of a deleted state dir still names %q", o)
	}
	if o := leaseOwner(t, b, forgotten.base); o != "" {
		t.Errorf("lease of a container runc no longer knows still names %q", o)
	}
	if o := leaseOwner(t, b, keptLease.base); o == "" {
		t.Error("lease of an existing state dir was freed: its server may come back for the container")
	}
	if o := leaseOwner(t, b, busyLease.base); o == "" {
		t.Error("lease freed while a process runs with its ids")
	}
	if !gone(dead) {
		t.Error("a socket nobody listens on was kept")
	}
	if gone(alive) {
		t.Error("a live shim's socket was removed")
	}

	aln.Close()
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if !gone(orphan) {
		t.Error("the orphan socket dir was kept once empty")
	}
}

func mustOpen(t *testing.T, b *Backend, base uint32) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(b.ids.dir, strconv.FormatUint(uint64(base), 10)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
