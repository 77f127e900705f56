package runc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// What a killed server (or a test that deleted a state dir) leaves under
// RunDir, and Cleanup removes: the host id leases of its containers (see
// idAllocator: a lease whose holder died keeps naming it) and its shims'
// socket dir with the sockets of shims that are gone.

// leaseSettle bounds how long Cleanup waits for the processes of the
// containers it killed to be gone before it frees their host ids.
const leaseSettle = 5 * time.Second

// reclaimLeases frees the host id blocks left by holders that died
// without releasing them, when no backend can adopt their container any
// more: those of this backend's StateDir (Cleanup runs after the
// adoptions, so what is not held now is a leftover's), and those whose
// container runc no longer knows (its StateDir, or its runc state there,
// is gone: a deleted data dir, a test's temp dir). A block stays taken
// while a host process runs with one of its ids. killed names the
// containers Cleanup just deleted: their processes may take a moment to
// go, and their blocks are looked at again meanwhile.
func (b *Backend) reclaimLeases(ctx context.Context, killed []string) {
	settle := map[string]bool{}
	for _, id := range killed {
		settle[b.stateDir+" "+id] = true
	}
	reclaimable := func(owner string) bool {
		i := strings.LastIndexByte(owner, ' ')
		if i <= 0 {
			return false
		}
		dir, id := owner[:i], owner[i+1:]
		if dir == b.stateDir {
			return true
		}
		if !filepath.IsAbs(dir) || !validID(id) {
			return false
		}
		// Adopt needs runc's state of the container (StateDir/runc/ID).
		_, err := os.Stat(filepath.Join(dir, "runc", id))
		return errors.Is(err, os.ErrNotExist)
	}
	if n := b.ids.reclaim(ctx, reclaimable, settle, leaseSettle); n > 0 {
		b.log.Info("freed host id ranges of containers that are gone", "ranges", n)
	}
}

// staleLease is a lease file whose holder died: its block and owner.
type staleLease struct {
	base  uint32
	owner string
}

// reclaim frees the blocks of lease files left by a holder that died (no
// lock on them, still naming an owner) when reclaimable accepts the owner
// and no host process runs with an id of the block. Blocks of the owners
// in settle are looked at again for up to settleFor while their ids are
// in use. It returns how many blocks it freed.
func (a *idAllocator) reclaim(ctx context.Context, reclaimable func(owner string) bool, settle map[string]bool, settleFor time.Duration) int {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return 0
	}
	var stale []staleLease
	for _, e := range ents {
		base, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || base == 0 || base%idBlockSize != 0 {
			continue
		}
		if owner, ok := a.staleOwner(uint32(base)); ok && reclaimable(owner) {
			stale = append(stale, staleLease{uint32(base), owner})
		}
	}
	freed := 0
	deadline := time.Now().Add(settleFor)
	for len(stale) > 0 {
		used := hostIDsInUse()
		var busy []staleLease
		for _, l := range stale {
			switch {
			case !used.any(l.base, l.base+idBlockSize-1):
				if a.free(l) {
					freed++
				}
			case settle[l.owner]:
				busy = append(busy, l)
			}
		}
		stale = busy
		if len(stale) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return freed
		case <-time.After(50 * time.Millisecond):
		}
	}
	return freed
}

// staleOwner reads the owner a lease file names when nobody holds it.
func (a *idAllocator) staleOwner(base uint32) (string, bool) {
	f, err := os.OpenFile(filepath.Join(a.dir, strconv.FormatUint(uint64(base), 10)), os.O_RDONLY, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return "", false // held
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil || len(data) == 0 {
		return "", false
	}
	return strings.TrimSuffix(string(data), "\n"), true
}

// free empties the lease file of l if it is still free and names l's
// owner: its block is then taken like any released one.
func (a *idAllocator) free(l staleLease) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(a.dir, strconv.FormatUint(uint64(l.base), 10)), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	buf := make([]byte, len(l.owner)+2)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != l.owner+"\n" {
		return false
	}
	return f.Truncate(0) == nil
}

// sweepShimDirs removes the shim socket dirs of backends whose StateDir
// is gone (its rootfs dir's marker is missing or names a deleted dir):
// first the sockets no shim listens on any more, then the dir once empty.
// A shim still running there removes its own socket when it ends.
func (b *Backend) sweepShimDirs() {
	parent := filepath.Dir(b.shimDir)
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	var listening map[string]bool
	for _, e := range ents {
		if !e.IsDir() || e.Name() == filepath.Base(b.shimDir) || !b.orphanStateHash(e.Name()) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		socks, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		if len(socks) > 0 && listening == nil {
			if listening, err = listeningUnixSockets(); err != nil {
				b.log.Warn("sweep shim socket dirs", "error", err)
				return
			}
		}
		for _, s := range socks {
			if p := filepath.Join(dir, s.Name()); !listening[p] {
				_ = os.Remove(p)
			}
		}
		_ = os.Remove(dir)
	}
}

// orphanStateHash says whether the backend of a state dir hash (the name
// of its dirs under RunDir) has lost its StateDir.
func (b *Backend) orphanStateHash(hash string) bool {
	owner, err := os.ReadFile(filepath.Join(filepath.Dir(b.rootfsDir), hash, stateDirMarker))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	_, err = os.Stat(string(owner))
	return errors.Is(err, os.ErrNotExist)
}

// listeningUnixSockets lists the paths of the listening unix sockets in
// the calling thread's network namespace, the host's where shims live:
// not /proc/net (the main thread's), which may have been moved into a
// container's namespace by a locked goroutine (netns.go).
func listeningUnixSockets() (map[string]bool, error) {
	f, err := os.Open("/proc/thread-self/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const acceptCon = 1 << 16 // __SO_ACCEPTCON: listening
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode [Path]
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		flags, err := strconv.ParseUint(fields[3], 16, 32)
		if err != nil || flags&acceptCon == 0 {
			continue
		}
		out[strings.Join(fields[7:], " ")] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
