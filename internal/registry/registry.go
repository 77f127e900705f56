// Package registry resolves container image references against OCI and
// Docker registries: it pins a tag to the digest of the linux/amd64
// manifest, reads the image's execution metadata (entrypoint, cmd, env,
// user, workdir, exposed ports) and layer list, and streams blobs by
// digest for the cell's layer cache (internal/layers). Every failure is an
// *Error with a Kind and a message that is safe to show (no credentials).
package registry

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Defaults of Options.
const (
	DefaultRequestTimeout   = 30 * time.Second
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxLayers        = 256
	// maxRefLength bounds a reference string (docker's own bound on a
	// repository name is 255; a tag or digest and a host add some).
	maxRefLength = 512
)

// Options configure a Client. The zero value is usable: no insecure
// registries, the defaults above.
type Options struct {
	// Insecure lists registries (HOST:PORT, or HOST for port 443/80 as the
	// reference names it) that may be spoken to over plain HTTP. Every other
	// registry is HTTPS only, loopback addresses included.
	Insecure []string
	// RequestTimeout bounds each HTTP request: waiting for response
	// headers, and any pause between body bytes (so a large layer may take
	// longer as long as it keeps flowing).
	RequestTimeout time.Duration
	// MaxManifestBytes bounds a manifest, index or image config.
	MaxManifestBytes int64
	// MaxLayers bounds the number of layers of an image.
	MaxLayers int
	// RootCAs, when set, replaces the system's trusted roots for HTTPS
	// registries (a private CA).
	RootCAs *x509.CertPool
	// Transport replaces the base HTTP transport (tests); the guards of
	// this package still wrap it. RootCAs does not apply to it.
	Transport http.RoundTripper
	// UserAgent is sent with every request.
	UserAgent string
}

// Credentials authenticate to a registry: basic auth, or the token dance
// (docker's bearer tokens) with these as the client's credentials. nil
// means anonymous.
type Credentials struct {
	Username string
	Password string
}

// String never shows the password, so a stray %v (of the struct or a
// pointer to it) cannot leak it.
func (c Credentials) String() string {
	return fmt.Sprintf("user %q, password ***", c.Username)
}

// GoString hides the password from %#v too.
func (c Credentials) GoString() string { return c.String() }

// LogValue hides the password from log/slog.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("password", "***"))
}

// Client talks to registries. It is safe for concurrent use and holds a
// pool of connections; make one per process.
type Client struct {
	opts      Options
	insecure  map[string]bool
	transport http.RoundTripper
	auths     authCache // blob transports, by repository and credentials
}

// New returns a Client with opts, defaults filled in.
func New(opts Options) (*Client, error) {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if opts.MaxLayers <= 0 {
		opts.MaxLayers = DefaultMaxLayers
	}
	insecure := map[string]bool{}
	for _, h := range opts.Insecure {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("insecure registry %q: want HOST:PORT", h)
		}
		insecure[h] = true
	}
	base := opts.Transport
	if base == nil {
		base = newBaseTransport(opts.RequestTimeout, opts.RootCAs)
	}
	return &Client{
		opts:     opts,
		insecure: insecure,
		transport: &guard{
			inner:        base,
			insecure:     insecure,
			timeout:      opts.RequestTimeout,
			maxManifests: opts.MaxManifestBytes,
		},
	}, nil
}

// parse parses ref the way docker does ("nginx" is
// index.docker.io/library/nginx:latest), marking listed registries
// insecure so go-containerregistry may speak HTTP to them.
func (c *Client) parse(ref string) (name.Reference, error) {
	if ref == "" || len(ref) > maxRefLength {
		return nil, &Error{Kind: BadReference, Ref: ref, Message: fmt.Sprintf("invalid image reference %q: want [HOST[:PORT]/]NAME[:TAG|@DIGEST], at most %d characters", truncate(ref, 64), maxRefLength)}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, &Error{Kind: BadReference, Ref: ref, Message: fmt.Sprintf("invalid image reference %q: %v", ref, err)}
	}
	if c.insecure[strings.ToLower(r.Context().RegistryStr())] {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, &Error{Kind: BadReference, Ref: ref, Message: fmt.Sprintf("invalid image reference %q: %v", ref, err)}
		}
	}
	return r, nil
}

func (c *Client) remoteAuth(creds *Credentials) authn.Authenticator {
	if creds != nil && (creds.Username != "" || creds.Password != "") {
		return authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password})
	}
	return authn.Anonymous
}

func (c *Client) remoteOptions(ctx context.Context, creds *Credentials) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(c.remoteAuth(creds)),
		remote.WithTransport(c.transport),
		// A few quick retries of 5xx and network flakes; 4xx, refused
		// connections and our own timeouts are not retried.
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
	if c.opts.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.opts.UserAgent))
	}
	return opts
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
