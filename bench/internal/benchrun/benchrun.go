// Package benchrun holds what the benchmark programs' mains share: the
// pando binary under test, a run that stops on SIGINT/SIGTERM, and building
// the small Go servers they push or package.
package benchrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

// PandoBin is $PANDO_BIN, else bin/pando (the benches run from the repo).
func PandoBin() string {
	if p := os.Getenv("PANDO_BIN"); p != "" {
		return p
	}
	return "bin/pando"
}

// Main runs bench with a context cancelled on SIGINT or SIGTERM and gives
// the exit status: 0, or 1 after printing bench's error to stderr.
func Main(stderr io.Writer, bench func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// GoTool is the go command: on PATH, else where the toolchain installs it
// (sudo drops /usr/local/go/bin from PATH).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// BuildGo writes a one-file program (module module, main.go source) into
// src and builds it static to out, without the caller's workspace, flags
// or toolchain downloads.
func BuildGo(ctx context.Context, src, module, source, out string) error {
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	files := map[string]string{"go.mod": "module " + module + "\n\ngo 1.22\n", "main.go": source}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	build := exec.CommandContext(ctx, GoTool(), "build", "-trimpath", "-o", out, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", module, err, b)
	}
	return nil
}

// BuildApp builds a one-file Go app as dir/app/server for a binary
// buildpack push and returns dir/app (its source goes in dir/app-src).
func BuildApp(ctx context.Context, dir, module, source string) (string, error) {
	out := filepath.Join(dir, "app")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	if err := BuildGo(ctx, filepath.Join(dir, "app-src"), module, source, filepath.Join(out, "server")); err != nil {
		return "", err
	}
	return out, nil
}
