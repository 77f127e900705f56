package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/buildpacks"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// containerBackend is what a cell's containers run on (runc; a fake in
// tests), with the clean-up of what an earlier run left.
type containerBackend interface {
	container.Backend
	Cleanup(ctx context.Context) error
	Close()
}

// cellRuntimeConfig is what a cell's runtime needs of `pando server`'s
// and `pando cell`'s configuration.
type cellRuntimeConfig struct {
	verb               string // "pando server" or "pando cell": who needs root
	dataDir            string
	cacheDir           string // default /var/cache/pando
	stacks             map[string]string
	stagingEnv         []string
	insecureRegistries []string
	layerCacheMaxBytes int64
	hostIDBase         uint32
	hostIDBlocks       int
	// backend, when set (tests), runs the containers instead of runc.
	backend containerBackend
	// seeds, when set (tests), stand for the host's toolchains.
	seeds seedSeams
}

// seedSeams stand for the host's toolchains the staging seeds are made
// with and what running them tells (tests); zero: the host's.
type seedSeams struct {
	hostPython    string                                                             // buildpacks.HostPython
	pythonSeedKey func(ctx context.Context, python, venvPath string) (string, error) // buildpacks.PythonSeedKey
	goSeedDir     func(ctx context.Context, cacheDir string) (string, error)         // buildpacks.GoCacheSeedDir; set: the host has Go
}

// cellPlan is a cell runtime's configuration, read and checked before
// anything is opened: bad flags fail before the data dir is touched.
type cellPlan struct {
	cellRuntimeConfig
	reg        *registry.Client
	stacks     map[string]string // "host" and the --stack ones
	stagingEnv []pando.EnvVar
}

// planCellRuntime checks rc's flags and that runc can run (as root).
func planCellRuntime(rc cellRuntimeConfig) (*cellPlan, error) {
	if rc.layerCacheMaxBytes < 0 {
		return nil, fmt.Errorf("--layer-cache-max-bytes %d: give a size in bytes (0: the default, 10 GiB)", rc.layerCacheMaxBytes)
	}
	reg, err := registryClient(rc.insecureRegistries)
	if err != nil {
		return nil, err
	}
	stagingEnv, err := parseStagingEnv(rc.stagingEnv)
	if err != nil {
		return nil, err
	}
	stacks := map[string]string{"host": ""}
	for name, dir := range rc.stacks {
		if err := checkRootFS(name, dir); err != nil {
			return nil, err
		}
		stacks[name] = dir
	}
	if rc.backend == nil && os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s runs containers with runc and needs root: run it with sudo (or as root)", rc.verb)
	}
	if rc.cacheDir == "" {
		rc.cacheDir = "/var/cache/pando"
	}
	return &cellPlan{cellRuntimeConfig: rc, reg: reg, stacks: stacks, stagingEnv: stagingEnv}, nil
}

// cellRuntime is what runs a cell's containers, the same for `pando
// server`'s local cell and `pando cell`: the container backend, the image
// layer cache, the staging caches and the stacks.
type cellRuntime struct {
	*cellPlan
	backend       containerBackend
	images        *imagePuller
	stagingCaches []cell.StagingCache
	goSeedLink    string       // where the Go build cache seed is mounted from; "" without a Go toolchain
	pySeedLink    string       // where the python venv seed is mounted from; "" without a python3 on the host
	pyHost        string       // the host's python3 the seed is made with
	adopter       cell.Adopter // the backend, when the rep adopts (and cleans up)
	// runtimes are the language runtimes of the stacks, their answers
	// kept in the data dir across restarts.
	runtimes *stackprobe.Cache
	log      *slog.Logger
}

// openCellRuntime starts the container backend and opens the layer cache
// in the (locked) data dir. What an earlier run left is removed, unless
// adopt and the backend can adopt: then the rep adopts its running
// instances and has the backend remove the rest (cell.Config.Adopter).
func openCellRuntime(ctx context.Context, p *cellPlan, log *slog.Logger, adopt bool) (*cellRuntime, error) {
	backend := p.backend
	if backend == nil {
		b, err := runc.New(runc.Config{
			StateDir:   filepath.Join(p.dataDir, "containers"),
			HostIDBase: p.hostIDBase, HostIDBlocks: p.hostIDBlocks,
			// Volumes of the default disk quotas are formatted ahead.
			VolumePoolSizes: []int64{cell.DefaultInstanceDiskMB << 20, cell.DefaultStagingDiskMB << 20},
			Logger:          log.With("component", "runc"),
		})
		if err != nil {
			return nil, fmt.Errorf("container backend: %w", err)
		}
		backend = b
	}
	r := &cellRuntime{cellPlan: p, backend: backend, log: log, runtimes: &stackprobe.Cache{
		Stacks: maps.Clone(p.stacks), File: filepath.Join(p.dataDir, stackRuntimesFile),
		Logger: log.With("component", "stackprobe"),
	}}
	if a, ok := backend.(cell.Adopter); ok && adopt {
		r.adopter = a
	} else if err := backend.Cleanup(ctx); err != nil {
		log.Warn("clean up leftover containers", "err", err)
	}
	// The seeds are mounted from symlinks in the data dir that warm points
	// at the seeds of the Go version and python key it asks (running go
	// and python, not waited for here). Until then a staging is offered
	// what the links named in the last run (a python seed whose key the
	// buildpack checks) or none.
	if p.seeds.goSeedDir == nil && buildpacks.HostGo() == "" {
		log.Info("no Go toolchain on the host: first Go stagings compile the standard library")
	} else if link, err := filepath.Abs(filepath.Join(p.dataDir, "go-build-seed")); err != nil {
		log.Warn("no Go build cache seed: first Go stagings compile the standard library", "err", err)
	} else {
		r.goSeedLink = link
		r.stagingCaches = append(r.stagingCaches, cell.StagingCache{
			HostDir: link, ContainerDir: "/tmp/go-cache-seed", Env: "PANDO_GO_CACHE_SEED",
			Ready: func() bool { return buildpacks.GoCacheReady(link) },
		})
	}
	// The python buildpack's fresh venv for the host stack's python3: made
	// by the cell (never by a staging, whose app could plant files in
	// it), mounted read-only; without a seed, stagings run ensurepip.
	if py := p.pythonHost(); py == "" {
		log.Info("no python3 on the host: python stagings on the host stack run ensurepip")
	} else if link, err := filepath.Abs(filepath.Join(p.dataDir, "python-venv-seed")); err != nil {
		log.Warn("no python venv seed: first python installs run ensurepip", "err", err)
	} else {
		r.pySeedLink, r.pyHost = link, py
		r.stagingCaches = append(r.stagingCaches, cell.StagingCache{
			HostDir: link, ContainerDir: "/tmp/python-venv-seed", Env: "PANDO_PYTHON_VENV_SEED",
			Ready: func() bool { return buildpacks.PythonSeedReady(link) },
		})
	}
	// Image layers: <data-dir>/layers, one content-addressed cache for
	// every container of the cell.
	images, err := newImagePuller(p.reg, filepath.Join(p.dataDir, "layers"), p.layerCacheMaxBytes, log.With("component", "layers"))
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("image layer cache: %w", err)
	}
	r.images = images
	return r, nil
}

// cellConfig is the part of the rep's configuration the runtime gives;
// the caller names the cell and says where it stores, reports and logs.
func (r *cellRuntime) cellConfig(hostCFStack string) cell.Config {
	return cell.Config{
		Backend:         r.backend,
		Adopter:         r.adopter,
		WorkDir:         filepath.Join(r.dataDir, "cell"),
		StagingCaches:   r.stagingCaches,
		StagingEnv:      r.stagingEnv,
		Stacks:          r.stacks,
		CFStackNames:    map[string]string{"host": hostCFStack},
		DockerStager:    dockerStager(r.images),
		Images:          r.images,
		LayerCacheBytes: r.images.CacheBytes,
		CachedImages:    r.images.CachedImages,
		StackRuntimes:   r.runtimes.Reported,
	}
}

// stackRuntimesFile is where, in the data dir, the host runtimes'
// answers are kept across restarts (stackprobe.Cache.File).
const stackRuntimesFile = "stack-runtimes.json"

// probeStacks asks each stack's language runtimes, those of the host
// only where they changed since the last answer kept, so that the
// cell's state reports them.
func (r *cellRuntime) probeStacks(ctx context.Context) {
	for name := range r.stacks {
		if _, err := r.runtimes.Runtimes(ctx, name); err != nil && ctx.Err() == nil {
			r.log.Warn("probe stack runtimes", "stack", name, "err", err)
		}
	}
}

// keepStacksProbed probes the stacks now and every interval until ctx
// ends, and sooner while a host answer cut short is due again (a joined
// cell's state then follows runtimes installed later; an unchanged
// runtime is not asked again).
func (r *cellRuntime) keepStacksProbed(ctx context.Context, interval time.Duration) {
	r.runtimes.Keep(ctx, interval, func(stack string, err error) {
		r.log.Warn("probe stack runtimes", "stack", stack, "err", err)
	})
}

// warm asks go and python which Go build cache seed and python venv seed
// the cell offers, builds them unless they are there already and points
// the data dir's links at them, in the background.
func (r *cellRuntime) warm(ctx context.Context, g *errgroup.Group) {
	if r.pySeedLink != "" {
		g.Go(func() error {
			if err := r.warmPythonSeed(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("no python venv seed: first python installs run ensurepip", "err", err)
			}
			return nil
		})
	}
	if r.goSeedLink == "" {
		return
	}
	g.Go(func() error {
		if err := r.warmGoSeed(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("warm Go build cache", "err", err)
		}
		return nil
	})
}

// warmGoSeed asks go its version, builds the Go build cache seed of that
// version unless the cache dir has it, and points the cell's link at it.
func (r *cellRuntime) warmGoSeed(ctx context.Context) error {
	seedDir := buildpacks.GoCacheSeedDir
	if r.seeds.goSeedDir != nil {
		seedDir = r.seeds.goSeedDir
	}
	dir, err := seedDir(ctx, r.cacheDir)
	if err != nil {
		return err
	}
	if err := buildpacks.WarmGoCache(ctx, dir, ""); err != nil {
		return err
	}
	return buildpacks.PublishGoCacheSeed(r.goSeedLink, dir)
}

// pythonHost is the host's python3 the seed is made with; "" for none.
func (p *cellPlan) pythonHost() string {
	if p.seeds.hostPython != "" {
		return p.seeds.hostPython
	}
	return buildpacks.HostPython()
}

// warmPythonSeed computes the python venv seed's key, makes the seed of
// that key unless the cache dir has it, and points the cell's link at it;
// having made it, it removes old seeds of other keys.
func (r *cellRuntime) warmPythonSeed(ctx context.Context) error {
	seedKey := buildpacks.PythonSeedKey
	if r.seeds.pythonSeedKey != nil {
		seedKey = r.seeds.pythonSeedKey
	}
	key, err := seedKey(ctx, r.pyHost, buildpacks.PythonSeedVenvPath)
	if err != nil {
		return err
	}
	dir := buildpacks.PythonSeedDirOf(r.cacheDir, key)
	made, err := buildpacks.WarmPythonSeed(ctx, dir, key, r.pyHost, buildpacks.PythonSeedVenvPath)
	if err != nil {
		return err
	}
	if err := buildpacks.PublishPythonSeed(r.pySeedLink, dir); err != nil {
		return err
	}
	if made {
		buildpacks.RemoveOtherPythonSeeds(dir)
	}
	return nil
}

// stop stops whatever the rep left running (nothing, normally) and
// removes the cell's cgroup parents; the rep has shut down before.
func (r *cellRuntime) stop(ctx context.Context) {
	r.backend.Close()
	if err := r.backend.Cleanup(ctx); err != nil {
		r.log.Warn("clean up containers", "err", err)
	}
}

// close releases the layer cache.
func (r *cellRuntime) close() { r.images.Close() }
