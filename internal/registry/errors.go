package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind classifies why a registry operation failed, so staging can tell the
// developer what to do (fix credentials, fix the reference, list the
// registry as insecure, ...).
type Kind string

// Error kinds.
const (
	// Unauthorized: the registry refused the credentials (or wants some).
	Unauthorized Kind = "unauthorized"
	// NotFound: the repository, tag, manifest or blob does not exist.
	NotFound Kind = "not_found"
	// Unreachable: no answer (connection refused, DNS, TLS, timeout, plain
	// HTTP from a registry not listed as insecure, 5xx, rate limits).
	Unreachable Kind = "unreachable"
	// NoPlatform: the image has no linux/amd64 variant.
	NoPlatform Kind = "no_platform"
	// BadImage: the manifest or config is malformed, unsupported or over a
	// limit.
	BadImage Kind = "bad_image"
	// BadReference: the reference itself does not parse.
	BadReference Kind = "bad_reference"
)

// Error is what every failing call of this package returns. Its message
// is complete and safe to show and log: it never holds credentials (the
// registry's own error text is scrubbed of the password before it is
// quoted).
type Error struct {
	Kind    Kind
	Ref     string // the reference as the caller gave it
	Message string
	// ctxErr is the caller's context error when the operation was
	// cancelled, so errors.Is(err, context.Canceled) works. Other causes
	// are not kept: their text may quote a registry's answer verbatim.
	ctxErr error
}

func (e *Error) Error() string { return e.Message }

// Unwrap exposes the context error of a cancelled operation, nothing else.
func (e *Error) Unwrap() error { return e.ctxErr }

// KindOf returns the Kind of the first *Error in err's chain, or "".
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// errPlainHTTP refuses a plain-HTTP request to a registry that is not
// listed as insecure.
type errPlainHTTP struct{ host string }

func (e *errPlainHTTP) Error() string {
	return fmt.Sprintf("plain HTTP to %s refused: it is not listed as an insecure registry", e.host)
}

// errTimeout is the cause of a request cancelled for taking too long.
type errTimeout struct {
	host string
	what string
}

func (e *errTimeout) Error() string { return fmt.Sprintf("registry %s %s", e.host, e.what) }

// errTooLarge reports a manifest or config over its bound.
type errTooLarge struct {
	what  string
	limit int64
}

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("%s is larger than %d bytes", e.what, e.limit)
}

// maxDetail bounds how much of a cause's text is quoted in a message.
const maxDetail = 300

// scrub removes the secret from s and bounds its length.
func scrub(s string, creds *Credentials) string {
	if creds != nil && creds.Password != "" {
		s = strings.ReplaceAll(s, creds.Password, "***")
	}
	if len(s) > maxDetail {
		s = s[:maxDetail] + "..."
	}
	return s
}

// classify turns err from a registry exchange about ref into an *Error.
// fallback is the kind of errors that say nothing more specific (a parse
// error of a manifest is a BadImage, an unknown transport failure is
// Unreachable).
func (c *Client) classify(ctx context.Context, err error, ref, host string, creds *Credentials, fallback Kind) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	mk := func(kind Kind, format string, args ...any) *Error {
		return &Error{Kind: kind, Ref: ref, Message: scrub(fmt.Sprintf(format, args...), creds)}
	}
	if ctx.Err() != nil {
		out := mk(Unreachable, "resolving %s: %v", ref, ctx.Err())
		out.ctxErr = ctx.Err()
		return out
	}
	var (
		terr    *transport.Error
		plain   *errPlainHTTP
		dialErr *net.OpError
		timeout *errTimeout
		large   *errTooLarge
		netErr  net.Error
		x509Err x509.UnknownAuthorityError
		hostErr x509.HostnameError
		certErr *tls.CertificateVerificationError
	)
	switch {
	// A certificate problem first: go-containerregistry also tries plain
	// HTTP on loopback and private addresses, and that refusal would hide
	// the real problem.
	case errors.As(err, &certErr), errors.As(err, &x509Err), errors.As(err, &hostErr):
		return mk(Unreachable, "cannot reach registry %s over TLS: %v", host, err)
	case errors.As(err, &plain) && errors.As(err, &dialErr) && dialErr.Op == "dial":
		// go-containerregistry fell back to plain HTTP after HTTPS could
		// not even connect: nothing answers there, whatever the scheme.
		return mk(Unreachable, "cannot reach registry %s: %v (a registry that serves plain HTTP must also be listed with pando server --insecure-registry %s)", host, dialErr, host)
	case errors.As(err, &plain):
		return mk(Unreachable, "registry %s answers only plain HTTP, which Pando allows only for registries its operator lists as insecure (pando server --insecure-registry %s, and the same on each pando cell)", host, host)
	case errors.As(err, &timeout):
		return mk(Unreachable, "%s while resolving %s", timeout.Error(), ref)
	case errors.As(err, &large):
		return mk(BadImage, "image %s: %s", ref, large.Error())
	case errors.As(err, &terr):
		return classifyStatus(terr, ref, host, creds)
	case errors.As(err, &netErr):
		return mk(Unreachable, "cannot reach registry %s: %v", host, err)
	}
	if fallback == Unreachable {
		return mk(Unreachable, "cannot reach registry %s: %v", host, err)
	}
	return mk(fallback, "image %s: %v", ref, err)
}

func classifyStatus(terr *transport.Error, ref, host string, creds *Credentials) *Error {
	codes := map[transport.ErrorCode]bool{}
	for _, d := range terr.Errors {
		codes[d.Code] = true
	}
	mk := func(kind Kind, format string, args ...any) *Error {
		return &Error{Kind: kind, Ref: ref, Message: scrub(fmt.Sprintf(format, args...), creds)}
	}
	anon := creds == nil || (creds.Username == "" && creds.Password == "")
	switch {
	case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
		codes[transport.UnauthorizedErrorCode] || codes[transport.DeniedErrorCode]:
		if anon {
			return mk(Unauthorized, "unauthorized: registry %s refused anonymous access to %s (the repository does not exist or needs credentials)", host, ref)
		}
		return mk(Unauthorized, "unauthorized: registry %s refused the credentials for %s (or the repository does not exist)", host, ref)
	case codes[transport.NameUnknownErrorCode]:
		return mk(NotFound, "repository of %s not found on registry %s", ref, host)
	case codes[transport.ManifestUnknownErrorCode]:
		return mk(NotFound, "%s not found: the repository has no such tag or manifest", ref)
	case codes[transport.BlobUnknownErrorCode]:
		return mk(NotFound, "%s: registry %s lost a blob of the image", ref, host)
	case terr.StatusCode == http.StatusNotFound:
		return mk(NotFound, "%s not found on registry %s", ref, host)
	case terr.StatusCode == http.StatusTooManyRequests || codes[transport.TooManyRequestsErrorCode]:
		return mk(Unreachable, "registry %s is rate-limiting requests for %s; try again later", host, ref)
	case codes[transport.NameInvalidErrorCode] || codes[transport.TagInvalidErrorCode]:
		return mk(BadReference, "registry %s rejects the reference %s: %v", host, ref, terr.Error())
	}
	return mk(Unreachable, "registry %s answered %d for %s: %v", host, terr.StatusCode, ref, terr.Error())
}
