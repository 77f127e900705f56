package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/testenv"
)

func TestNodeApp_lockFileAndInstallFromTheBenchRegistry(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		testenv.Missing(t, "no npm on the host (apt-get install nodejs npm)")
	}
	// A bound on a hang, not a speed target: npm under CI's load has
	// taken over 2 minutes here.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	reg, err := startNPMRegistry()
	must(t, err)
	defer reg.close(ctx)
	b := &bench{tmp: t.TempDir(), registry: reg}
	a, err := prepareApp(ctx, appNode, b.tmp, reg)
	must(t, err)
	if _, err := os.Stat(filepath.Join(a.Dir, "package-lock.json")); err != nil || a.Buildpacks[0] != "nodejs_buildpack" {
		t.Fatalf("node app: %v %+v", err, a)
	}
	d, err := b.floorInstall(ctx, a)
	must(t, err)
	if d <= 0 {
		t.Fatalf("floor install took %v", d)
	}
	// The app itself runs on what npm installed.
	must(t, npm(ctx, a.Dir, reg, "ci", "--omit=dev"))
	node := exec.CommandContext(ctx, "node", "-e", "const w = require('tiny-web')(); w.get('/', () => {}); console.log(typeof w.listen)")
	node.Dir = a.Dir
	out, err := node.CombinedOutput()
	if err != nil || string(out) != "function\n" {
		t.Fatalf("node: %v %q", err, out)
	}
}

func TestSummarize_newNodeAppIsHeldToTheFloorWithTheInstall(t *testing.T) {
	floor := floorSummary{TotalMS: 100, InstallMS: 300}
	if got := floor.floorFor(variantFresh); got != 400 {
		t.Errorf("new app floor = %v, want 400", got)
	}
	if got := floor.floorFor(variantRepeat); got != 100 {
		t.Errorf("re-push floor = %v, want 100", got)
	}
	// The edited re-push keeps its lock file: no install either.
	if got := floor.floorFor(variantEdit); got != 100 {
		t.Errorf("edited re-push floor = %v, want 100", got)
	}
	if ratioTarget(appNode, variantRepeat) != 1.5 || ratioTarget(appNode, variantEdit) != 1.5 || ratioTarget(appNode, variantFresh) != targetRatio ||
		ratioTarget(appStatic, variantRepeat) != targetRatio || ratioTarget(appStatic, variantEdit) != targetRatio {
		t.Error("ratio targets")
	}
}
