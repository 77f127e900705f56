package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/archive"
)

// maxResultBytes bounds the builder's result.json.
const maxResultBytes = 1 << 20

// finishStaging waits for the staging container, started by stage or
// adopted after a restart, then uploads the droplet and the build cache
// from the staging's files. The container is gone when it returns.
func (r *Rep) finishStaging(ctx context.Context, tk *task, dir string, run *resumed) (pando.StagingResult, error) {
	req := tk.t.Staging
	ctr, vol, stdout, stderr, restoredCache := run.ctr, run.vol, run.stdout, run.stderr, run.restoredCache
	sub := func(n string) string { return filepath.Join(dir, n) }
	quota := int64(tk.diskMB) << 20
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
		defer cancel()
		if err := ctr.Destroy(dctx); err != nil {
			r.log.Error("destroy staging container", "task_guid", tk.t.GUID, "error", err)
		}
	}()
	stopEgress := func() int64 { return 0 }
	if r.cfg.StagingEgress {
		stopEgress = r.serveStagingEgress(ctx, req, ctr)
	}
	fill := watchFill(vol)
	st, err := ctr.Wait(ctx)
	r.parkIfDetached() // before the deferred Destroy
	full := fill.End(vol)
	if n := stopEgress(); n > 0 {
		r.stagingLog(req, "OUT", "Staging egress: %s relayed", humanSize(n))
	}
	stdout.Flush()
	stderr.Flush()
	if err != nil {
		return pando.StagingResult{}, err
	}
	r.stagingLog(req, "OUT", "Exit status %d", st.Code)
	if st.Code != 0 || st.OOMKilled {
		if full && !st.OOMKilled {
			return pando.StagingResult{}, quotaError{tk.diskMB}
		}
		return pando.StagingResult{}, &exitError{st}
	}

	res, err := readResult(sub("output/result.json"))
	if err != nil {
		return pando.StagingResult{}, err
	}
	r.stagingLog(req, "OUT", "Uploading droplet, build artifacts cache...")
	r.stagingLog(req, "OUT", "Uploading droplet...")
	sum1, sum256, size, err := r.putFile(ctx, pando.DropletBlobKey(req.DropletGUID), sub("output/droplet.tgz"), quota)
	if err != nil {
		return pando.StagingResult{}, fmt.Errorf("upload droplet: %w", err)
	}
	res.DropletSHA1, res.DropletSHA256, res.DropletSize = sum1, sum256, size
	r.stagingLog(req, "OUT", "Uploaded droplet (%s)", humanSize(size))
	if req.BuildCacheKey != "" && restoredCache != "" && cacheUnchanged(sub("cache"), restoredCache) {
		r.stagingLog(req, "OUT", "Build artifacts cache unchanged; keeping the stored one")
	} else if req.BuildCacheKey != "" {
		r.stagingLog(req, "OUT", "Uploading build artifacts cache...")
		if n, err := r.saveCache(ctx, req.BuildCacheKey, sub("cache"), quota); err != nil {
			// The next staging is slower; this one still succeeded.
			r.log.Warn("save build cache", "app_guid", req.AppGUID, "error", err)
			r.stagingLog(req, "ERR", "Failed to upload build artifacts cache: %v", err)
		} else {
			r.stagingLog(req, "OUT", "Uploaded build artifacts cache (%s)", humanSize(n))
		}
	}
	r.stagingLog(req, "OUT", "Uploading complete")
	return res, nil
}

// openOutput opens a file the staging container wrote. The container's
// user owns the output dir, so the file may be a symlink to a host file or
// a FIFO: refuse anything but a regular file, without following links or
// blocking on a pipe.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link, not a file", filepath.Base(path))
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	return f, nil
}

// readResult reads the builder's result.json.
func readResult(path string) (pando.StagingResult, error) {
	var res pando.StagingResult
	f, err := openOutput(path)
	if err != nil {
		return res, fmt.Errorf("read staging result: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResultBytes+1))
	if err != nil {
		return res, fmt.Errorf("read staging result: %w", err)
	}
	if len(data) > maxResultBytes {
		return res, fmt.Errorf("staging result is larger than %d bytes", maxResultBytes)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, fmt.Errorf("parse staging result: %w", err)
	}
	// Only the cell fills these.
	res.DropletSHA1, res.DropletSHA256, res.DropletSize = "", "", 0
	return res, nil
}

// putFile uploads a file the staging container wrote, at most max bytes
// (a sparse file can claim any size), returning its checksums and size as
// read.
//
// An upload the blobstore cannot take for now (pando.EUnavailable: a
// joined cell's server restarting) is tried again until ctx ends.
func (r *Rep) putFile(ctx context.Context, key, path string, max int64) (string, string, int64, error) {
	for warned := false; ; {
		sha1, sha256, size, err := r.putFileOnce(ctx, key, path, max)
		if pando.ErrorKindOf(err) != pando.EUnavailable || ctx.Err() != nil {
			return sha1, sha256, size, err
		}
		if !warned {
			r.log.Warn("upload failed, retrying until the blobstore is back", "key", key, "error", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return "", "", 0, err
		case <-time.After(time.Second):
		}
	}
}

func (r *Rep) putFileOnce(ctx context.Context, key, path string, max int64) (string, string, int64, error) {
	f, err := openOutput(path)
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", "", 0, err
	} else if fi.Size() > max {
		return "", "", 0, fmt.Errorf("%s is %s, larger than the staging disk quota of %d MB", filepath.Base(path), humanSize(fi.Size()), max>>20)
	}
	// The blobstore computes the checksums as it writes (pando.BlobInfo).
	info, err := r.cfg.Blobs.Put(ctx, key, ctxReader{ctx, f})
	if err != nil {
		return "", "", 0, err
	}
	return info.SHA1, info.SHA256, info.Size, nil
}

// countReader counts what passes and fails past max bytes.
type countReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, fmt.Errorf("larger than the staging disk quota of %d MB", c.max>>20)
	}
	return n, err
}

// saveCache uploads dir as the app's build cache tgz, at most max bytes
// (sparse files in dir could make any size).
func (r *Rep) saveCache(ctx context.Context, key, dir string, max int64) (int64, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(archive.WriteTgz(ctx, pw, dir, "."))
	}()
	cr := &countReader{r: pr, max: max}
	_, err := r.cfg.Blobs.Put(ctx, key, cr)
	pr.CloseWithError(errors.New("upload ended")) // unblocks the writer if Put stopped early
	<-done
	return cr.n, err
}
