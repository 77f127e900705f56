package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// floor is what any pull of ref must at least do, timed: fetch the
// manifest and config, then every layer blob in parallel over HTTP from
// the same registry (go-containerregistry verifies each digest as it
// reads), gunzip and untar it into a fresh directory under dir.
// It also returns how long one syncfs(2) of the result then takes: the
// cell syncs each layer before committing it to its cache, which the floor
// itself does not count.
func floor(ctx context.Context, reg *benchRegistry, ref, dir string) (took, sync time.Duration, err error) {
	out, err := os.MkdirTemp(dir, "floor-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(out)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	img, err := remote.Image(r, remote.WithAuth(reg.auth()), remote.WithContext(ctx))
	if err != nil {
		return 0, 0, fmt.Errorf("floor: fetch %s: %w", ref, err)
	}
	ls, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range ls {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			zr, err := gzip.NewReader(rc)
			if err != nil {
				return err
			}
			if err := untar(zr, filepath.Join(out, fmt.Sprint(i))); err != nil {
				return err
			}
			// Read to the end: the digest is checked at EOF.
			_, err = io.Copy(io.Discard, rc)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, fmt.Errorf("floor: pull: %w", err)
	}
	took = time.Since(start)
	fd, err := unix.Open(out, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("floor: %w", err)
	}
	defer unix.Close(fd)
	start = time.Now()
	if err := unix.Syncfs(fd); err != nil {
		return 0, 0, fmt.Errorf("floor: syncfs: %w", err)
	}
	return took, time.Since(start), nil
}

// untar writes the directories and regular files of a trusted layer (the
// bench built it) under dst.
func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if strings.Contains(hdr.Name, "..") {
			return fmt.Errorf("unexpected entry %q", hdr.Name)
		}
		p := filepath.Join(dst, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode)&0o777)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
	}
}
