package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRunAsInit_forwardsSIGTERMToTheApp(t *testing.T) {
	app := t.TempDir()
	started := filepath.Join(app, "started")
	// A plain `sleep` has no TERM handler: it dies of the forwarded signal.
	plan, err := NewPlan(app, "touch "+started+"; sleep 30", os.Environ(), exec.LookPath)
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
