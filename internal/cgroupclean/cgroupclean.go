// Package cgroupclean removes the cgroups a runc backend (internal/
// container/runc) leaves behind, for the tests and benches that run pando
// servers and cells and must leave the host as they found it. The backend's
// Cleanup keeps its parent cgroup, since a restarted server reuses it.
package cgroupclean

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// DefaultParent is runc.Config's default CgroupParent for a state dir:
// "/pando/" and the first 4 bytes of the SHA-256 of its absolute path.
func DefaultParent(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "/pando/" + hex.EncodeToString(sum[:4])
}

// Remove removes parent and the empty cgroups below it in every hierarchy,
// deepest first. rmdir fails on a cgroup that still has processes, so
// nothing live is touched; a top-level cgroup is never removed.
func Remove(parent string) {
	parent = filepath.Clean("/" + parent)
	if parent == "/" || strings.Count(parent, "/") < 2 {
		return
	}
	for _, mnt := range hierarchies() {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(mnt, parent), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}

// hierarchies lists the cgroup hierarchies: each v1 controller's mount
// under /sys/fs/cgroup, or /sys/fs/cgroup itself on a unified (v2) host.
func hierarchies() []string {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return []string{root}
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() { // symlinks such as cpu -> cpu,cpuacct are skipped
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	return out
}
