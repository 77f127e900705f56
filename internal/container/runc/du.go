package runc

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
)

// maxDiskWalk bounds the entries one disk measurement visits; past it the
// figure is a lower bound.
const maxDiskWalk = 200_000

// duDirs sums the allocated size of the files below dirs, counting each
// inode once and staying on each dir's filesystem.
func duDirs(ctx context.Context, dirs []string, limit int) uint64 {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total uint64
	n := 0
	for _, root := range dirs {
		var rootDev uint64
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n++
			if n > limit || (n%1024 == 0 && ctx.Err() != nil) {
				return filepath.SkipAll
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			if p == root {
				rootDev = st.Dev
			} else if d.IsDir() && st.Dev != rootDev {
				return filepath.SkipDir
			}
			k := inode{st.Dev, st.Ino}
			if st.Nlink > 1 {
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			total += uint64(st.Blocks) * 512
			return nil
		})
	}
	return total
}
