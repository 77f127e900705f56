package launcher

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// forwarded are the signals PID 1 passes on to the app's process group.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// RunAsInit runs the plan as a child when the launcher is the container's
// PID 1. The kernel drops signals that PID 1 has no handler for, so an app
// exec'd as PID 1 ignores SIGTERM and every graceful stop would wait for
// SIGKILL. As init, the launcher forwards signals to the app's process
// group, reaps orphaned processes, and exits with the app's status
// (128+signal when it was killed by one).
func (p Plan) RunAsInit() (int, error) {
	// Child exits and forwarded signals arrive apart, so a burst of exits
	// from a forking app can never crowd out a SIGTERM.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	defer signal.Stop(children)

	attr := &os.ProcAttr{
		Dir:   p.Dir,
		Env:   p.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	proc, err := os.StartProcess(p.Path, p.Args, attr)
	if err != nil {
		return 1, fmt.Errorf("launch: start %s: %w", p.Path, err)
	}
	pid := proc.Pid
	for {
		// Reap everything that has exited; stop when the app itself has.
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ws.ExitStatus(), nil
			}
		}
		select {
		case <-children:
		case sig := <-sigs:
			// Signal the whole group: a shell wrapper and its children
			// all stop.
			if err := syscall.Kill(-pid, sig.(syscall.Signal)); err != nil {
				_ = syscall.Kill(pid, sig.(syscall.Signal))
			}
		}
	}
}
