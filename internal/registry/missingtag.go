package registry

import (
	"context"
	"errors"
	"fmt"
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
	p, perr := remote.NewPuller(append(opts, remote.WithPageSize(tagsPage))...)
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
	shown := page.Tags[:min(len(page.Tags), missingTagShown)]
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
