package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/lifecycle/dockerstager"
	"github.com/pandoplatform/pando/internal/registry"
)

// registryClient is the process's one registry client (one connection
// pool), plain HTTP only to the registries listed with --insecure-registry.
func registryClient(insecure []string) (*registry.Client, error) {
	client, err := registry.New(registry.Options{Insecure: insecure, UserAgent: "pando"})
	if err != nil {
		return nil, fmt.Errorf("--insecure-registry: %w", err)
	}
	return client, nil
}

// dockerStager is the local cell's docker stager. Given the image puller
// as its resolver, the layer list it learns is kept for the instances, so
// their first start does not resolve the image again, and the layers start
// downloading as soon as staging has read the image's manifest (before its
// config): the pull overlaps with the rest of staging, storing its result
// and desiring the LRP. A staging that fails after that stops the pull.
func dockerStager(r dockerstager.Resolver) func(context.Context, pando.StagingRequest, func(string)) (pando.StagingResult, error) {
	pf, ok := r.(prefetcher)
	if !ok {
		return dockerstager.New(r).Stage
	}
	return func(ctx context.Context, req pando.StagingRequest, out func(string)) (pando.StagingResult, error) {
		var creds *registry.Credentials
		if req.DockerUsername != "" || req.DockerPassword != "" {
			creds = &registry.Credentials{Username: req.DockerUsername, Password: req.DockerPassword}
		}
		pr := &prefetchingResolver{pf: pf, maxBytes: int64(req.DiskMB) << 20}
		res, err := dockerstager.New(pr).Stage(ctx, req, out)
		if err != nil || res.Image == "" {
			pr.stop()
			return res, err
		}
		if !pr.started() {
			pf.Prefetch(res.Image, creds, pr.maxBytes)
		}
		return res, err
	}
}

// prefetcher starts pulling an image's layers into the cell's cache in the
// background.
type prefetcher interface {
	dockerstager.Resolver
	// ResolveNotify resolves ref, calling manifestRead as soon as the
	// image's layers are known (registry.Client.ResolveNotify).
	ResolveNotify(ctx context.Context, ref string, creds *registry.Credentials, manifestRead func(pinned string, ls []registry.Layer)) (*registry.Image, error)
	// Prefetch pulls a pinned image's layers (resolving it if needed).
	Prefetch(image string, creds *registry.Credentials, maxBytes int64)
	// PrefetchLayers pulls the given layers of a pinned image; stop ends
	// the pull.
	PrefetchLayers(image string, ls []layers.Layer, creds *registry.Credentials, maxBytes int64) (stop func())
}

// prefetchingResolver is one staging's resolver: it starts the prefetch
// from the manifest.
type prefetchingResolver struct {
	pf       prefetcher
	maxBytes int64
	mu       sync.Mutex
	stopFn   func()
}

func (r *prefetchingResolver) Resolve(ctx context.Context, ref string, creds *registry.Credentials) (*registry.Image, error) {
	return r.pf.ResolveNotify(ctx, ref, creds, func(pinned string, ls []registry.Layer) {
		stop := r.pf.PrefetchLayers(pinned, layerList(ls), creds, r.maxBytes)
		r.mu.Lock()
		r.stopFn = stop
		r.mu.Unlock()
	})
}

func (r *prefetchingResolver) started() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopFn != nil
}

func (r *prefetchingResolver) stop() {
	r.mu.Lock()
	stop := r.stopFn
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// imagePuller is the local cell's cell.ImagePuller: it resolves a pinned
// image to its layers (once: what REPO@DIGEST names never changes, so the
// layer list is kept in dir) and pulls them through the cell's layer cache.
// An image whose layers are all cached starts without the registry.
type imagePuller struct {
	reg   *registry.Client
	cache *layers.Cache
	dir   string
	log   *slog.Logger

	// ctx ends the prefetches on Close; wg waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// recent are the images pulled lately, most recent first
	// (imagesummary.go).
	recent []*recentImage
}

// maxManifestMemo bounds a kept layer list file.
const maxManifestMemo = 1 << 20

func newImagePuller(reg *registry.Client, cacheDir string, maxBytes int64, log *slog.Logger) (*imagePuller, error) {
	cache, err := layers.Open(filepath.Join(cacheDir, "cache"), layers.Options{MaxBytes: maxBytes, Logger: log})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		cache.Close()
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &imagePuller{reg: reg, cache: cache, dir: dir, log: log, ctx: ctx, cancel: cancel}, nil
}

// CacheBytes is what the layer cache holds on disk (unpacked bytes).
func (p *imagePuller) CacheBytes() int64 {
	n, _ := p.cache.Usage()
	return n
}

// Close stops the prefetches and closes the layer cache.
func (p *imagePuller) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.cache.Close()
}

// Prefetch pulls the layers of a pinned image into the cache in the
// background, unless they are more than maxBytes compressed (the disk
// quota the instances would refuse them for; <= 0: no bound). An instance
// starting meanwhile joins the downloads in flight (the cache fetches
// each layer once); the layers are not held once fetched, so the cache's
// size cap applies to them as to any unused layer.
func (p *imagePuller) Prefetch(image string, creds *registry.Credentials, maxBytes int64) {
	p.prefetch(image, nil, creds, maxBytes)
}

// PrefetchLayers is Prefetch of an image whose layers ls are known (its
// manifest was just read); stop ends the pull.
func (p *imagePuller) PrefetchLayers(image string, ls []layers.Layer, creds *registry.Credentials, maxBytes int64) (stop func()) {
	return p.prefetch(image, ls, creds, maxBytes)
}

func (p *imagePuller) prefetch(image string, ls []layers.Layer, creds *registry.Credentials, maxBytes int64) (stop func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return func() {}
	}
	ctx, cancel := context.WithCancel(p.ctx)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer cancel()
		var release func()
		var err error
		if ls == nil {
			_, release, err = p.pull(ctx, image, creds, maxBytes)
		} else {
			_, release, err = p.pullLayers(ctx, image, ls, creds, maxBytes)
		}
		release()
		if err != nil && ctx.Err() == nil {
			p.log.Info("prefetch of image layers failed; the instances pull them", "image", image, "error", err)
		}
	}()
	return cancel
}

// Pull implements cell.ImagePuller.
func (p *imagePuller) Pull(ctx context.Context, image string, creds *pando.ImageCredentials, maxBytes int64) ([]string, func(), error) {
	var rc *registry.Credentials
	if creds != nil {
		rc = &registry.Credentials{Username: creds.Username, Password: creds.Password}
	}
	return p.pull(ctx, image, rc, maxBytes)
}

func (p *imagePuller) pull(ctx context.Context, image string, rc *registry.Credentials, maxBytes int64) ([]string, func(), error) {
	ls, err := p.layersOf(ctx, image, rc)
	if err != nil {
		return nil, func() {}, err
	}
	return p.pullLayers(ctx, image, ls, rc, maxBytes)
}

func (p *imagePuller) pullLayers(ctx context.Context, image string, ls []layers.Layer, rc *registry.Credentials, maxBytes int64) ([]string, func(), error) {
	var size int64
	for _, l := range ls {
		size += l.Size
	}
	if maxBytes > 0 && size > maxBytes {
		return nil, func() {}, pando.Errorf(pando.EInvalid, "image %s is %d MB compressed, more than the disk quota of %d MB: raise the app's disk quota", image, size>>20, maxBytes>>20)
	}
	digests := make([]string, len(ls))
	for k, l := range ls {
		digests[k] = l.Digest
	}
	// From here the cell names the image in its state (CachedImages).
	done := p.pullStarted(image, digests)
	defer done()
	src, err := p.reg.Blobs(image, rc)
	if err != nil {
		return nil, func() {}, err
	}
	return p.cache.Pull(ctx, src, ls, layers.Shift{})
}

func (p *imagePuller) layersOf(ctx context.Context, image string, creds *registry.Credentials) ([]layers.Layer, error) {
	if strings.Contains(image, "@sha256:") {
		if data, err := os.ReadFile(p.memoPath(image)); err == nil && len(data) <= maxManifestMemo {
			var ls []layers.Layer
			if err := json.Unmarshal(data, &ls); err == nil && len(ls) > 0 {
				return ls, nil
			}
		}
	}
	img, err := p.Resolve(ctx, image, creds)
	if err != nil {
		return nil, err
	}
	return layerList(img.Layers), nil
}

// Resolve resolves through the registry and keeps the layer list of the
// pinned image it names (staging calls it, through dockerStager).
func (p *imagePuller) Resolve(ctx context.Context, ref string, creds *registry.Credentials) (*registry.Image, error) {
	return p.ResolveNotify(ctx, ref, creds, nil)
}

// ResolveNotify is Resolve calling manifestRead as soon as the image's
// layers are known (registry.Client.ResolveNotify).
func (p *imagePuller) ResolveNotify(ctx context.Context, ref string, creds *registry.Credentials, manifestRead func(string, []registry.Layer)) (*registry.Image, error) {
	img, err := p.reg.ResolveNotify(ctx, ref, creds, manifestRead)
	if err != nil {
		return nil, err
	}
	if ls := layerList(img.Layers); len(ls) > 0 && img.Pinned != "" {
		data, err := json.Marshal(ls)
		if err == nil {
			err = atomicfile.WriteFile(p.memoPath(img.Pinned), data, 0o600)
		}
		if err != nil {
			p.log.Warn("keep image layer list", "image", img.Pinned, "error", err)
		}
	}
	return img, nil
}

func (p *imagePuller) memoPath(pinned string) string {
	sum := sha256.Sum256([]byte(pinned))
	return filepath.Join(p.dir, hex.EncodeToString(sum[:])+".json")
}

func layerList(rls []registry.Layer) []layers.Layer {
	ls := make([]layers.Layer, len(rls))
	for k, l := range rls {
		ls[k] = layers.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
	}
	return ls
}
