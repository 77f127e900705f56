package runc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

// Every container runs under a shim: a small process (`pando
// container-shim`, started by the backend in a session of its own) that is
// the parent of `runc run`, reads the container's stdout and stderr, and
// outlives the server. The server reads the output and the exit status
// from the shim over a unix socket; when the server dies, the shim keeps
// reading (the app never blocks on a pipe nobody drains, nor dies of
// SIGPIPE), holds a bounded backlog, drops the oldest output beyond it
// (counted), and hands the rest to the next server that connects, with
// what the dead one read but had not acknowledged (relay.go). So a
// container can be adopted by a restarted server (Backend.Adopt) with its
// output and exit status intact.
//
// After the job (see shimConnFD), the protocol is frames: a type byte, a
// big-endian uint32 length, the payload. Protocol 1 (a server that does
// not acknowledge) is frames from the shim only; protocol 2 adds numbered
// output frames and the server's hello and acks (relay.go).
const (
	frameStdout  = 'o'
	frameStderr  = 'e'
	frameDropped = 'd' // 16 bytes: lines and bytes dropped since the last one
	frameExit    = 'x' // JSON shimStatus: the last frame
	frameHeader  = 5
	maxFrame     = 1 << 20
)

// ShimCommand is the pando subcommand that runs a shim (ShimMain).
const ShimCommand = "container-shim"

// shimConnFD is the shim's one inherited descriptor: its end of the first
// server's connection. The server sends the job on it (shimJob, with the
// listener later servers connect to and runc's own extra files as
// SCM_RIGHTS); from then on the shim only writes frames. A shim is
// started before it has a job (Backend keeps a spare one ready), so the
// exec of the pando binary is off a container start's path.
const shimConnFD = 3

// shimJob is what a shim runs: the command (runc run, through prlimit)
// and where it writes the exit status.
type shimJob struct {
	Status string   `json:"status"`
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	// Acks: the server acknowledges the output it passes on, and so
	// will any later one that says hello (protocol 2, relay.go).
	Acks bool `json:"acks,omitempty"`
}

// Bounds of a job message.
const (
	maxJobBytes = 64 << 10
	maxJobFiles = 16
)

const (
	// shimBacklog bounds the output a shim holds while nobody reads.
	shimBacklog = 512 << 10
	// shimLinger is how long a shim whose container has exited waits for
	// a server to collect its last output and exit status.
	shimLinger = 30 * time.Second
	// shimLingerHeld is how long it waits while it holds output no
	// server acknowledged: as long as a push waits out a restart.
	shimLingerHeld = 2 * time.Minute
	// shimReadChunk is what one read of a pipe takes at most.
	shimReadChunk = 32 << 10
)

// shimStatus is how `runc run` ended, as the shim saw it.
type shimStatus struct {
	Code     int  `json:"code"`
	Signaled bool `json:"signaled"`
}

// ShimMain runs a shim (`pando container-shim`, no arguments): it waits
// for its job, runs it, relays its output and reports its end. It returns
// the process's exit code.
func ShimMain(args []string) int {
	// The shim lives in a session of its own; nothing but SIGKILL ends it.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT)
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "container-shim: takes no arguments (the backend sends its job)")
		return 2
	}
	cf := os.NewFile(shimConnFD, "shim-conn")
	c, err := net.FileConn(cf)
	cf.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "container-shim: connection: %v\n", err)
		return 1
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		fmt.Fprintln(os.Stderr, "container-shim: fd 3 is not a unix socket")
		return 2
	}
	// While it waits for a job: the runtime's one-time check of pidfd
	// support forks a probe child at the first process start; do it now,
	// not on the container's start.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	job, ln, extras, err := readJob(conn)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0 // a spare the server no longer needs
		}
		fmt.Fprintf(os.Stderr, "container-shim: %v\n", err)
		return 1
	}
	if err := runShim(conn, job, ln, extras); err != nil {
		fmt.Fprintf(os.Stderr, "container-shim: %v\n", err)
		return 1
	}
	return 0
}

// readJob reads the job message and the descriptors it carries: the
// listener, then runc's extra files.
func readJob(conn *net.UnixConn) (shimJob, net.Listener, []*os.File, error) {
	buf := make([]byte, maxJobBytes)
	oob := make([]byte, unix.CmsgSpace(4*maxJobFiles))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return shimJob{}, nil, nil, fmt.Errorf("read job: %w", err)
	}
	if n == 0 {
		return shimJob{}, nil, nil, io.EOF
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return shimJob{}, nil, nil, fmt.Errorf("read job: %w", err)
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err != nil {
				return shimJob{}, nil, nil, fmt.Errorf("read job: %w", err)
			}
			fds = append(fds, got...)
		}
	}
	for _, fd := range fds {
		syscall.CloseOnExec(fd) // passed on by ExtraFiles only
	}
	var job shimJob
	if err := json.Unmarshal(buf[:n], &job); err != nil || job.Status == "" || job.Path == "" || len(job.Args) == 0 || len(fds) == 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return shimJob{}, nil, nil, fmt.Errorf("bad job (%d descriptors): %v", len(fds), err)
	}
	lf := os.NewFile(uintptr(fds[0]), "shim-listener")
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return shimJob{}, nil, nil, fmt.Errorf("listener: %w", err)
	}
	var extras []*os.File
	for i, fd := range fds[1:] {
		extras = append(extras, os.NewFile(uintptr(fd), "extra-"+strconv.Itoa(i)))
	}
	return job, ln, extras, nil
}

func runShim(conn net.Conn, job shimJob, ln net.Listener, extras []*os.File) error {
	statusFile, path, argv := job.Status, job.Path, job.Args
	sock := boundSocketOf(ln)
	// Once it is done, nobody can use its socket: it goes, with the
	// backend's socket dir when no other shim is left in it.
	defer sock.remove()
	r := newRelay(shimBacklog, job.Acks)
	r.attach(conn, true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.attach(c, false)
		}
	}()

	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Stdout: outW, Stderr: errW, ExtraFiles: extras,
		// Its own process group, as before the shim: runc's signals
		// reach the container only.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	for _, f := range extras {
		f.Close()
	}
	if err != nil {
		st := shimStatus{Code: -1}
		_ = writeShimStatus(statusFile, st)
		r.finish(st)
		return fmt.Errorf("start %s: %w", path, err)
	}
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); r.pump(outR, frameStdout) }()
	go func() { defer pumps.Done(); r.pump(errR, frameStderr) }()
	werr := cmd.Wait()
	st := runcStatus(cmd.ProcessState, werr)
	// Processes left in the container die with its init; a descendant
	// that escaped with the pipes open must not keep the shim forever.
	pumped := make(chan struct{})
	go func() { pumps.Wait(); close(pumped) }()
	select {
	case <-pumped:
	case <-time.After(5 * time.Second):
		outR.Close()
		errR.Close()
		<-pumped
	}
	if err := writeShimStatus(statusFile, st); err != nil {
		fmt.Fprintf(os.Stderr, "container-shim: %v\n", err)
	}
	r.finish(st)
	if why := awaitCollection(r, filepath.Dir(statusFile), shimLinger, shimLingerHeld); why != "" {
		fmt.Fprintf(os.Stderr, "container-shim: exit status %+v: %s\n", st, why)
	}
	ln.Close()
	return nil
}

// awaitCollection waits, once the container has exited, for a server to
// take the exit and the output held, unless the bundle is gone (the
// container was removed: nobody will adopt it): linger at most, or
// lingerHeld while output no server acknowledged is held (its only copy;
// the exit status alone is in the bundle). It says why it gave up, "" when
// the exit was delivered or the bundle is gone.
func awaitCollection(r *relay, bundle string, linger, lingerHeld time.Duration) string {
	began := time.Now()
	timer := time.NewTimer(linger)
	defer timer.Stop()
	tick := time.NewTicker(min(time.Second, linger))
	defer tick.Stop()
	for {
		select {
		case <-r.delivered:
			return ""
		case <-timer.C:
			held := r.holds()
			if rest := lingerHeld - time.Since(began); held && rest > 0 {
				timer.Reset(rest)
				continue
			}
			if held {
				return fmt.Sprintf("no server took it and the output held within %s", lingerHeld)
			}
			return fmt.Sprintf("no server took it within %s", linger)
		case <-tick.C:
			if _, err := os.Stat(bundle); errors.Is(err, os.ErrNotExist) {
				return ""
			}
		}
	}
}

// boundSocket is the socket file a shim's listener is bound to, as the
// shim found it when it started.
type boundSocket struct {
	path     string
	dev, ino uint64
}

func boundSocketOf(ln net.Listener) boundSocket {
	a, ok := ln.Addr().(*net.UnixAddr)
	if !ok || a.Name == "" || a.Name[0] == '@' {
		return boundSocket{}
	}
	var st unix.Stat_t
	if err := unix.Stat(a.Name, &st); err != nil {
		return boundSocket{}
	}
	return boundSocket{path: a.Name, dev: st.Dev, ino: st.Ino}
}

// remove deletes the socket file unless another shim has bound the path
// since (a container of the same id started again), then the dir it is in
// if that is empty now (the backend makes it again for its next shim).
func (s boundSocket) remove() {
	if s.path == "" {
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(s.path, &st); err == nil && st.Dev == s.dev && st.Ino == s.ino {
		_ = os.Remove(s.path)
	}
	_ = os.Remove(filepath.Dir(s.path))
}

// runcStatus turns how `runc run` ended into the container's status: runc
// exits 128+n when the process died of signal n.
func runcStatus(ps *os.ProcessState, err error) shimStatus {
	switch {
	case ps == nil:
		return shimStatus{Code: -1}
	case ps.Exited():
		code := ps.ExitCode()
		return shimStatus{Code: code, Signaled: code > 128 && code < 128+65}
	}
	// runc itself was killed; the process went with it or is killed by
	// Destroy.
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return shimStatus{Code: 128 + int(ws.Signal()), Signaled: true}
	}
	return shimStatus{Code: -1, Signaled: true}
}

// writeShimStatus writes the status file atomically.
func writeShimStatus(path string, st shimStatus) error {
	data, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	return nil
}

// readShimStatus reads a status file the shim wrote.
func readShimStatus(path string) (shimStatus, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return shimStatus{}, err
	}
	var st shimStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return shimStatus{}, fmt.Errorf("exit status %s: %w", filepath.Base(path), err)
	}
	return st, nil
}

func encodeFrame(typ byte, payload []byte) []byte {
	f := make([]byte, frameHeader+len(payload))
	f[0] = typ
	n := uint32(len(payload))
	f[1], f[2], f[3], f[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	copy(f[frameHeader:], payload)
	return f
}

func putUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}
