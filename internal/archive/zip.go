package archive

import (
	"archive/zip"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/pandoplatform/pando"
)

// dirBytesPerEntry is the central directory a zip may have per entry it
// may hold, on average (46 bytes fixed, then the name, extra field and
// comment): Go's zip reader builds a ~200-byte record for every entry of
// the directory before anyone can count them, so the directory is bounded
// while it is read, not the entries after. A 40 MB upload listing half a
// million empty files cost the API 100 MB without it (a 1 GiB one, GBs).
const dirBytesPerEntry = 256

// dirBudget is an io.ReaderAt that fails once more than left bytes are
// read through it; left < 0: no bound.
type dirBudget struct {
	r    io.ReaderAt
	left int64
}

var errDirTooLarge = errors.New("central directory past its bound")

func (b *dirBudget) ReadAt(p []byte, off int64) (int, error) {
	if b.left >= 0 {
		if int64(len(p)) > b.left {
			return 0, errDirTooLarge
		}
		b.left -= int64(len(p))
	}
	return b.r.ReadAt(p, off)
}

// openZip reads a zip's central directory, at most maxEntries' worth of it
// (dirBytesPerEntry each, plus the directory's end; maxEntries < 0: no
// bound). Go's own insecure-path check is left to ours, which names the
// entry.
func openZip(r io.ReaderAt, size int64, maxEntries int) (*zip.Reader, error) {
	// The end of the directory is found in the last 64 KiB (and its
	// zip64 form before that); Go reads the tail twice at most.
	budget := &dirBudget{r: r, left: -1}
	if maxEntries >= 0 {
		budget.left = int64(maxEntries)*dirBytesPerEntry + 256<<10
	}
	zr, err := zip.NewReader(budget, size)
	budget.left = -1 // the entries' data is read through it later
	if errors.Is(err, errDirTooLarge) {
		return nil, pando.Errorf(pando.ETooLarge, "archive lists too many entries: its central directory is over %d KiB (the limit is %d entries)", int64(maxEntries)*dirBytesPerEntry>>10, maxEntries)
	}
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		e := pando.Errorf(pando.EBadZip, "invalid zip archive")
		e.Err = err
		return nil, e
	}
	return zr, nil
}

// ExtractZip extracts the zip in r (size bytes) into dest, creating dest if
// needed, within lim. On error dest may hold part of the archive; the
// caller removes it.
func ExtractZip(ctx context.Context, r io.ReaderAt, size int64, dest string, lim Limits) error {
	zr, err := openZip(r, size, lim.withDefaults().MaxFiles)
	if err != nil {
		return err
	}
	x, err := newExtractor(ctx, dest, lim, size)
	if err != nil {
		return err
	}
	if x.lim.MaxFiles > 0 && len(zr.File) > x.lim.MaxFiles {
		return pando.Errorf(pando.ETooLarge, "archive has %d entries, more than the limit of %d", len(zr.File), x.lim.MaxFiles)
	}
	for _, f := range zr.File {
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return x.finish()
}

func (x *extractor) zipEntry(f *zip.File) error {
	mode := f.Mode()
	switch {
	case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
		return x.dir(f.Name)
	case mode&fs.ModeSymlink != 0:
		rc, err := f.Open()
		if err != nil {
			return zipOpenErr(f.Name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
		if err != nil {
			return badEntryErr(f.Name, err)
		}
		if len(b) > maxLinkTarget {
			return badEntry(f.Name, "symlink target longer than %d bytes", maxLinkTarget)
		}
		return x.symlink(f.Name, string(b))
	case mode.IsRegular():
		rc, err := f.Open()
		if err != nil {
			return zipOpenErr(f.Name, err)
		}
		defer rc.Close()
		return x.file(f.Name, mode, f.Modified, corruptReader{f.Name, rc})
	default:
		// Devices, pipes and sockets have no place in an app's bits.
		if _, _, err := x.begin(f.Name); err != nil {
			return err
		}
		return nil
	}
}

// corruptReader turns a read error (bad deflate data, checksum mismatch,
// truncation) into an EBadZip error naming the entry, so it is told apart
// from failures to write.
type corruptReader struct {
	name string
	r    io.Reader
}

func (c corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = badEntryErr(c.name, err)
	}
	return n, err
}

func zipOpenErr(name string, err error) error {
	if errors.Is(err, zip.ErrAlgorithm) {
		return badEntry(name, "unsupported compression method")
	}
	return badEntryErr(name, err)
}

func badEntryErr(name string, err error) error {
	e := pando.Errorf(pando.EBadZip, "archive entry %q is corrupt", name)
	e.Err = err
	return e
}

// ZipEntry is one entry of a zip as ListZip reports it.
type ZipEntry struct {
	Name string // clean relative slash path
	Mode fs.FileMode
	Size int64 // uncompressed size as the header claims it
}

// ListZip lists a zip's entries, validating their names as ExtractZip
// would; at most maxEntries (0: DefaultLimits().MaxFiles).
func ListZip(r io.ReaderAt, size int64, maxEntries int) ([]ZipEntry, error) {
	if maxEntries <= 0 {
		maxEntries = DefaultLimits().MaxFiles
	}
	zr, err := openZip(r, size, maxEntries)
	if err != nil {
		return nil, err
	}
	if len(zr.File) > maxEntries {
		return nil, pando.Errorf(pando.ETooLarge, "archive has %d entries, more than the limit of %d", len(zr.File), maxEntries)
	}
	out := make([]ZipEntry, 0, len(zr.File))
	for _, f := range zr.File {
		rel, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, ZipEntry{Name: rel, Mode: f.Mode(), Size: int64(f.UncompressedSize64)})
	}
	return out, nil
}

// WriteZip writes srcDir as a zip to w, entries named prefix/relpath in
// lexical order, keeping modes, modification times and symlinks (stored as
// unix zip tools do: the target as content).
func WriteZip(ctx context.Context, w io.Writer, srcDir, prefix string) error {
	_, err := WriteZipDigest(ctx, w, srcDir, prefix)
	return err
}

// WriteZipDigest is WriteZip that also returns the hex SHA-256 of the
// tree's entries: each one's kind, name, permission bits, link target and
// content, but not its times. Two uploads of the same files have the same
// digest though their zips differ; the content is hashed as it is zipped,
// so the files are read once.
func WriteZipDigest(ctx context.Context, w io.Writer, srcDir, prefix string) (string, error) {
	zw := zip.NewWriter(w)
	// Packages are written on every push and read once by staging over a
	// local link: the fastest deflate level is worth its larger output.
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	sum := sha256.New()
	err := walkTree(ctx, srcDir, prefix, func(e treeEntry) error {
		h, err := zip.FileInfoHeader(e.info)
		if err != nil {
			return err
		}
		h.Name = e.name
		h.Modified = e.info.ModTime()
		switch {
		case e.info.IsDir():
			digestHead(sum, 'd', e.name, e.info.Mode().Perm(), 0)
			h.Name += "/"
			h.Method = zip.Store
			_, err = zw.CreateHeader(h)
			return err
		case e.info.Mode()&fs.ModeSymlink != 0:
			digestHead(sum, 'l', e.name, 0, int64(len(e.link)))
			sum.Write([]byte(e.link))
			h.Method = zip.Store
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			_, err = io.WriteString(fw, e.link)
			return err
		default:
			digestHead(sum, 'f', e.name, e.info.Mode().Perm(), e.info.Size())
			h.Method = zip.Deflate
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			return copyFile(ctx, io.MultiWriter(fw, sum), e.path, e.info.Size())
		}
	})
	if err != nil {
		return "", fmt.Errorf("zip %s: %w", srcDir, err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("zip %s: %w", srcDir, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// digestHead adds an entry's header to a tree digest: its kind, its name
// (length first, so no two trees hash the same bytes), its permission
// bits and the length of the content that follows.
func digestHead(h hash.Hash, kind byte, name string, perm fs.FileMode, size int64) {
	var b [1 + 3*binary.MaxVarintLen64]byte
	b[0] = kind
	n := 1 + binary.PutUvarint(b[1:], uint64(len(name)))
	h.Write(b[:n])
	h.Write([]byte(name))
	n = binary.PutUvarint(b[:], uint64(perm))
	n += binary.PutUvarint(b[n:], uint64(size))
	h.Write(b[:n])
}

// copyFile copies exactly size bytes of the file at p to w; a file that
// changed size while being archived is an error rather than a corrupt
// archive.
func copyFile(ctx context.Context, w io.Writer, p string, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, size)
	if err != nil {
		return fmt.Errorf("%s: copied %d of %d bytes: %w", p, n, size, err)
	}
	return nil
}
