// Package atomicfile writes files whole or not at all: the content goes to
// a temp file that is then renamed over the target, so a reader (or a
// process started after a crash) sees the old file or the new one, never
// a part. Pando keeps its state, keys and records in files written this way.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Option changes how a file is written.
type Option func(*config)

type config struct {
	durable   bool
	tempDir   string
	prefix    string
	noReplace bool
}

// Durable fsyncs the file before the rename and its directory after, so
// the new content survives a power loss once the write returns. Without
// it the write survives a killed process but maybe not a crashed host.
func Durable() Option { return func(c *config) { c.durable = true } }

// TempDir puts the temp file in dir rather than next to the target: one
// place to sweep after a crash. dir must be on the target's filesystem.
func TempDir(dir string) Option { return func(c *config) { c.tempDir = dir } }

// TempPrefix names temp files prefix followed by random characters; by
// default "."+base+".tmp-", hidden and telling which file it was to be.
func TempPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// NoReplace keeps a file already at the target: the write then fails
// with an error that matches fs.ErrExist. Of concurrent writers, exactly
// one succeeds.
func NoReplace() Option { return func(c *config) { c.noReplace = true } }

// WriteFile writes data to path with permissions perm (not subject to the
// umask), atomically.
func WriteFile(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, opts...)
}

// Write writes what write writes to path with permissions perm,
// atomically. write gets the unbuffered temp file; an error it returns
// is returned as it is, and then path is left as it was and no temp file
// remains. With Durable, a failure to sync the directory is reported
// after the new file is in place. Concurrent writers of one path each write their own temp file:
// the last to finish wins and the file holds one writer's whole content.
func Write(path string, perm fs.FileMode, write func(io.Writer) error, opts ...Option) error {
	var c config
	for _, o := range opts {
		o(&c)
	}
	dir := filepath.Dir(path)
	if c.tempDir == "" {
		c.tempDir = dir
	}
	if c.prefix == "" {
		c.prefix = "." + filepath.Base(path) + ".tmp-"
	}
	f, err := os.CreateTemp(c.tempDir, c.prefix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	closed, placed := false, false
	// On every way out before the rename (a failing writer, a panicking
	// one) the temp file goes. After the rename its name may already be
	// another writer's temp file: it is not touched.
	defer func() {
		if !closed {
			f.Close()
		}
		if !placed {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return err
	}
	if c.durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("write %s: sync: %w", path, err)
		}
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if c.noReplace {
		// A link fails on an existing target where a rename replaces it;
		// the temp name goes either way (the deferred remove).
		if err := os.Link(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		placed = true
	}
	if c.durable {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("write %s: sync directory: %w", path, err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
