package s3

import (
	"bytes"
	"context"
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
// returns the size and digests it computed while streaming. A blob up to
// the part size goes up in one PUT, its digests recorded as object
// metadata (Stat reads them); a larger one in a multipart upload of
// part-size parts, one at a time, so a Put holds one part in memory. A
// failing reader or a cancelled ctx leaves no object and aborts the
// multipart upload. Put does not bound the size: callers limit r.
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
	h1, h256 := sha1.New(), sha256.New()
	src := io.TeeReader(r, io.MultiWriter(h1, h256))
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
	if want != nil {
		opts.UserMetadata = blobMeta(*want)
	}
	verify := func(size int64) error { return checkExpected(info(size, h1, h256), want) }
	size, err = s.putMultipart(ctx, name, opts, part, src, verify)
	if err != nil {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	return info(size, h1, h256), nil
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
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := s.core.AbortMultipartUpload(actx, s.cfg.Bucket, name, uploadID); aerr != nil {
			s.log.Warn("abort multipart upload: its parts stay in the bucket until a lifecycle rule removes them",
				"bucket", s.cfg.Bucket, "object", name, "upload_id", uploadID, "err", aerr)
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
