package cell

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"path/filepath"
	"syscall"
)

// cacheSignature is a digest of what lstat says of every entry under dir
// (path, mode, size, modification time, inode; no content is read). A
// build cache with the same signature after staging as after its restore
// was not written to, so it need not be packed and uploaded again: a
// Node.js re-push with an unchanged lock file only hard-links node_modules
// out of it, and re-packing thousands of files would cost more than the
// rest of such a staging. Whatever a staging could do to the cache
// unseen (rewrite a file in place with its size and time kept) only keeps
// the previous cache, which is what an unchanged cache means anyway.
func cacheSignature(dir string) (string, error) {
	h := sha256.New()
	var b [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		num(uint64(len(rel)))
		h.Write([]byte(rel))
		num(uint64(info.Mode()))
		num(uint64(info.Size()))
		num(uint64(info.ModTime().UnixNano()))
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			num(st.Ino)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cacheUnchanged reports whether dir still has signature sig.
func cacheUnchanged(dir, sig string) bool {
	now, err := cacheSignature(dir)
	return err == nil && now == sig
}
