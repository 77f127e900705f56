package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Link is one entry of a links object.
type Link struct {
	Href   string `json:"href"`
	Method string `json:"method,omitempty"`
	Meta   struct {
		Version string `json:"version"`
	} `json:"meta"`
}

// Root is the API root document (GET /).
type Root struct {
	Links map[string]*Link `json:"links"`
}

// Href returns the href of the named link, or "".
func (r *Root) Href(name string) string {
	if r == nil || r.Links[name] == nil {
		return ""
	}
	return strings.TrimRight(r.Links[name].Href, "/")
}

// Version returns the advertised CC v3 API version.
func (r *Root) Version() string {
	if r == nil || r.Links["cloud_controller_v3"] == nil {
		return ""
	}
	return r.Links["cloud_controller_v3"].Meta.Version
}

// Root fetches (once) and returns the API root document.
func (c *Client) Root(ctx context.Context) (*Root, error) {
	c.mu.Lock()
	r := c.root
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var root Root
	if _, err := c.doRequest(ctx, request{method: http.MethodGet, url: "/", noAuth: true, timeout: 30 * time.Second}, &root); err != nil {
		return nil, fmt.Errorf("read API root: %w", err)
	}
	if root.Href("cloud_controller_v3") == "" {
		return nil, fmt.Errorf("%s does not look like a Pando or Cloud Foundry API (no cloud_controller_v3 link)", c.URL())
	}
	c.mu.Lock()
	c.root = &root
	c.mu.Unlock()
	return &root, nil
}

// loginURL is where /oauth/token lives: links.login (the cf CLI's choice),
// else links.uaa, else the API itself.
func (c *Client) loginURL(ctx context.Context) (string, error) {
	root, err := c.Root(ctx)
	if err != nil {
		return "", err
	}
	for _, name := range []string{"login", "uaa"} {
		if h := root.Href(name); h != "" {
			return h, nil
		}
	}
	return c.URL(), nil
}

// tokenResponse is the UAA token answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

func (c *Client) tokenGrant(ctx context.Context, form url.Values) (Tokens, error) {
	base, err := c.loginURL(ctx)
	if err != nil {
		return Tokens{}, err
	}
	body := []byte(form.Encode())
	h := http.Header{}
	h.Set("Authorization", "Basic Y2Y6") // base64("cf:"): client cf, empty secret
	var tr tokenResponse
	_, err = c.doRequest(ctx, request{
		method:      http.MethodPost,
		url:         base + "/oauth/token",
		body:        bytesBody(body),
		length:      int64(len(body)),
		contentType: "application/x-www-form-urlencoded",
		noAuth:      true,
		header:      h,
		timeout:     30 * time.Second,
	}, &tr)
	if err != nil {
		return Tokens{}, err
	}
	if tr.AccessToken == "" {
		return Tokens{}, errors.New("token endpoint answered without an access_token")
	}
	t := Tokens{Access: tr.AccessToken, Refresh: tr.RefreshToken}
	if t.Refresh == "" {
		t.Refresh = form.Get("refresh_token")
	}
	return t, nil
}

// PasswordGrant logs in with a username and password, stores the tokens in
// the client and returns them (OnTokens is not called: the caller saves).
func (c *Client) PasswordGrant(ctx context.Context, user, password string) (Tokens, error) {
	t, err := c.tokenGrant(ctx, url.Values{
		"grant_type": {"password"},
		"username":   {user},
		"password":   {password},
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("log in as %s: %w", user, err)
	}
	c.SetTokens(t)
	return t, nil
}

// RefreshGrant exchanges a refresh token for new tokens.
func (c *Client) RefreshGrant(ctx context.Context, refresh string) (Tokens, error) {
	t, err := c.tokenGrant(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refresh},
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh token: %w", err)
	}
	return t, nil
}

// expiring reports whether the access token has less than refreshMargin
// left, or carries no exp claim.
func (c *Client) expiring(access string) bool {
	cl, err := ParseClaims(access)
	if err != nil {
		// Not a JWT: nothing to read, let the server judge it.
		return false
	}
	if cl.Exp == 0 {
		return true
	}
	return time.Unix(cl.Exp, 0).Sub(c.now()) < refreshMargin
}

// accessToken returns a usable access token, refreshing it when it is about
// to expire. It returns "" when the client has no session and no way to
// make one (anonymous calls).
func (c *Client) accessToken(ctx context.Context) (string, error) {
	t := c.Tokens()
	if t.Access != "" && !c.expiring(t.Access) {
		return t.Access, nil
	}
	if t.Access == "" && t.Refresh == "" && c.reauth == nil {
		return "", nil
	}
	if err := c.renew(ctx, t.Access); err != nil {
		return "", err
	}
	return c.Tokens().Access, nil
}

// renew gets new tokens: first with the refresh token, then with Reauth.
// stale is the access token the caller found unusable; when another
// goroutine already replaced it, renew does nothing.
func (c *Client) renew(ctx context.Context, stale string) error {
	c.mu.Lock()
	for c.renewing != nil {
		ch := c.renewing
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	if c.tokens.Access != stale && c.tokens.Access != "" && !c.expiring(c.tokens.Access) {
		c.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.renewing = done
	t := c.tokens
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.renewing = nil
		c.mu.Unlock()
		close(done)
	}()

	var errs []error
	if t.Refresh != "" {
		nt, err := c.RefreshGrant(ctx, t.Refresh)
		if err == nil {
			c.store(nt)
			return nil
		}
		var transport net.Error
		if errors.As(err, &transport) {
			// The server did not answer: the session may well be
			// valid, and logging in again would meet the same wall.
			return fmt.Errorf("renew the session: %w", err)
		}
		errs = append(errs, err)
	}
	if c.reauth != nil {
		nt, err := c.reauth(ctx, c)
		if err == nil {
			c.store(nt)
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return errors.New("not logged in: run 'pando login'")
	}
	return fmt.Errorf("session expired: log in again with 'pando login' (%w)", errors.Join(errs...))
}

func (c *Client) store(t Tokens) {
	c.SetTokens(t)
	if c.onTokens != nil {
		c.onTokens(t)
	}
}

// drain discards what is left of a body so the connection can be reused.
func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	r.Close()
}
