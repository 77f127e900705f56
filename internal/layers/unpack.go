package layers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

const (
	// maxPathLen bounds an entry name or link target.
	maxPathLen = 4096
	// whiteoutPrefix marks a deleted entry in an OCI layer; opaqueMarker
	// marks a directory whose lower contents are hidden.
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	// opaqueXattr is how overlayfs (mounted by host root) recognises an
	// opaque directory.
	opaqueXattr = "trusted.overlay.opaque"
	// zstdMaxWindow bounds the memory a zstd stream may make us allocate.
	zstdMaxWindow = 64 << 20
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// unpacker writes one layer tar into root, which only it writes to while it
// runs (a fresh temporary directory), so checking each parent with Lstat is
// enough to never write through a symlink.
type unpacker struct {
	root       string
	shift      Shift
	maxBytes   int64
	maxEntries int
	log        *slog.Logger

	written int64
	entries int
	dirs    map[string]bool // relative paths known to be real directories
	buf     []byte          // file data on its way to the disk
}

// writeChunk is the most file data written with one write(2): the
// readahead's chunk. With io.Copy's 32 KiB, writing a 50 MB image took
// twice the system time (measured here: 17-35 ms against 12-14 ms).
const writeChunk = readaheadChunk

// writerOnly hides a file's ReadFrom, which would copy through a 32 KiB
// buffer of its own.
type writerOnly struct{ io.Writer }

// readBuffer is how much of a blob one read asks for (fewer read(2)s of
// the registry's connection than with 64 KiB).
const readBuffer = 256 << 10

// decompress returns the layer's tar stream, recognising gzip and zstd by
// their magic bytes (media types lie more often than magic numbers do).
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, readBuffer)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("read gzip layer: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow*2))
		if err != nil {
			return nil, nil, fmt.Errorf("read zstd layer: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// unpack writes the layer read from r into u.root.
func (u *unpacker) unpack(ctx context.Context, r io.Reader) error {
	stream, done, err := decompress(r)
	if err != nil {
		return err
	}
	defer done()
	u.dirs = map[string]bool{"": true}
	ra := newReadahead(ctx, stream)
	defer ra.Close()
	tr := tar.NewReader(ra)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		u.entries++
		if u.entries > u.maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrLayerTooLarge, u.maxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// clean confines an entry name to the layer: an absolute name is taken
// relative to the layer root (as docker does), a relative one that climbs
// out with ".." is refused. "" is the root itself.
func clean(name string) (string, error) {
	if len(name) > maxPathLen || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: entry name %.80q is too long or holds a NUL", ErrUnsafeLayer, name)
	}
	c := path.Clean(name)
	if !strings.HasPrefix(name, "/") && (c == ".." || strings.HasPrefix(c, "../")) {
		return "", fmt.Errorf("%w: entry %.200q points outside the layer", ErrUnsafeLayer, name)
	}
	c = strings.TrimLeft(c, "/")
	if c == "." {
		c = ""
	}
	return c, nil
}

func (u *unpacker) full(rel string) string { return filepath.Join(u.root, filepath.FromSlash(rel)) }

// ids maps a tar entry's owner into the shift's range.
func (u *unpacker) ids(hdr *tar.Header) (int, int, error) {
	uid, gid, err := u.shift.apply(hdr.Uid, hdr.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: entry %.200q: %v", ErrUnsafeLayer, hdr.Name, err)
	}
	return uid, gid, nil
}

func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	rel, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	base, dir := path.Base(rel), path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	if rel != "" && strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr, dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(hdr, rel, dir)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.file(hdr, rel, dir, body)
	case tar.TypeSymlink:
		return u.symlink(hdr, rel, dir)
	case tar.TypeLink:
		return u.hardlink(hdr, rel, dir)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		u.log.Debug("layer entry dropped: device or fifo", "entry", hdr.Name)
		return nil
	default:
		u.log.Debug("layer entry dropped: unsupported type", "entry", hdr.Name, "type", hdr.Typeflag)
		return nil
	}
}

// parent makes sure rel (a directory path) exists as a chain of real
// directories under the root, creating missing ones owned by the shifted
// root with mode 0755, and refusing to go through anything else.
func (u *unpacker) parent(rel string) error {
	if u.dirs[rel] {
		return nil
	}
	if err := u.parent(parentOf(rel)); err != nil {
		return err
	}
	full := u.full(rel)
	fi, err := os.Lstat(full)
	switch {
	case err == nil && fi.IsDir():
	case err == nil:
		return fmt.Errorf("%w: %q is not a directory but the layer writes below it", ErrUnsafeLayer, rel)
	case errors.Is(err, os.ErrNotExist):
		// Implicit directories count as entries: a deep name must not
		// create thousands of them for free.
		u.entries++
		if u.entries > u.maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrLayerTooLarge, u.maxEntries)
		}
		if err := os.Mkdir(full, 0o755); err != nil {
			return fmt.Errorf("unpack layer: %w", err)
		}
		uid, gid, _ := u.shift.apply(0, 0)
		if err := os.Lchown(full, uid, gid); err != nil {
			return fmt.Errorf("unpack layer: %w", err)
		}
	default:
		return fmt.Errorf("unpack layer: %w", err)
	}
	u.dirs[rel] = true
	return nil
}

func parentOf(rel string) string {
	d := path.Dir(rel)
	if d == "." || d == "/" {
		return ""
	}
	return d
}

// clear removes whatever is at rel so a new entry can take its place (a
// later entry wins in tar semantics). RemoveAll never follows symlinks.
func (u *unpacker) clear(rel string) error {
	full := u.full(rel)
	fi, err := os.Lstat(full)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	if fi.IsDir() {
		for d := range u.dirs {
			if d == rel || strings.HasPrefix(d, rel+"/") {
				delete(u.dirs, d)
			}
		}
		err = os.RemoveAll(full)
	} else {
		err = os.Remove(full)
	}
	if err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	return nil
}

// mode keeps permission and sticky bits; setuid is always dropped, and
// setgid on everything but directories (where it only steers group
// inheritance).
func mode(hdr *tar.Header, isDir bool) uint32 {
	m := uint32(hdr.Mode) & 0o7777 &^ unix.S_ISUID
	if !isDir {
		m &^= unix.S_ISGID
	}
	return m
}

func (u *unpacker) dir(hdr *tar.Header, rel, dir string) error {
	uid, gid, err := u.ids(hdr)
	if err != nil {
		return err
	}
	if rel != "" {
		if err := u.parent(dir); err != nil {
			return err
		}
		full := u.full(rel)
		if fi, err := os.Lstat(full); err != nil || !fi.IsDir() {
			if err := u.clear(rel); err != nil {
				return err
			}
			if err := os.Mkdir(full, 0o700); err != nil {
				return fmt.Errorf("unpack layer: %w", err)
			}
		}
		u.dirs[rel] = true
	}
	full := u.full(rel)
	if err := os.Lchown(full, uid, gid); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	if err := unix.Chmod(full, mode(hdr, true)); err != nil {
		return fmt.Errorf("unpack layer: chmod %s: %w", rel, err)
	}
	return nil
}

func (u *unpacker) file(hdr *tar.Header, rel, dir string, body io.Reader) error {
	if rel == "" {
		return fmt.Errorf("%w: a file entry names the layer root", ErrUnsafeLayer)
	}
	uid, gid, err := u.ids(hdr)
	if err != nil {
		return err
	}
	left := u.maxBytes - u.written
	if hdr.Size > left {
		return fmt.Errorf("%w: more than %d bytes unpacked", ErrLayerTooLarge, u.maxBytes)
	}
	if err := u.parent(dir); err != nil {
		return err
	}
	if err := u.clear(rel); err != nil {
		return err
	}
	full := u.full(rel)
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	if u.buf == nil {
		u.buf = make([]byte, writeChunk)
	}
	n, err := io.CopyBuffer(writerOnly{f}, io.LimitReader(body, left+1), u.buf)
	u.written += n
	if err == nil && u.written > u.maxBytes {
		err = fmt.Errorf("%w: more than %d bytes unpacked", ErrLayerTooLarge, u.maxBytes)
	}
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = unix.Fchmod(int(f.Fd()), mode(hdr, false))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, ErrLayerTooLarge) {
			return err
		}
		return fmt.Errorf("unpack layer: %s: %w", rel, err)
	}
	return u.mtime(full, hdr)
}

func (u *unpacker) mtime(full string, hdr *tar.Header) error {
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	return nil
}

func (u *unpacker) symlink(hdr *tar.Header, rel, dir string) error {
	if rel == "" {
		return fmt.Errorf("%w: a symlink entry names the layer root", ErrUnsafeLayer)
	}
	if hdr.Linkname == "" || len(hdr.Linkname) > maxPathLen || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return fmt.Errorf("%w: symlink %.200q has an empty or oversized target", ErrUnsafeLayer, hdr.Name)
	}
	uid, gid, err := u.ids(hdr)
	if err != nil {
		return err
	}
	if err := u.parent(dir); err != nil {
		return err
	}
	if err := u.clear(rel); err != nil {
		return err
	}
	// A symlink may point anywhere: it is only ever resolved inside the
	// container's root, and this unpacker never follows one.
	full := u.full(rel)
	if err := os.Symlink(hdr.Linkname, full); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	if err := os.Lchown(full, uid, gid); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	return u.mtime(full, hdr)
}

// hardlink links rel to another entry of this layer. The target is
// confined like a name and must be reachable through real directories, so
// a link can never reach a host file.
func (u *unpacker) hardlink(hdr *tar.Header, rel, dir string) error {
	target, err := clean(hdr.Linkname)
	if err != nil {
		return err
	}
	if rel == "" || target == "" {
		return fmt.Errorf("%w: hard link %.200q involves the layer root", ErrUnsafeLayer, hdr.Name)
	}
	if target == rel {
		return nil
	}
	if !u.dirs[parentOf(target)] {
		return fmt.Errorf("%w: hard link %.200q: target %.200q is not in this layer", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
	}
	tfull := u.full(target)
	fi, err := os.Lstat(tfull)
	if err != nil || fi.IsDir() {
		return fmt.Errorf("%w: hard link %.200q: target %.200q is not a file of this layer", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
	}
	if err := u.parent(dir); err != nil {
		return err
	}
	if err := u.clear(rel); err != nil {
		return err
	}
	// link(2) does not follow a symlink target: a link to a symlink is a
	// second name for the symlink, still confined.
	if err := os.Link(tfull, u.full(rel)); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	return nil
}

// whiteout turns OCI whiteouts into overlayfs form: ".wh.NAME" becomes a
// 0:0 character device NAME, ".wh..wh..opq" the opaque xattr on its
// directory. Other ".wh..wh." names (aufs bookkeeping) are dropped.
func (u *unpacker) whiteout(hdr *tar.Header, dir, base string) error {
	if err := u.parent(dir); err != nil {
		return err
	}
	if base == opaqueMarker {
		if err := unix.Lsetxattr(u.full(dir), opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("unpack layer: mark %q opaque (needs root): %w", dir, err)
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if strings.HasPrefix(base, opaqueMarker[:len(whiteoutPrefix)*2]) || name == "" || name == "." || name == ".." {
		u.log.Debug("layer entry dropped: aufs metadata", "entry", hdr.Name)
		return nil
	}
	rel := path.Join(dir, name)
	if _, err := os.Lstat(u.full(rel)); err == nil {
		// The layer itself has the entry (a whiteout only hides lower ones).
		return nil
	}
	full := u.full(rel)
	if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("unpack layer: whiteout %q (needs root): %w", rel, err)
	}
	uid, gid, _ := u.shift.apply(0, 0)
	if err := os.Lchown(full, uid, gid); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	}
	return nil
}
