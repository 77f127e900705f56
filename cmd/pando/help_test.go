package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestHelp: every verb's help group is defined on the root (cobra panics
// on one that is not), so help works.
func TestHelp(t *testing.T) {
	if code := run(context.Background(), []string{"--help"}); code != 0 {
		t.Fatalf("pando --help exited %d", code)
	}
	for _, verb := range []string{"create-route", "server", "api", "cell", "router"} {
		if code := run(context.Background(), []string{verb, "--help"}); code != 0 {
			t.Fatalf("pando %s --help exited %d", verb, code)
		}
	}
}

// A bad flag value and an unknown verb are worded for users by the real
// root command (its flag error function reaches every verb).
func TestRun_usageErrorsAreWordedForUsers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scale", "web", "-i", "x"}, `error: invalid argument "x" for "-i, --instances" flag: not a whole number ('pando help scale' lists its flags)` + "\n"},
		{[]string{"cell", "drain", "c1", "--timeout", "5"}, `('pando help cell drain' lists its flags)` + "\n"},
		{[]string{"ssh", "web"}, `error: unknown command "ssh" for "pando"; did you mean 'push'? ('pando --help' lists the verbs)` + "\n"},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := os.Stderr
		os.Stderr = w
		code := run(context.Background(), tc.args)
		os.Stderr = stderr
		w.Close()
		out, _ := io.ReadAll(r)
		r.Close()
		if code != 1 || !strings.HasSuffix(string(out), tc.want) || strings.Count(string(out), "\n") != 1 {
			t.Errorf("pando %s: exit %d, stderr %q, want it to end with %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
}
