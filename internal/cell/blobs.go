package cell

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/archive"
)

// Bounds on what the cell downloads.
const (
	maxBlobBytes      = 8 << 30
	maxCachedDroplets = 32
)

// BlobStore is what the rep needs of the blobstore: read packages,
// buildpacks and droplets, write droplets and build caches. In `pando
// server` it is the blobstore itself (with Config.BlobPath reading its
// files in place); on a joined cell it is the server's cell API
// (cellapi.ServerClient), streamed and checksummed.
type BlobStore interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error) // ENotFound if missing
	Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error)
	Exists(ctx context.Context, key string) (bool, error)
}

// localBlob is a blob's content in a local file: the blobstore's own file
// (BlobPath) or a download the caller removes with cleanup.
type localBlob struct {
	path    string
	size    int64
	sha256  string // set when the download computed it
	cleanup func()
}

// fetch makes key's content available as a local file.
func (r *Rep) fetch(ctx context.Context, key string) (localBlob, error) {
	return r.fetchMax(ctx, key, maxBlobBytes)
}

// fetchMax is fetch of a blob of at most maxBytes.
func (r *Rep) fetchMax(ctx context.Context, key string, maxBytes int64) (localBlob, error) {
	if r.cfg.BlobPath != nil {
		if p, ok := r.cfg.BlobPath(key); ok {
			fi, err := os.Stat(p)
			if err == nil && fi.Mode().IsRegular() {
				return localBlob{path: p, size: fi.Size(), cleanup: func() {}}, nil
			}
		}
	}
	rc, err := r.cfg.Blobs.Get(ctx, key)
	if err != nil {
		return localBlob{}, fmt.Errorf("download %s: %w", key, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Join(r.cfg.WorkDir, dirDownloads), "blob-*")
	if err != nil {
		return localBlob{}, fmt.Errorf("download %s: %w", key, err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, rc}, maxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxBytes {
		err = pando.Errorf(pando.ETooLarge, "blob %s is larger than %d bytes", key, maxBytes)
	}
	if err != nil {
		cleanup()
		return localBlob{}, fmt.Errorf("download %s: %w", key, err)
	}
	return localBlob{path: f.Name(), size: n, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: cleanup}, nil
}

// ctxReader stops a long copy when ctx ends.
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

func fileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// openDroplet opens a local tgz of the droplet key (checked against sum;
// see droplet). Open, it stays readable while the droplet cache is
// pruned: a start may wait for its slot between this and extractDroplet.
func (r *Rep) openDroplet(ctx context.Context, key, sum string) (*os.File, error) {
	p, err := r.droplet(ctx, key, sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open droplet: %w", err)
	}
	return f, nil
}

// extractDroplet unpacks the droplet tgz f (from openDroplet) into dir, at
// most diskMB of files.
func extractDroplet(ctx context.Context, f io.Reader, dir string, diskMB int) error {
	lim := archive.DefaultLimits()
	lim.MaxTotalBytes = int64(diskMB) << 20
	if err := archive.ExtractTgz(ctx, f, dir, lim); err != nil {
		return fmt.Errorf("extract droplet: %w", err)
	}
	return nil
}

// droplet returns a local tgz of the droplet: the blobstore's own file when
// local, else a copy cached in WorkDir by its SHA256 (downloaded once however
// many instances start at the same time, and checked against the SHA256).
func (r *Rep) droplet(ctx context.Context, key, sum string) (string, error) {
	if r.cfg.BlobPath != nil {
		if p, ok := r.cfg.BlobPath(key); ok {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	name := sum
	if !isSHA256(sum) {
		// Without a checksum the key names the content (droplets are
		// immutable once staged).
		k := sha256.Sum256([]byte(key))
		name, sum = "key-"+hex.EncodeToString(k[:]), ""
	}
	cached := filepath.Join(r.cfg.WorkDir, dirDroplets, name+".tgz")
	if _, err := os.Stat(cached); err == nil {
		now := time.Now()
		_ = os.Chtimes(cached, now, now) // recently used: kept by prune
		return cached, nil
	}
	_, err := r.flight(ctx, "droplet/"+name, func() (any, error) {
		if _, err := os.Stat(cached); err == nil {
			return nil, nil
		}
		// Not tied to one caller's ctx (others may wait on this
		// download), but it ends when the cell shuts down.
		b, err := r.fetch(r.ctx, key)
		if err != nil {
			return nil, err
		}
		defer b.cleanup()
		if sum != "" && b.sha256 != sum {
			return nil, pando.Errorf(pando.EInvalid, "droplet %s: checksum mismatch (want sha256 %s, got %s)", key, sum, b.sha256)
		}
		if err := os.Rename(b.path, cached); err != nil {
			return nil, fmt.Errorf("cache droplet %s: %w", key, err)
		}
		r.pruneDroplets()
		return nil, nil
	})
	if err != nil {
		return "", err
	}
	return cached, nil
}

// pruneDroplets keeps the most recently used droplets. Removing a file
// another instance is extracting is fine: its open file stays readable.
func (r *Rep) pruneDroplets() {
	dir := filepath.Join(r.cfg.WorkDir, dirDroplets)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= maxCachedDroplets {
		return
	}
	type f struct {
		name string
		mod  time.Time
	}
	var fs []f
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			fs = append(fs, f{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod.After(fs[j].mod) })
	for _, x := range fs[min(maxCachedDroplets, len(fs)):] {
		_ = os.Remove(filepath.Join(dir, x.name))
	}
}

// flight runs fn once for all concurrent callers with the same key; a
// caller whose ctx ends stops waiting (fn goes on for the others).
func (r *Rep) flight(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	select {
	case res := <-r.fetches.DoChan(key, fn):
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// buildpack returns the directory of the extracted buildpack (the one
// holding bin/), extracting its zip once per SHA256.
func (r *Rep) buildpack(ctx context.Context, ref pando.BuildpackRef) (string, error) {
	base := filepath.Join(r.cfg.WorkDir, dirBuildpacks)
	if isSHA256(ref.SHA256) {
		if d, err := buildpackRoot(filepath.Join(base, ref.SHA256)); err == nil {
			return d, nil
		}
	}
	v, err := r.flight(ctx, "buildpack/"+ref.Key, func() (any, error) {
		// Not tied to one caller's ctx (others may wait on this flight),
		// but it ends when the cell shuts down.
		ctx := r.ctx
		b, err := r.fetch(ctx, ref.Key)
		if err != nil {
			return "", err
		}
		defer b.cleanup()
		sum := b.sha256
		if sum == "" {
			if sum, err = fileSHA256(ctx, b.path); err != nil {
				return "", fmt.Errorf("buildpack %s: %w", ref.Name, err)
			}
		}
		if isSHA256(ref.SHA256) && sum != ref.SHA256 {
			return "", pando.Errorf(pando.EInvalid, "buildpack %s: checksum mismatch (want sha256 %s, got %s)", ref.Name, ref.SHA256, sum)
		}
		dest := filepath.Join(base, sum)
		if _, err := os.Stat(dest); err == nil {
			return dest, nil
		}
		tmp := filepath.Join(base, ".tmp-"+randomHex())
		f, err := os.Open(b.path)
		if err != nil {
			return "", fmt.Errorf("buildpack %s: %w", ref.Name, err)
		}
		defer f.Close()
		if err := archive.ExtractZip(ctx, f, b.size, tmp, archive.DefaultLimits()); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("buildpack %s: %w", ref.Name, err)
		}
		// Shared read-only by containers whose users are all others to
		// its files: a buildpack zipped with 0600 files must still run.
		if err := shareTree(tmp); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("buildpack %s: %w", ref.Name, err)
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.RemoveAll(tmp)
			if _, serr := os.Stat(dest); serr != nil {
				return "", fmt.Errorf("buildpack %s: %w", ref.Name, err)
			}
		}
		return dest, nil
	})
	if err != nil {
		return "", err
	}
	return buildpackRoot(v.(string))
}

// buildpackRoot returns dir, or its only sub-directory when the zip
// wrapped the buildpack in one (as GitHub archives do).
func buildpackRoot(dir string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin")); err == nil {
		return dir, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(ents) == 1 && ents[0].IsDir() {
		sub := filepath.Join(dir, ents[0].Name())
		if _, err := os.Stat(filepath.Join(sub, "bin")); err == nil {
			return sub, nil
		}
	}
	return dir, nil
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// shareTree gives everyone the access the owner has to dir and below,
// minus write: read, and execute (search) where the owner may.
func shareTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		owner := (perm >> 6) & 0o5 // r-x of the owner, without w
		return os.Chmod(p, perm|owner<<3|owner)
	})
}
