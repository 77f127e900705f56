// Package archive extracts and writes the zip and tgz archives that move
// through Pando (packages, buildpacks, droplets, build caches) without
// trusting them: every entry path is confined to the destination, symlinks
// may not point out of it, and sizes are counted as bytes are written so a
// lying header or a zip bomb stops at the limit instead of filling the disk.
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
)

// Limits bound what an extraction may create. A zero field takes its value
// from DefaultLimits; a negative one disables that check (UID and GID
// excepted, see below).
type Limits struct {
	// MaxFiles bounds the number of entries (files, dirs, links).
	MaxFiles int
	// MaxTotalBytes bounds the bytes written for all files together.
	MaxTotalBytes int64
	// MaxFileBytes bounds the bytes written for one file.
	MaxFileBytes int64
	// MaxRatio bounds bytes written / archive size for zips (a zip-bomb
	// guard). It applies once more than ratioFloor bytes are written, so
	// small archives of compressible text are never refused.
	MaxRatio float64
	// UID and GID own everything extracted (and dest itself); -1 leaves
	// the extracting process's ownership. The zero value means root, so
	// callers that do not chown set both to -1 (as DefaultLimits does).
	UID, GID int
}

// ratioFloor is how many bytes an archive may expand to before MaxRatio is
// enforced.
const ratioFloor = 1 << 20

// maxLinkTarget bounds a symlink target's length.
const maxLinkTarget = 4096

// DefaultLimits are generous for applications yet bounded: 100k entries,
// 4 GiB in total and per file, 100x expansion, no chown.
func DefaultLimits() Limits {
	return Limits{
		MaxFiles:      100_000,
		MaxTotalBytes: 4 << 30,
		MaxFileBytes:  4 << 30,
		MaxRatio:      100,
		UID:           -1,
		GID:           -1,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles == 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// badEntry is the error for an archive entry that is refused.
func badEntry(name, format string, args ...any) error {
	return pando.Errorf(pando.EBadZip, "archive entry %q: %s", name, fmt.Sprintf(format, args...))
}

// cleanName validates an archive entry name and returns it as a clean
// relative slash path; "." means the archive root.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", pando.Errorf(pando.EBadZip, "archive entry with an empty name")
	case strings.IndexByte(name, 0) >= 0:
		return "", badEntry(name, "name contains a NUL byte")
	case strings.HasPrefix(name, "/"):
		return "", badEntry(name, "absolute paths are not allowed")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", badEntry(name, "paths with \"..\" are not allowed")
		}
	}
	return path.Clean(name), nil
}

// pendingLink is a symlink created after every other entry so that no
// entry can be written through it.
type pendingLink struct {
	entry  string // archive name, for messages
	rel    string
	target string
}

// extractor holds the state of one extraction.
type extractor struct {
	ctx         context.Context
	dest        string
	lim         Limits
	archiveSize int64 // for MaxRatio; 0 disables it
	chown       bool
	files       int
	total       int64
	dirs        map[string]bool // rel dirs known to be real directories
	links       []pendingLink
	linkIndex   map[string]int // rel -> index in links
}

func newExtractor(ctx context.Context, dest string, lim Limits, archiveSize int64) (*extractor, error) {
	lim = lim.withDefaults()
	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("extract to %s: %w", dest, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("extract to %s: %w", dest, err)
	}
	x := &extractor{
		ctx:         ctx,
		dest:        abs,
		lim:         lim,
		archiveSize: archiveSize,
		dirs:        map[string]bool{".": true},
		linkIndex:   map[string]int{},
	}
	x.chown = (lim.UID >= 0 || lim.GID >= 0) &&
		!((lim.UID < 0 || lim.UID == os.Geteuid()) && (lim.GID < 0 || lim.GID == os.Getegid()))
	if err := x.own(abs); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *extractor) own(p string) error {
	if !x.chown {
		return nil
	}
	if err := os.Lchown(p, x.lim.UID, x.lim.GID); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return nil
}

func (x *extractor) abs(rel string) string {
	return filepath.Join(x.dest, filepath.FromSlash(rel))
}

// begin validates an entry's name, counts it, and returns its relative
// path. ok is false for the archive root, which needs no work.
func (x *extractor) begin(name string) (rel string, ok bool, err error) {
	if err := x.ctx.Err(); err != nil {
		return "", false, err
	}
	rel, err = cleanName(name)
	if err != nil {
		return "", false, err
	}
	x.files++
	if x.lim.MaxFiles > 0 && x.files > x.lim.MaxFiles {
		return "", false, pando.Errorf(pando.ETooLarge, "archive has more than %d entries (the limit)", x.lim.MaxFiles)
	}
	return rel, rel != ".", nil
}

// mkdirs makes sure every component of rel is a real directory, creating
// missing ones. A symlink or file in the way is an error: nothing is ever
// written through a link.
func (x *extractor) mkdirs(entry, rel string) error {
	if x.dirs[rel] {
		return nil
	}
	if parent := path.Dir(rel); parent != rel {
		if err := x.mkdirs(entry, parent); err != nil {
			return err
		}
	}
	if _, pending := x.linkIndex[rel]; pending {
		return badEntry(entry, "path goes through symlink %q", rel)
	}
	p := x.abs(rel)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("extract %s: %w", entry, err)
		}
		// Mkdir honours the umask; directories are 0755 whatever it is.
		if err := os.Chmod(p, 0o755); err != nil {
			return fmt.Errorf("extract %s: %w", entry, err)
		}
		if err := x.own(p); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("extract %s: %w", entry, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return badEntry(entry, "path goes through symlink %q", rel)
	case !fi.IsDir():
		return badEntry(entry, "%q is not a directory", rel)
	}
	x.dirs[rel] = true
	return nil
}

// clear removes a non-directory at rel so a later entry replaces an
// earlier one.
func (x *extractor) clear(entry, rel string) error {
	if i, ok := x.linkIndex[rel]; ok {
		x.links[i].rel = "" // superseded
		delete(x.linkIndex, rel)
	}
	p := x.abs(rel)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", entry, err)
	}
	if fi.IsDir() {
		return badEntry(entry, "a directory of that name exists")
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("extract %s: %w", entry, err)
	}
	return nil
}

func (x *extractor) dir(name string) error {
	rel, ok, err := x.begin(name)
	if err != nil || !ok {
		return err
	}
	return x.mkdirs(name, rel)
}

// file writes one regular file from r, counting the bytes it writes.
func (x *extractor) file(name string, mode fs.FileMode, mtime time.Time, r io.Reader) error {
	rel, ok, err := x.begin(name)
	if err != nil {
		return err
	}
	if !ok {
		return badEntry(name, "not a directory")
	}
	if err := x.mkdirs(name, path.Dir(rel)); err != nil {
		return err
	}
	if err := x.clear(name, rel); err != nil {
		return err
	}
	p := x.abs(rel)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	cw := &countingWriter{x: x, w: f, name: name}
	_, err = io.Copy(cw, r)
	if err == nil && x.chown {
		err = f.Chown(x.lim.UID, x.lim.GID)
	}
	if err == nil {
		// Permission bits only: no setuid, setgid or sticky from archives.
		err = f.Chmod(mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrapEntry(name, err)
	}
	if !mtime.IsZero() {
		_ = os.Chtimes(p, mtime, mtime) // best effort
	}
	return nil
}

// wrapEntry adds the entry name to I/O errors, leaving domain errors as
// they are.
func wrapEntry(name string, err error) error {
	var pe *pando.Error
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("extract %s: %w", name, err)
}

// symlink records a symlink; it is created by finish.
func (x *extractor) symlink(name, target string) error {
	rel, ok, err := x.begin(name)
	if err != nil {
		return err
	}
	if !ok {
		return badEntry(name, "not a symlink")
	}
	if len(target) == 0 || len(target) > maxLinkTarget || strings.IndexByte(target, 0) >= 0 {
		return badEntry(name, "invalid symlink target")
	}
	if path.IsAbs(target) {
		return badEntry(name, "symlink target %q is absolute", target)
	}
	if !lexicallyInside(path.Join(path.Dir(rel), target)) {
		return badEntry(name, "symlink target %q leaves the destination", target)
	}
	if err := x.mkdirs(name, path.Dir(rel)); err != nil {
		return err
	}
	if err := x.clear(name, rel); err != nil {
		return err
	}
	x.linkIndex[rel] = len(x.links)
	x.links = append(x.links, pendingLink{entry: name, rel: rel, target: target})
	return nil
}

// hardlink links name to an earlier entry of the archive.
func (x *extractor) hardlink(name, target string) error {
	trel, err := cleanName(target)
	if err != nil {
		return badEntry(name, "hard link target %q is not allowed", target)
	}
	if i, ok := x.linkIndex[trel]; ok {
		// A hard link to a symlink is another symlink with its target.
		return x.symlink(name, x.links[i].target)
	}
	rel, ok, err := x.begin(name)
	if err != nil {
		return err
	}
	if !ok || trel == "." {
		return badEntry(name, "invalid hard link")
	}
	if err := x.mkdirs(name, path.Dir(rel)); err != nil {
		return err
	}
	if err := x.mkdirs(name, path.Dir(trel)); err != nil {
		return err
	}
	fi, err := os.Lstat(x.abs(trel))
	if err != nil || !fi.Mode().IsRegular() {
		return badEntry(name, "hard link target %q is not a file extracted earlier", target)
	}
	if rel == trel {
		return nil
	}
	if err := x.clear(name, rel); err != nil {
		return err
	}
	if err := os.Link(x.abs(trel), x.abs(rel)); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return nil
}

// finish creates the symlinks, then checks that every one of them, followed
// through the final tree, stays inside dest.
func (x *extractor) finish() error {
	for _, l := range x.links {
		if l.rel == "" {
			continue
		}
		p := x.abs(l.rel)
		if err := os.Symlink(l.target, p); err != nil {
			return fmt.Errorf("extract %s: %w", l.entry, err)
		}
		if err := x.own(p); err != nil {
			return err
		}
	}
	for _, l := range x.links {
		if l.rel == "" {
			continue
		}
		if err := x.checkLink(l); err != nil {
			return err
		}
	}
	return nil
}

// checkLink resolves l's target the way the kernel would, through the
// links now in dest, and fails if any step leaves dest.
func (x *extractor) checkLink(l pendingLink) error {
	const maxHops = 40
	hops := 0
	// todo is the list of components still to walk, from cur.
	cur := path.Dir(l.rel)
	todo := strings.Split(l.target, "/")
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur == "." {
				return badEntry(l.entry, "symlink target %q leaves the destination", l.target)
			}
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(x.abs(next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// A missing component ends the kernel's walk too (ENOENT), and
			// what remains is lexical from here.
			cur = next
			continue
		}
		hops++
		if hops > maxHops {
			return badEntry(l.entry, "too many levels of symlinks")
		}
		t, err := os.Readlink(x.abs(next))
		if err != nil {
			return fmt.Errorf("extract %s: %w", l.entry, err)
		}
		if path.IsAbs(t) {
			return badEntry(l.entry, "symlink target %q leaves the destination", l.target)
		}
		todo = append(strings.Split(t, "/"), todo...)
	}
	return nil
}

// lexicallyInside reports whether a joined relative path stays under its
// root without following links.
func lexicallyInside(p string) bool {
	p = path.Clean(p)
	return p != ".." && !strings.HasPrefix(p, "../") && !path.IsAbs(p)
}

// countingWriter enforces the byte limits on what is actually written.
type countingWriter struct {
	x    *extractor
	w    io.Writer
	name string
	n    int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	x := c.x
	if err := x.ctx.Err(); err != nil {
		return 0, err
	}
	m := int64(len(p))
	if x.lim.MaxFileBytes > 0 && c.n+m > x.lim.MaxFileBytes {
		return 0, pando.Errorf(pando.ETooLarge, "archive entry %q is larger than the per-file limit of %d bytes", c.name, x.lim.MaxFileBytes)
	}
	if x.lim.MaxTotalBytes > 0 && x.total+m > x.lim.MaxTotalBytes {
		return 0, pando.Errorf(pando.ETooLarge, "archive expands to more than the limit of %d bytes (at entry %q)", x.lim.MaxTotalBytes, c.name)
	}
	if x.lim.MaxRatio > 0 && x.archiveSize > 0 && x.total+m > ratioFloor &&
		float64(x.total+m) > x.lim.MaxRatio*float64(x.archiveSize) {
		return 0, pando.Errorf(pando.EBadZip, "archive expands more than %gx its size of %d bytes (at entry %q): refusing a likely zip bomb", x.lim.MaxRatio, x.archiveSize, c.name)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	x.total += int64(n)
	return n, err
}
