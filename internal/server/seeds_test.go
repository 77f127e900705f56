package server

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// held is what running a toolchain tells (a python seed key, a Go seed
// dir), answered once released: asked is closed when it is first called.
type held struct {
	answer  string
	asked   chan struct{}
	release chan struct{}
}

func newHeld(answer string) *held {
	return &held{answer: answer, asked: make(chan struct{}), release: make(chan struct{})}
}

func (h *held) wait(ctx context.Context) (string, error) {
	select {
	case <-h.asked:
	default:
		close(h.asked)
	}
	select {
	case <-h.release:
		return h.answer, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (h *held) pythonSeedKey(ctx context.Context, _, _ string) (string, error) { return h.wait(ctx) }
func (h *held) goSeedDir(ctx context.Context, _ string) (string, error)        { return h.wait(ctx) }

// madeGoSeed puts a ready Go build cache seed in a dir of its own, as
// buildpacks.WarmGoCache leaves it.
func madeGoSeed(t *testing.T, cacheDir, version string) string {
	t.Helper()
	dir := filepath.Join(cacheDir, "go-build-seed", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, buildpacks.GoCacheReadyFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// madePythonSeed puts a ready seed of key (its key file, an empty venv)
// in cacheDir, as buildpacks.WarmPythonSeed leaves it.
func madePythonSeed(t *testing.T, cacheDir, key string) string {
	t.Helper()
	dir := buildpacks.PythonSeedDirOf(cacheDir, key)
	if err := os.MkdirAll(filepath.Join(dir, "venv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, buildpacks.PythonSeedKeyFile), []byte(key), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// `pando server` serves while the python venv seed's key and the Go
// version of the Go build cache seed are still being asked: its start
// waits for neither python nor go.
func TestRun_startsWhileTheSeedsAreAsked(t *testing.T) {
	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.CacheDir = t.TempDir()
	cfg.backend = fakeBackend{fake.New(fake.Options{})}
	pyKey := newHeld("pyseed1 test held")
	defer close(pyKey.release)
	goDir := newHeld(madeGoSeed(t, cfg.CacheDir, "go-test-held"))
	defer close(goDir.release)
	cfg.seeds = seedSeams{hostPython: "/nonexistent/python3", pythonSeedKey: pyKey.pythonSeedKey, goSeedDir: goDir.goSeedDir}
	_, addrs := boot(t, func(ctx context.Context) error { return Run(ctx, cfg) }, ready)
	if status := login(t, addrs[0], cfg.AdminPassword).get(addrs[0], "", "/v3/info", nil); status != http.StatusOK {
		t.Fatalf("GET /v3/info while the seeds are asked: status %d", status)
	}
	for what, h := range map[string]*held{"the python seed key": pyKey, "the Go seed's version": goDir} {
		select {
		case <-h.asked:
		case <-time.After(bootTimeout):
			t.Fatalf("the started server never asked %s", what)
		}
	}
}

// The cell's runtime opens without the python venv seed's key (or the Go
// version), mounting the seeds from links in the data dir: before the key
// is known a staging gets the seed the link named in the last run (its
// key checked by the buildpack) or none (ensurepip); once the key is known
// and its seed made, the link names that seed. A key whose seed cannot be
// made leaves the link as it was: no half-made seed is offered.
func TestCellRuntime_linksTheSeedsOnceTheirKeysAreKnown(t *testing.T) {
	dataDir, cacheDir := t.TempDir(), t.TempDir()
	goSeed := madeGoSeed(t, cacheDir, "go-test")
	// run opens the runtime as a restart of the cell does, warms it with
	// key held, and returns its python seed cache and what it offered
	// while key was held (and whether it offered a Go seed then).
	run := func(key *held) (c cell.StagingCache, offeredBefore string, goBefore bool) {
		t.Helper()
		goDir := newHeld(goSeed)
		plan, err := planCellRuntime(cellRuntimeConfig{
			verb: "pando server", dataDir: dataDir, cacheDir: cacheDir,
			backend: fakeBackend{fake.New(fake.Options{})},
			seeds: seedSeams{hostPython: "/nonexistent/python3", pythonSeedKey: key.pythonSeedKey,
				goSeedDir: goDir.goSeedDir},
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := openCellRuntime(context.Background(), plan, slog.New(slog.DiscardHandler), false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		var goCache cell.StagingCache
		for _, sc := range r.stagingCaches {
			switch sc.Env {
			case "PANDO_PYTHON_VENV_SEED":
				c = sc
			case "PANDO_GO_CACHE_SEED":
				goCache = sc
			}
		}
		if c.HostDir != filepath.Join(dataDir, "python-venv-seed") || c.ContainerDir != "/tmp/python-venv-seed" {
			t.Fatalf("python seed cache %+v, want it mounted from the data dir's link", c)
		}
		var g errgroup.Group
		r.warm(context.Background(), &g)
		<-key.asked
		<-goDir.asked
		offeredBefore, goBefore = offered(c), goCache.Ready()
		close(key.release)
		close(goDir.release)
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if target, err := os.Readlink(goCache.HostDir); err != nil || target != goSeed || !goCache.Ready() ||
			goCache.HostDir != filepath.Join(dataDir, "go-build-seed") || goCache.ContainerDir != "/tmp/go-cache-seed" {
			t.Fatalf("Go seed cache %+v names %q (%v), ready %t; want it mounted from the data dir's link to %s",
				goCache, target, err, goCache.Ready(), goSeed)
		}
		return c, offeredBefore, goBefore
	}

	// First start: nothing offered until the key is known.
	first := madePythonSeed(t, cacheDir, "pyseed1 test first")
	c, before, goBefore := run(newHeld("pyseed1 test first"))
	if before != "" || goBefore {
		t.Fatalf("a new cell offered the python seed %q (and a Go seed: %t) before it asked python and go, want none", before, goBefore)
	}
	if got := offered(c); got != "pyseed1 test first" {
		t.Fatalf("after the key was known the cell offers %q, want the seed of the key", got)
	}
	if target, err := os.Readlink(c.HostDir); err != nil || target != first {
		t.Fatalf("link names %q (%v), want %s", target, err, first)
	}

	// Restart with another key whose seed cannot be made (no python): the
	// last run's seed stays offered, the buildpack refuses it by its key.
	c, before, _ = run(newHeld("pyseed1 test second"))
	if before != "pyseed1 test first" || offered(c) != "pyseed1 test first" {
		t.Fatalf("a restarted cell whose new seed cannot be made offered %q, then %q; want the last run's", before, offered(c))
	}
	entries, err := os.ReadDir(filepath.Dir(first))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("a seed being made was left in the cache dir: %s", e.Name())
		}
	}

	// Its seed made (by another server sharing the cache dir): linked,
	// and the first one, made a moment ago, kept for the servers of its key.
	second := madePythonSeed(t, cacheDir, "pyseed1 test second")
	c, before, goBefore = run(newHeld("pyseed1 test second"))
	if !goBefore {
		t.Fatal("a restarted cell offered no Go seed before it asked go, want the last run's")
	}
	if before != "pyseed1 test first" || offered(c) != "pyseed1 test second" {
		t.Fatalf("a restarted cell offered %q, then %q; want the last run's seed, then its key's", before, offered(c))
	}
	if target, err := os.Readlink(c.HostDir); err != nil || target != second {
		t.Fatalf("link names %q (%v), want %s", target, err, second)
	}
	if !buildpacks.PythonSeedReady(first) {
		t.Fatal("the seed of another key, made a moment ago, was removed")
	}
}

// offered is the key of the seed c offers a staging now, "" for none.
func offered(c cell.StagingCache) string {
	if !c.Ready() {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(c.HostDir, buildpacks.PythonSeedKeyFile))
	if err != nil {
		return "read: " + err.Error()
	}
	return string(b)
}
