// Package api is the pando CLI's HTTP client for the CF v3 API, the
// UAA-compatible token endpoint, the log-cache read API and Pando's own
// streaming additions (/pando/v1). It decodes CF error bodies into *Error,
// refreshes tokens before they expire, follows absolute hrefs and polls
// asynchronous jobs.
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxBody bounds every JSON response the client reads.
	maxBody = 32 << 20
	// maxPages bounds pagination so a server looping on next.href cannot
	// keep the client busy forever.
	maxPages = 1000
	// refreshMargin: refresh the access token when it has less than this
	// left (the cf CLI's rule).
	refreshMargin = 60 * time.Second
	// defaultCallTimeout bounds ordinary JSON calls.
	defaultCallTimeout = 2 * time.Minute
)

// Tokens are an OAuth access/refresh token pair.
type Tokens struct {
	Access  string
	Refresh string
}

// Config configures a Client.
type Config struct {
	// URL is the API base URL, e.g. http://127.0.0.1:9022.
	URL string
	// HTTPClient defaults to a client without a global timeout (long polls
	// and uploads need none; each call bounds itself).
	HTTPClient *http.Client
	Tokens     Tokens
	// OnTokens is called after the client obtained new tokens (refresh or
	// re-authentication), so the caller can persist them.
	OnTokens func(Tokens)
	// Reauth, when set, obtains fresh tokens when there are none or the
	// refresh token no longer works (e.g. the local admin's password).
	Reauth func(ctx context.Context, c *Client) (Tokens, error)
	// Now defaults to time.Now.
	Now func() time.Time
	// PollMin and PollMax bound the backoff of job/package/build polling
	// (defaults 100 ms and 1 s).
	PollMin, PollMax time.Duration
	// OutageWait is how long a wait for a build rides out a server that
	// cannot be reached or answers 502/503/504, e.g. while it restarts
	// (default 2 minutes).
	OutageWait time.Duration
}

// Client talks to one Pando (or CF) API endpoint. It is safe for concurrent
// use.
type Client struct {
	base     *url.URL
	http     *http.Client
	onTokens func(Tokens)
	reauth   func(ctx context.Context, c *Client) (Tokens, error)
	now      func() time.Time
	pollMin  time.Duration
	pollMax  time.Duration
	outage   time.Duration

	mu       sync.Mutex
	tokens   Tokens
	root     *Root
	renewing chan struct{} // non-nil while a goroutine renews the tokens
}

// New returns a client for cfg.URL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid API URL %q: want http(s)://host[:port]", cfg.URL)
	}
	c := &Client{
		base:     u,
		http:     cfg.HTTPClient,
		onTokens: cfg.OnTokens,
		reauth:   cfg.Reauth,
		now:      cfg.Now,
		pollMin:  cfg.PollMin,
		pollMax:  cfg.PollMax,
		outage:   cfg.OutageWait,
		tokens:   cfg.Tokens,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.pollMin <= 0 {
		c.pollMin = 100 * time.Millisecond
	}
	if c.pollMax < c.pollMin {
		c.pollMax = time.Second
	}
	if c.outage <= 0 {
		c.outage = 2 * time.Minute
	}
	return c, nil
}

// URL returns the API base URL.
func (c *Client) URL() string { return c.base.String() }

// Tokens returns the current tokens.
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// SetTokens replaces the tokens (without calling OnTokens).
func (c *Client) SetTokens(t Tokens) {
	c.mu.Lock()
	c.tokens = t
	c.mu.Unlock()
}

// Error is an error answer from the API: CF's {"errors":[...]} body, UAA's
// {"error","error_description"}, or an unexpected status.
type Error struct {
	Method     string
	URL        string
	StatusCode int
	Errors     []ErrorItem
	// Body holds the start of a body that was not a CF error document.
	Body string
}

// ErrorItem is one entry of a CF error body.
type ErrorItem struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	if len(e.Errors) > 0 {
		parts := make([]string, 0, len(e.Errors))
		for _, it := range e.Errors {
			switch {
			case it.Detail != "" && it.Title != "":
				parts = append(parts, fmt.Sprintf("%s (%s)", it.Detail, it.Title))
			case it.Detail != "":
				parts = append(parts, it.Detail)
			default:
				parts = append(parts, it.Title)
			}
		}
		return strings.Join(parts, "; ")
	}
	msg := fmt.Sprintf("%s %s: unexpected status %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// HasTitle reports whether any entry carries the CF title.
func (e *Error) HasTitle(title string) bool {
	for _, it := range e.Errors {
		if it.Title == title {
			return true
		}
	}
	return false
}

// renewError is a request refused for its token after renewing the
// session failed: its text says what the user does about it (log in).
type renewError struct {
	renew error
	api   *Error
}

func (e *renewError) Error() string   { return e.renew.Error() }
func (e *renewError) Unwrap() []error { return []error{e.renew, e.api} }

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == status
}

// IsNotFound reports whether err is a 404 from the API or a lookup by name
// that found nothing (ErrNotFound).
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || IsStatus(err, http.StatusNotFound)
}

func decodeError(method, u string, status int, body []byte) *Error {
	e := &Error{Method: method, URL: u, StatusCode: status}
	var cf struct {
		Errors []ErrorItem `json:"errors"`
		// UAA shape.
		Err  string `json:"error"`
		Desc string `json:"error_description"`
	}
	if json.Unmarshal(body, &cf) == nil {
		switch {
		case len(cf.Errors) > 0:
			e.Errors = cf.Errors
			return e
		case cf.Err != "" || cf.Desc != "":
			e.Errors = []ErrorItem{{Title: cf.Err, Detail: cf.Desc}}
			return e
		}
	}
	const maxShown = 200
	if len(body) > maxShown {
		body = body[:maxShown]
	}
	e.Body = string(body)
	return e
}

// resolve turns a path ("/v3/apps?...") or an absolute href into a URL.
func (c *Client) resolve(ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %w", ref, err)
	}
	if u.IsAbs() {
		return u.String(), nil
	}
	b := *c.base
	b.Path = strings.TrimRight(b.Path, "/") + "/" + strings.TrimLeft(u.Path, "/")
	b.RawQuery = u.RawQuery
	return b.String(), nil
}

// request is one API call.
type request struct {
	method string
	url    string // path or absolute URL
	// body returns a fresh reader for each attempt (nil: no body).
	body        func() (io.ReadCloser, error)
	contentType string
	length      int64
	// noAuth skips the Authorization header (UAA calls carry basic auth).
	noAuth bool
	header http.Header
	// timeout bounds the call (0: defaultCallTimeout; <0: none).
	timeout time.Duration
}

func jsonBody(v any) (func() (io.ReadCloser, error), int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("encode request: %w", err)
	}
	return bytesBody(b), int64(len(b)), nil
}

func bytesBody(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// send performs r with authentication, a retry on 401 after renewing the
// token, and retries of GETs on transient failures. The caller closes the
// response body. Non-2xx answers become *Error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u, err := c.resolve(r.url)
	if err != nil {
		return nil, err
	}
	renewed := false
	for attempt := 0; ; attempt++ {
		resp, err := c.sendOnce(ctx, r, u)
		if err != nil {
			// A certificate the client does not trust stays untrusted.
			var badCert *tls.CertificateVerificationError
			if r.method == http.MethodGet && attempt < 2 && ctx.Err() == nil && !errors.As(err, &badCert) {
				if werr := sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, err
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		apiErr := decodeError(r.method, u, resp.StatusCode, body)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !r.noAuth && !renewed:
			renewed = true
			if rerr := c.renew(ctx, c.Tokens().Access); rerr != nil {
				// What to do first; the API's 401 stays in the chain.
				return nil, &renewError{renew: rerr, api: apiErr}
			}
			continue
		case resp.StatusCode == http.StatusTooManyRequests && attempt < 2 && retryAfter(resp) <= maxRetryAfter:
			// Refused before any work (UAA's login throttle): safe to
			// send again, whatever the method, once the server says so.
			if werr := sleep(ctx, retryAfter(resp)); werr != nil {
				return nil, werr
			}
			continue
		case r.method == http.MethodGet && attempt < 2 &&
			(resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout):
			if werr := sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond); werr != nil {
				return nil, werr
			}
			continue
		}
		return nil, apiErr
	}
}

// maxRetryAfter is the longest Retry-After a request waits out by itself;
// longer ones are the user's to wait for.
const maxRetryAfter = 5 * time.Second

// retryAfter is a 429's Retry-After in seconds (1 s when absent or not a
// number of seconds).
func retryAfter(resp *http.Response) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || n < 1 {
		return time.Second
	}
	return time.Duration(n) * time.Second
}

func (c *Client) sendOnce(ctx context.Context, r request, u string) (*http.Response, error) {
	var body io.ReadCloser
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, u, err)
	}
	if body != nil {
		req.ContentLength = r.length
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pando-cli")
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if !r.noAuth {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			req.Header.Set("Authorization", "bearer "+tok)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && ctx.Err() == nil {
			return nil, fmt.Errorf("cannot reach the API at %s: %w", c.URL(), op)
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, u, err)
	}
	return resp, nil
}

// do sends a JSON request and decodes a JSON answer into out (if non-nil).
// It returns the response headers.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	r := request{method: method, url: path}
	if in != nil {
		b, n, err := jsonBody(in)
		if err != nil {
			return nil, err
		}
		r.body, r.length, r.contentType = b, n, "application/json"
	}
	return c.doRequest(ctx, r, out)
}

func (c *Client) doRequest(ctx context.Context, r request, out any) (http.Header, error) {
	timeout := r.timeout
	if timeout == 0 {
		timeout = defaultCallTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", r.method, r.url, err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", r.method, r.url, maxBody)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode response: %w", r.method, r.url, err)
		}
	}
	return resp.Header, nil
}

// page is CF's paginated list envelope.
type page[T any] struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
		Next         *struct {
			Href string `json:"href"`
		} `json:"next"`
	} `json:"pagination"`
	Resources []T `json:"resources"`
}

// list GETs path and every following page (next.href, followed verbatim).
func list[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	next := path
	for i := 0; next != ""; i++ {
		if i >= maxPages {
			return nil, fmt.Errorf("GET %s: more than %d pages", path, maxPages)
		}
		var p page[T]
		if _, err := c.do(ctx, http.MethodGet, next, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Resources...)
		next = ""
		if p.Pagination.Next != nil {
			next = p.Pagination.Next.Href
		}
	}
	return all, nil
}

// Job is a CF asynchronous job.
type Job struct {
	GUID     string      `json:"guid"`
	State    string      `json:"state"`
	Errors   []ErrorItem `json:"errors"`
	Warnings []struct {
		Detail string `json:"detail"`
	} `json:"warnings"`
}

// WaitJob polls the job at location (an absolute URL or a path) until it
// completes. A FAILED job becomes an *Error carrying the job's errors.
func (c *Client) WaitJob(ctx context.Context, location string) error {
	if location == "" {
		return nil
	}
	b := c.backoff()
	for {
		var j Job
		if _, err := c.do(ctx, http.MethodGet, location, nil, &j); err != nil {
			return fmt.Errorf("poll job: %w", err)
		}
		switch j.State {
		case "COMPLETE":
			return nil
		case "FAILED":
			errs := j.Errors
			if len(errs) == 0 {
				errs = []ErrorItem{{Detail: "job " + j.GUID + " failed"}}
			}
			return &Error{Method: http.MethodGet, URL: location, StatusCode: http.StatusOK, Errors: errs}
		}
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// doJob sends a request answered by 202 + Location and waits for the job.
func (c *Client) doJob(ctx context.Context, r request, out any) error {
	h, err := c.doRequest(ctx, r, out)
	if err != nil {
		return err
	}
	return c.WaitJob(ctx, h.Get("Location"))
}

// backoff yields waits from PollMin doubling to PollMax.
type backoff struct {
	cur, max time.Duration
}

// serverAway reports whether err means the server could not be reached
// or its front answered for it (502, 503, 504): worth waiting out, unlike
// an answer of the API itself.
func serverAway(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode == http.StatusBadGateway || e.StatusCode == http.StatusServiceUnavailable || e.StatusCode == http.StatusGatewayTimeout
	}
	var transport *url.Error
	var dial *net.OpError // "cannot reach the API": connection refused
	var badCert *tls.CertificateVerificationError
	return (errors.As(err, &transport) || errors.As(err, &dial)) && !errors.As(err, &badCert)
}

func (c *Client) backoff() *backoff { return &backoff{cur: c.pollMin, max: c.pollMax} }

func (b *backoff) wait(ctx context.Context) error {
	d := b.cur
	b.cur *= 2
	if b.cur > b.max {
		b.cur = b.max
	}
	return sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Claims are the JWT claims the CLI reads. The CLI never verifies the
// signature: the server does.
type Claims struct {
	Exp      int64  `json:"exp"`
	UserName string `json:"user_name"`
	UserID   string `json:"user_id"`
}

// ParseClaims decodes the payload of a JWT without verifying it.
func ParseClaims(token string) (Claims, error) {
	var cl Claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return cl, errors.New("access token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return cl, fmt.Errorf("decode JWT payload: %w", err)
	}
	if err := json.Unmarshal(raw, &cl); err != nil {
		return cl, fmt.Errorf("decode JWT claims: %w", err)
	}
	return cl, nil
}
