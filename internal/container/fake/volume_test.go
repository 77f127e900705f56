package fake

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

func TestVolume_isADirectoryContainersUseUntilReleased(t *testing.T) {
	ctx := ctxT(t)
	b := New(Options{})
	dir := filepath.Join(t.TempDir(), "vol")
	v, err := b.Volume(ctx, dir, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Dir(), "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := v.Usage(); err != nil || u.SizeBytes != 16<<20 || u.Full() {
		t.Errorf("usage %+v %v, want 16 MiB, not full", u, err)
	}
	if err := b.SetVolumeUsage(dir, container.VolumeUsage{SizeBytes: 16 << 20, UsedBytes: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	if u, _ := v.Usage(); !u.Full() {
		t.Errorf("usage %+v after SetVolumeUsage, want full", u)
	}
	if _, err := b.Volume(ctx, dir, 16<<20); pando.ErrorKindOf(err) != pando.EConflict {
		t.Errorf("second volume on %s: %v", dir, err)
	}
	if _, err := b.Run(ctx, container.Spec{ID: "a", Args: []string{"x"}, Volume: dir}); err != nil {
		t.Errorf("run on the volume: %v", err)
	}
	if _, err := b.Run(ctx, container.Spec{ID: "b", Args: []string{"x"}, Volume: t.TempDir()}); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("run on a plain dir: %v", err)
	}
	if err := v.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir after Release: %v", err)
	}
	if vs := b.Volumes(); len(vs) != 0 {
		t.Errorf("volumes after Release: %v", vs)
	}
}
