package buildpacks_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/buildpacks"
)

// TestPython_firstInstallOfEveryAppCopiesTheCellSeed: the cell's fresh
// venv (WarmPythonSeed, published at the cell's link by PublishPythonSeed
// and offered in PANDO_PYTHON_VENV_SEED) is what the
// first install of one app and then of another copies, neither running
// ensurepip; both apps run and have a working pip; the seed is left as it
// was; a seed made from other inputs (its key differs) is not used.
func TestPython_firstInstallOfEveryAppCopiesTheCellSeed(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	py, version := hostPython(t)
	pyname := "python" + version[:strings.LastIndex(version, ".")]
	s := pythonStage(t, map[string]string{"requirements.txt": "greet>=1.0\n", "Procfile": "web: greet-serve\n"})
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))

	// A bound that stops a hung ensurepip, not a speed target.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cacheDir := t.TempDir()
	venvPath := filepath.Join(s.cfg.BuildDir, ".venv")
	seedKey, err := buildpacks.PythonSeedKey(ctx, py, venvPath)
	must(t, err)
	seed := buildpacks.PythonSeedDirOf(cacheDir, seedKey)
	link := filepath.Join(t.TempDir(), "python-venv-seed")
	// A seed of an earlier key is removed once the new one is made and published.
	stale := filepath.Join(filepath.Dir(seed), "0123456789abcdef")
	must(t, os.MkdirAll(filepath.Join(stale, "venv"), 0o755))
	must(t, os.WriteFile(filepath.Join(stale, "key"), []byte("pyseed1 old"), 0o644))
	hoursAgo := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(stale, hoursAgo, hoursAgo))
	// One of a server of another version, made a moment ago, is kept.
	recent := filepath.Join(filepath.Dir(seed), "fedcba9876543210")
	must(t, os.MkdirAll(filepath.Join(recent, "venv"), 0o755))
	if buildpacks.PythonSeedReady(seed) {
		t.Fatalf("seed %s ready before it was made", seed)
	}
	if err := buildpacks.PublishPythonSeed(link, seed); err == nil {
		t.Fatal("PublishPythonSeed published a seed not made yet")
	}
	made, err := buildpacks.WarmPythonSeed(ctx, seed, seedKey, py, venvPath)
	must(t, err)
	if !made || !buildpacks.PythonSeedReady(seed) {
		t.Fatalf("WarmPythonSeed left no ready seed in %s (made: %t)", seed, made)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the seed of another key went before the new one was published: %v", err)
	}
	must(t, buildpacks.PublishPythonSeed(link, seed))
	if got, err := os.Readlink(link); err != nil || got != seed {
		t.Fatalf("link %s names %q (%v), want %s", link, got, err, seed)
	}
	buildpacks.RemoveOtherPythonSeeds(seed)
	if made, err := buildpacks.WarmPythonSeed(ctx, seed, seedKey, py, venvPath); err != nil || made {
		t.Fatalf("WarmPythonSeed of a seed there already: made %t, %v", made, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the seed of another key was kept: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(seed))
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{filepath.Base(seed), filepath.Base(recent)}; len(names) != 2 || !slices.Contains(names, want[0]) || !slices.Contains(names, want[1]) {
		t.Fatalf("seed parent holds %v, want %v", names, want)
	}
	key, err := os.ReadFile(filepath.Join(seed, "key"))
	must(t, err)
	// What names the venv's path names where apps have it, not where the
	// seed was made.
	for _, f := range []string{"bin/activate", "pyvenv.cfg"} {
		b, err := os.ReadFile(filepath.Join(seed, "venv", f))
		if err != nil || strings.Contains(string(b), ".python-seed-") {
			t.Fatalf("seed's %s names where it was made: %v\n%s", f, err, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(seed, "venv", "bin", "activate")); !strings.Contains(string(b), "VIRTUAL_ENV="+venvPath) && !strings.Contains(string(b), `VIRTUAL_ENV="`+venvPath+`"`) {
		t.Fatalf("seed's activate does not name %s:\n%s", venvPath, b)
	}
	seedSite := filepath.Join(seed, "venv", "lib", pyname, "site-packages")
	s.cfg.Env = append(s.cfg.Env, "PANDO_PYTHON_VENV_SEED="+link)

	firstInstall := func(what string) {
		t.Helper()
		if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "copied from the cell's fresh virtualenv (ensurepip not run)") ||
			strings.Contains(s.out.String(), "ensurepip;") || strings.Contains(s.out.String(), "installed by ensurepip") ||
			!strings.Contains(s.out.String(), "Successfully installed greet-1.0.0") {
			t.Fatalf("%s: %v\n%s", what, err, s.out.String())
		}
		if body, want := serve(t, s, "greet-serve"), "greet 1.0.0 on python "+version+" in venv"; body != want {
			t.Fatalf("%s: GET / = %q, want %q", what, body, want)
		}
		venv := filepath.Join(s.cfg.BuildDir, ".venv")
		freeze := exec.Command(filepath.Join(venv, "bin", "pip"), "freeze")
		freeze.Env = []string{"PATH=/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK=1", "HOME=" + t.TempDir()}
		if out, err := freeze.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "greet==1.0.0" {
			t.Fatalf("%s: the venv's pip freeze: %q, %v", what, out, err)
		}
		// The app's build cache keeps no copy of its own.
		if _, err := os.Stat(filepath.Join(s.cfg.CacheDir, "python_buildpack", "venv-seed")); !os.IsNotExist(err) {
			t.Fatalf("%s: the build cache holds a fresh venv beside the cell's: %v", what, err)
		}
		if m, _ := filepath.Glob(filepath.Join(seedSite, "greet*")); len(m) != 0 {
			t.Fatalf("%s: installing changed the cell's seed: %v", what, m)
		}
	}
	firstInstall("first app")

	// A second app (its own build cache, pinned requirements) at the
	// same place, as every staging container has its app at /tmp/app.
	must(t, os.RemoveAll(s.cfg.BuildDir))
	must(t, os.RemoveAll(s.cfg.ProfileDir))
	s.cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	writeFiles(t, s.cfg.BuildDir, map[string]string{"requirements.txt": "greet==1.0.0\n", "Procfile": "web: greet-serve\n"})
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))
	firstInstall("second app")
	if after, err := os.ReadFile(filepath.Join(seed, "key")); err != nil || string(after) != string(key) {
		t.Fatalf("the seed's key changed: %q, %v", after, err)
	}

	// Made from other inputs: not used; ensurepip runs.
	other := filepath.Join(t.TempDir(), "other")
	must(t, os.MkdirAll(other, 0o755))
	must(t, os.Symlink(filepath.Join(seed, "venv"), filepath.Join(other, "venv")))
	must(t, os.WriteFile(filepath.Join(other, "key"), []byte(strings.Replace(string(key), "pyseed1 ", "pyseed1 x", 1)), 0o644))
	must(t, os.RemoveAll(s.cfg.BuildDir))
	must(t, os.RemoveAll(s.cfg.ProfileDir))
	s.cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	s.cfg.Env = append(s.cfg.Env, "PANDO_PYTHON_VENV_SEED="+other)
	writeFiles(t, s.cfg.BuildDir, map[string]string{"requirements.txt": "greet>=1.0\n", "Procfile": "web: greet-serve\n"})
	greetWheel(t, py, filepath.Join(s.cfg.BuildDir, "vendor"))
	if _, err := s.build(t); err != nil || !strings.Contains(s.out.String(), "installed by ensurepip") ||
		strings.Contains(s.out.String(), "cell's fresh virtualenv") {
		t.Fatalf("a seed with another key: %v\n%s", err, s.out.String())
	}
}
