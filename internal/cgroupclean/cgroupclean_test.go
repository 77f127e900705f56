package cgroupclean

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

func TestDefaultParent_isTheSameForARelativeAndAnAbsoluteStateDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, abs := DefaultParent("data/containers"), DefaultParent(filepath.Join(wd, "data", "containers"))
	if rel != abs || len(rel) != len("/pando/")+8 {
		t.Fatalf("DefaultParent: %q (relative) and %q (absolute), want one /pando/<8 hex>", rel, abs)
	}
	if DefaultParent("/a") == DefaultParent("/b") {
		t.Fatal("two state dirs share a parent")
	}
}

func TestRemove_removesTheEmptyTreeInEveryHierarchyButNeverATopLevelCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "creating cgroups needs root")
	}
	hs := hierarchies()
	if len(hs) == 0 {
		testenv.Missing(t, "no cgroup hierarchy under /sys/fs/cgroup")
	}
	top := fmt.Sprintf("/cgroupclean-test-%d", os.Getpid())
	parent := top + "/parent"
	t.Cleanup(func() {
		for _, h := range hs {
			for _, d := range []string{parent + "/child/grandchild", parent + "/child", parent, top} {
				_ = os.Remove(filepath.Join(h, d))
			}
		}
	})
	for _, h := range hs {
		if err := os.MkdirAll(filepath.Join(h, parent, "child", "grandchild"), 0o755); err != nil {
			testenv.Missing(t, fmt.Sprintf("cannot create cgroups in %s: %v", h, err))
		}
	}
	Remove(top) // refused: top level
	Remove(parent)
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h, parent)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", filepath.Join(h, parent), err)
		}
		if _, err := os.Stat(filepath.Join(h, top)); err != nil {
			t.Errorf("top-level %s removed: %v", filepath.Join(h, top), err)
		}
	}
}
