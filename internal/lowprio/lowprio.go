// Package lowprio starts background processes (the server's start-up
// probes of the host's language runtimes) at the lowest CPU priority, so
// that they take only CPU time nothing else wants: on a small machine a
// push made right after the server starts no longer shares the CPU with
// them (java, pip and bundler asking for their versions cost over a
// second of CPU together).
package lowprio

import (
	"errors"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Nice is the nice value processes started here run at: the lowest
// priority.
const Nice = 19

// Start starts cmd at nice Nice. Linux keeps the nice value per thread
// and a child inherits its parent thread's, so cmd is forked from an OS
// thread locked to one goroutine and niced meanwhile: its nice value is
// put back after (which needs CAP_SYS_NICE, as the server has as root),
// else the thread ends with the goroutine, so no other goroutine ever
// runs niced. cmd must not ask for a parent-death signal, which would
// fire if that thread ends. The caller waits for cmd as usual. Where the
// nice value cannot be set, cmd starts at the caller's priority.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Pdeathsig != 0 {
		return errors.New("lowprio: a parent-death signal would fire if the starting thread ends")
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := unix.Gettid()
		// The raw getpriority(2) answers 20 - nice.
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil || unix.Setpriority(unix.PRIO_PROCESS, tid, Nice) != nil {
			runtime.UnlockOSThread()
			started <- cmd.Start()
			return
		}
		err = cmd.Start()
		if unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prio) == nil {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine
		started <- err
	}()
	return <-started
}
