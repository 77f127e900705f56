package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pandoplatform/pando"
)

// abortTimeout bounds the abort of a failed multipart upload, which runs
// even when the Put's context is cancelled.
const abortTimeout = time.Minute

// Put stores r's bytes under key, replacing any blob there whole, and
// returns the size and digests it computed while streaming, recorded as
// object metadata (Stat reads them). A blob up to the part size goes up in
// one PUT; a larger one in a multipart upload of part-size parts, one at a
// time (a Put holds one part in memory), to a temporary object that a
// server-side copy then puts in place with its digests. A failing reader
// or a cancelled ctx leaves no object (key keeps what it had), aborts the
// multipart upload and removes the temporary object. Put does not bound
// the size: callers limit r.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	return s.put(ctx, key, r, nil)
}

// PutExpecting is Put of a blob whose size and digests the caller knows
// beforehand (a copy): they are recorded as object metadata whatever the
// blob's size, and a blob that streams otherwise is not stored (the error
// says it changed). want needs Size, SHA1 and SHA256.
func (s *Store) PutExpecting(ctx context.Context, key string, r io.Reader, want pando.BlobInfo) (pando.BlobInfo, error) {
	if !isHex(want.SHA256, 64) || !isHex(want.SHA1, 40) || want.Size < 0 {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: expected size and digests are incomplete", key)
	}
	return s.put(ctx, key, r, &want)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, want *pando.BlobInfo) (pando.BlobInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	src := newDigestReader(r)
	h1, h256 := src.h1, src.h256
	part := &partBuffer{max: int(s.partSize)}
	full, err := part.fill(ctx, src)
	if err != nil {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	size := int64(len(part.buf))
	if !full {
		// The whole blob is in hand: one PUT, its SHA256 the payload's.
		got := info(size, h1, h256)
		if err := checkExpected(got, want); err != nil {
			return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
		}
		if err := ctx.Err(); err != nil {
			return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
		}
		// The payload's SHA256 is signed (no streaming signature needed).
		_, err := s.core.PutObject(ctx, s.cfg.Bucket, name, bytes.NewReader(part.buf), size, "", got.SHA256,
			minio.PutObjectOptions{ContentType: contentType, UserMetadata: blobMeta(got), DisableContentSha256: true})
		if err != nil {
			return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
		}
		return got, nil
	}
	opts := minio.PutObjectOptions{ContentType: contentType}
	verify := func(size int64) error { return checkExpected(info(size, h1, h256), want) }
	if want != nil {
		// The digests are known before the first part: recorded at create.
		opts.UserMetadata = blobMeta(*want)
		if _, err := s.putMultipart(ctx, name, opts, part, src, verify); err != nil {
			return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
		}
		return *want, nil
	}
	// The digests are known once the last part is in, and S3 sets
	// metadata only when it creates an object: the parts go to a
	// temporary object, copied (server-side) with them to name.
	got, err := s.putViaTemp(ctx, name, opts, part, src)
	if err != nil {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	return got, nil
}

// putViaTemp uploads part and the rest of src to a temporary object, then
// copies it to name with the digests computed on the way as metadata.
// name changes only when the copy succeeds; the temporary object is
// removed whatever happens (a crash leaves it under PREFIX/.put/, see
// docs/operating.md).
func (s *Store) putViaTemp(ctx context.Context, name string, opts minio.PutObjectOptions, part *partBuffer, src *digestReader) (pando.BlobInfo, error) {
	tmp, err := s.tempObject()
	if err != nil {
		return pando.BlobInfo{}, err
	}
	// Removed even when the upload failed: a completion S3 carried out
	// but whose answer was lost leaves the object.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if err := s.core.RemoveObject(rctx, s.cfg.Bucket, tmp, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			s.log.Warn("remove a temporary upload: it stays in the bucket until a lifecycle rule removes it",
				"bucket", s.cfg.Bucket, "object", tmp, "err", err)
		}
	}()
	size, err := s.putMultipart(ctx, tmp, opts, part, src, func(int64) error { return nil })
	if err != nil {
		return pando.BlobInfo{}, err
	}
	got := src.info(size)
	if err := ctx.Err(); err != nil {
		return pando.BlobInfo{}, err
	}
	if err := s.copyWithMeta(ctx, tmp, name, got); err != nil {
		return pando.BlobInfo{}, err
	}
	return got, nil
}

// maxCopy is the largest object one server-side copy may copy (S3's
// bound); a larger one is copied in parts of at most that size.
const maxCopy = 5 << 30

// copyWithMeta copies the object from, of info.Size bytes, to to with
// info recorded as its metadata.
func (s *Store) copyWithMeta(ctx context.Context, from, to string, info pando.BlobInfo) error {
	if info.Size <= maxCopy {
		headers := map[string]string{"x-amz-metadata-directive": "REPLACE", "Content-Type": contentType}
		for k, v := range blobMeta(info) {
			headers["x-amz-meta-"+k] = v
		}
		_, err := s.core.CopyObject(ctx, s.cfg.Bucket, from, s.cfg.Bucket, to, headers, minio.CopySrcOptions{}, minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("copy the upload into place: %w", err)
		}
		return nil
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, to, minio.PutObjectOptions{ContentType: contentType, UserMetadata: blobMeta(info)})
	if err != nil {
		return fmt.Errorf("start the copy of the upload into place: %w", err)
	}
	var parts []minio.CompletePart
	for n, off := 1, int64(0); off < info.Size; n, off = n+1, off+maxCopy {
		p, err := s.core.CopyObjectPart(ctx, s.cfg.Bucket, from, s.cfg.Bucket, to, uploadID, n, off, min(maxCopy, info.Size-off), nil)
		if err != nil {
			s.abort(ctx, to, uploadID)
			return fmt.Errorf("copy part %d of the upload into place: %w", n, err)
		}
		parts = append(parts, p)
	}
	if err := ctx.Err(); err != nil {
		s.abort(ctx, to, uploadID)
		return err
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, to, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		s.abort(ctx, to, uploadID)
		return fmt.Errorf("complete the copy of the upload into place: %w", err)
	}
	return nil
}

// tempObject names a new temporary object: PREFIX/.put/RANDOM, never a
// blob's (a key's segments never start with '.').
func (s *Store) tempObject() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("name a temporary upload: %w", err)
	}
	name := tempDir + "/" + hex.EncodeToString(b[:])
	if s.cfg.Prefix != "" {
		name = s.cfg.Prefix + "/" + name
	}
	return name, nil
}

// tempDir holds uploads on their way to their key, under the prefix.
const tempDir = ".put"

// abort aborts a multipart upload, even when ctx is cancelled.
func (s *Store) abort(ctx context.Context, name, uploadID string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := s.core.AbortMultipartUpload(actx, s.cfg.Bucket, name, uploadID); err != nil {
		s.log.Warn("abort multipart upload: its parts stay in the bucket until a lifecycle rule removes them",
			"bucket", s.cfg.Bucket, "object", name, "upload_id", uploadID, "err", err)
	}
}

// contentType is every blob's: Pando reads them back itself.
const contentType = "application/octet-stream"

// checkExpected compares what streamed with what the caller expected.
func checkExpected(got pando.BlobInfo, want *pando.BlobInfo) error {
	if want == nil || got == *want {
		return nil
	}
	return fmt.Errorf("blob changed while uploading: %d bytes with SHA-256 %s streamed, %d bytes with %s expected", got.Size, got.SHA256, want.Size, want.SHA256)
}

// putMultipart uploads part (full) and the rest of src in parts, and
// completes the upload only when src ended cleanly, verify(size) passes
// and ctx is live; on any failure it aborts the upload, so no parts linger
// in the bucket.
func (s *Store) putMultipart(ctx context.Context, name string, opts minio.PutObjectOptions, part *partBuffer, src io.Reader, verify func(size int64) error) (size int64, err error) {
	uploadID, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, name, opts)
	if err != nil {
		return 0, fmt.Errorf("start multipart upload: %w", err)
	}
	defer func() {
		if err != nil {
			s.abort(ctx, name, uploadID)
		}
	}()
	var parts []minio.CompletePart
	for n, full := 1, true; len(part.buf) > 0; n++ {
		if n > maxParts {
			return 0, pando.Errorf(pando.ETooLarge, "blob larger than %d parts of %d MiB: raise part_size_mb in --blobstore", maxParts, s.partSize>>20)
		}
		sum := sha256.Sum256(part.buf)
		p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, name, uploadID, n, bytes.NewReader(part.buf), int64(len(part.buf)),
			minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
		if err != nil {
			return 0, fmt.Errorf("upload part %d: %w", n, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		size += int64(len(part.buf))
		if !full {
			break
		}
		if full, err = part.fill(ctx, src); err != nil {
			return 0, err
		}
	}
	if err := verify(size); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, name, uploadID, parts, opts); err != nil {
		return 0, fmt.Errorf("complete multipart upload: %w", err)
	}
	return size, nil
}

func info(size int64, h1, h256 hash.Hash) pando.BlobInfo {
	return pando.BlobInfo{Size: size, SHA1: hex.EncodeToString(h1.Sum(nil)), SHA256: hex.EncodeToString(h256.Sum(nil))}
}

// digestReader computes a blob's digests as it is read.
type digestReader struct {
	r        io.Reader
	h1, h256 hash.Hash
}

func newDigestReader(r io.Reader) *digestReader {
	return &digestReader{r: r, h1: sha1.New(), h256: sha256.New()}
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h1.Write(p[:n])
	d.h256.Write(p[:n])
	return n, err
}

// info is what was read so far, size bytes.
func (d *digestReader) info(size int64) pando.BlobInfo { return info(size, d.h1, d.h256) }

// partBuffer holds one part. It grows as data comes, up to max, so a small
// blob costs little memory and a large one max, reused part after part.
type partBuffer struct {
	buf []byte
	max int
}

// initialPart is the buffer's first size.
const initialPart = 64 << 10

// fill reads the next part from r: full reports that max bytes were read
// (more may follow); otherwise r ended (len(buf) may be 0).
func (p *partBuffer) fill(ctx context.Context, r io.Reader) (full bool, err error) {
	p.buf = p.buf[:0]
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if len(p.buf) == cap(p.buf) {
			if len(p.buf) >= p.max {
				return true, nil
			}
			grown := make([]byte, len(p.buf), min(max(2*cap(p.buf), initialPart), p.max))
			copy(grown, p.buf)
			p.buf = grown
		}
		n, err := r.Read(p.buf[len(p.buf):cap(p.buf)])
		p.buf = p.buf[:len(p.buf)+n]
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
