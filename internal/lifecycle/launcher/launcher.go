// Package launcher is the app-start lifecycle (`pando launcher`): inside an
// LRP container it prepares the droplet's environment (HOME, DEPS_DIR,
// TMPDIR, profile.d scripts, .profile) and replaces itself with
// `bash -c START_COMMAND`, so the app is the container's main process and
// receives its signals directly.
package launcher

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// script runs in the chosen shell with $1 = app dir, $2 = droplet profile.d
// dir, $3 = shell, $4 = start command. The command stays a positional
// argument (never spliced into script text) and lives in an unexported
// variable so profile scripts that reset "$@" cannot lose it.
const script = `__pando_app_dir=$1
__pando_profile_dir=$2
__pando_shell=$3
__pando_start_command=$4
shift 4
cd "$__pando_app_dir" || exit 1
for __pando_f in "$__pando_profile_dir"/*.sh "$__pando_app_dir"/.profile.d/*.sh; do
  if [ -f "$__pando_f" ]; then . "$__pando_f"; fi
done
if [ -f "$__pando_app_dir/.profile" ]; then . "$__pando_app_dir/.profile"; fi
unset __pando_f __pando_app_dir __pando_profile_dir
exec "$__pando_shell" -c "$__pando_start_command"
`

// Plan is what the launcher will exec: argv[0] path, argv and environment.
type Plan struct {
	Path string
	Args []string
	Env  []string
	Dir  string
}

// NewPlan builds the exec plan for running startCommand in the droplet
// whose app dir is appDir (normally /home/vcap/app), with env as the
// inherited environment. lookPath finds the shell (exec.LookPath in
// production).
func NewPlan(appDir, startCommand string, env []string, lookPath func(string) (string, error)) (Plan, error) {
	if strings.TrimSpace(startCommand) == "" {
		if _, err := os.Stat(filepath.Join(appDir, "Procfile")); err == nil {
			return Plan{}, errors.New("no start command: the app's Procfile has no entry for this process type (add 'web: COMMAND'), and none was given with -c")
		}
		return Plan{}, errors.New("no start command: push with a start command (-c) or add a Procfile")
	}
	abs, err := filepath.Abs(appDir)
	if err != nil {
		return Plan{}, fmt.Errorf("app dir %s: %w", appDir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return Plan{}, fmt.Errorf("app dir %s is not a directory", abs)
	}
	shell, err := findShell(lookPath)
	if err != nil {
		return Plan{}, err
	}
	home := filepath.Dir(abs)
	env = setEnv(env, "HOME", abs)
	env = setEnv(env, "DEPS_DIR", filepath.Join(home, "deps"))
	if fi, err := os.Stat(filepath.Join(home, "tmp")); err == nil && fi.IsDir() {
		env = setEnv(env, "TMPDIR", filepath.Join(home, "tmp"))
	}
	env = setEnv(env, "PWD", abs)
	return Plan{
		Path: shell,
		Args: []string{filepath.Base(shell), "-c", script, "pando-launcher", abs, filepath.Join(home, "profile.d"), shell, startCommand},
		Env:  env,
		Dir:  abs,
	}, nil
}

// Exec replaces the current process with the plan (it returns only on error).
func (p Plan) Exec() error {
	if err := os.Chdir(p.Dir); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	if err := syscall.Exec(p.Path, p.Args, p.Env); err != nil {
		return fmt.Errorf("launch: exec %s: %w", p.Path, err)
	}
	return nil
}

func findShell(lookPath func(string) (string, error)) (string, error) {
	for _, name := range []string{"bash", "/bin/bash", "/usr/bin/bash", "sh", "/bin/sh"} {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither bash nor sh found in the container")
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// exitError is a launch failure already printed to stderr: it has no message
// of its own (so main does not print it twice) and exits 1.
type exitError struct{ err error }

func (e *exitError) Error() string { return "" }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return 1 }

// statusError carries the app's exit status out of the command when the
// launcher ran it as init. It prints nothing.
type statusError struct{ code int }

func (e *statusError) Error() string { return "" }
func (e *statusError) ExitCode() int { return e.code }

// ExitCode is the process exit status for an error from the command.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return 1
}

// NewCommand returns the hidden `pando launcher` subcommand:
//
//	pando launcher --app-dir /home/vcap/app -- START_COMMAND
//
// Words after "--" are joined with spaces into one command. On success it
// never returns; on failure it has printed the reason to stderr.
func NewCommand() *cobra.Command {
	var appDir string
	cmd := &cobra.Command{
		Use:           "launcher --app-dir DIR -- START_COMMAND",
		Short:         "App-start lifecycle: source profile scripts and exec the start command (runs inside an app container)",
		Hidden:        true,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := NewPlan(appDir, strings.Join(args, " "), os.Environ(), exec.LookPath)
			if err == nil && os.Getpid() == 1 {
				var code int
				if code, err = plan.RunAsInit(); err == nil {
					return &statusError{code: code}
				}
			} else if err == nil {
				err = plan.Exec()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pando launcher: %v\n", err)
			return &exitError{err: err}
		},
	}
	cmd.Flags().StringVar(&appDir, "app-dir", "/home/vcap/app", "the droplet's app directory")
	return cmd
}
