// Package blobstore holds what every pando.Blobstore implementation shares:
// the blob key rules. The implementations are fs (a directory, the
// default) and s3 (an S3-compatible bucket, --blobstore s3://...); blobtest
// is the contract both pass.
package blobstore

import (
	"strings"

	"github.com/pandoplatform/pando"
)

// MaxKeyLen bounds key length (and so a path or object name).
const MaxKeyLen = 512

// ValidateKey reports whether key is a well-formed blob key: 1 to MaxKeyLen
// characters of [a-zA-Z0-9._/-], relative, slash-separated, with no empty
// segment and no segment starting with '.' (which rules out "." and "..").
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return pando.Errorf(pando.EInvalid, "invalid blob key %q: must be 1 to %d characters", key, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return pando.Errorf(pando.EInvalid, "invalid blob key %q: only letters, digits and . _ / - are allowed", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" {
			return pando.Errorf(pando.EInvalid, "invalid blob key %q: must be relative with no empty segments", key)
		}
		if seg[0] == '.' {
			return pando.Errorf(pando.EInvalid, "invalid blob key %q: segments must not start with '.'", key)
		}
	}
	return nil
}
