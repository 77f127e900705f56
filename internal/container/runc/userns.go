package runc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"golang.org/x/sys/unix"
)

// Every container runs in its own user namespace: container ids
// 0..idBlockSize-1 are host ids base..base+idBlockSize-1, where the block
// at base belongs to that container alone while it exists. Per-user kernel
// limits (inotify instances, RLIMIT_NPROC, pending signals) are then per
// container, and root in a container is an unprivileged host user.
const idBlockSize = 65536

// Defaults for Config.HostIDBase and Config.HostIDBlocks: 0x70000000 is
// above the ranges useradd gives /etc/subuid (100000-600100000) and
// systemd's container ranges (524288-1879048191); 2048 blocks end well
// below systemd's dynamic and foreign ranges (0x7FFE0000).
const (
	DefaultHostIDBase   = 0x70000000
	DefaultHostIDBlocks = 2048
)

// idAllocator hands out id blocks. A block is taken by holding an flock on
// its lease file in a machine-wide directory, so backends in different
// processes never share a block, and a process that dies releases its
// blocks with its file descriptors. The lease file names its holder; a
// file that still names one when its lock is free was left by a process
// that died, and its block is reused only once no host process runs with
// an id in it (its containers may have outlived it).
type idAllocator struct {
	dir    string
	base   uint32
	blocks int

	mu   sync.Mutex
	next int
}

type idLease struct {
	base uint32
	f    *os.File
}

// host returns the host id of container id id.
func (l *idLease) host(id uint32) uint32 { return l.base + id }

func newIDAllocator(dir string, base uint32, blocks int) (*idAllocator, error) {
	if base%idBlockSize != 0 || base == 0 {
		return nil, fmt.Errorf("host id base %d must be a non-zero multiple of %d", base, idBlockSize)
	}
	if blocks <= 0 || uint64(base)+uint64(blocks)*idBlockSize > 1<<31 {
		return nil, fmt.Errorf("host id range %d + %d blocks of %d must end below 2^31", base, blocks, idBlockSize)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host id leases: %w", err)
	}
	return &idAllocator{dir: dir, base: base, blocks: blocks}, nil
}

// acquire takes a free block for owner (written into the lease file).
func (a *idAllocator) acquire(owner string) (*idLease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// First a block released cleanly (an empty lease file): taking it
	// needs no look at the host's processes. Blocks whose holder died
	// without releasing them come second, with one look at /proc for all.
	var stale []int
	for i := 0; i < a.blocks; i++ {
		k := (a.next + i) % a.blocks
		l, dirty, err := a.tryLease(a.base+uint32(k)*idBlockSize, owner, nil)
		if err != nil {
			return nil, err
		}
		if l != nil {
			a.next = (k + 1) % a.blocks
			return l, nil
		}
		if dirty {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		used := hostIDsInUse()
		for _, k := range stale {
			l, _, err := a.tryLease(a.base+uint32(k)*idBlockSize, owner, used)
			if err != nil {
				return nil, err
			}
			if l != nil {
				a.next = (k + 1) % a.blocks
				return l, nil
			}
		}
	}
	return nil, pando.Errorf(pando.EInsufficient, "insufficient resources: all %d host id ranges from %d are in use", a.blocks, a.base)
}

// tryLease takes the block at base: it returns nil when another holder
// has it, or when its lease file was not released and used is nil (dirty
// true) or has ids of the block.
func (a *idAllocator) tryLease(base uint32, owner string, used *idSet) (l *idLease, dirty bool, err error) {
	f, err := os.OpenFile(filepath.Join(a.dir, strconv.FormatUint(uint64(base), 10)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("host id lease: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("host id lease %d: %w", base, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() > 0 {
		if err != nil || used == nil || used.any(base, base+idBlockSize-1) {
			f.Close()
			return nil, err == nil, nil
		}
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(owner+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("host id lease %d: %w", base, err)
	}
	return &idLease{base: base, f: f}, false, nil
}

// release frees the block: call it only once nothing of the container
// runs any more.
func (l *idLease) release() error {
	err := l.f.Truncate(0)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release host ids %d: %w", l.base, err)
	}
	return nil
}

// reacquire takes the block at base again for owner, whose earlier
// holder (a killed server) left it with the container still running: the
// lease file must name owner and be free of locks.
func (a *idAllocator) reacquire(base uint32, owner string) (*idLease, error) {
	if base < a.base || (base-a.base)%idBlockSize != 0 || int((base-a.base)/idBlockSize) >= a.blocks {
		return nil, fmt.Errorf("host id base %d is outside this backend's range", base)
	}
	f, err := os.OpenFile(filepath.Join(a.dir, strconv.FormatUint(uint64(base), 10)), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("host id lease %d: %w", base, err)
	}
	if err := lockLease(f, reacquireWait); err != nil {
		f.Close()
		return nil, fmt.Errorf("host id lease %d: held by another process: %w", base, err)
	}
	buf := make([]byte, len(owner)+2)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != owner+"\n" {
		f.Close()
		return nil, fmt.Errorf("host id lease %d names another holder", base)
	}
	return &idLease{base: base, f: f}, nil
}

// drop lets go of the lease without freeing the block: its container may
// still run (the lease file keeps naming it until release).
func (l *idLease) drop() { l.f.Close() }

// idsInUse reports whether a host process has a uid or gid in [lo, hi].
func idsInUse(lo, hi uint32) bool { return hostIDsInUse().any(lo, hi) }

// idSet is the uids and gids the host's processes run with, sorted;
// unknown when /proc cannot be read (every id counts as used then).
type idSet struct {
	ids     []uint32
	unknown bool
}

// hostIDsInUse reads every process's uids and gids from /proc. Unreadable
// entries (processes that exited meanwhile) are skipped.
func hostIDsInUse() *idSet {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return &idSet{unknown: true} // cannot tell: keep away
	}
	seen := map[uint32]bool{}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f, err := os.Open("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "Uid:") && !strings.HasPrefix(line, "Gid:") {
				continue
			}
			for _, field := range strings.Fields(line)[1:] {
				if id, err := strconv.ParseUint(field, 10, 32); err == nil {
					seen[uint32(id)] = true
				}
			}
		}
		f.Close()
	}
	s := &idSet{ids: make([]uint32, 0, len(seen))}
	for id := range seen {
		s.ids = append(s.ids, id)
	}
	slices.Sort(s.ids)
	return s
}

// any reports whether an id in [lo, hi] is in use.
func (s *idSet) any(lo, hi uint32) bool {
	if s.unknown {
		return true
	}
	i, _ := slices.BinarySearch(s.ids, lo)
	return i < len(s.ids) && s.ids[i] <= hi
}

// userNS holds a new user namespace, owned by the host uid its root maps
// to, until runc has joined it. Ownership is the point: the kernel
// charges per-user limits of everything in a user namespace to its owner
// as well, so a namespace runc created (owned by host root) would make all
// containers share root's limits.
type userNS struct {
	cmd  *exec.Cmd
	path string
}

// newUserNS starts a holder process as host uid and gid lease.base that
// unshares a user namespace, and maps the lease's block into it.
func newUserNS(ctx context.Context, unsharePath string, lease *idLease, life time.Duration) (*userNS, error) {
	base := lease.base
	// sleep bounds the holder's life (life: longer than a start takes) if
	// we die before killing it. No Pdeathsig: Go sends it when the OS
	// thread that started the child exits, which may be long before we do.
	cmd := exec.Command(unsharePath, "--user", "--", "sleep", strconv.Itoa(int(life.Seconds())+1))
	cmd.Env = []string{defaultPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: base, Gid: base},
		Setpgid:    true,
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("create user namespace: start %s: %w", unsharePath, err)
	}
	// The holder stays our unreaped child until close, so its pid (and
	// path) cannot name another process meanwhile.
	pid := cmd.Process.Pid
	ns := &userNS{cmd: cmd, path: fmt.Sprintf("/proc/%d/ns/user", pid)}
	fail := func(err error) (*userNS, error) {
		ns.close()
		return nil, fmt.Errorf("create user namespace as host uid %d: %w", base, err)
	}
	own, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return fail(err)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	delay := 100 * time.Microsecond
	for {
		// The process is our unreaped child until close: its pid cannot
		// be reused meanwhile.
		if l, err := os.Readlink(ns.path); err == nil && l != own {
			break
		}
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil || info.Signo != 0 {
			_ = cmd.Wait()
			return fail(fmt.Errorf("unshare failed (unprivileged user namespaces must be enabled): %s", strings.TrimSpace(stderr.String())))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-deadline.C:
			return fail(errors.New("unshare did not create it within 10s"))
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
	m := []byte(fmt.Sprintf("0 %d %d\n", base, idBlockSize))
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), f), m, 0); err != nil {
			return fail(fmt.Errorf("write %s: %w", f, err))
		}
	}
	return ns, nil
}

// close kills and reaps the holder; the namespace lives on in the
// container that joined it.
func (n *userNS) close() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// chownTree makes uid and gid own root and everything below it, without
// following symlinks or crossing into other filesystems. The backend
// calls it on each writable directory a container gets, so files prepared
// on the host (an extracted droplet) belong to the container's user as the
// host sees it.
func chownTree(ctx context.Context, root string, uid, gid int) error {
	var rootDev uint64
	n := 0
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
			if p == root {
				rootDev = st.Dev
			} else if st.Dev != rootDev {
				return filepath.SkipDir
			}
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		return nil
	})
}

// reacquireWait is how long reacquire waits out other locks on a lease:
// another backend's Cleanup on the machine probes every lease file with a
// brief shared lock (staleOwner), while a live holder keeps its lock.
const reacquireWait = 2 * time.Second

// lockLease takes f's exclusive lock, retrying for up to wait while
// someone else holds it.
func lockLease(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
