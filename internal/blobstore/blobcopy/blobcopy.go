// Package blobcopy copies the fs blobstore's directory into another
// blobstore (an S3 bucket): every blob under its key, each upload read
// back and its SHA-256 checked, and blobs the target already holds with
// the same size and digest skipped, so a run that stopped resumes. The
// target's recorded digests (one HEAD) decide when it has them; a blob
// without them is downloaded to check.
package blobcopy

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
	"sync"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore"
)

// Target is the blobstore the blobs go to.
type Target interface {
	Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Exists(ctx context.Context, key string) (bool, error)
}

// statter is a Target that tells a blob's size and, when recorded, its
// digests without a download (the S3 store); pando.BlobInfo's SHA256 is
// empty when it does not know it.
type statter interface {
	Stat(ctx context.Context, key string) (pando.BlobInfo, error)
}

// expectingPutter is a Target that takes the digests up front, records
// them with the blob whatever its size, and refuses a blob that streams
// otherwise (the S3 store).
type expectingPutter interface {
	PutExpecting(ctx context.Context, key string, r io.Reader, want pando.BlobInfo) (pando.BlobInfo, error)
}

// Options are Copy's options.
type Options struct {
	// DryRun lists what would be copied and what the target already
	// holds, uploading nothing.
	DryRun bool
	// Workers is how many blobs are copied at once (default 4).
	Workers int
	// Progress is told of each step; nil: silent. Copy calls it from one
	// goroutine at a time.
	Progress func(msg string)
	// ProgressEvery is how often a running count is told (default 5 s).
	ProgressEvery time.Duration
}

// Result counts what Copy did.
type Result struct {
	Blobs, Bytes              int64    // in the source
	Copied, CopiedBytes       int64    // uploaded
	Skipped, SkippedBytes     int64    // the target held them already
	WouldCopy, WouldCopyBytes int64    // dry run: to upload
	WouldSkip, WouldSkipBytes int64    // dry run: the target holds them already
	Ignored                   []string // files under dir that are not blobs
}

type blob struct {
	key  string
	path string
	size int64
}

// Copy copies every blob in the fs blobstore directory dir into dst.
func Copy(ctx context.Context, dir string, dst Target, opts Options) (Result, error) {
	say := opts.Progress
	if say == nil {
		say = func(string) {}
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	var res Result
	blobs, ignored, err := list(dir)
	if err != nil {
		return res, err
	}
	res.Ignored = ignored
	for _, b := range blobs {
		res.Blobs++
		res.Bytes += b.size
	}
	for _, f := range ignored {
		say(fmt.Sprintf("not a blob, left out: %s", f))
	}
	say(fmt.Sprintf("blobstore %s: %d blobs, %s", dir, res.Blobs, human(res.Bytes)))

	var mu sync.Mutex // guards res and say
	lastSaid := time.Now()
	done := int64(0)
	report := func(force bool) {
		if force || time.Since(lastSaid) >= opts.ProgressEvery {
			lastSaid = time.Now()
			say(fmt.Sprintf("blobs: %d of %d done (%d copied, %s; %d already there)", done, res.Blobs, res.Copied, human(res.CopiedBytes), res.Skipped))
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan blob)
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				present, err := copyOne(ctx, dst, b, opts.DryRun)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				done++
				switch {
				case opts.DryRun && present:
					res.WouldSkip++
					res.WouldSkipBytes += b.size
				case opts.DryRun:
					res.WouldCopy++
					res.WouldCopyBytes += b.size
					say(fmt.Sprintf("would copy %s (%s)", b.key, human(b.size)))
				case present:
					res.Skipped++
					res.SkippedBytes += b.size
				default:
					res.Copied++
					res.CopiedBytes += b.size
				}
				report(false)
				mu.Unlock()
			}
		}()
	}
feed:
	for _, b := range blobs {
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	if opts.DryRun {
		say(fmt.Sprintf("would copy %d blobs (%s); %d (%s) are there already", res.WouldCopy, human(res.WouldCopyBytes), res.WouldSkip, human(res.WouldSkipBytes)))
		return res, nil
	}
	report(true)
	return res, nil
}

// copyOne uploads b unless dst holds it already with the same size and
// SHA-256, and checks the upload by reading it back. present reports that
// dst held it.
func copyOne(ctx context.Context, dst Target, b blob, dryRun bool) (present bool, err error) {
	want, err := digestFile(b.path)
	if err != nil {
		return false, fmt.Errorf("read blob %s: %w", b.key, err)
	}
	if want.Size != b.size {
		return false, fmt.Errorf("blob %s changed while copying (is a server running on this data dir?)", b.key)
	}
	if present, err = holds(ctx, dst, b.key, want); err != nil || present || dryRun {
		return present, err
	}
	f, err := os.Open(b.path)
	if err != nil {
		return false, fmt.Errorf("read blob %s: %w", b.key, err)
	}
	var info pando.BlobInfo
	if ep, ok := dst.(expectingPutter); ok {
		info, err = ep.PutExpecting(ctx, b.key, f, want)
	} else {
		info, err = dst.Put(ctx, b.key, f)
	}
	f.Close()
	if err != nil {
		return false, err
	}
	if info.SHA256 != want.SHA256 || info.Size != want.Size {
		return false, fmt.Errorf("blob %s changed while copying (is a server running on this data dir?)", b.key)
	}
	gotSum, gotSize, err := digestBlob(ctx, dst, b.key)
	if err != nil {
		return false, fmt.Errorf("read back blob %s: %w", b.key, err)
	}
	if gotSize != want.Size || gotSum != want.SHA256 {
		return false, fmt.Errorf("blob %s reads back as %d bytes with SHA-256 %s, not the %d bytes with %s uploaded", b.key, gotSize, gotSum, want.Size, want.SHA256)
	}
	return false, nil
}

// holds reports whether dst holds key with want's size and SHA-256: from
// the digest recorded with the blob when dst has one, else by reading it.
func holds(ctx context.Context, dst Target, key string, want pando.BlobInfo) (bool, error) {
	if st, ok := dst.(statter); ok {
		got, err := st.Stat(ctx, key)
		if pando.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if got.Size != want.Size {
			return false, nil
		}
		if got.SHA256 != "" {
			return got.SHA256 == want.SHA256, nil
		}
	} else if ok, err := dst.Exists(ctx, key); err != nil || !ok {
		return false, err
	}
	gotSum, gotSize, err := digestBlob(ctx, dst, key)
	if err != nil {
		return false, err
	}
	return gotSize == want.Size && gotSum == want.SHA256, nil
}

// digestFile returns the file's size, SHA-1 and SHA-256.
func digestFile(path string) (pando.BlobInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	defer f.Close()
	h1, h256 := sha1.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(h1, h256), f)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	return pando.BlobInfo{Size: n, SHA1: hex.EncodeToString(h1.Sum(nil)), SHA256: hex.EncodeToString(h256.Sum(nil))}, nil
}

func digestBlob(ctx context.Context, dst Target, key string) (string, int64, error) {
	rc, err := dst.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, fmt.Errorf("get blob %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// list walks dir for blobs: regular files whose path is a blob key. Files
// whose name starts with ".put-" are unfinished uploads and are passed
// over; anything else that is not a blob is returned as ignored.
func list(dir string) (blobs []blob, ignored []string, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil, nil // a data dir that never stored a blob
	}
	if err != nil {
		return nil, nil, fmt.Errorf("blobstore %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("blobstore %s: not a directory", dir)
	}
	err = filepath.WalkDir(dir, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				ignored = append(ignored, key+"/")
				return filepath.SkipDir
			}
			if !strings.HasPrefix(d.Name(), ".put-") {
				ignored = append(ignored, key)
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() || blobstore.ValidateKey(key) != nil {
			ignored = append(ignored, key)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		blobs = append(blobs, blob{key: key, path: path, size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("blobstore %s: %w", dir, err)
	}
	return blobs, ignored, nil
}

// human writes n bytes for people.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
