package main

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// TestHelp: every verb's help group is defined on the root (cobra panics
// on one that is not), so help works.
func TestHelp(t *testing.T) {
	if code := run(context.Background(), []string{"--help"}); code != 0 {
		t.Fatalf("pando --help exited %d", code)
	}
	for _, verb := range []string{"create-route", "server", "api", "cell", "router", "server copy-data"} {
		if code := run(context.Background(), append(strings.Fields(verb), "--help")); code != 0 {
			t.Fatalf("pando %s --help exited %d", verb, code)
		}
	}
	for _, topic := range [][]string{{"help"}, {"help", "scale"}, {"help", "cell", "drain"}} {
		if code := run(context.Background(), topic); code != 0 {
			t.Fatalf("pando %v exited %d", topic, code)
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
		{[]string{"pusj", "web"}, `error: unknown command "pusj" for "pando"; did you mean 'push'? ('pando --help' lists the verbs)` + "\n"},
		{[]string{"help", "nope"}, `error: unknown help topic "nope" ('pando --help' lists the verbs)` + "\n"},
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

// A platform process that cannot reach its server is told so, without
// the client's hints ('pando endpoint' is not what a cell joins).
func TestRun_daemonDialErrorsHaveNoClientHints(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "pando cell needs root before it joins")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	token := "pando1." + strings.Repeat("a", 64) + ".sha256:" + strings.Repeat("b", 64)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	code := run(context.Background(), []string{"cell", "--join", closed, "--token", token, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"})
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	r.Close()
	if code != 1 || !strings.Contains(string(out), "(nothing answers there: is that server running, and is the address right?)") ||
		strings.Contains(string(out), "pando endpoint") {
		t.Errorf("cell joining a server that is down: exit %d, stderr %q", code, out)
	}
}

// Docker apps run without any switch: --insecure-registry's help said it
// took effect "once docker apps are enabled", which sent users looking
// for a setting that does not exist.
func TestServerHelp_insecureRegistryNeedsNoOtherSetting(t *testing.T) {
	usage := serverCmd().Flags().Lookup("insecure-registry").Usage
	if strings.Contains(usage, "enabled") || !strings.Contains(usage, "plain HTTP") {
		t.Errorf("--insecure-registry help: %q", usage)
	}
}
