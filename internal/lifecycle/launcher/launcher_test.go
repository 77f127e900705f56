package launcher_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/launcher"
)

// The test binary doubles as `pando launcher` so the real syscall.Exec path
// is exercised in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("PANDO_LAUNCHER_TEST_MAIN") == "1" {
		cmd := launcher.NewCommand()
		cmd.SetArgs(os.Args[1:])
		os.Exit(launcher.ExitCode(cmd.Execute()))
	}
	os.Exit(m.Run())
}

// droplet lays out an extracted droplet (home/app, home/profile.d, home/deps, home/tmp).
func droplet(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	files := map[string]string{
		"profile.d/00-base.sh":  "export GREETING=hello\n",
		"profile.d/ignored.txt": "export GREETING=wrong\n",
		"app/.profile.d/app.sh": "export SECOND=\"$GREETING-world\"\nset -- clobbered\n",
		"app/.profile":          "export THIRD=from-profile\n",
	}
	for _, d := range []string{"app", "deps", "tmp", "profile.d"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func launcherCmd(t *testing.T, appDir string, command ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"--app-dir", appDir, "--"}, command...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PANDO_LAUNCHER_TEST_MAIN=1", "PORT=8080", "HOME=/nowhere")
	return cmd
}

func TestLauncher_sourcesProfileScriptsThenRunsCommand(t *testing.T) {
	home := droplet(t)
	app := filepath.Join(home, "app")
	cmd := launcherCmd(t, app, `echo "$GREETING|$SECOND|$THIRD|$HOME|$(pwd)|$DEPS_DIR|$TMPDIR|$PORT|$#"`)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, out)
	}
	want := strings.Join([]string{"hello", "hello-world", "from-profile", app, app,
		filepath.Join(home, "deps"), filepath.Join(home, "tmp"), "8080", "0"}, "|") + "\n"
	if string(out) != want {
		t.Fatalf("output = %q, want %q", out, want)
	}
}

func TestLauncher_passesCommandVerbatim(t *testing.T) {
	home := droplet(t)
	// Quotes, $, ; and backticks belong to the command, not to the launcher's script.
	command := `printf '%s\n' "a'b" 'c"d' '$HOME' "x;y" '` + "`id`" + `'`
	out, err := launcherCmd(t, filepath.Join(home, "app"), command).CombinedOutput()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, out)
	}
	if want := "a'b\nc\"d\n$HOME\nx;y\n`id`\n"; string(out) != want {
		t.Fatalf("output = %q, want %q", out, want)
	}
}

func TestLauncher_appReplacesLauncherProcessAndGetsSignals(t *testing.T) {
	home := droplet(t)
	cmd := launcherCmd(t, filepath.Join(home, "app"),
		`trap 'echo got-term; exit 7' TERM; echo "pid $$"; while :; do sleep 0.05; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(line); got != "pid "+strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("app runs as %q, want the launcher's pid %d", got, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line, _ = r.ReadString('\n')
	err = cmd.Wait()
	var ee *exec.ExitError
	if strings.TrimSpace(line) != "got-term" || !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("after SIGTERM: line %q, wait %v", line, err)
	}
}

func TestLauncher_emptyCommandFails(t *testing.T) {
	home := droplet(t)
	cmd := launcherCmd(t, filepath.Join(home, "app"), "  ")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1", err)
	}
	if !strings.Contains(stderr.String(), "no start command") {
		t.Fatalf("stderr = %q", stderr.String())
	}
}

func TestNewPlan_fallsBackToShWithoutBash(t *testing.T) {
	home := droplet(t)
	noBash := func(name string) (string, error) {
		if strings.Contains(name, "bash") {
			return "", exec.ErrNotFound
		}
		return exec.LookPath(name)
	}
	plan, err := launcher.NewPlan(filepath.Join(home, "app"), `echo "$GREETING $THIRD"`, os.Environ(), noBash)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(plan.Path) != "sh" {
		t.Fatalf("shell = %s, want sh", plan.Path)
	}
	cmd := exec.Command(plan.Path, plan.Args[1:]...)
	cmd.Env, cmd.Dir = plan.Env, plan.Dir
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "hello from-profile\n" {
		t.Fatalf("sh plan: %v %q", err, out)
	}
}

func TestNewPlan_rejectsMissingAppDir(t *testing.T) {
	_, err := launcher.NewPlan(filepath.Join(t.TempDir(), "nope"), "true", nil, exec.LookPath)
	if err == nil {
		t.Fatal("want error for a missing app dir")
	}
}
