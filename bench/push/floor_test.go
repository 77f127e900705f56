package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/archive"
	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/testenv"
)

func TestFloorRunc_runsTwoNoopContainersAndCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "runc containers need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		testenv.Missing(t, "runc is not installed (make deps)")
	}
	self, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	parent := "/pando/bench-floor-test-" + filepath.Base(dir)
	be, err := newFloorBackend(filepath.Join(dir, "containers"), self, parent)
	must(t, err)
	defer cgroupclean.Remove(parent)
	b := &bench{floorBackend: be}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := b.floorRunc(ctx, 0)
	must(t, err)
	if d <= 0 {
		t.Errorf("floor runc took %v", d)
	}
	must(t, be.Cleanup(ctx))
	ents, err := os.ReadDir(filepath.Join(dir, "containers", "bundles"))
	must(t, err)
	if len(ents) != 0 {
		t.Errorf("%d bundles left", len(ents))
	}
	cgroupclean.Remove(parent)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", parent)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left behind (stat: %v)", parent, err)
	}
}

func TestFloorUntar_extractsTheDroplet(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "app"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "app", "server"), []byte("bin"), 0o755))
	var buf bytes.Buffer
	must(t, archive.WriteTgz(context.Background(), &buf, src, "."))
	tmp := t.TempDir()
	tgz := filepath.Join(tmp, "droplet.tgz")
	must(t, os.WriteFile(tgz, buf.Bytes(), 0o644))
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the untar chowns to vcap like the cell, which needs root")
	}
	b := &bench{tmp: tmp}
	d, err := b.floorUntar(context.Background(), tgz)
	must(t, err)
	if d <= 0 {
		t.Errorf("untar took %v", d)
	}
	ents, _ := filepath.Glob(filepath.Join(tmp, "untar-*"))
	if len(ents) != 0 {
		t.Errorf("untar dirs left: %v", ents)
	}
}
