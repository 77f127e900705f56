package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Blobs streams the blobs of one repository. It implements the source
// interface of internal/layers. The stream is NOT verified here: the
// consumer (the layer cache) hashes what it writes and discards a blob
// whose digest does not match.
type Blobs struct {
	c     *Client
	repo  name.Repository
	ref   string
	creds *Credentials
}

// Blobs returns a source of the blobs of ref's repository (ref is usually
// an Image's Pinned reference), authenticated with creds (nil:
// anonymous). It does no I/O until OpenBlob, and shares the client's
// authenticated transport for the repository and creds (made once, and
// already started by the Resolve of the image).
func (c *Client) Blobs(ref string, creds *Credentials) (*Blobs, error) {
	r, err := c.parse(ref)
	if err != nil {
		return nil, err
	}
	return &Blobs{c: c, repo: r.Context(), ref: ref, creds: creds}, nil
}

// OpenBlob starts streaming the blob with digest ("sha256:<hex>"). The
// caller closes the stream. Errors are *Error.
func (b *Blobs) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	ref := b.repo.Name() + "@" + digest
	host := b.repo.RegistryStr()
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, &Error{Kind: BadImage, Ref: ref, Message: fmt.Sprintf("invalid blob digest %q: %v", truncate(digest, 80), err)}
	}
	rt, err := b.c.blobTransport(ctx, b.repo, b.creds)
	if err != nil {
		return nil, b.c.classify(ctx, err, b.ref, host, b.creds, Unreachable)
	}
	url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", b.repo.Scheme(), host, b.repo.RepositoryStr(), h)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, b.c.classify(ctx, err, ref, host, b.creds, BadImage)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, b.c.classify(ctx, err, ref, host, b.creds, Unreachable)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, b.c.classify(ctx, err, ref, host, b.creds, Unreachable)
	}
	return &blobBody{rc: resp.Body, b: b, ctx: ctx, ref: ref}, nil
}

// blobBody classifies read errors (timeouts, resets) like the rest.
type blobBody struct {
	rc  io.ReadCloser
	b   *Blobs
	ctx context.Context
	ref string
}

func (r *blobBody) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		return n, r.b.c.classify(r.ctx, err, r.ref, r.b.repo.RegistryStr(), r.b.creds, Unreachable)
	}
	return n, err
}

func (r *blobBody) Close() error { return r.rc.Close() }
