package e2e

import (
	"os/exec"
	"runtime"
)

// startLocked starts cmd from an OS thread that stays locked to one
// goroutine until cmd exits, and returns cmd.Wait's result on the
// channel. The children get Pdeathsig, which fires when the thread that
// started them ends, not the test binary: the Go runtime ends a thread
// whose goroutine exits locked to it (as the tests that enter a
// container's network namespace do), and a server started from such a
// thread died in mid-suite with SIGKILL.
func startLocked(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}
