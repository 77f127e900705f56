// Package simcell runs simulated cells for tests and benchmarks at scale:
// each is a real cell.Rep (the rep code every cell runs) on the fake
// container backend, so a BBS can place, start, health-check and stop
// thousands of instances in one process without runc. Containers serve
// any port (health checks pass at once) and run until stopped; each cell
// opens its host ports on a loopback address of its own.
package simcell

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// Config describes a set of simulated cells. Dir is required.
type Config struct {
	// Dir holds the cells' work dirs and the shared blobstore.
	Dir string
	// MemoryMB, DiskMB and MaxContainers are each cell's capacity
	// (defaults 4096, 16384 and 250).
	MemoryMB, DiskMB, MaxContainers int
	// Zones are given to cells in turn (cell i gets Zones[i%len]); none
	// leaves every cell without a zone.
	Zones []string
	// Stacks every cell offers (default "cflinuxfs4").
	Stacks []string
	// Reporter receives every cell's reports (the BBS).
	Reporter pando.CellReporter
	// AddrBase is the second octet of the cells' loopback addresses
	// 127.B.x.y (default 88), so cells of one process do not share ports.
	AddrBase int
	// Blobs, when set, is the blobstore the cells read packages,
	// buildpacks and droplets from and upload droplets to (an API's),
	// with BlobPath mapping a key to a local file when it has one; unset,
	// the cluster keeps its own under Dir.
	Blobs    cell.BlobStore
	BlobPath func(key string) (string, bool)
	// Logs receives the cells' app, staging and cell log lines; nil
	// discards them.
	Logs pando.LogSink
	// Process, when set, is what every container runs (see
	// fake.Options.Process): e.g. a builder that writes a staging's
	// output files. Unset, containers run until stopped.
	Process func(ctx context.Context, spec container.Spec) container.ExitStatus
	// Handler, when set, serves a container's port instead of the
	// default answer ("ok" on every port); a nil handler refuses the
	// connection, so port health checks fail.
	Handler func(spec container.Spec, port int) http.Handler
	// Stats is what every container reports as its resource use.
	Stats  container.Stats
	Logger *slog.Logger
}

// Cluster is a growing set of simulated cells sharing one blobstore.
type Cluster struct {
	cfg      Config
	blobs    cell.BlobStore
	blobPath func(key string) (string, bool)
	backend  *fake.Backend

	mu    sync.Mutex
	cells []*cell.Rep
}

// DropletKey is the blob key of the tiny droplet Cluster stores in its own
// blobstore (not in Config.Blobs): desired LRPs for simulated cells name
// it (LRP fills the fields).
const DropletKey = "droplets/simcell/droplet.tgz"

// New prepares an empty cluster and stores its droplet (in its own
// blobstore).
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("simcell: Dir is required")
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 4096
	}
	if cfg.DiskMB <= 0 {
		cfg.DiskMB = 16384
	}
	if cfg.MaxContainers <= 0 {
		cfg.MaxContainers = cell.DefaultMaxContainers
	}
	if len(cfg.Stacks) == 0 {
		cfg.Stacks = []string{"cflinuxfs4"}
	}
	if cfg.AddrBase <= 0 || cfg.AddrBase > 255 {
		cfg.AddrBase = 88
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, blobs: cfg.Blobs, blobPath: cfg.BlobPath}
	if c.blobs == nil {
		own, err := fs.New(filepath.Join(cfg.Dir, "blobs"))
		if err != nil {
			return nil, fmt.Errorf("simcell: %w", err)
		}
		c.blobs = own
		c.blobPath = func(key string) (string, bool) {
			p, err := own.Path(key)
			return p, err == nil
		}
		tgz, err := DropletTgz()
		if err != nil {
			return nil, fmt.Errorf("simcell: droplet: %w", err)
		}
		if _, err := own.Put(ctx, DropletKey, bytes.NewReader(tgz)); err != nil {
			return nil, fmt.Errorf("simcell: store droplet: %w", err)
		}
	}
	// One backend for all cells: container ids are instance guids, unique
	// across cells, and every port of every container answers.
	handler := cfg.Handler
	if handler == nil {
		handler = func(container.Spec, int) http.Handler { return okHandler }
	}
	c.backend = fake.New(fake.Options{
		Handler: handler,
		Process: cfg.Process,
		Stats:   cfg.Stats,
	})
	return c, nil
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
})

// Add starts n more cells with the cluster's settings, changed by mod if
// given (e.g. a bigger cell), hands each to register (e.g. the BBS's
// RegisterCell) and returns them.
func (c *Cluster) Add(n int, mod func(*cell.Config), register func(pando.Cell)) ([]*cell.Rep, error) {
	var added []*cell.Rep
	for range n {
		c.mu.Lock()
		i := len(c.cells)
		c.mu.Unlock()
		if i >= 250*256 {
			return added, errors.New("simcell: too many cells for one loopback /16")
		}
		id := fmt.Sprintf("sim-%05d", i)
		cfg := cell.Config{
			ID:            id,
			Backend:       c.backend,
			Blobs:         c.blobs,
			BlobPath:      c.blobPath,
			Reporter:      c.cfg.Reporter,
			Logs:          c.cfg.Logs,
			WorkDir:       filepath.Join(c.cfg.Dir, "cells", id),
			HostAddr:      fmt.Sprintf("127.%d.%d.%d", c.cfg.AddrBase, i/250, i%250+1),
			TotalMemoryMB: c.cfg.MemoryMB,
			TotalDiskMB:   c.cfg.DiskMB,
			MaxContainers: c.cfg.MaxContainers,
			Stacks:        map[string]string{},
			Logger:        c.cfg.Logger,
		}
		if len(c.cfg.Zones) > 0 {
			cfg.Zone = c.cfg.Zones[i%len(c.cfg.Zones)]
		}
		for _, s := range c.cfg.Stacks {
			cfg.Stacks[s] = "" // the fake backend runs nothing: any rootfs will do
		}
		if mod != nil {
			mod(&cfg)
		}
		rep, err := cell.New(cfg)
		if err != nil {
			return added, fmt.Errorf("simcell: %w", err)
		}
		c.mu.Lock()
		c.cells = append(c.cells, rep)
		c.mu.Unlock()
		added = append(added, rep)
		if register != nil {
			register(rep)
		}
	}
	return added, nil
}

// Cells returns the cells started so far.
func (c *Cluster) Cells() []*cell.Rep {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*cell.Rep(nil), c.cells...)
}

// Backend is the fake container backend every cell runs on (tests end
// containers through it, as a crash would).
func (c *Cluster) Backend() *fake.Backend { return c.backend }

// LRP is a desired LRP the simulated cells can run: the cluster's droplet
// on its first stack, a port health check, instances of memMB.
func (c *Cluster) LRP(processGUID string, instances, memMB int) pando.DesiredLRP {
	return pando.DesiredLRP{
		ProcessGUID: processGUID, Revision: 1, AppGUID: "app-" + processGUID, ProcessType: "web",
		Instances: instances, MemoryMB: memMB, DiskMB: 256, Stack: c.cfg.Stacks[0],
		DropletKey: DropletKey, StartCommand: "./run", Ports: []int{8080},
		HealthCheck: pando.HealthCheck{Type: pando.HealthCheckPort},
	}
}

// Shutdown stops every cell (and so every instance) in parallel.
func (c *Cluster) Shutdown(ctx context.Context) error {
	cells := c.Cells()
	errs := make([]error, len(cells))
	var wg sync.WaitGroup
	for i, r := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Shutdown(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DropletTgz is the smallest droplet a cell accepts: ./app with a start
// script that the fake backend never runs.
func DropletTgz() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	run := []byte("#!/bin/sh\nexec sleep infinity\n")
	for _, h := range []*tar.Header{
		{Name: "./app/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./app/run", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(run))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(run); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
