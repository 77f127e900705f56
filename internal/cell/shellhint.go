package cell

import "strings"

// runcNoShell is how runc says a container's process, /bin/sh, is not in
// its root filesystem.
const runcNoShell = `exec: "/bin/sh": stat /bin/sh: no such file or directory`

// noShellHint explains a docker container that could not start because
// its image has no shell for the command Pando runs under /bin/sh -c (a
// task's, or a start command given with -c), or is "". image is the
// run's image ("" for a buildpack droplet, which always has one).
func noShellHint(image string, err error) string {
	if image == "" || err == nil || !strings.Contains(err.Error(), runcNoShell) {
		return ""
	}
	return "the image has no /bin/sh, and a task's command or a start command given with -c runs under /bin/sh -c: " +
		"without -c an app runs the image's ENTRYPOINT and CMD directly; tasks need an image with a shell"
}

// parenthesized is " (s)", or "" for "".
func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
