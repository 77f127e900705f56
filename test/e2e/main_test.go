package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// suite is what TestMain prepares for every test: the pando binary, a
// scratch directory, and the server most tests share (started on first use
// so a skipped run starts nothing).
type suite struct {
	skip    string // non-empty: why every test skips
	bin     string // the pando binary under test
	scratch string // removed at the end of the run

	sharedOnce sync.Once
	shared     *server
	sharedErr  error

	binaryOnce sync.Once
	binaryDir  string // a directory holding only a prebuilt ./server
	binaryErr  error

	gates *gates // the turns of the parallel tests (parallel_test.go)
}

// env is the run's suite. TestMain is the only writer, before m.Run; tests
// only read it (the sync.Once fields guard the lazily made parts).
var env suite

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if testing.Short() {
		env.skip = "end-to-end tests do not run with -short"
		return m.Run()
	}
	if reason := missingPrerequisite(); reason != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: end-to-end tests cannot run: %s.\nCI=true, so this is a failure, not a skip: run the tests as root with runc installed (make deps).\n", reason)
			return 1
		}
		env.skip = "end-to-end tests need root and runc: " + reason
		fmt.Fprintf(os.Stderr, "e2e: skipping: %s\n", env.skip)
		return m.Run()
	}

	// What runs killed earlier (go test -timeout) left: their
	// containers, mounts, cgroups and scratch dirs (sweep_test.go).
	swept, err := sweepStale(os.TempDir(), defaultRunDir)
	for _, d := range swept {
		fmt.Fprintf(os.Stderr, "e2e: removed %s, left by an earlier run\n", d)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: warning: sweeping what killed runs left: %v\n", err)
	}
	scratch, owner, err := newScratch(os.TempDir())
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	env.scratch = scratch
	defer func() {
		os.RemoveAll(scratch)
		owner.Close() // the run's owner lock, held until its dir is gone
	}()

	env.bin, err = pandoBinary(scratch)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: %v\n", err)
		return 1
	}
	if env.gates, err = setParallelism(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: %v\n", err)
		return 1
	}

	code := m.Run()

	if err := pgtest.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: the tests' PostgreSQL: %v\n", err)
		code = 1
	}
	if env.shared != nil {
		// The shared server has run everything the tests pushed: its
		// shutdown must be just as clean as an idle one's.
		if err := env.shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: e2e: shared server: %v\n%s", err, env.shared.logTail(0, 32<<10))
			code = 1
		}
		if err := env.shared.cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: e2e: shared server cleanup: %v\n", err)
			code = 1
		}
	}
	return code
}

// missingPrerequisite says why the tests cannot run here, or "".
func missingPrerequisite() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("not running as root (euid %d)", os.Geteuid()))
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc is not on PATH")
	}
	return strings.Join(missing, "; ")
}

// pandoBinary is $PANDO_BIN (what `make test` sets), else a binary built
// from this checkout into dir.
func pandoBinary(dir string) (string, error) {
	if p := os.Getenv("PANDO_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("PANDO_BIN: %w", err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("PANDO_BIN=%s is not a file (run make build)", p)
		}
		return abs, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pando")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", out, "./cmd/pando")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pando (set PANDO_BIN to skip): %w\n%s", err, b)
	}
	return out, nil
}

// moduleRoot walks up from the working directory (test/e2e) to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// goTool is the go command running these tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// requireE2E skips t when the run cannot do end-to-end tests.
func requireE2E(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

// sharedServer is the server the tests share, started on first use; t
// has it to itself until it ends.
func sharedServer(t *testing.T) *server {
	t.Helper()
	requireE2E(t)
	env.gates.sharedTurn(t)
	env.sharedOnce.Do(func() {
		s, err := newServer(env.bin)
		if err != nil {
			env.sharedErr = err
			return
		}
		env.shared = s
		if err := s.start(); err != nil {
			env.sharedErr = fmt.Errorf("%w\n%s", err, s.logTail(0, 32<<10))
		}
	})
	if env.sharedErr != nil {
		t.Fatalf("shared server: %v", env.sharedErr)
	}
	env.shared.showLogOnFailure(t)
	return env.shared
}

// ownServer starts a server only t uses, removed when t ends; args are
// more `pando server` flags.
func ownServer(t *testing.T, args ...string) *server {
	t.Helper()
	return ownServerWithEnv(t, nil, args...)
}

// ownAPI starts a `pando api` (the platform without a local cell) only t
// uses, removed when t ends; args are more `pando api` flags.
func ownAPI(t *testing.T, args ...string) *server {
	t.Helper()
	return ownNode(t, "api", nil, func(*server) []string { return args })
}

// ownServerWithEnv is ownServer with more environment (NAME=VALUE) for
// the server process.
func ownServerWithEnv(t *testing.T, serverEnv []string, args ...string) *server {
	t.Helper()
	return ownNode(t, "server", serverEnv, func(*server) []string { return args })
}

// ownServerFor is ownServerWithEnv with flags that name the server's own
// addresses (its loopback network).
func ownServerFor(t *testing.T, serverEnv []string, args func(s *server) []string) *server {
	t.Helper()
	return ownNode(t, "server", serverEnv, args)
}

// ownNode starts `pando VERB` (server or api) with more environment and
// flags (made from its own addresses), only for t.
func ownNode(t *testing.T, verb string, serverEnv []string, args func(s *server) []string) *server {
	t.Helper()
	requireE2E(t)
	env.gates.ownTurn(t)
	s, err := newServer(env.bin)
	if err != nil {
		t.Fatal(err)
	}
	s.verb, s.args, s.env = verb, args(s), serverEnv
	t.Cleanup(func() {
		if err := s.cleanup(); err != nil {
			t.Errorf("clean up pando %s: %v", verb, err)
		}
	})
	s.showLogOnFailure(t)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}
