package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The runc backend's Cleanup keeps its parent cgroup (a restarted server
// reuses it); the bench's backends never restart, so it removes theirs.

// defaultCgroupParent is runc.Config's default CgroupParent for a state
// dir: "/pando/" and the first 4 bytes of the SHA-256 of its absolute path.
func defaultCgroupParent(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "/pando/" + hex.EncodeToString(sum[:4])
}

// removeCgroupParent removes parent and the empty cgroups below it in every
// hierarchy. rmdir fails on a cgroup that still has processes, so nothing
// live is touched.
func removeCgroupParent(parent string) {
	parent = filepath.Clean("/" + parent)
	if parent == "/" || strings.Count(parent, "/") < 2 {
		return // never a top-level cgroup
	}
	for _, mnt := range cgroupMounts() {
		base := filepath.Join(mnt, parent)
		var dirs []string
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = unix.Rmdir(d)
		}
	}
}

// cgroupMounts lists the cgroup hierarchies: each v1 controller's mount
// under /sys/fs/cgroup, or /sys/fs/cgroup itself on a unified (v2) host.
func cgroupMounts() []string {
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
