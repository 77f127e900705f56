package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pandoplatform/pando/internal/blobstore/blobcopy"
	s3blob "github.com/pandoplatform/pando/internal/blobstore/s3"
	"github.com/pandoplatform/pando/internal/sqlstore"
)

// CopyDataConfig is what pando server copy-data moves where.
type CopyDataConfig struct {
	DataDir string
	// DatabaseURL is the empty PostgreSQL database the SQLite CCDB goes
	// to; "": the CCDB is not copied.
	DatabaseURL string
	// Blobstore is the s3:// URL the fs blobstore goes to; "": the blobs
	// are not copied.
	Blobstore string
	// BlobstoreGetenv reads the S3 credentials; nil is os.Getenv.
	BlobstoreGetenv func(string) string
	DryRun          bool
	// Out gets the progress lines.
	Out    io.Writer
	Logger *slog.Logger
}

// CopyData copies a stopped server's SQLite CCDB into PostgreSQL and its
// fs blobstore into S3, holding the data dir's lock throughout so that no
// server starts on it meanwhile; what stays in the data dir (secrets.key,
// the UAA key, the cell CA and tokens) is left where it is. The source is
// only read.
func CopyData(ctx context.Context, cfg CopyDataConfig) error {
	if cfg.DatabaseURL == "" && cfg.Blobstore == "" {
		return errors.New("nothing to copy: give --to-database-url, --to-blobstore or both")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var s3cfg s3blob.Config
	if cfg.DatabaseURL != "" {
		scheme, _, _ := strings.Cut(cfg.DatabaseURL, "://")
		if s := strings.ToLower(scheme); s != "postgres" && s != "postgresql" {
			return errors.New("--to-database-url: want a postgres://USER@HOST:PORT/DATABASE URL")
		}
	}
	if cfg.Blobstore != "" {
		var err error
		if s3cfg, err = s3blob.ParseURL(cfg.Blobstore); err != nil {
			return fmt.Errorf("--to-blobstore: %w", err)
		}
	}
	if st, err := os.Stat(cfg.DataDir); err != nil || !st.IsDir() {
		return fmt.Errorf("no data dir at %s (give --data-dir)", cfg.DataDir)
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("stop the server first: %w", err)
	}
	defer release()
	say := func(msg string) { fmt.Fprintln(cfg.Out, msg) }
	if cfg.DryRun {
		say("dry run: nothing is written")
	}

	src := filepath.Join(cfg.DataDir, "ccdb.sqlite")
	copyCCDB := func(dryRun bool, progress func(string)) error {
		if _, err := sqlstore.CopyToPostgres(ctx, src, cfg.DatabaseURL, sqlstore.CopyOptions{
			DryRun: dryRun, Progress: progress, Logger: cfg.Logger,
		}); err != nil {
			return fmt.Errorf("copy the CCDB: %w", err)
		}
		return nil
	}
	// With both, the CCDB is checked first but copied after the blobs: a
	// blob copy that stops leaves the target database empty, so the same
	// command run again resumes (a filled database would be refused).
	ccdbLast := cfg.DatabaseURL != "" && cfg.Blobstore != "" && !cfg.DryRun
	if cfg.DatabaseURL != "" {
		say("CCDB: " + src + " to PostgreSQL")
		if ccdbLast {
			if err := copyCCDB(true, nil); err != nil {
				return err
			}
			say("CCDB: checked, copied after the blobs")
		} else if err := copyCCDB(cfg.DryRun, say); err != nil {
			return err
		}
	}
	if cfg.Blobstore != "" {
		dst, err := s3blob.New(ctx, s3cfg, s3blob.Options{Getenv: cfg.BlobstoreGetenv, Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("copy the blobstore: %w", err)
		}
		dir := filepath.Join(cfg.DataDir, "blobs")
		say("blobstore: " + dir + " to " + dst.String())
		res, err := blobcopy.Copy(ctx, dir, dst, blobcopy.Options{DryRun: cfg.DryRun, Progress: say})
		if err != nil {
			return fmt.Errorf("copy the blobstore: %w (a new run skips the blobs copied so far)", err)
		}
		if !cfg.DryRun {
			say(fmt.Sprintf("blobstore copied: %d blobs uploaded and read back, %d already there", res.Copied, res.Skipped))
		}
	}
	if ccdbLast {
		say("CCDB: " + src + " to PostgreSQL")
		if err := copyCCDB(false, say); err != nil {
			return fmt.Errorf("%w (the blobs are copied: a new run skips them)", err)
		}
	}
	if !cfg.DryRun {
		var flags []string
		if cfg.DatabaseURL != "" {
			flags = append(flags, "--database-url URL")
		}
		if cfg.Blobstore != "" {
			flags = append(flags, "--blobstore "+cfg.Blobstore)
		}
		say("done: start the server with --data-dir " + cfg.DataDir + " " + strings.Join(flags, " "))
	}
	return nil
}
