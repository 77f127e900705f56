package runc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/container"

	"github.com/pandoplatform/pando/internal/testenv"
)

func TestSealBinary_copyIsSealedAndCannotBeWritten(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	want := bytes.Repeat([]byte("runc"), 10000)
	if err := os.WriteFile(src, want, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := sealBinary(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seals, err := s.seals(); err != nil || seals != runcSeals {
		t.Fatalf("seals %#x (%v), want exactly %#x, which runc checks", seals, err, runcSeals)
	}
	// Replacing the source does not change the copy.
	if err := os.WriteFile(src, []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", s.f.Fd()))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy has %d bytes (%v), want the %d of the source", len(got), err, len(want))
	}

	// Whoever reaches it (a container through /proc/PID/exe, as in
	// CVE-2019-5736) cannot change it.
	rw, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", s.f.Fd()), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open read-write: %v (the seals, not the open, must refuse)", err)
	}
	defer rw.Close()
	if _, err := rw.WriteAt([]byte("evil"), 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("write: %v, want EPERM", err)
	}
	if _, err := rw.WriteAt([]byte("evil"), int64(len(want))); !errors.Is(err, unix.EPERM) {
		t.Errorf("append: %v, want EPERM", err)
	}
	if err := rw.Truncate(0); !errors.Is(err, unix.EPERM) {
		t.Errorf("truncate: %v, want EPERM", err)
	}
	if _, err := unix.Mmap(int(rw.Fd()), 0, len(want), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); !errors.Is(err, unix.EPERM) {
		t.Errorf("shared writable mmap: %v, want EPERM", err)
	}
	if _, err := unix.FcntlInt(rw.Fd(), unix.F_ADD_SEALS, 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("changing the seals: %v, want EPERM", err)
	}
	if got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", s.f.Fd())); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy changed: %d bytes (%v)", len(got), err)
	}
}

func TestSealBinary_runsDirectlyAndThroughAWrapper(t *testing.T) {
	echo, err := exec.LookPath("echo")
	if err != nil {
		testenv.Missing(t, "no echo binary (coreutils)")
	}
	s, err := sealBinary(echo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.check(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	out, err := s.command(testCtx(t), nil, "direct").Output()
	if err != nil || string(out) != "direct\n" {
		t.Fatalf("direct: %q, %v", out, err)
	}
	out, err = s.command(testCtx(t), []string{"env", "A=1"}, "wrapped").Output()
	if err != nil || string(out) != "wrapped\n" {
		t.Fatalf("through env: %q, %v", out, err)
	}
}

func TestRun_runcRunsFromTheSealedCopyWhichContainersCannotReach(t *testing.T) {
	b := newBackend(t, t.TempDir())
	if b.sealed == nil {
		t.Fatal("no sealed copy of runc on a kernel that supports it")
	}
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "sealed", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	rc := c.(*Container)
	// prlimit exec'd runc in the same process.
	runcPid := runcRunPid(t, rc)
	exe, err := os.Open(fmt.Sprintf("/proc/%d/exe", runcPid))
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	if seals, err := unix.FcntlInt(exe.Fd(), unix.F_GET_SEALS, 0); err != nil || seals != runcSeals {
		t.Fatalf("runc run's executable has seals %#x (%v), want %#x: runc would copy itself again", seals, err, runcSeals)
	}
	if w, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", runcPid), os.O_WRONLY, 0); err == nil {
		_, werr := w.WriteAt([]byte("evil"), 0)
		w.Close()
		if werr == nil {
			t.Fatal("wrote to the running runc's executable")
		}
	}
	// The container's processes hold no descriptor of it.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", rc.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", rc.pid, fd.Name()))
		if strings.Contains(target, "memfd:") {
			t.Errorf("the container's init has fd %s -> %s", fd.Name(), target)
		}
	}
}

func TestRun_runcFromPathWhenAsked(t *testing.T) {
	runcPath := requireRunc(t)
	b, err := New(Config{StateDir: t.TempDir(), RuncFromPath: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		_ = os.RemoveAll(b.rootfsDir)
		b.cg.removeEmptyUnder(b.cgroupParent)
	})
	if b.sealed != nil {
		t.Fatal("RuncFromPath made a sealed copy")
	}
	ctx := testCtx(t)
	c, err := b.Run(ctx, container.Spec{ID: "frompath", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", runcRunPid(t, c.(*Container))))
	if want, _ := filepath.EvalSymlinks(runcPath); err != nil || exe != want {
		t.Fatalf("runc run runs %q (%v), want %s", exe, err, want)
	}
}

// runcRunPid is the pid of the container's `runc run`: its shim's child.
func runcRunPid(t *testing.T, c *Container) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		if fs := strings.Fields(string(data)); len(fs) > 0 {
			pid, err := strconv.Atoi(fs[0])
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("the shim (pid %d) has no child", c.cmd.Process.Pid)
	return 0
}

// BenchmarkRun_toPid measures Run (layout, user namespace, runc run until
// the container's pid) of a no-op container with runc run from its sealed
// copy and from its path, alternately (the machine's load changes less
// between the two): wall and CPU (runc and its children) per start of each.
//
//	sudo go test -run '^$' -bench BenchmarkRun_toPid -benchtime 20x ./internal/container/runc
func BenchmarkRun_toPid(b *testing.B) {
	requireRunc(b)
	type variant struct {
		name      string
		be        *Backend
		wall, cpu time.Duration
	}
	var vs []*variant
	for _, fromPath := range []bool{false, true} {
		be, err := New(Config{StateDir: b.TempDir(), RuncFromPath: fromPath})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			be.Close()
			_ = os.RemoveAll(be.rootfsDir)
			be.cg.removeEmptyUnder(be.cgroupParent)
		})
		name := "sealed"
		if fromPath {
			name = "path"
		}
		vs = append(vs, &variant{name: name, be: be})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := range b.N {
		for k := range vs {
			v := vs[(i+k)%len(vs)]
			before, start := childrenCPU(), time.Now()
			c, err := v.be.Run(ctx, container.Spec{ID: fmt.Sprintf("bench%d", i), Args: []string{"true"}})
			if err != nil {
				b.Fatal(err)
			}
			v.wall += time.Since(start)
			if _, err := c.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			v.cpu += childrenCPU() - before
			if err := c.Destroy(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, v := range vs {
		b.ReportMetric(float64(v.wall.Microseconds())/1000/float64(b.N), v.name+"-ms/op")
		b.ReportMetric(float64(v.cpu.Microseconds())/1000/float64(b.N), v.name+"-cpu-ms/op")
	}
}

// childrenCPU is the user and system time of this process's reaped
// children.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
