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

// heldKey is a python seed key computation that answers key once
// released: asked is closed when it is first called.
type heldKey struct {
	key     string
	asked   chan struct{}
	release chan struct{}
}

func newHeldKey(key string) *heldKey {
	return &heldKey{key: key, asked: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldKey) compute(ctx context.Context, _, _ string) (string, error) {
	select {
	case <-h.asked:
	default:
		close(h.asked)
	}
	select {
	case <-h.release:
		return h.key, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
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

// `pando server` serves while the python venv seed's key is still being
// computed: its start does not wait for python.
func TestRun_startsWhileThePythonSeedKeyIsComputed(t *testing.T) {
	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.CacheDir = t.TempDir()
	readySeeds(t, cfg.CacheDir)
	cfg.backend = fakeBackend{fake.New(fake.Options{})}
	key := newHeldKey("pyseed1 test held")
	defer close(key.release)
	cfg.hostPython, cfg.pythonSeedKey = "/nonexistent/python3", key.compute
	_, addrs := boot(t, func(ctx context.Context) error { return Run(ctx, cfg) }, ready)
	if status := login(t, addrs[0], cfg.AdminPassword).get(addrs[0], "", "/v3/info", nil); status != http.StatusOK {
		t.Fatalf("GET /v3/info while the seed key is computed: status %d", status)
	}
	select {
	case <-key.asked:
	case <-time.After(bootTimeout):
		t.Fatal("the started server never computed the python seed key")
	}
}

// The cell's runtime opens without the python venv seed's key, mounting
// the seed from a link in the data dir: before the key is known a staging
// gets the seed the link named in the last run (its key checked by the
// buildpack) or none (ensurepip); once the key is known and its seed
// made, the link names that seed. A key whose seed cannot be made leaves
// the link as it was: no half-made seed is offered.
func TestCellRuntime_linksThePythonSeedOnceItsKeyIsKnown(t *testing.T) {
	dataDir, cacheDir := t.TempDir(), t.TempDir()
	readySeeds(t, cacheDir)
	// run opens the runtime as a restart of the cell does, warms it with
	// key held, and returns its python seed cache and what it offered
	// while key was held.
	run := func(key *heldKey) (c cell.StagingCache, offeredBefore string) {
		t.Helper()
		plan, err := planCellRuntime(cellRuntimeConfig{
			verb: "pando server", dataDir: dataDir, cacheDir: cacheDir,
			backend:    fakeBackend{fake.New(fake.Options{})},
			hostPython: "/nonexistent/python3", pythonSeedKey: key.compute,
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := openCellRuntime(context.Background(), plan, slog.New(slog.DiscardHandler), false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		for _, sc := range r.stagingCaches {
			if sc.Env == "PANDO_PYTHON_VENV_SEED" {
				c = sc
			}
		}
		if c.HostDir != filepath.Join(dataDir, "python-venv-seed") || c.ContainerDir != "/tmp/python-venv-seed" {
			t.Fatalf("python seed cache %+v, want it mounted from the data dir's link", c)
		}
		var g errgroup.Group
		r.warm(context.Background(), &g)
		<-key.asked
		offeredBefore = offered(c)
		close(key.release)
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return c, offeredBefore
	}

	// First start: nothing offered until the key is known.
	first := madePythonSeed(t, cacheDir, "pyseed1 test first")
	c, before := run(newHeldKey("pyseed1 test first"))
	if before != "" {
		t.Fatalf("a new cell offered %q before its seed key was known, want none", before)
	}
	if got := offered(c); got != "pyseed1 test first" {
		t.Fatalf("after the key was known the cell offers %q, want the seed of the key", got)
	}
	if target, err := os.Readlink(c.HostDir); err != nil || target != first {
		t.Fatalf("link names %q (%v), want %s", target, err, first)
	}

	// Restart with another key whose seed cannot be made (no python): the
	// last run's seed stays offered, the buildpack refuses it by its key.
	c, before = run(newHeldKey("pyseed1 test second"))
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
	c, before = run(newHeldKey("pyseed1 test second"))
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
