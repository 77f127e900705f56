package launcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunAsInit_forwardsSIGTERMToTheApp(t *testing.T) {
	app := t.TempDir()
	started := filepath.Join(app, "started")
	// A plain `sleep` has no TERM handler: it dies of the forwarded signal.
	// The background one is a grandchild: only a signal to the whole
	// process group reaches it.
	pidFile := filepath.Join(app, "grandchild.pid")
	plan, err := NewPlan(app, "sleep 30 & echo $! > "+pidFile+"; touch "+started+"; sleep 30", os.Environ(), exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		code, err := plan.RunAsInit()
		if err != nil {
			t.Error(err)
		}
		done <- code
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("app never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// RunAsInit has registered for SIGTERM before starting the app, so this
	// reaches it (not the default handler) and is forwarded.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 128+int(syscall.SIGTERM) {
			t.Fatalf("exit code = %d, want %d (killed by SIGTERM)", code, 128+int(syscall.SIGTERM))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("app did not stop on SIGTERM")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		t.Fatalf("grandchild pid %q: %v", b, err)
	}
	// Gone: signalled with the group (it is no child of ours, so it
	// cannot be left as our zombie).
	deadline = time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(stat), ") Z ") {
			break // exited; its parent (the dead shell) left it to init
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still running after the group got SIGTERM", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunAsInit_returnsTheAppsExitStatus(t *testing.T) {
	plan, err := NewPlan(t.TempDir(), "exit 7", os.Environ(), exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	code, err := plan.RunAsInit()
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Fatalf("exit code = %d, want 7", code)
	}
}
