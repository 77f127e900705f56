package registry

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// A blob download needs an authenticated transport for its repository:
// a ping of the registry for its challenge and, with bearer auth, a token
// request (two round trips, to a remote registry tens of milliseconds
// each). The client keeps them per repository and credentials for a
// while, and Resolve starts making one beside the manifest's fetch, so
// the layers' downloads that follow staging start at once.

const (
	// authTTL is how long an authenticated transport is kept. A bearer
	// transport fetches a new token itself when the registry refuses an
	// expired one.
	authTTL = 5 * time.Minute
	// maxAuths bounds the transports kept.
	maxAuths = 64
)

// authKey names one repository's transport for one set of credentials.
// The password is kept only as a hash.
type authKey struct {
	registry string // with its scheme: http and https are not the same
	repo     string
	user     string
	secret   [sha256.Size]byte
}

func newAuthKey(repo name.Repository, creds *Credentials) authKey {
	k := authKey{registry: repo.Scheme() + "://" + repo.RegistryStr(), repo: repo.RepositoryStr()}
	if creds != nil && (creds.Username != "" || creds.Password != "") {
		k.user = creds.Username
		k.secret = sha256.Sum256([]byte(creds.Username + "\x00" + creds.Password))
	}
	return k
}

type authEntry struct {
	done chan struct{}
	rt   http.RoundTripper
	err  error
	made time.Time // when done; zero before
}

// authCache holds the authenticated transports; one making of each is in
// flight at a time, shared by whoever needs it meanwhile.
type authCache struct {
	mu sync.Mutex
	m  map[authKey]*authEntry
}

// blobTransport returns the authenticated transport for repo and creds,
// making it (ping, token) unless a fresh one is kept or being made.
// Failures are not kept: the next call tries again.
func (c *Client) blobTransport(ctx context.Context, repo name.Repository, creds *Credentials) (http.RoundTripper, error) {
	e := c.authEntry(ctx, repo, creds)
	select {
	case <-e.done:
		return e.rt, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// warmBlobs starts making the blob transport of repo unless it is kept
// (Resolve calls it: the layers are fetched next).
func (c *Client) warmBlobs(ctx context.Context, repo name.Repository, creds *Credentials) {
	c.authEntry(ctx, repo, creds)
}

// authEntry is the kept or pending transport of repo and creds, or a new
// one being made.
func (c *Client) authEntry(ctx context.Context, repo name.Repository, creds *Credentials) *authEntry {
	k := newAuthKey(repo, creds)
	a := &c.auths
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.m[k]; ok && (e.made.IsZero() || time.Since(e.made) <= authTTL) {
		return e
	}
	e := &authEntry{done: make(chan struct{})}
	a.pruneLocked()
	if a.m == nil {
		a.m = map[authKey]*authEntry{}
	}
	if len(a.m) < maxAuths {
		a.m[k] = e
	}
	// Made apart from ctx: others may wait for it. Its requests are
	// bounded by the client's request timeout.
	go c.makeAuth(context.WithoutCancel(ctx), k, e, repo, creds)
	return e
}

func (c *Client) makeAuth(ctx context.Context, k authKey, e *authEntry, repo name.Repository, creds *Credentials) {
	rt, err := transport.NewWithContext(ctx, repo.Registry, c.remoteAuth(creds), c.transport, []string{repo.Scope(transport.PullScope)})
	if err == nil && c.opts.UserAgent != "" {
		rt = transport.NewUserAgent(rt, c.opts.UserAgent)
	}
	a := &c.auths
	a.mu.Lock()
	e.rt, e.err, e.made = rt, err, time.Now()
	if err != nil && a.m[k] == e {
		delete(a.m, k)
	}
	a.mu.Unlock()
	close(e.done)
}

// pruneLocked drops the expired transports. a.mu held.
func (a *authCache) pruneLocked() {
	for k, e := range a.m {
		if !e.made.IsZero() && time.Since(e.made) > authTTL {
			delete(a.m, k)
		}
	}
}
