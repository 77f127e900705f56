package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/mountinfo"
)

// A run's scratch dir (pando-e2e-* in the temp dir) holds its servers',
// cells' and routers' dirs. A run that `go test -timeout` kills (a panic:
// no t.Cleanup, no deferred removal) leaves their runc containers (and
// so their shims), mounts (loop volumes in the data dirs, overlay rootfs
// under /run/pando/rootfs), cgroups and the dir itself behind. A run
// holds an flock on its scratch dir's owner file for as long as it lives
// (the kernel drops it when the process dies, however it dies), and each
// run sweeps, at start, the scratch dirs whose owner lock is free. Dirs
// without an owner file (an older version's runs) are left alone.

const (
	scratchPrefix = "pando-e2e-"
	ownerFile     = ".owner"
	// defaultRunDir is the runc backend's RunDir (runc.Config), where
	// each backend's rootfs mount points are: <RunDir>/rootfs/<hash of
	// its state dir>, with the state dir's path in .state-dir.
	defaultRunDir = "/run/pando"
	stateDirFile  = ".state-dir"
)

// newScratch makes this run's scratch dir in parent and returns it with
// its owner file, locked until the file is closed (or the process ends).
// The file is locked before it gets the name sweepers look for, so no
// sweeper ever finds it unlocked while the run lives.
func newScratch(parent string) (string, *os.File, error) {
	dir, err := os.MkdirTemp(parent, scratchPrefix)
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(dir, ownerFile+".new-")
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	fmt.Fprintf(f, "pid %d\n", os.Getpid()) // for a person looking
	if err := os.Rename(f.Name(), filepath.Join(dir, ownerFile)); err != nil {
		f.Close()
		return "", nil, err
	}
	return dir, f, nil
}

// sweepStale removes what runs killed earlier left: every scratch dir in
// parent whose owner is gone (its nodes cleaned up as cleanNode does,
// then the dir), and the rootfs dirs under runDir whose state dir was in
// a scratch dir of parent and is gone. It returns what it removed.
func sweepStale(parent, runDir string) ([]string, error) {
	var swept []string
	var errs []error
	dirs, err := filepath.Glob(filepath.Join(parent, scratchPrefix+"*"))
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		lock, ok := staleOwner(dir)
		if !ok {
			continue
		}
		err := sweepScratch(dir, runDir)
		lock.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		swept = append(swept, dir)
	}
	orphans, err := sweepOrphanRootfs(parent, runDir)
	swept = append(swept, orphans...)
	return swept, errors.Join(append(errs, err)...)
}

// staleOwner takes the owner lock of scratch dir dir when its owner is
// gone, and returns the locked file; false when dir has no owner file or
// its owner lives (or another run is sweeping it).
func staleOwner(dir string) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, ownerFile), os.O_RDWR, 0)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// sweepScratch cleans up every node dir of a dead run's scratch dir, then
// removes the dir.
func sweepScratch(dir, runDir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			root := filepath.Join(dir, e.Name())
			errs = append(errs, cleanNode(root, filepath.Join(root, "data"), runDir))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep %s: %w", dir, err)
	}
	return removeUnmounted(dir)
}

// cleanNode removes what a server or cell that runs no more left of its
// node dir root (data dir dataDir): its runc containers (their shims end
// with them), the mounts below root and its rootfs dir under runDir, its
// cgroups, then root itself (never through a mount that could not be
// removed).
func cleanNode(root, dataDir, runDir string) error {
	var errs []error
	stateDir := filepath.Join(dataDir, "containers")
	runcRoot := filepath.Join(stateDir, "runc")
	ids, err := runcContainers(runcRoot)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "delete", "--force", id).CombinedOutput()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", id, err, out))
		}
	}
	errs = append(errs, unmountUnder(root))
	if rd := rootfsDir(runDir, stateDir); rd != "" {
		errs = append(errs, unmountUnder(rd), removeUnmounted(rd))
	}
	cgroupclean.Remove(cgroupclean.DefaultParent(stateDir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return removeUnmounted(root)
}

// runcContainers lists the runc containers of a runc root.
func runcContainers(runcRoot string) ([]string, error) {
	if _, err := os.Stat(runcRoot); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "list", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// rootfsDir is the runc backend's rootfs dir under runDir for stateDir,
// "" when there is none (or it names another state dir).
func rootfsDir(runDir, stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return ""
	}
	dir := filepath.Join(runDir, "rootfs", rootfsHashDir(abs))
	if owner, err := os.ReadFile(filepath.Join(dir, stateDirFile)); err != nil || string(owner) != abs {
		return ""
	}
	return dir
}

// rootfsHashDir is the name of an (absolute) state dir's rootfs dir: the
// first 4 bytes of its path's SHA-256, in hex.
func rootfsHashDir(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return hex.EncodeToString(sum[:4])
}

// sweepOrphanRootfs removes the rootfs dirs under runDir whose state dir
// was in one of parent's scratch dirs and is gone: a run cleaned up its
// node (or was swept) while a container's rootfs was still mounted.
func sweepOrphanRootfs(parent, runDir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, "rootfs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(parent, scratchPrefix)
	var swept []string
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(runDir, "rootfs", e.Name())
		owner, err := os.ReadFile(filepath.Join(dir, stateDirFile))
		if o := string(owner); err != nil || !strings.HasPrefix(o, prefix) || filepath.Clean(o) != o {
			continue
		}
		if _, err := os.Stat(string(owner)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := errors.Join(unmountUnder(dir), removeUnmounted(dir)); err != nil {
			errs = append(errs, err)
			continue
		}
		swept = append(swept, dir)
	}
	return swept, errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	ms, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// removeUnmounted removes dir unless something is still mounted below it:
// RemoveAll through a bind mount of /usr would wipe the host's.
func removeUnmounted(dir string) error {
	if left, err := mountinfo.Under(dir); err != nil || len(left) > 0 {
		return fmt.Errorf("not removing %s: mounts remain %v (%v)", dir, left, err)
	}
	return os.RemoveAll(dir)
}
