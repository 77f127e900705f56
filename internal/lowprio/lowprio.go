// Package lowprio starts background processes (the server's start-up
// probes of the host's language runtimes) at the lowest CPU priority, so
// that they take only CPU time nothing else wants: on a small machine a
// push made right after the server starts no longer shares the CPU with
// them (java, pip and bundler asking for their versions cost over a
// second of CPU together).
package lowprio

import (
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// Nice is the nice value processes started here run at: the lowest
// priority.
const Nice = 19

// Start starts cmd at nice Nice: through nice(1), which lowers its own
// priority and then executes cmd, so cmd and every thread and child it
// makes run niced, and this process's threads are never niced. The
// child runs at the caller's priority until nice(1) starts: a child
// forked niced on a busy machine could wait seconds for the CPU before
// its exec, holding a copy of every descriptor of this process (a data
// dir's lock, listening sockets) after this process closed them. Where
// nice(1) is missing, cmd starts at the caller's priority and is niced
// right after. The caller waits for cmd as usual.
func Start(cmd *exec.Cmd) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	nice, err := exec.LookPath("nice")
	if err != nil {
		if err := cmd.Start(); err != nil {
			return err
		}
		_ = unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, Nice)
		return nil
	}
	args := append([]string{"nice", "-n", strconv.Itoa(Nice), cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = nice, args
	return cmd.Start()
}
