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

	"github.com/pandoplatform/pando"
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
// their first start does not resolve the image again.
func dockerStager(r dockerstager.Resolver) func(context.Context, pando.StagingRequest, func(string)) (pando.StagingResult, error) {
	return dockerstager.New(r).Stage
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
}

// maxManifestMemo bounds a kept layer list file.
const maxManifestMemo = 1 << 20

func newImagePuller(reg *registry.Client, cacheDir string, log *slog.Logger) (*imagePuller, error) {
	cache, err := layers.Open(filepath.Join(cacheDir, "cache"), layers.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		cache.Close()
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return &imagePuller{reg: reg, cache: cache, dir: dir, log: log}, nil
}

func (p *imagePuller) Close() { p.cache.Close() }

// Pull implements cell.ImagePuller.
func (p *imagePuller) Pull(ctx context.Context, image string, creds *pando.ImageCredentials, maxBytes int64) ([]string, func(), error) {
	var rc *registry.Credentials
	if creds != nil {
		rc = &registry.Credentials{Username: creds.Username, Password: creds.Password}
	}
	ls, err := p.layersOf(ctx, image, rc)
	if err != nil {
		return nil, func() {}, err
	}
	var size int64
	for _, l := range ls {
		size += l.Size
	}
	if maxBytes > 0 && size > maxBytes {
		return nil, func() {}, pando.Errorf(pando.EInvalid, "image %s is %d MB compressed, more than the disk quota of %d MB: raise the app's disk quota", image, size>>20, maxBytes>>20)
	}
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
	return layerList(img), nil
}

// Resolve resolves through the registry and keeps the layer list of the
// pinned image it names (staging calls it, through dockerStager).
func (p *imagePuller) Resolve(ctx context.Context, ref string, creds *registry.Credentials) (*registry.Image, error) {
	img, err := p.reg.Resolve(ctx, ref, creds)
	if err != nil {
		return nil, err
	}
	if ls := layerList(img); len(ls) > 0 && img.Pinned != "" {
		if err := writeAtomic(p.memoPath(img.Pinned), ls); err != nil {
			p.log.Warn("keep image layer list", "image", img.Pinned, "error", err)
		}
	}
	return img, nil
}

func (p *imagePuller) memoPath(pinned string) string {
	sum := sha256.Sum256([]byte(pinned))
	return filepath.Join(p.dir, hex.EncodeToString(sum[:])+".json")
}

func layerList(img *registry.Image) []layers.Layer {
	ls := make([]layers.Layer, len(img.Layers))
	for k, l := range img.Layers {
		ls[k] = layers.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
	}
	return ls
}

func writeAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
