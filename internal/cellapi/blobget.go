package cellapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
)

// Blob downloads resume: a cell whose download breaks asks for the rest
// with "Range: bytes=N-"; the server answers 206 with the bytes from N
// and, in the trailer, the SHA-256 of the whole blob (it hashes the first
// N bytes without sending them), so the cell checks the whole. While the
// server is unreachable or answers 503 (it died and is restarting, or has
// not yet heard from the cell again), a download is asked for again with
// backoff for up to DefaultBlobRetry, from the start or from where it
// broke: a staging downloading its package lives through a server restart.
const (
	offsetHeader = "X-Pando-Offset"
	// maxResumes bounds how often one download is resumed.
	maxResumes = 5
	// DefaultBlobRetry bounds the wait for an unreachable server, per
	// request of a download (its start, each resume).
	DefaultBlobRetry = 2 * time.Minute
)

// blobRetry is how a ServerClient waits for the server during a blob
// download.
type blobRetry struct {
	limit    time.Duration // give up after this long unreachable
	min, max time.Duration // backoff between attempts
}

var defaultBlobRetry = blobRetry{limit: DefaultBlobRetry, min: 100 * time.Millisecond, max: 2 * time.Second}

// getRetrying is getFrom, asked again while the server is unavailable,
// within c.retry's bound.
func (c *ServerClient) getRetrying(ctx context.Context, key string, offset int64) (*http.Response, error) {
	start := time.Now()
	backoff := c.retry.min
	logged := false
	for {
		resp, err := c.getFrom(ctx, key, offset)
		if err == nil || pando.ErrorKindOf(err) != pando.EUnavailable || ctx.Err() != nil {
			return resp, err
		}
		waited := time.Since(start)
		if waited >= c.retry.limit {
			return nil, fmt.Errorf("%w (the server was unavailable for %s)", err, waited.Round(time.Second))
		}
		if !logged {
			c.log.Warn("server unavailable during a blob download: retrying", "key", key, "offset", offset, "for", c.retry.limit, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(min(backoff, c.retry.limit-waited)):
		}
		backoff = min(2*backoff, c.retry.max)
	}
}

// getBlob streams a blob, or its rest from a Range offset, with the
// whole blob's SHA-256 in a trailer.
func (s *server) getBlob(w http.ResponseWriter, r *http.Request, id string) error {
	key, err := s.blobKey(r, id, false)
	if err != nil {
		return err
	}
	offset, err := rangeOffset(r.Header.Get("Range"))
	if err != nil {
		return err
	}
	rc, err := s.cfg.Blobs.Get(r.Context(), key)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if offset > 0 {
		if n, err := io.CopyN(h, rc, offset); err != nil {
			if n < offset && errors.Is(err, io.EOF) {
				return pando.Errorf(pando.EInvalid, "blob %s is shorter than offset %d", key, offset)
			}
			return fmt.Errorf("blob %s: %w", key, err)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", checksumTrailer)
	w.Header().Set(offsetHeader, strconv.FormatInt(offset, 10))
	if offset > 0 {
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if _, err := io.Copy(io.MultiWriter(w, h), rc); err != nil {
		s.log.Warn("send blob", "cell_id", id, "key", key, "err", err)
		// Break the connection: the cell sees the transfer fail (and
		// resumes), not a short blob.
		panic(http.ErrAbortHandler)
	}
	w.Header().Set(checksumTrailer, hex.EncodeToString(h.Sum(nil)))
	return nil
}

// rangeOffset reads "bytes=N-" (the only range asked for); none is 0.
func rangeOffset(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, ok := strings.CutPrefix(v, "bytes=")
	n, ok2 := strings.CutSuffix(n, "-")
	off, err := strconv.ParseInt(n, 10, 64)
	if !ok || !ok2 || err != nil || off < 0 {
		return 0, pando.Errorf(pando.EBadRequest, "range %q: only bytes=N- is served", v)
	}
	return off, nil
}

// Get streams a blob. A transfer that breaks is resumed where it broke
// (up to maxResumes times), and a server that is unavailable is waited
// for (DefaultBlobRetry); the reader fails at its end unless the whole
// has the SHA-256 the server sent after it.
func (c *ServerClient) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := c.getRetrying(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	return &checkedBody{c: c, ctx: ctx, resp: resp, rc: resp.Body, h: sha256.New(), trailer: resp.Trailer, key: key}, nil
}

func (c *ServerClient) getFrom(ctx context.Context, key string, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.blobURL(key), nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, pando.Errorf(pando.EUnavailable, "get blob %s: %v", key, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, errorFrom("get blob "+key, resp)
	}
	if got := resp.Header.Get(offsetHeader); got != strconv.FormatInt(offset, 10) {
		resp.Body.Close()
		return nil, fmt.Errorf("get blob %s: asked from byte %d, the server sent from %q", key, offset, got)
	}
	return resp, nil
}

// checkedBody hashes what it passes, resumes a broken transfer, and checks
// the whole against the trailer at the end.
type checkedBody struct {
	c       *ServerClient
	ctx     context.Context
	resp    *http.Response
	rc      io.ReadCloser
	h       hash.Hash
	trailer http.Header
	key     string
	n       int64
	resumes int
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		want, got := b.trailer.Get(checksumTrailer), hex.EncodeToString(b.h.Sum(nil))
		if want != got {
			return n, fmt.Errorf("get blob %s: transfer incomplete or corrupted (sha256 %s, server sent %q)", b.key, got, want)
		}
		return n, io.EOF
	case b.c == nil || b.resumes >= maxResumes || b.ctx.Err() != nil:
		return n, err
	}
	// Broken mid-way: ask for the rest, waiting for the server if it is
	// away.
	b.rc.Close()
	b.resumes++
	resp, rerr := b.c.getRetrying(b.ctx, b.key, b.n)
	if rerr != nil {
		return n, fmt.Errorf("get blob %s: broke at byte %d (%v), resuming failed: %w", b.key, b.n, err, rerr)
	}
	b.c.log.Info("blob download resumed", "key", b.key, "offset", b.n, "after", err)
	b.resp, b.rc, b.trailer = resp, resp.Body, resp.Trailer
	return n, nil
}

func (b *checkedBody) Close() error { return b.rc.Close() }
