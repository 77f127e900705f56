// Package dockerstager stages docker packages: it resolves the package's
// image reference against its registry (manifest and config, no layers),
// pins it to the digest of its linux/amd64 image and returns the execution
// metadata the API stores on the droplet. Unlike the builder it runs in the
// cell's rep, not in a container: nothing of the image is executed, and it
// is wired in through cell.Config.DockerStager.
package dockerstager

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/registry"
)

// DefaultTimeout bounds one resolution, whatever the staging timeout: a
// healthy registry answers in well under a second, a silent one is cut off
// by the client's per-request timeout long before this.
const DefaultTimeout = 2 * time.Minute

// Resolver resolves an image reference (registry.Client does).
type Resolver interface {
	Resolve(ctx context.Context, ref string, creds *registry.Credentials) (*registry.Image, error)
}

// Stager stages docker packages with a Resolver.
type Stager struct {
	resolver Resolver
	timeout  time.Duration
}

// New returns a Stager resolving with r.
func New(r Resolver) *Stager {
	return &Stager{resolver: r, timeout: DefaultTimeout}
}

// Error is a staging failure the developer can act on: its message is
// meant for the staging log and the build's error, and never holds the
// registry password.
type Error struct {
	Kind    registry.Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

// StagingFailure is the failure the cell reports (the API words it): the
// kind for the registry's Kind, the message as its detail.
func (e *Error) StagingFailure() pando.Failure {
	kind := pando.FailureImageInvalid
	switch e.Kind {
	case registry.Unauthorized:
		kind = pando.FailureRegistryDenied
	case registry.NotFound:
		kind = pando.FailureImageNotFound
	case registry.Unreachable:
		kind = pando.FailureRegistryDown
	case registry.NoPlatform:
		kind = pando.FailureImageNoPlatform
	}
	return pando.Failure{Kind: kind, Detail: e.Message}
}

// Stage resolves req.DockerImage with req's credentials, writes progress
// lines to out (the staging log) and returns the pinned image, its
// execution metadata and the web process's start command.
func (s *Stager) Stage(ctx context.Context, req pando.StagingRequest, out func(line string)) (pando.StagingResult, error) {
	ref := strings.TrimSpace(req.DockerImage)
	if ref == "" {
		return pando.StagingResult{}, &Error{Kind: registry.BadReference, Message: "the docker package names no image"}
	}
	var creds *registry.Credentials
	if req.DockerUsername != "" || req.DockerPassword != "" {
		creds = &registry.Credentials{Username: req.DockerUsername, Password: req.DockerPassword}
		out(fmt.Sprintf("Staging docker image %s as registry user %s...", ref, req.DockerUsername))
	} else {
		out(fmt.Sprintf("Staging docker image %s...", ref))
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	img, err := s.resolver.Resolve(rctx, ref, creds)
	if err != nil {
		if ctx.Err() != nil {
			// The staging's own end (timeout, cancel): the cell says why.
			return pando.StagingResult{}, ctx.Err()
		}
		return pando.StagingResult{}, failure(err, req.DockerPassword)
	}
	switch {
	case img.IndexDigest != "":
		out(fmt.Sprintf("Resolved %s to %s (linux/amd64 of index %s)", ref, img.Digest, img.IndexDigest))
	case strings.HasSuffix(ref, "@"+img.Digest):
		// Nothing to resolve: "Resolved R@D to D" would say nothing.
		out(fmt.Sprintf("Using digest %s as given", img.Digest))
	default:
		out(fmt.Sprintf("Resolved %s to %s", ref, img.Digest))
	}
	var size int64
	for _, l := range img.Layers {
		size += l.Size
	}
	layers := "1 layer"
	if len(img.Layers) != 1 {
		layers = strconv.Itoa(len(img.Layers)) + " layers"
	}
	out(fmt.Sprintf("Image %s: %s, %s compressed", img.Pinned, layers, humanSize(size)))

	md := Metadata(img.Config)
	if len(md.Ports) == 0 {
		out("Exposed ports: none (the app listens on PORT=8080)")
	} else {
		ps := make([]string, 0, len(md.Ports))
		for _, p := range md.Ports {
			ps = append(ps, strconv.Itoa(p.Port)+"/"+p.Protocol)
		}
		out("Exposed ports: " + strings.Join(ps, ", ") + fmt.Sprintf(" (the app listens on PORT=%d)", md.Ports[0].Port))
	}
	if md.User == "" {
		out("User: root (the image sets no USER)")
	} else {
		out("User: " + md.User)
	}
	if md.Workdir != "" {
		out("Working directory: " + md.Workdir)
	}
	cmd := md.StartCommand()
	if cmd == "" {
		out("Start command: none (the image has no ENTRYPOINT or CMD: give one with -c)")
	} else {
		out("Start command: " + cmd)
	}
	js, err := json.Marshal(md)
	if err != nil {
		return pando.StagingResult{}, fmt.Errorf("execution metadata of %s: %w", ref, err)
	}
	out("Staging complete")
	return pando.StagingResult{
		Image:             img.Pinned,
		ExecutionMetadata: string(js),
		StartCommand:      cmd,
		ProcessTypes:      map[string]string{"web": cmd},
	}, nil
}

// Metadata is the execution metadata of an image config.
func Metadata(c registry.Config) pando.ExecutionMetadata {
	md := pando.ExecutionMetadata{
		Cmd: c.Cmd, Entrypoint: c.Entrypoint, Workdir: c.WorkingDir, User: c.User, Env: c.Env,
	}
	for _, p := range c.ExposedPorts {
		md.Ports = append(md.Ports, pando.Port{Port: p.Port, Protocol: p.Protocol})
	}
	return md
}

// failure turns a resolution error into the staging error the developer
// reads (through the API's wording). The registry's messages say what went
// wrong (credentials refused, which repository or tag is missing, which
// registry did not answer) and are free of the password; it is scrubbed
// again all the same.
func failure(err error, password string) error {
	kind := registry.KindOf(err)
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "***")
	}
	return &Error{Kind: kind, Message: msg}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
