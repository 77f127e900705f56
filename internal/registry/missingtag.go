package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// missingTagShown is how many of a repository's tags a "no such tag"
// error names; one page of tagsPage is read, never more.
const (
	missingTagShown = 10
	tagsPage        = 100
	// maxTagsBody bounds the tags answer read (a registry may ignore the
	// page size); maxTagShown bounds each tag named (Docker's tags are at
	// most 128 characters).
	maxTagsBody = 256 << 10
	maxTagShown = 128
)

// explainMissingTag sharpens e, the NotFound of tag's manifest: many
// registries (distribution among them) answer MANIFEST_UNKNOWN for a
// repository they do not have too. One page of the repository's tags
// tells which it is, and names some tags the user may have meant. When the
// list cannot be read (a registry that does not serve it, or denies it),
// e stands.
func (c *Client) explainMissingTag(ctx context.Context, e *Error, err error, tag name.Tag, opts []remote.Option) *Error {
	var terr *transport.Error
	if e.Kind != NotFound || !errors.As(err, &terr) || !hasCode(terr, transport.ManifestUnknownErrorCode) {
		return e
	}
	repo := tag.Context()
	p, perr := remote.NewPuller(append(opts, remote.WithPageSize(tagsPage), remote.WithTransport(limitedBodies{c.transport, maxTagsBody}))...)
	if perr != nil {
		return e
	}
	l, lerr := p.Lister(ctx, repo)
	var page *remote.Tags
	if lerr == nil {
		page, lerr = l.Next(ctx)
	}
	var lterr *transport.Error
	switch {
	case lerr != nil && errors.As(lerr, &lterr) && (hasCode(lterr, transport.NameUnknownErrorCode) || lterr.StatusCode == http.StatusNotFound):
		return &Error{Kind: NotFound, Ref: e.Ref, Message: fmt.Sprintf("%s not found: registry %s has no repository %s", e.Ref, repo.RegistryStr(), repo.RepositoryStr())}
	case lerr != nil || page == nil:
		return e
	case len(page.Tags) == 0:
		return &Error{Kind: NotFound, Ref: e.Ref, Message: fmt.Sprintf("%s not found: repository %s has no tags", e.Ref, repo.Name())}
	}
	shown := make([]string, 0, missingTagShown)
	for _, t := range page.Tags[:min(len(page.Tags), missingTagShown)] {
		shown = append(shown, truncate(t, maxTagShown))
	}
	more := ""
	if len(page.Tags) > len(shown) || page.Next != "" {
		more = ", ..."
	}
	return &Error{Kind: NotFound, Ref: e.Ref, Message: fmt.Sprintf("%s not found: repository %s has no tag %q (its tags: %s%s)",
		e.Ref, repo.Name(), tag.TagStr(), strings.Join(shown, ", "), more)}
}

func hasCode(terr *transport.Error, code transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// limitedBodies cuts every response body after max bytes (the reader
// then fails to decode it, and the caller's error stands) and closes the
// connection there, so a registry still sending is not left waiting.
type limitedBodies struct {
	rt  http.RoundTripper
	max int64
}

func (l limitedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &cutBody{rc: resp.Body, left: l.max}
	}
	return resp, err
}

// cutBody reads rc up to left bytes, then closes it and reports EOF.
type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.rc.Close()
		return 0, io.EOF
	}
	n, err := b.rc.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }
