// Package childproc starts the processes tests and benchmarks run beside
// them (pando server, cell and router, nginx) so that they die with the
// process that started them, and only then: Pdeathsig fires when the OS
// thread that started a child ends, not its process, and the Go runtime
// ends threads (one whose goroutine exits locked to it, as code entering a
// network namespace does). A child started from an arbitrary thread was
// SIGKILLed at random that way.
package childproc

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd with SIGKILL as its parent-death signal, from an OS
// thread locked to one goroutine until cmd exits, and returns cmd.Wait's
// result on the channel (buffered: nobody has to read it). Other
// SysProcAttr settings of cmd (e.g. Setpgid) are kept. Do not call
// cmd.Wait: the goroutine does.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
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
