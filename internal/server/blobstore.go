package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/pandoplatform/pando"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	s3blob "github.com/pandoplatform/pando/internal/blobstore/s3"
)

// blobStore is what the platform needs of its blobstore: the blobs, and
// the resource cache kept within its bound (Trim).
type blobStore interface {
	pando.Blobstore
	Trim(ctx context.Context, prefix string, maxBytes int64) (int, error)
}

// openBlobstore opens cfg.Blobstore: the directory <data-dir>/blobs (its
// in-flight uploads in tempDir) by default, else an S3 bucket, checked
// now so that a missing bucket or refused credentials stop the start.
func openBlobstore(ctx context.Context, cfg Config, tempDir string, log *slog.Logger) (blobStore, error) {
	if cfg.Blobstore == "" {
		fs, err := fsblob.New(filepath.Join(cfg.DataDir, "blobs"), fsblob.WithTempDir(tempDir))
		if err != nil {
			return nil, fmt.Errorf("open blobstore: %w", err)
		}
		return fs, nil
	}
	s3cfg, err := s3blob.ParseURL(cfg.Blobstore)
	if err != nil {
		return nil, fmt.Errorf("--blobstore: %w", err)
	}
	s3, err := s3blob.New(ctx, s3cfg, s3blob.Options{
		Getenv: cfg.BlobstoreGetenv, Logger: log.With("component", "blobstore"),
		// Resource matches and placements count as use for Trim.
		TrackUse: []string{pando.ResourceBlobKey("")},
	})
	if err != nil {
		return nil, err
	}
	log.Info("blobstore on S3", "blobstore", s3.String())
	return s3, nil
}
