package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
)

// ExtractTgz extracts the gzipped tar in r into dest, creating dest if
// needed, within lim (MaxRatio does not apply: the stream's size is not
// known up front; MaxTotalBytes bounds it). Hard links must point at
// entries inside dest; devices and pipes are skipped. On error dest may hold
// part of the archive; the caller removes it.
func ExtractTgz(ctx context.Context, r io.Reader, dest string, lim Limits) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		e := pando.Errorf(pando.EBadZip, "invalid gzip stream")
		e.Err = err
		return e
	}
	defer zr.Close()
	x, err := newExtractor(ctx, dest, lim, 0)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			e := pando.Errorf(pando.EBadZip, "invalid tar archive")
			e.Err = err
			return e
		}
		if err := x.tarEntry(h, tr); err != nil {
			return err
		}
	}
	return x.finish()
}

// typeRegOld is the regular-file flag of pre-POSIX tar writers ('\x00',
// archive/tar's deprecated TypeRegA), which old build tools still emit.
const typeRegOld = '\x00'

func (x *extractor) tarEntry(h *tar.Header, tr io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(h.Name)
	case tar.TypeReg, typeRegOld:
		return x.file(h.Name, fs.FileMode(h.Mode).Perm(), h.ModTime, corruptReader{h.Name, tr})
	case tar.TypeSymlink:
		return x.symlink(h.Name, h.Linkname)
	case tar.TypeLink:
		return x.hardlink(h.Name, h.Linkname)
	default:
		// Devices, fifos and unknown types are skipped, but still counted.
		_, _, err := x.begin(h.Name)
		return err
	}
}

// WriteTgz writes srcDir as a gzipped tar to w, entries named
// prefix/relpath (prefix "." gives "./app/..." as droplets use) in lexical
// order, keeping modes, numeric owners, modification times, symlinks and
// hard links. Sockets and devices are skipped.
func WriteTgz(ctx context.Context, w io.Writer, srcDir, prefix string) error {
	// BestSpeed: droplets and build caches are written on every staging
	// on a shared core; the size gain of higher levels is small for them.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err = walkTree(ctx, srcDir, prefix, func(e treeEntry) error {
		h, err := tar.FileInfoHeader(e.info, e.link)
		if err != nil {
			return err
		}
		h.Name = e.name
		h.ModTime = e.info.ModTime().Truncate(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		if e.info.IsDir() {
			h.Name += "/"
		}
		if st, ok := e.info.Sys().(*syscall.Stat_t); ok && e.info.Mode().IsRegular() && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[k]; ok {
				h.Typeflag = tar.TypeLink
				h.Linkname = first
				h.Size = 0
				return tw.WriteHeader(h)
			}
			seen[k] = e.name
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.info.Mode().IsRegular() {
			return copyFile(ctx, tw, e.path, e.info.Size())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", srcDir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar %s: %w", srcDir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("tar %s: %w", srcDir, err)
	}
	return nil
}

// treeEntry is one file met by walkTree.
type treeEntry struct {
	path string // on disk
	name string // in the archive, without a trailing slash
	info fs.FileInfo
	link string // symlink target
}

// walkTree calls fn for srcDir's dirs, regular files and symlinks in
// lexical order (parents first). The root itself is included as prefix
// when prefix is not empty.
func walkTree(ctx context.Context, srcDir, prefix string, fn func(treeEntry) error) error {
	prefix = strings.TrimSuffix(prefix, "/")
	return filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var name string
		switch {
		case rel == "." && prefix == "":
			return nil
		case rel == ".":
			name = prefix
		case prefix == "":
			name = rel
		default:
			name = prefix + "/" + rel
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil {
			return err
		}
		e := treeEntry{path: p, name: name, info: info}
		switch m := info.Mode(); {
		case m&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case m.IsDir(), m.IsRegular():
		default:
			return nil
		}
		return fn(e)
	})
}
