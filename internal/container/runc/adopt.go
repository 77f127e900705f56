package runc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/container"
)

// A container outlives the server that started it (see shim.go). What a
// later Backend on the same StateDir needs to adopt it is in its bundle:
// stateFile (written before the shim starts), init.pid (runc's), and the
// shim's socket under RunDir.
const (
	stateFile = "pando.json"
	exitFile  = "exit.json"
)

// shimLog, in StateDir, is where shims write what went wrong (rarely a
// line: they have nobody else to tell).
const shimLog = "shims.log"

// containerState is what a Backend keeps of a container in its bundle.
type containerState struct {
	LeaseBase uint32   `json:"lease_base"`
	CgPath    string   `json:"cgroup"`
	Limit     int64    `json:"memory_limit"`
	Volume    string   `json:"volume,omitempty"`
	RWMounts  []string `json:"rw_mounts,omitempty"`
	Overlay   bool     `json:"overlay,omitempty"`
	// ShimAcks: the container's shim numbers its output and waits for
	// acknowledgements (protocol 2); false for a shim of an older version.
	ShimAcks bool `json:"shim_acks,omitempty"`
}

// writeState writes the bundle's state file atomically.
func writeState(dir string, st containerState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode container state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
		return fmt.Errorf("write container state: %w", err)
	}
	return nil
}

// readState reads and checks a bundle's state file.
func readState(dir string) (containerState, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return containerState{}, fmt.Errorf("read container state: %w", err)
	}
	var st containerState
	if err := json.Unmarshal(data, &st); err != nil {
		return containerState{}, fmt.Errorf("container state %s: %w", filepath.Join(dir, stateFile), err)
	}
	switch {
	case st.LeaseBase == 0 || st.LeaseBase%idBlockSize != 0:
		return containerState{}, fmt.Errorf("container state %s: bad host id base %d", dir, st.LeaseBase)
	case !strings.HasPrefix(st.CgPath, "/") || strings.Contains(st.CgPath, ".."):
		return containerState{}, fmt.Errorf("container state %s: bad cgroup %q", dir, st.CgPath)
	case st.Volume != "" && !filepath.IsAbs(st.Volume):
		return containerState{}, fmt.Errorf("container state %s: bad volume %q", dir, st.Volume)
	}
	return st, nil
}

// shimSocket is where container id's shim listens for servers.
func (b *Backend) shimSocket(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(b.shimDir, hex.EncodeToString(sum[:12])+".sock")
}

// A spare shim: started, waiting for its job on conn.
type spareShim struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
}

// launchShim starts a shim that waits for its job.
func (b *Backend) launchShim() (*spareShim, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shim connection: %w", os.NewSyscallError("socketpair", err))
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "shim-conn"), os.NewFile(uintptr(fds[1]), "shim-conn")
	defer theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("shim connection: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(b.stateDir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("shim log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(b.shim, ShimCommand)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3: shimConnFD
	cmd.Stderr = logFile
	cmd.Env = []string{defaultPath}
	// A session of its own: the server's terminal, process group and
	// death do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		c.Close()
		return nil, fmt.Errorf("start container shim %s: %w", b.shim, err)
	}
	go func() { _ = cmd.Wait() }() // reaped while this server lives
	return &spareShim{cmd: cmd, conn: c.(*net.UnixConn)}, nil
}

// takeShim returns the spare shim, or a new one when there is none. The
// caller starts the next spare (refillSpare) once its container runs: a
// shim starting meanwhile would compete with it for the CPU.
func (b *Backend) takeShim() (*spareShim, error) {
	b.spareMu.Lock()
	s := b.spare
	b.spare = nil
	b.spareMu.Unlock()
	if s != nil {
		return s, nil
	}
	return b.launchShim()
}

// refillSpare starts a spare shim in the background unless one is there
// or starting, or the backend is closed.
func (b *Backend) refillSpare() {
	b.spareMu.Lock()
	defer b.spareMu.Unlock()
	if b.spare != nil || b.spareStarting || b.spareClosed {
		return
	}
	b.spareStarting = true
	go func() {
		s, err := b.launchShim()
		b.spareMu.Lock()
		defer b.spareMu.Unlock()
		b.spareStarting = false
		switch {
		case err != nil:
			b.log.Warn("start a spare container shim", "error", err)
		case b.spareClosed:
			s.conn.Close() // it exits without a job
		default:
			b.spare = s
		}
	}()
}

// closeSpare ends the spare shim, if any, and starts no other.
func (b *Backend) closeSpare() {
	b.spareMu.Lock()
	defer b.spareMu.Unlock()
	b.spareClosed = true
	if b.spare != nil {
		b.spare.conn.Close()
		b.spare = nil
	}
}

// startShim has a shim run runcCmd (not started) for container id and
// returns it with the backend's end of its first connection. Hold
// b.sealedMu (read) while it runs: the job carries runc's extra files.
func (b *Backend) startShim(id string, d bundle, runcCmd *exec.Cmd) (*exec.Cmd, net.Conn, error) {
	if runcCmd.Err != nil {
		return nil, nil, runcCmd.Err
	}
	sock := b.shimSocket(id)
	_ = os.Remove(sock)
	ln, err := b.listenShim(sock)
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(false) // the shim keeps listening on it
	lnFile, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("shim socket: %w", err)
	}
	defer lnFile.Close()
	job, err := json.Marshal(shimJob{Status: d.path(exitFile), Path: runcCmd.Path, Args: runcCmd.Args, Acks: true})
	if err != nil {
		return nil, nil, fmt.Errorf("shim job: %w", err)
	}
	rights := []int{int(lnFile.Fd())}
	for _, f := range runcCmd.ExtraFiles {
		rights = append(rights, int(f.Fd()))
	}
	oob := unix.UnixRights(rights...)
	// A spare may have died meanwhile: then a new one.
	for attempt := 0; ; attempt++ {
		s, err := b.takeShim()
		if err != nil {
			return nil, nil, err
		}
		if _, _, err = s.conn.WriteMsgUnix(job, oob, nil); err == nil {
			return s.cmd, s.conn, nil
		}
		s.conn.Close()
		if attempt == 1 {
			return nil, nil, fmt.Errorf("send the container shim its job: %w", err)
		}
	}
}

// listenShim binds a shim's socket. The socket dir goes with the last
// shim in it (boundSocket.remove), so it is made again first; a shim that
// removes it between the two is raced by trying again.
func (b *Backend) listenShim(sock string) (*net.UnixListener, error) {
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(b.shimDir, 0o700); err != nil {
			return nil, fmt.Errorf("shim socket dir: %w", err)
		}
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.ENOENT) || attempt == 2 {
			return nil, fmt.Errorf("shim socket: %w", err)
		}
	}
}

// follow reads the shim's frames into out until the container exits (or
// the shim is gone), then records the exit status and closes c.done. With
// acks, it acknowledges what out took (a shim of protocol 2).
func (c *Container) follow(conn net.Conn, acks bool, out container.Output) {
	var ack io.Writer
	if acks {
		ack = conn
	}
	st, err := readFrames(conn, ack, out, c.b.log.With("container_id", c.id))
	conn.Close()
	if err != nil {
		// The shim died before the container's end was known (or
		// without telling it): its status file may still say.
		if fst, ferr := readShimStatus(filepath.Join(c.bundle, exitFile)); ferr == nil {
			st = fst
		} else {
			c.b.log.Warn("container shim gone: exit status unknown", "container_id", c.id, "error", err)
			st = shimStatus{Code: -1}
		}
	}
	c.setExit(st)
}

// setExit records how the container ended and closes c.done.
func (c *Container) setExit(st shimStatus) {
	status := container.ExitStatus{Code: st.Code, Signaled: st.Signaled}
	if status.Code == 128+int(syscall.SIGKILL) {
		if n, err := c.b.cg.oomKills(c.cgPath); err == nil && n > 0 {
			status.OOMKilled = true
		}
	}
	c.status = status
	close(c.done)
}

// Adopt takes over container id, started by an earlier Backend on the
// same StateDir (a server killed and started again) and still running
// under its shim: the returned container is as one from Run, its output
// (what the shim held meanwhile first) going to out. Adopt the
// container's volume (AdoptVolume) first. Call it before Cleanup, which
// removes every container not adopted.
func (b *Backend) Adopt(ctx context.Context, id string, out container.Output) (container.Container, error) {
	return b.adopt(ctx, id, out, false)
}

// AdoptEnded is Adopt for a container that may have exited while no
// server watched it (a staging or a CF task, whose end matters): the
// output its shim still holds is relayed to out and Wait returns the exit
// status the shim recorded. A container whose exit status is lost (its
// shim and status file gone) is refused.
func (b *Backend) AdoptEnded(ctx context.Context, id string, out container.Output) (container.Container, error) {
	return b.adopt(ctx, id, out, true)
}

func (b *Backend) adopt(ctx context.Context, id string, out container.Output, ended bool) (container.Container, error) {
	if !validID(id) {
		return nil, pando.Errorf(pando.EInvalid, "adopt container %q: bad id", id)
	}
	b.mu.Lock()
	if _, ok := b.live[id]; ok {
		b.mu.Unlock()
		return nil, pando.Errorf(pando.EConflict, "container %q already exists", id)
	}
	c := &Container{
		b:      b,
		id:     id,
		bundle: filepath.Join(b.bundles, id),
		rootfs: filepath.Join(b.rootfsDir, id),
		owned:  true,
		done:   make(chan struct{}),
	}
	b.live[id] = c // reserved; forgotten again if the adoption fails
	b.mu.Unlock()
	if err := c.adopt(ctx, out, ended); err != nil {
		b.forget(id, c)
		return nil, fmt.Errorf("adopt container %s: %w", id, err)
	}
	return c, nil
}

func (c *Container) adopt(ctx context.Context, out container.Output, ended bool) error {
	st, err := readState(c.bundle)
	if err != nil {
		return err
	}
	if st.CgPath != c.b.cgroupParent+"/"+c.id {
		return fmt.Errorf("its cgroup %s is not this backend's", st.CgPath)
	}
	if st.Volume != "" && !c.b.liveVolume(st.Volume) {
		return fmt.Errorf("its volume %s is not adopted", st.Volume)
	}
	c.cgPath, c.limit, c.volume, c.rwMounts, c.overlay = st.CgPath, st.Limit, st.Volume, st.RWMounts, st.Overlay
	lease, err := c.b.ids.reacquire(st.LeaseBase, c.b.stateDir+" "+c.id)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		lease.drop() // the container may still run with the ids
		return err
	}
	// The shim first: a container whose shim is gone cannot be watched.
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := d.DialContext(dctx, "unix", c.b.shimSocket(c.id))
	cancel()
	if err != nil {
		if ended {
			// Its shim left after the container's end: the status
			// file says how it ended (its output is lost).
			if st, ferr := readShimStatus(filepath.Join(c.bundle, exitFile)); ferr == nil {
				c.lease, c.started = lease, true
				c.setExit(st)
				c.b.log.Info("ended container adopted", "container_id", c.id, "exit_code", st.Code)
				return nil
			}
		}
		return fail(fmt.Errorf("its shim: %w", err))
	}
	if st.ShimAcks {
		// Say so first: the shim sends again what the last server did
		// not acknowledge, numbered.
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := conn.Write(helloFrame())
		_ = conn.SetWriteDeadline(time.Time{})
		if err != nil {
			conn.Close()
			return fail(fmt.Errorf("its shim: %w", err))
		}
	}
	var rs struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	raw, err := c.b.command(ctx, "state", c.id)
	if err == nil {
		if err = json.Unmarshal(raw, &rs); err != nil {
			err = fmt.Errorf("runc state: %w", err)
		}
	}
	if ended && (err != nil || rs.Status != "running") {
		// Exited: its lingering shim hands over the output it holds and
		// the exit status.
		c.lease, c.started, c.conn = lease, true, conn
		go c.follow(conn, st.ShimAcks, out)
		c.b.log.Info("ended container adopted", "container_id", c.id)
		return nil
	}
	if err != nil {
		conn.Close()
		return fail(err)
	}
	if rs.Status != "running" || rs.Pid <= 0 {
		conn.Close()
		return fail(fmt.Errorf("it is %s, not running", rs.Status))
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					c.shimPid = int(cred.Pid)
				}
			})
		}
	}
	c.lease, c.pid, c.started, c.conn = lease, rs.Pid, true, conn
	go c.follow(conn, st.ShimAcks, out)
	if _, err := c.socketMaker(); err != nil {
		c.b.log.Warn("enter adopted container's network namespace", "container_id", c.id, "error", err)
	}
	c.b.log.Info("container adopted", "container_id", c.id, "pid", rs.Pid)
	return nil
}

// AdoptVolume takes over the volume mounted on dir by an earlier Backend
// on the same StateDir, for the container using it (Adopt). Cleanup
// releases the volumes not adopted.
func (b *Backend) AdoptVolume(ctx context.Context, dir string) (container.Volume, error) {
	if !filepath.IsAbs(dir) {
		return nil, pando.Errorf(pando.EInvalid, "adopt volume %q: the directory must be absolute", dir)
	}
	dir = filepath.Clean(dir)
	v := &volume{b: b, dir: dir, image: b.volumeImage(dir)}
	majMin, err := loopDeviceOf(v.image)
	if err != nil {
		return nil, fmt.Errorf("adopt volume %s: %w", dir, err)
	}
	ms, err := readMountInfo()
	if err != nil {
		return nil, fmt.Errorf("adopt volume %s: %w", dir, err)
	}
	mounted := false
	for _, m := range ms {
		if m.mountPoint == dir && m.majMin == majMin {
			mounted = true
		}
	}
	if !mounted {
		return nil, fmt.Errorf("adopt volume %s: its image is not mounted there", dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("adopt volume %s: %w", dir, err)
	}
	if fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)) != majMin {
		return nil, fmt.Errorf("adopt volume %s: another filesystem is mounted over it", dir)
	}
	v.dev = st.Dev
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.vols[dir] != nil {
		return nil, pando.Errorf(pando.EConflict, "volume %s already exists", dir)
	}
	b.vols[dir] = v
	return v, nil
}

// loopDeviceOf returns the "major:minor" of the loop device backed by
// image.
func loopDeviceOf(image string) (string, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return "", fmt.Errorf("list loop devices: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop", "backing_file"))
		if err != nil || strings.TrimSpace(string(data)) != image {
			continue
		}
		num, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			return "", fmt.Errorf("loop device of %s: %w", image, err)
		}
		return strings.TrimSpace(string(num)), nil
	}
	return "", errors.New("no loop device holds its image")
}

// killShim ends the container's shim: the last resort when the container
// cannot be killed, so that Wait returns (Destroy's runc delete then
// takes the container down).
func (c *Container) killShim() {
	switch {
	case c.cmd != nil && c.cmd.Process != nil:
		_ = c.cmd.Process.Kill()
	case c.shimPid > 0:
		_ = unix.Kill(c.shimPid, unix.SIGKILL)
	}
}
