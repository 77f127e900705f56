package runc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/testenv"
	"golang.org/x/sys/unix"
)

// The test binary is the backend's lifecycle binary, bind-mounted into
// every container: with helperEnv set it acts as a small probe program
// inside a container instead of running tests.
const helperEnv = "PANDO_RUNC_TEST_HELPER"

// sysIOURingSetup is io_uring_setup's number on every architecture.
const sysIOURingSetup = 425

func TestMain(m *testing.M) {
	// The backend runs this binary as each container's shim.
	if len(os.Args) > 1 && os.Args[1] == ShimCommand {
		os.Exit(ShimMain(os.Args[2:]))
	}
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case helperServer:
		os.Exit(serverHelper())
	case "inotify-hold":
		// Take every inotify instance this user may have, then keep them.
		n := 0
		var err error
		for ; n < 100000; n++ {
			if _, err = syscall.InotifyInit1(syscall.IN_CLOEXEC); err != nil {
				break
			}
		}
		fmt.Printf("held %d: %v\n", n, err)
		time.Sleep(time.Hour)
	case "inotify-one":
		if _, err := syscall.InotifyInit1(syscall.IN_CLOEXEC); err != nil {
			fmt.Printf("inotify: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("inotify ok")
	case "syscalls":
		var params [120]byte
		_, _, e := syscall.Syscall(sysIOURingSetup, 1, uintptr(unsafe.Pointer(&params)), 0)
		fmt.Printf("io_uring_setup: %v\n", e)
		// KEYCTL_GET_KEYRING_ID of the session keyring, without creating it.
		_, _, e = syscall.Syscall(syscall.SYS_KEYCTL, 0, ^uintptr(2), 0)
		fmt.Printf("keyctl: %v\n", e)
		// A fork into a new user namespace: the child, if any, leaves at
		// once.
		pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, syscall.CLONE_NEWUSER|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 && pid == 0 {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
		fmt.Printf("clone(CLONE_NEWUSER): %v\n", e)
	}
	os.Exit(0)
}

// initUID returns the host uid the container's init process runs as.
func initUID(t *testing.T, b *Backend, id string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.bundles, id, "init.pid"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(data)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" {
			if f[1] != f[2] || f[1] != f[3] || f[1] != f[4] {
				t.Fatalf("container %s: mixed uids %q", id, line)
			}
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatalf("container %s: no Uid line in %s", id, status)
	return 0
}

// waitOutput polls buf until it contains want.
func waitOutput(t *testing.T, buf *syncBuffer, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output %q", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the container's output, with a deadline
	}
	return buf.String()
}

func TestUserNamespaces_inotifyLimitAndHostUIDAreEachContainersOwn(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		t.Fatal(err)
	}

	var holdOut syncBuffer
	holder, err := b.Run(ctx, container.Spec{
		ID: "holder", Args: []string{LifecyclePath}, Env: []string{helperEnv + "=inotify-hold"},
		Stdout: &holdOut, Stderr: &holdOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Destroy(ctx)
	out := waitOutput(t, &holdOut, "held ")
	if want := "held " + strings.TrimSpace(string(limit)) + ": too many open files"; !strings.Contains(out, want) {
		t.Fatalf("holder said %q, want %q (all of max_user_instances)", out, want)
	}

	// Another container, and host root, still get inotify instances.
	var otherOut syncBuffer
	other, err := b.Run(ctx, container.Spec{
		ID: "other", Args: []string{"sh", "-c", "id -u; " + LifecyclePath + "; exec sleep 1000"},
		Env: []string{helperEnv + "=inotify-one"}, Stdout: &otherOut, Stderr: &otherOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Destroy(ctx)
	if got := waitOutput(t, &otherOut, "inotify"); got != "2000\ninotify ok\n" {
		t.Fatalf("other container said %q, want id 2000 and a working inotify_init", got)
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("host root's inotify_init failed while a container holds all of its own: %v", err)
	}
	syscall.Close(fd)

	// On the host, each runs as vcap of its own id block: unprivileged
	// and distinct.
	u1, u2 := initUID(t, b, "holder"), initUID(t, b, "other")
	for _, u := range []int{u1, u2} {
		if u < DefaultHostIDBase || (u-DefaultUID)%idBlockSize != 0 {
			t.Fatalf("host uids %d and %d: want vcap (2000) of a block from %d", u1, u2, DefaultHostIDBase)
		}
	}
	if u1 == u2 {
		t.Fatalf("both containers run as host uid %d", u1)
	}

	// Destroy frees the block for the next container.
	if err := other.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if idsInUse(uint32(u2-DefaultUID), uint32(u2-DefaultUID+idBlockSize-1)) {
		t.Fatalf("a process still runs with ids of the destroyed container's block")
	}
}

func TestIDAllocator_blocksAreExclusiveAcrossAllocatorsAndFreedOnRelease(t *testing.T) {
	dir := t.TempDir()
	// Past the default range, where no container runs.
	const base = DefaultHostIDBase + DefaultHostIDBlocks*idBlockSize
	// Two allocators on one lease dir stand for two processes.
	a, err := newIDAllocator(dir, base, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newIDAllocator(dir, base, 2)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := a.acquire("a 1")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := b.acquire("b 1")
	if err != nil {
		t.Fatal(err)
	}
	if l1.base == l2.base {
		t.Fatalf("both got block %d", l1.base)
	}
	if _, err := a.acquire("a 2"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("third lease of two blocks: %v, want all in use", err)
	}
	if err := l1.release(); err != nil {
		t.Fatal(err)
	}
	l3, err := b.acquire("b 2")
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if l3.base != l1.base {
		t.Fatalf("got block %d, want the released %d", l3.base, l1.base)
	}
	// A holder that died without releasing leaves its owner in the file:
	// the block is reused once no process has its ids.
	l3.f.Close()
	l4, err := a.acquire("a 3")
	if err != nil || l4.base != l1.base {
		t.Fatalf("stale lease: %+v %v, want block %d", l4, err, l1.base)
	}

	for _, bad := range []uint32{0, 12345} {
		if _, err := newIDAllocator(dir, bad, 1); err == nil {
			t.Errorf("base %d accepted", bad)
		}
	}
	if _, err := newIDAllocator(dir, 1<<31-idBlockSize, 2); err == nil {
		t.Error("a range past 2^31 accepted")
	}
}

func TestSeccomp_isAnAllowlistThatRefusesIOUringKeyringsAndNamespaces(t *testing.T) {
	b := newBackend(t, t.TempDir())
	out, errOut, st := runToEnd(t, b, container.Spec{
		ID: "syscalls", Args: []string{LifecyclePath}, Env: []string{helperEnv + "=syscalls"},
	})
	want := "io_uring_setup: operation not permitted\nkeyctl: operation not permitted\nclone(CLONE_NEWUSER): operation not permitted\n"
	if st.Code != 0 || out != want {
		t.Fatalf("status %+v stderr %q stdout:\n%s\nwant:\n%s", st, errOut, out, want)
	}
	// The host allows both: the profile is what refuses them.
	var params [120]byte
	fd, _, e := syscall.Syscall(sysIOURingSetup, 1, uintptr(unsafe.Pointer(&params)), 0)
	if e == 0 {
		syscall.Close(int(fd))
	} else if errors.Is(e, syscall.EPERM) {
		t.Log("io_uring is disabled on this host too")
	}
	if _, _, e := syscall.Syscall(syscall.SYS_KEYCTL, 0, ^uintptr(2), 0); errors.Is(e, syscall.EPERM) {
		t.Fatal("keyctl is refused on the host too: the test proves nothing")
	}
}

func TestCleanup_sweepsRootfsDirsOfDeletedStateDirs(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	old := newBackend(t, gone)
	if err := os.Mkdir(filepath.Join(old.rootfsDir, "left"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	kept := newBackend(t, t.TempDir())
	b := newBackend(t, t.TempDir())
	if err := b.Cleanup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old.rootfsDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rootfs dir of a deleted state dir: %v, want it removed", err)
	}
	if _, err := os.Stat(kept.rootfsDir); err != nil {
		t.Fatalf("rootfs dir of a live backend: %v", err)
	}
}

// Rootfs dirs of deleted state dirs still in use stay: one with a mount
// below, one whose container's ids a process still runs with; the unused
// ones beside them go (the mounts and ids are read once for all the dirs).
func TestCleanup_keepsRootfsDirsOfDeletedStateDirsStillInUse(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting and running a process as another uid need root")
	}
	orphan := func(name, sub string) string {
		gone := filepath.Join(t.TempDir(), name)
		dir := newBackend(t, gone).rootfsDir
		if err := os.MkdirAll(filepath.Join(dir, sub, "root"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(gone); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	mounted := orphan("mounted", "app-mounted")
	mp := filepath.Join(mounted, "app-mounted", "root")
	if err := unix.Mount("tmpfs", mp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mp, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(mp, "in-use"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Past the default range, where no container runs.
	const base = DefaultHostIDBase + (DefaultHostIDBlocks+8)*idBlockSize
	running := orphan("running", "app-running")
	if err := os.Chown(filepath.Join(running, "app-running"), base, base); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: base + 7, Gid: base + 7}}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
	unused := []string{orphan("unused1", "app-a"), orphan("unused2", "app-b")}

	b := newBackend(t, t.TempDir())
	if err := b.Cleanup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(mp, "in-use"), filepath.Join(mounted, stateDirMarker), filepath.Join(running, "app-running", "root")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s of a rootfs dir still in use: %v, want it kept", p, err)
		}
	}
	for _, d := range unused {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("unused rootfs dir %s of a deleted state dir: %v, want it removed", d, err)
		}
	}
}

func TestIDAllocator_takesCleanBlocksFirstAndStaleOnesOnlyWhenNoProcessHasTheirIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "running a process as another uid needs root")
	}
	dir := t.TempDir()
	// Past the default range, where no container runs.
	const base = DefaultHostIDBase + (DefaultHostIDBlocks+4)*idBlockSize
	a, err := newIDAllocator(dir, base, 3)
	if err != nil {
		t.Fatal(err)
	}
	block := func(k int) uint32 { return base + uint32(k)*idBlockSize }
	// Blocks 0 and 1: holders that died without releasing them; a process
	// still runs with an id of block 1.
	for _, k := range []int{0, 1} {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(int(block(k)))), []byte("dead holder\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "60")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: block(1) + 7, Gid: block(1) + 7}}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})

	// Leases stay held until the test ends (a collected lease's file is
	// closed, which would free its block).
	var held []*idLease
	t.Cleanup(func() {
		for _, l := range held {
			_ = l.release()
		}
	})
	l, err := a.acquire("first")
	if err != nil || l.base != block(2) {
		t.Fatalf("first lease %+v (%v), want the clean block %d before the stale ones", l, err, block(2))
	}
	held = append(held, l)
	l2, err := a.acquire("second")
	if err != nil || l2.base != block(0) {
		t.Fatalf("second lease %+v (%v), want stale block %d, whose ids no process has", l2, err, block(0))
	}
	held = append(held, l2)
	if l3, err := a.acquire("third"); err == nil {
		held = append(held, l3)
		t.Fatalf("third lease %d: block %d's ids are still in use", l3.base, block(1))
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	l3, err := a.acquire("third")
	if err != nil || l3.base != block(1) {
		t.Fatalf("after the process exited: %+v (%v), want block %d", l3, err, block(1))
	}
	held = append(held, l3)
}

func TestIDSet_anyFindsAnIDInARange(t *testing.T) {
	s := &idSet{ids: []uint32{0, 5, 100}}
	for _, c := range []struct {
		lo, hi uint32
		want   bool
	}{{0, 0, true}, {1, 4, false}, {1, 5, true}, {6, 99, false}, {100, 200, true}, {101, 1 << 31, false}} {
		if got := s.any(c.lo, c.hi); got != c.want {
			t.Errorf("any(%d, %d) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
	if !(&idSet{unknown: true}).any(1, 2) {
		t.Error("an unknown set must count every id as used")
	}
}

// TestIDAllocator_reacquireWaitsOutAnotherBackendsProbe: a restarted
// server takes its container's block back even while another backend's
// Cleanup probes the lease file (a brief shared lock), but not from a
// holder that keeps it.
func TestIDAllocator_reacquireWaitsOutAnotherBackendsProbe(t *testing.T) {
	dir := t.TempDir()
	const base = DefaultHostIDBase + DefaultHostIDBlocks*idBlockSize
	a, err := newIDAllocator(dir, base, 1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.acquire("server 1")
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close() // the server died; its container runs on

	probe, err := os.Open(filepath.Join(dir, strconv.FormatUint(uint64(l.base), 10)))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := unix.Flock(int(probe.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(100 * time.Millisecond) // the probe's lock outlives the first try
		_ = unix.Flock(int(probe.Fd()), unix.LOCK_UN)
	}()
	l2, err := a.reacquire(l.base, "server 1")
	<-released
	if err != nil {
		t.Fatalf("reacquire during a probe: %v", err)
	}
	// A live holder keeps it: a second reacquire fails (after the wait).
	if _, err := a.reacquire(l.base, "server 1"); err == nil || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("reacquire of a held lease: %v, want held by another process", err)
	}
	if err := l2.release(); err != nil {
		t.Fatal(err)
	}
}
