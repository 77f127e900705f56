// Package fs is the filesystem blobstore: pando.Blobstore on a local
// directory (by default <data-dir>/blobs), used by `pando server`. A key
// "droplets/<guid>" is the file <dir>/droplets/<guid>; writes land whole or
// not at all (temp file, fsync, rename), so readers never see a partial blob.
package fs

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/blobstore"
)

const (
	// MaxKeyLen bounds key length (and so path length under dir).
	MaxKeyLen = blobstore.MaxKeyLen
	// tempPrefix names in-flight Puts. Key segments cannot start with '.',
	// so a temp file never collides with a blob.
	tempPrefix = ".put-"
	// staleTempAge is how old an in-flight file must be before New removes
	// it as debris of a crash.
	staleTempAge = time.Hour

	dirMode = 0o750
	// Blobs are readable by others so a cell can bind-mount one into a
	// container running as another user; dirMode keeps other host users out.
	fileMode = 0o644
)

// Store is a pando.Blobstore on a directory.
type Store struct {
	dir string
	// tempDir holds in-flight Puts when set (and on the same filesystem
	// as dir); else each Put's temp file sits next to its blob.
	tempDir string
}

// Option configures a Store.
type Option func(*Store)

// WithTempDir makes Puts write their in-flight files in dir, one place the
// server sweeps at start (a crash mid-upload leaves nothing elsewhere).
// When dir is on another filesystem than the blobs (a rename could not
// move the file into place), temp files stay next to their blobs.
func WithTempDir(dir string) Option { return func(s *Store) { s.tempDir = dir } }

var _ pando.Blobstore = (*Store)(nil)

// New returns a Store rooted at dir, creating it if needed, and removes
// temp files that crashed Puts left next to blobs.
func New(dir string, opts ...Option) (*Store, error) {
	if dir == "" {
		return nil, errors.New("blobstore: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("blobstore %s: %w", abs, err)
	}
	s := &Store{dir: abs}
	for _, o := range opts {
		o(s)
	}
	if s.tempDir != "" {
		if s.tempDir, err = filepath.Abs(s.tempDir); err != nil {
			return nil, fmt.Errorf("blobstore temp dir: %w", err)
		}
		if err := os.MkdirAll(s.tempDir, dirMode); err != nil {
			return nil, fmt.Errorf("blobstore temp dir: %w", err)
		}
		if !sameFilesystem(s.dir, s.tempDir) {
			s.tempDir = ""
		}
	}
	if err := s.sweepTemps(time.Now().Add(-staleTempAge)); err != nil {
		return nil, fmt.Errorf("blobstore %s: %w", abs, err)
	}
	return s, nil
}

// Dir returns the root directory.
func (s *Store) Dir() string { return s.dir }

// ValidateKey reports whether key is a well-formed blob key
// (blobstore.ValidateKey): the rules every blobstore shares.
func ValidateKey(key string) error { return blobstore.ValidateKey(key) }

// Path returns the file that holds key. The file may not exist. The
// in-process cell reads (or bind-mounts) it directly to avoid a copy; it
// must not write to it: Put replaces the file, never modifies it in place.
func (s *Store) Path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put stores r's bytes under key, replacing any blob there atomically, and
// returns the size and digests it computed while writing. Concurrent Puts
// of one key are safe: the last rename wins and each reader sees one whole
// blob. Put does not bound the size: callers limit r.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	path, err := s.Path(key)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	dir := filepath.Dir(path)
	if err := s.mkdirs(dir); err != nil {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	// Durable: a blob the API has acknowledged survives a crash of the host.
	opts := []atomicfile.Option{atomicfile.Durable(), atomicfile.TempPrefix(tempPrefix)}
	if s.tempDir != "" {
		opts = append(opts, atomicfile.TempDir(s.tempDir))
	}
	h1, h256 := sha1.New(), sha256.New()
	var n int64
	err = atomicfile.Write(path, fileMode, func(w io.Writer) error {
		var err error
		if n, err = io.Copy(io.MultiWriter(w, h1, h256), ctxReader{ctx, r}); err != nil {
			return err
		}
		return ctx.Err()
	}, opts...)
	if err != nil {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			return pando.BlobInfo{}, pando.Errorf(pando.EInvalid, "put blob %s: key names a directory of blobs", key)
		}
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	return pando.BlobInfo{
		Size:   n,
		SHA1:   hex.EncodeToString(h1.Sum(nil)),
		SHA256: hex.EncodeToString(h256.Sum(nil)),
	}, nil
}

// Get opens the blob under key; a missing blob is ENotFound.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		// A key that names a directory ("droplets") is not a blob.
		f.Close()
		return nil, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	return f, nil
}

// Exists reports whether a blob is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	path, err := s.Path(key)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return st.Mode().IsRegular(), nil
}

// Stat returns the blob's size. The filesystem records no digests: SHA1
// and SHA256 are empty (reading the file is how to learn them), as the S3
// store's Stat says of blobs stored without them. A missing blob is
// ENotFound.
func (s *Store) Stat(ctx context.Context, key string) (pando.BlobInfo, error) {
	path, err := s.Path(key)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return pando.BlobInfo{}, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, iofs.ErrNotExist) || err == nil && !st.Mode().IsRegular() {
		return pando.BlobInfo{}, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	if err != nil {
		return pando.BlobInfo{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return pando.BlobInfo{Size: st.Size()}, nil
}

// Delete removes the blob under key; a missing blob is not an error.
// Readers that already opened it keep reading the old bytes.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.Path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Lstat(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	if st.IsDir() {
		return pando.Errorf(pando.EInvalid, "delete blob %s: key names a directory of blobs", key)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// mkdirs creates dir (inside s.dir) and any missing parents. A blob file
// where a directory is needed ("a" when putting "a/b") is EInvalid.
func (s *Store) mkdirs(dir string) error {
	err := os.MkdirAll(dir, dirMode)
	if err == nil {
		return nil
	}
	if isFileInTheWay(dir) {
		return pando.Errorf(pando.EInvalid, "a blob exists where a directory of blobs is needed (%s)", strings.TrimPrefix(dir, s.dir+string(filepath.Separator)))
	}
	return err
}

// isFileInTheWay reports whether some ancestor of dir (or dir itself) is a
// regular file.
func isFileInTheWay(dir string) bool {
	for p := dir; ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil {
			return !st.IsDir()
		}
		if parent := filepath.Dir(p); parent == p {
			return false
		}
	}
}

// sweepTemps removes in-flight files last modified before cutoff.
func (s *Store) sweepTemps(cutoff time.Time) error {
	return filepath.WalkDir(s.dir, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// sameFilesystem reports whether a and b are on one filesystem, so a file
// renames from one to the other.
func sameFilesystem(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	da, ok1 := sa.Sys().(*syscall.Stat_t)
	db, ok2 := sb.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && da.Dev == db.Dev
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
