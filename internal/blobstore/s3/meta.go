package s3

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/pandoplatform/pando"
)

// User metadata stored with each blob whose digests are known when its
// upload starts (x-amz-meta-sha256, -sha1, -size), so that a caller can
// learn them with one HEAD instead of a download.
const (
	metaSHA256 = "Sha256"
	metaSHA1   = "Sha1"
	metaSize   = "Size"
)

// blobMeta is the user metadata recording info.
func blobMeta(info pando.BlobInfo) map[string]string {
	return map[string]string{
		metaSHA256: info.SHA256,
		metaSHA1:   info.SHA1,
		metaSize:   strconv.FormatInt(info.Size, 10),
	}
}

// Stat returns the blob's size and, when its upload recorded them, its
// SHA-1 and SHA-256 (empty otherwise: blobs stored by another tool or by
// a Pando that did not record them). It costs one HEAD request. A missing
// blob is ENotFound.
func (s *Store) Stat(ctx context.Context, key string) (pando.BlobInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	obj, err := s.core.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	if isNotFound(err) {
		return pando.BlobInfo{}, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	if err != nil {
		return pando.BlobInfo{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return infoOf(obj), nil
}

// infoOf reads an object's recorded digests, trusting them only when
// they are well formed and recorded for the object's actual size.
func infoOf(obj minio.ObjectInfo) pando.BlobInfo {
	info := pando.BlobInfo{Size: obj.Size}
	meta := func(k string) string {
		for mk, v := range obj.UserMetadata {
			if strings.EqualFold(mk, k) {
				return v
			}
		}
		return ""
	}
	sha256, sha1, size := meta(metaSHA256), meta(metaSHA1), meta(metaSize)
	if size != strconv.FormatInt(obj.Size, 10) || !isHex(sha256, 64) || !isHex(sha1, 40) {
		return info
	}
	info.SHA256, info.SHA1 = strings.ToLower(sha256), strings.ToLower(sha1)
	return info
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
