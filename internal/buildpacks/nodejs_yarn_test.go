package buildpacks_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// hostYarn returns the host's yarn (Debian names it yarnpkg), its version
// and the environment it runs with: Debian's yarnpkg on a node from
// elsewhere (NodeSource) needs Debian's module dir on NODE_PATH, as the
// buildpack finds.
func hostYarn(t *testing.T) (string, string, []string) {
	t.Helper()
	nodeVersion(t)
	for _, name := range []string{"yarn", "yarnpkg"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		for _, env := range [][]string{os.Environ(), append(os.Environ(), "NODE_PATH=/usr/share/nodejs")} {
			cmd := exec.Command(p, "--version")
			cmd.Env = env
			if out, err := cmd.Output(); err == nil {
				return p, strings.TrimSpace(string(out)), env
			}
		}
		t.Fatalf("%s --version fails, also with NODE_PATH=/usr/share/nodejs", p)
	}
	testenv.Missing(t, "no yarn on PATH (apt-get install yarnpkg)")
	return "", "", nil
}

// yarnApp is greetPackages' app, greet a dependency and devtool a
// devDependency, with the yarn.lock the host's yarn writes for it (once
// per test binary: fixtures).
func yarnApp(t *testing.T, yarn string, env []string) map[string]string {
	t.Helper()
	app := greetApp(`"dependencies": {"greet": "file:greet"}, "devDependencies": {"devtool": "file:devtool"}`)
	lock := fixtures.get(t, "yarn.lock of yarnApp", func() ([]byte, error) {
		dir, err := os.MkdirTemp("", "yarnapp-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := writeTree(filepath.Join(dir, "app"), app); err != nil {
			return nil, err
		}
		cmd := exec.Command(yarn, "install", "--ignore-scripts", "--non-interactive", "--cache-folder", filepath.Join(dir, "yarn-cache"))
		cmd.Dir, cmd.Env = filepath.Join(dir, "app"), env
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("yarn install: %w\n%s", err, out)
		}
		return os.ReadFile(filepath.Join(dir, "app", "yarn.lock"))
	})
	app["yarn.lock"] = string(lock)
	return app
}

func TestNodejs_yarnLockInstallsWithTheStacksYarnAndKeepsNodeModules(t *testing.T) {
	t.Parallel()
	yarn, version, env := hostYarn(t)
	s := newStage(t, yarnApp(t, yarn, env))
	s.cfg.Env = append(s.cfg.Env, "PATH="+filepath.Dir(yarn)+":"+os.Getenv("PATH"))
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	for _, want := range []string{"Using the stack's yarn " + version, "Installing dependencies: yarn install --frozen-lockfile --production=true",
		"--offline (offline: staging has no network access)", "Kept node_modules in the build cache for the next staging (keyed by yarn.lock)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	requireProductionInstall(t, s, "greet/package.json")
	if body := serve(t, s, res.StartCommand); body != "greet production" {
		t.Fatalf("GET / = %q", body)
	}
	requireNodeModulesReused(t, s, "yarn.lock", "greet production")
}

func TestNodejs_yarnLockWithoutYarnOnTheStackFallsBackToNpmSayingSo(t *testing.T) {
	t.Parallel()
	yarn, _, env := hostYarn(t)
	app := yarnApp(t, yarn, env)
	// A PATH with node, npm and the tools the scripts and npm use, and no
	// yarn (on the host it is in the same directory as node).
	bin := t.TempDir()
	for _, tool := range []string{"node", "npm", "bash", "sh", "env", "cat", "dirname", "basename", "mktemp", "ls", "grep", "tee", "rm", "mkdir", "cp", "find", "chmod"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if p, err = filepath.EvalSymlinks(p); err != nil {
			t.Fatal(err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	s := newStage(t, app)
	s.cfg.Env = append(s.cfg.Env, "PATH="+bin, "CF_STACK=noyarn")
	res, err := s.build(t)
	out := s.out.String()
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out)
	}
	for _, want := range []string{"yarn.lock found, but the stack 'noyarn' has no yarn (neither yarn nor yarnpkg on PATH): installing with npm instead",
		"Installing dependencies: npm install --omit=dev"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if body := serve(t, s, res.StartCommand); body != "greet production" {
		t.Fatalf("GET / = %q", body)
	}
}
