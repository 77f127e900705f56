package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/mountinfo"
	"github.com/pandoplatform/pando/internal/testenv"
)

// fakeRun is a scratch dir as a run leaves it: one server node with a
// mount in its data dir (a volume) and a container rootfs mounted in its
// backend's rootfs dir under runDir.
type fakeRun struct {
	dir, node, rootfs string
}

func newFakeRun(t *testing.T, parent, runDir string) fakeRun {
	t.Helper()
	dir, err := os.MkdirTemp(parent, scratchPrefix)
	noErr(t, err)
	node := filepath.Join(dir, "server-1")
	stateDir := filepath.Join(node, "data", "containers")
	vol := filepath.Join(stateDir, "volumes", "app-1")
	noErr(t, os.MkdirAll(vol, 0o700))
	mountTmpfs(t, vol)
	return fakeRun{dir: dir, node: node, rootfs: fakeRootfs(t, runDir, stateDir)}
}

// fakeRootfs makes stateDir's rootfs dir under runDir, as the runc
// backend does, with one container's rootfs mounted in it.
func fakeRootfs(t *testing.T, runDir, stateDir string) string {
	t.Helper()
	rd := filepath.Join(runDir, "rootfs", rootfsHashDir(stateDir))
	root := filepath.Join(rd, "app-1", "root")
	noErr(t, os.MkdirAll(root, 0o711))
	noErr(t, os.WriteFile(filepath.Join(rd, stateDirFile), []byte(stateDir), 0o600))
	mountTmpfs(t, root)
	return rd
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
}

// holdLock runs a process that holds dir's owner lock until it is
// killed (its process group, at the latest when t ends); it returns once
// the lock is held.
func holdLock(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	owner := filepath.Join(dir, ownerFile)
	// --close: flock holds the lock, its child (sleep) does not.
	cmd := exec.Command("flock", "--exclusive", "--close", owner, "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	noErr(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if f, stale := staleOwner(dir); stale {
			f.Close()
		} else if _, err := os.Stat(owner); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("the owner process did not take the lock within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A run killed by go test -timeout leaves its scratch dir with an owner
// lock nobody holds: the next run removes it, its mounts and its rootfs
// dir. A run whose owner lives, a dir without an owner file (an older
// run's) and the rootfs dirs of state dirs outside the scratch dirs are
// left alone; the rootfs dir of a scratch dir's state dir that is gone is
// removed.
func TestSweepStale_removesDeadRunsLeftoversOnly(t *testing.T) {
	requireE2E(t)
	if _, err := exec.LookPath("flock"); err != nil {
		testenv.Missing(t, "flock (util-linux) is not on PATH")
	}
	parent, runDir := t.TempDir(), t.TempDir()
	t.Cleanup(func() {
		// Whatever the sweep left mounted, before the temp dirs go.
		_ = unmountUnder(parent)
		_ = unmountUnder(runDir)
	})

	// Killed while holding its lock (SIGKILL: no cleanup of its own).
	dead := newFakeRun(t, parent, runDir)
	owner := holdLock(t, dead.dir)
	noErr(t, owner.Process.Kill())
	_ = owner.Wait()

	live := newFakeRun(t, parent, runDir)
	holdLock(t, live.dir)

	// This process's own run dir, locked as TestMain locks its own.
	mine, lock, err := newScratch(parent)
	noErr(t, err)
	defer lock.Close()

	legacy := newFakeRun(t, parent, runDir) // no owner file

	// A rootfs dir whose state dir, in a scratch dir, is gone; and one
	// of a state dir elsewhere (a real server's), gone too.
	orphan := fakeRootfs(t, runDir, filepath.Join(parent, scratchPrefix+"gone", "server-1", "data", "containers"))
	foreign := fakeRootfs(t, runDir, filepath.Join(t.TempDir(), "pando", "containers"))

	swept, err := sweepStale(parent, runDir)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if want := []string{dead.dir, orphan}; !slices.Equal(swept, want) {
		t.Errorf("swept %v, want %v", swept, want)
	}
	for _, d := range []string{dead.dir, dead.rootfs, orphan} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", d, err)
		}
		if ms, err := mountinfo.Under(d); err != nil || len(ms) > 0 {
			t.Errorf("mounts remain under %s: %v (%v)", d, ms, err)
		}
	}
	for _, d := range []string{live.dir, live.rootfs, legacy.dir, legacy.rootfs, foreign} {
		if ms, err := mountinfo.Under(d); err != nil || len(ms) != 1 {
			t.Errorf("%s: mounts %v (%v), want its one mount left alone", d, ms, err)
		}
	}
	for _, d := range []string{live.node, legacy.node, filepath.Join(mine, ownerFile)} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("left alone, but: %v", err)
		}
	}
	// The live owner's lock is held still: the sweep did not take it.
	if f, stale := staleOwner(live.dir); stale {
		f.Close()
		t.Error("the live run's owner lock is free after the sweep")
	}
}
