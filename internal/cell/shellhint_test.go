package cell

import (
	"errors"
	"strings"
	"testing"
)

// runc's words, as a task of a shell-less image got them on this machine.
const runcNoShellErr = `container task-7: runc failed to start it (exit 1): runc run failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory`

func TestNoShellHint_onlyForAnImageWithoutAShell(t *testing.T) {
	if h := noShellHint("r.example/app@sha256:ab", errors.New(runcNoShellErr)); !strings.Contains(h, "the image has no /bin/sh") || !strings.Contains(h, "ENTRYPOINT and CMD") {
		t.Errorf("hint %q", h)
	}
	for _, tc := range []struct {
		image string
		err   error
	}{
		{"", errors.New(runcNoShellErr)}, // a droplet
		{"r.example/app@sha256:ab", errors.New(`exec: "/app/server": stat /app/server: no such file or directory`)},
		{"r.example/app@sha256:ab", nil},
	} {
		if h := noShellHint(tc.image, tc.err); h != "" {
			t.Errorf("image %q, err %v: hint %q", tc.image, tc.err, h)
		}
	}
	if parenthesized("") != "" || parenthesized("x") != " (x)" {
		t.Error("parenthesized")
	}
}
