package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// tempDirName is the one directory of the data dir that holds temp files:
// uploads being assembled, blobs being written. Nothing in it outlives
// the process that made it, so the server empties it at start.
const tempDirName = "tmp"

// openDataDir creates the data dir and subdirs in it, under the lock of
// lockDataDir; release drops the lock.
func openDataDir(dataDir string, subdirs ...string) (release func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	release, err = lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	for _, d := range subdirs {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			release()
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	return release, nil
}

// lockDataDir takes an exclusive lock on the data dir for as long as the
// process lives (the kernel drops it even on kill -9): a second server on
// the same data dir would corrupt its state and sweep its uploads.
func lockDataDir(dataDir string) (release func(), err error) {
	path := filepath.Join(dataDir, "server.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another pando process (server, api, cell or router: %s is locked); stop it or use another --data-dir", dataDir, path)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// sweepTempDir removes everything in dir: what a crash (kill -9 during an
// upload) left. It reports how many entries it removed.
func sweepTempDir(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep temp dir: %w", err)
	}
	var errs []error
	n := 0
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("sweep temp dir %s: %w", dir, errors.Join(errs...))
	}
	return n, nil
}
