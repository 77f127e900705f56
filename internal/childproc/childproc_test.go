package childproc

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fromEndingThread runs start on a goroutine locked to its OS thread and
// never unlocked, so that the runtime ends the thread with it, and waits
// until the thread is gone.
func fromEndingThread(t *testing.T, start func() error) {
	t.Helper()
	// The main thread is never ended (the runtime parks it instead): a
	// goroutine that lands there locks it for good and we try again.
	id := os.Getpid()
	for id == os.Getpid() {
		tid := make(chan int, 1)
		proceed := make(chan bool)
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
			tid <- unix.Gettid()
			if <-proceed {
				errc <- start()
			}
		}()
		id = <-tid
		proceed <- id != os.Getpid()
		if id == os.Getpid() {
			continue
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	task := "/proc/self/task/" + strconv.Itoa(id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d still there", id)
		}
		time.Sleep(5 * time.Millisecond) // polling for the thread's end, with a deadline
	}
}

func exitedWithin(ch <-chan error, d time.Duration) (error, bool) {
	select {
	case err := <-ch:
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

func TestStart_childOutlivesTheThreadOfItsCaller(t *testing.T) {
	// The hazard: Pdeathsig set, started from a thread that ends.
	plain := exec.Command("sleep", "1000")
	plain.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	plainDone := make(chan error, 1)
	fromEndingThread(t, func() error {
		if err := plain.Start(); err != nil {
			return err
		}
		go func() { plainDone <- plain.Wait() }()
		return nil
	})
	if _, ok := exitedWithin(plainDone, 10*time.Second); !ok {
		_ = plain.Process.Kill()
		t.Fatal("a child started from an ending thread survived it: the hazard this package avoids is gone?")
	}

	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var waited <-chan error
	fromEndingThread(t, func() error {
		var err error
		waited, err = Start(cmd)
		return err
	})
	if err, ok := exitedWithin(waited, 200*time.Millisecond); ok {
		t.Fatalf("the child died with its caller's thread: %v", err)
	}
	if a := cmd.SysProcAttr; a.Pdeathsig != syscall.SIGKILL || !a.Setpgid {
		t.Errorf("SysProcAttr %+v, want Pdeathsig SIGKILL and Setpgid kept", a)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err, ok := exitedWithin(waited, 10*time.Second)
	if !ok {
		t.Fatal("no Wait result after the kill")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait: %v, want the kill's exit error", err)
	}
}

func TestStart_reportsAStartFailure(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/pando-childproc-test")); err == nil {
		t.Fatal("started a missing binary")
	}
}
