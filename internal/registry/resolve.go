package registry

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is a resolved image: what staging stores and what a cell needs to
// run it (together with the layers, fetched by digest). It is plain data
// and marshals to JSON.
type Image struct {
	// Ref is the reference as given ("nginx:1.27").
	Ref string `json:"ref"`
	// Repository is the fully qualified repository
	// ("index.docker.io/library/nginx").
	Repository string `json:"repository"`
	// Digest is the digest of the linux/amd64 image manifest.
	Digest string `json:"digest"`
	// Pinned is Repository@Digest: resolving it again returns the same
	// bits whatever happens to the tag.
	Pinned string `json:"pinned"`
	// IndexDigest is the digest of the manifest list or OCI index Ref
	// named, when it named one.
	IndexDigest string `json:"index_digest,omitempty"`
	// MediaType is the image manifest's media type (Docker schema 2 or
	// OCI).
	MediaType string `json:"media_type"`
	// ConfigDigest is the digest of the image config blob.
	ConfigDigest string `json:"config_digest"`
	Config       Config `json:"config"`
	// Layers, lowest first.
	Layers []Layer `json:"layers"`
}

// Config is the execution metadata of an image (the Dockerfile's
// ENTRYPOINT, CMD, ENV, USER, WORKDIR and EXPOSE).
type Config struct {
	Entrypoint   []string `json:"entrypoint,omitempty"`
	Cmd          []string `json:"cmd,omitempty"`
	Env          []string `json:"env,omitempty"`
	User         string   `json:"user,omitempty"`
	WorkingDir   string   `json:"working_dir,omitempty"`
	ExposedPorts []Port   `json:"exposed_ports,omitempty"`
}

// Port is an exposed port.
type Port struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // "tcp", "udp" or "sctp"
}

// Layer describes one layer blob.
type Layer struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// Resolve fetches ref's manifest (selecting linux/amd64 from a manifest
// list or OCI index) and config, authenticating with creds (nil:
// anonymous). It reads no layers. Errors are *Error.
func (c *Client) Resolve(ctx context.Context, ref string, creds *Credentials) (*Image, error) {
	return c.ResolveNotify(ctx, ref, creds, nil)
}

// ResolveNotify is Resolve that calls manifestRead, unless nil, with the
// pinned image (REPO@DIGEST) and its layers once the image's manifest is
// read and checked, before its config is fetched: the caller may start
// downloading the layers a round trip earlier. The config may still fail
// the image afterwards (its platform, its layer count).
func (c *Client) ResolveNotify(ctx context.Context, ref string, creds *Credentials, manifestRead func(pinned string, layers []Layer)) (*Image, error) {
	r, err := c.parse(ref)
	if err != nil {
		return nil, err
	}
	// The layers are fetched next: their transport's ping and token
	// happen beside the manifest's fetch.
	c.warmBlobs(ctx, r.Context(), creds)
	host := r.Context().RegistryStr()
	fail := func(err error, fallback Kind) (*Image, error) {
		return nil, c.classify(ctx, err, ref, host, creds, fallback)
	}
	opts := c.remoteOptions(ctx, creds)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		e := c.classify(ctx, err, ref, host, creds, Unreachable)
		if tag, ok := r.(name.Tag); ok && ctx.Err() == nil {
			e = c.explainMissingTag(ctx, e, err, tag, opts)
		}
		return nil, e
	}
	out := &Image{Ref: ref, Repository: r.Context().Name()}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		out.IndexDigest = desc.Digest.String()
		idx, err := desc.ImageIndex()
		if err != nil {
			return fail(err, BadImage)
		}
		manifest, err := idx.IndexManifest()
		if err != nil {
			return fail(err, BadImage)
		}
		child, err := c.selectAMD64(ref, manifest)
		if err != nil {
			return nil, err
		}
		if img, err = idx.Image(child.Digest); err != nil {
			return fail(err, Unreachable)
		}
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return fail(err, BadImage)
		}
	case desc.MediaType.IsSchema1():
		return nil, c.badImage(ref, "image %s has a Docker schema 1 manifest, which is not supported: push it again with a current Docker or OCI tool", ref)
	default:
		return nil, c.badImage(ref, "%s is not an image (manifest media type %q)", ref, desc.MediaType)
	}
	if err := c.fill(ctx, out, r.Context(), img, ref, host, creds, manifestRead); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) badImage(ref, format string, args ...any) *Error {
	return &Error{Kind: BadImage, Ref: ref, Message: fmt.Sprintf(format, args...)}
}

// selectAMD64 picks the linux/amd64 image of an index (the plain one when
// variants are listed too).
func (c *Client) selectAMD64(ref string, m *v1.IndexManifest) (v1.Descriptor, error) {
	var found, unlabelled []v1.Descriptor
	for _, d := range m.Manifests {
		switch {
		case !d.MediaType.IsImage():
		case d.Platform == nil:
			unlabelled = append(unlabelled, d)
		case d.Platform.OS == "linux" && d.Platform.Architecture == "amd64":
			found = append(found, d)
		}
	}
	if len(found) == 0 && len(unlabelled) == 1 && len(m.Manifests) == 1 {
		// Some tools write a one-image index without a platform; the
		// image's config says which one it is (checked in fill).
		found = unlabelled
	}
	if len(found) == 0 {
		return v1.Descriptor{}, &Error{Kind: NoPlatform, Ref: ref, Message: fmt.Sprintf("no linux/amd64 image in %s (it has: %s)", ref, platforms(m))}
	}
	best := found[0]
	for _, d := range found {
		if d.Platform == nil || d.Platform.Variant == "" || d.Platform.Variant == "v1" {
			best = d
			break
		}
	}
	if best.Size > c.opts.MaxManifestBytes {
		return v1.Descriptor{}, c.badImage(ref, "image %s: the linux/amd64 manifest is larger than %d bytes", ref, c.opts.MaxManifestBytes)
	}
	return best, nil
}

func platforms(m *v1.IndexManifest) string {
	var ps []string
	for _, d := range m.Manifests {
		if d.Platform != nil {
			ps = append(ps, d.Platform.String())
		}
	}
	if len(ps) == 0 {
		return "no platforms"
	}
	if len(ps) > 10 {
		ps = append(ps[:10], "...")
	}
	return strings.Join(ps, ", ")
}

// fill completes out from img's manifest and config.
func (c *Client) fill(ctx context.Context, out *Image, repo name.Repository, img v1.Image, ref, host string, creds *Credentials, manifestRead func(string, []Layer)) error {
	digest, err := img.Digest()
	if err != nil {
		return c.classify(ctx, err, ref, host, creds, BadImage)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return c.classify(ctx, err, ref, host, creds, BadImage)
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return c.classify(ctx, err, ref, host, creds, BadImage)
	}
	out.Digest = digest.String()
	out.Pinned = repo.Digest(out.Digest).String()
	out.MediaType = string(mediaType)
	out.ConfigDigest = manifest.Config.Digest.String()
	if len(manifest.Layers) > c.opts.MaxLayers {
		return c.badImage(ref, "image %s has %d layers, more than the %d allowed", ref, len(manifest.Layers), c.opts.MaxLayers)
	}
	for _, l := range manifest.Layers {
		if !supportedLayer(l.MediaType) {
			return c.badImage(ref, "image %s: layer %s has unsupported media type %q", ref, l.Digest, l.MediaType)
		}
		if l.Size < 0 || len(l.URLs) > 0 {
			return c.badImage(ref, "image %s: layer %s is not a distributable blob of known size", ref, l.Digest)
		}
		out.Layers = append(out.Layers, Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType)})
	}
	if mt := manifest.Config.MediaType; mt != types.DockerConfigJSON && mt != types.OCIConfigJSON {
		return c.badImage(ref, "%s is not a container image (its config has media type %q)", ref, mt)
	}
	if manifest.Config.Size > c.opts.MaxManifestBytes {
		return c.badImage(ref, "image %s: the config is larger than %d bytes", ref, c.opts.MaxManifestBytes)
	}
	if manifestRead != nil {
		manifestRead(out.Pinned, slices.Clone(out.Layers))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return c.classify(ctx, err, ref, host, creds, BadImage)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		it := "it is " + cfg.OS + "/" + cfg.Architecture
		if cfg.OS == "" || cfg.Architecture == "" {
			it = fmt.Sprintf("its config names no platform: os %q, architecture %q; the image's builder must set them", cfg.OS, cfg.Architecture)
		}
		return &Error{Kind: NoPlatform, Ref: ref, Message: fmt.Sprintf("no linux/amd64 image in %s (%s)", ref, it)}
	}
	if n := len(cfg.RootFS.DiffIDs); n != 0 && n != len(out.Layers) {
		return c.badImage(ref, "image %s: the config lists %d layers, the manifest %d", ref, n, len(out.Layers))
	}
	out.Config = Config{
		Entrypoint: cfg.Config.Entrypoint,
		Cmd:        cfg.Config.Cmd,
		Env:        cfg.Config.Env,
		User:       cfg.Config.User,
		WorkingDir: cfg.Config.WorkingDir,
	}
	ports, err := exposedPorts(cfg.Config.ExposedPorts)
	if err != nil {
		return c.badImage(ref, "image %s: %v", ref, err)
	}
	out.Config.ExposedPorts = ports
	return nil
}

func supportedLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd:
		return true
	}
	return false
}

// exposedPorts turns the config's {"8000/tcp": {}} into sorted Ports.
func exposedPorts(m map[string]struct{}) ([]Port, error) {
	var out []Port
	for k := range m {
		num, proto, ok := strings.Cut(k, "/")
		if !ok {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("exposed port %q: unknown protocol", k)
		}
		p, err := strconv.Atoi(num)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("exposed port %q: not a port number", k)
		}
		out = append(out, Port{Port: p, Protocol: proto})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out, nil
}
