package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runcSeals are the seals runc checks on /proc/self/exe: a memfd with
// exactly these cannot be written, grown, shrunk or resealed, so runc
// trusts it as its CVE-2019-5736 protection and skips its own per-start
// copy (runc 1.1 bind-mounts itself read-only into its state dir, or
// copies itself into a memfd, and re-executes `runc init` from there).
// F_SEAL_EXEC must not be among them: runc compares for equality.
const runcSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealedFD is where a runc child finds the sealed copy: the first of
// exec.Cmd's ExtraFiles.
const sealedFD = 3

// sealedBinary is a sealed, read-only in-memory copy of a binary, kept
// open by the backend. Each `runc run` is executed through it
// (/proc/self/fd/3 in the child, which inherits a dup), so the child's
// /proc/self/exe is the sealed memfd: no container can overwrite it, and
// runc starts `runc init` without copying or mounting itself again.
type sealedBinary struct {
	f    *os.File // read-only
	size int64
}

// sealBinary copies the file at src into a memfd and seals it with
// runcSeals. The copy is what runs: replacing src later (a runc upgrade)
// takes effect at the next backend start.
func sealBinary(src string) (*sealedBinary, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", src, err)
	}
	defer in.Close()
	// MFD_EXEC keeps it executable where vm.memfd_noexec would otherwise
	// add F_SEAL_EXEC; kernels before 6.3 do not know the flag.
	fd, err := unix.MemfdCreate("pando-runc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("pando-runc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("seal %s: memfd_create: %w", src, err)
	}
	rw := os.NewFile(uintptr(fd), "memfd:pando-runc")
	defer rw.Close()
	n, err := io.Copy(rw, in)
	if err != nil {
		return nil, fmt.Errorf("seal %s: copy: %w", src, err)
	}
	if fi, err := in.Stat(); err != nil || fi.Size() != n {
		return nil, fmt.Errorf("seal %s: copied %d bytes of a file that changed while copied", src, n)
	}
	if _, err := unix.FcntlInt(rw.Fd(), unix.F_ADD_SEALS, runcSeals); err != nil {
		return nil, fmt.Errorf("seal %s: add seals: %w", src, err)
	}
	// Keep only a read-only descriptor: children inherit that one.
	ro, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", rw.Fd()))
	if err != nil {
		return nil, fmt.Errorf("seal %s: reopen read-only: %w", src, err)
	}
	s := &sealedBinary{f: ro, size: n}
	if seals, err := s.seals(); err != nil || seals != runcSeals {
		ro.Close()
		return nil, fmt.Errorf("seal %s: seals are %#x, want %#x (%v)", src, seals, runcSeals, err)
	}
	return s, nil
}

// seals returns the memfd's seals.
func (s *sealedBinary) seals() (int, error) {
	return unix.FcntlInt(s.f.Fd(), unix.F_GET_SEALS, 0)
}

// command returns a command that runs the sealed binary with args, through
// wrapper (e.g. prlimit and its options) when given.
func (s *sealedBinary) command(ctx context.Context, wrapper []string, args ...string) *exec.Cmd {
	self := fmt.Sprintf("/proc/self/fd/%d", sealedFD)
	var cmd *exec.Cmd
	if len(wrapper) > 0 {
		cmd = exec.CommandContext(ctx, wrapper[0], append(append(wrapper[1:len(wrapper):len(wrapper)], self), args...)...)
	} else {
		cmd = exec.CommandContext(ctx, self, args...)
		// exec.Command would resolve the path in this process.
		cmd.Path = self
		cmd.Err = nil
	}
	cmd.ExtraFiles = []*os.File{s.f}
	return cmd
}

// check runs `--version` through the sealed copy: where the kernel refuses
// to execute memfds (vm.memfd_noexec=2), the backend runs runc from its
// path instead.
func (s *sealedBinary) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := s.command(ctx, nil, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("run the sealed copy: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close releases the backend's descriptor; children keep their own.
func (s *sealedBinary) Close() error { return s.f.Close() }
