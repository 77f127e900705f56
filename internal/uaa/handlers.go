package uaa

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"golang.org/x/crypto/bcrypt"
)

// maxFormBytes bounds a token request body.
const maxFormBytes = 64 << 10

// Routes registers UAA's endpoints on mux. They need no bearer token.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("GET /token_keys", s.handleTokenKeys)
	mux.HandleFunc("GET /token_key", s.handleTokenKey)
	s.userRoutes(mux)
}

// handleLogin answers the login info the cf CLI reads its prompts from.
// Only username and password are offered: a prompt the CLI does not know
// would be asked interactively and hang `cf login -u -p`.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	base := requestBase(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"app":            map[string]any{"version": "77.10.0"},
		"commit_id":      "pando",
		"entityID":       r.Host,
		"idpDefinitions": map[string]any{},
		"links": map[string]any{
			"login": base,
			"uaa":   base,
		},
		"prompts": map[string]any{
			"username": []string{"text", "Email"},
			"password": []string{"password", "Password"},
		},
		"showLoginLinks": false,
		"timestamp":      s.now().UTC().Format(time.RFC3339),
		"zone_name":      "uaa",
	})
}

// requestBase is the scheme and host the client used.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Service) handleTokenKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"keys": []JWK{s.PublicKey()}})
}

func (s *Service) handleTokenKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.PublicKey())
}

// oauthError writes an OAuth error body ({"error","error_description"}).
func oauthError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="UAA/oauth", error="`+code+`", error_description="`+description+`"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

const (
	msgBadCredentials = "Bad credentials"
	msgLocked         = "Your account has been locked because of too many failed attempts to login."
	msgFullAuth       = "Full authentication is required to access this resource"
)

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	// Browsers send Origin on every POST; no CLI does. A web page has no
	// business asking for a token, whatever it puts in the form.
	if r.Header.Get("Origin") != "" {
		oauthError(w, http.StatusForbidden, "access_denied", "Token requests from web pages are refused; log in with the cf or pando CLI.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	form := r.PostForm
	// Client authentication, as UAA requires it: HTTP Basic only ("cf:" as
	// the cf CLI sends it). Credentials in the form are refused: an HTML
	// form can send those, it cannot send an Authorization header.
	if form.Has("client_id") || form.Has("client_secret") || r.URL.Query().Has("client_id") || r.URL.Query().Has("client_secret") {
		oauthError(w, http.StatusUnauthorized, "unauthorized", "Client credentials must be sent in the Authorization header (HTTP Basic), not in the request.")
		return
	}
	clientID, clientSecret, ok := r.BasicAuth()
	if !ok || clientID == "" {
		oauthError(w, http.StatusUnauthorized, "unauthorized", msgFullAuth)
		return
	}
	if clientID != ClientID || clientSecret != "" {
		oauthError(w, http.StatusUnauthorized, "unauthorized", msgBadCredentials)
		return
	}
	var (
		resp tokenResponse
		err  error
	)
	switch gt := form.Get("grant_type"); gt {
	case "password":
		resp, err = s.passwordGrant(r, form.Get("username"), form.Get("password"))
	case "refresh_token":
		resp, err = s.refreshGrant(r, form.Get("refresh_token"))
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+gt)
		return
	}
	if err != nil {
		var (
			ge *grantError
			te *throttledError
		)
		switch {
		case errors.As(err, &ge):
			oauthError(w, http.StatusUnauthorized, ge.code, ge.description)
		case errors.As(err, &te):
			secs := max(1, int((te.retryAfter+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			wait := "1 second"
			if secs > 1 {
				wait = strconv.Itoa(secs) + " seconds"
			}
			oauthError(w, http.StatusTooManyRequests, "too_many_requests", fmt.Sprintf(te.format, wait))
		case r.Context().Err() != nil:
			// The client left while waiting; nobody reads this.
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The request was cancelled.")
		case pando.ErrorKindOf(err) == pando.EUnavailable: // the CCDB is down or busy
			s.log.WarnContext(r.Context(), "token request failed", "err", err)
			var pe *pando.Error
			errors.As(err, &pe)
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", pe.Message)
		default:
			s.log.ErrorContext(r.Context(), "token request failed", "err", err)
			oauthError(w, http.StatusInternalServerError, "server_error", "The server could not issue a token; see the server log.")
		}
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// grantError is a refused grant (401 with an OAuth error code).
type grantError struct{ code, description string }

func (e *grantError) Error() string { return e.code + ": " + e.description }

// throttledError is a login refused before its password was checked
// (429); format has one %s, the time to wait.
type throttledError struct {
	retryAfter time.Duration
	format     string
}

func (e *throttledError) Error() string { return "throttled: " + e.format }

// passwordGrant checks a password, cheapest refusals first: a locked
// user and address, then the address's rate, then the global bound on
// password comparisons; only then bcrypt.
func (s *Service) passwordGrant(r *http.Request, username, password string) (tokenResponse, error) {
	ctx := r.Context()
	if username == "" || password == "" {
		return tokenResponse{}, &grantError{"unauthorized", msgBadCredentials}
	}
	client := clientOf(s.clientAddr(r))
	now := s.now()
	if s.lockout.locked(username, client, now) {
		s.log.WarnContext(ctx, "login refused: account locked for this address", "user_name", username, "remote_addr", r.RemoteAddr)
		return tokenResponse{}, &grantError{"unauthorized", msgLocked}
	}
	if ok, wait := s.limiter.allow(client.key, now); !ok {
		s.log.WarnContext(ctx, "login refused: too many attempts from this address", "user_name", username, "remote_addr", r.RemoteAddr)
		return tokenResponse{}, &throttledError{wait, "Too many login attempts from your address; try again in %s."}
	}
	userKey := strings.ToLower(username)
	if !client.loopback {
		if full, wait := s.userFails.exhausted(userKey, now); full {
			s.log.WarnContext(ctx, "login refused: too many failed logins for this user from elsewhere", "user_name", username, "remote_addr", r.RemoteAddr)
			return tokenResponse{}, &throttledError{wait, "Too many failed logins for this user; try again in %s."}
		}
	}
	u, err := s.users.GetUserByName(ctx, username)
	if err != nil && !pando.IsNotFound(err) {
		return tokenResponse{}, err
	}
	hash := []byte(u.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = s.dummyHash // same cost as a real comparison
	}
	if gerr := s.bcryptGate.acquire(ctx); gerr != nil {
		if errors.Is(gerr, errBusy) {
			s.log.WarnContext(ctx, "login refused: password checks busy", "user_name", username, "remote_addr", r.RemoteAddr)
			return tokenResponse{}, &throttledError{time.Second, "The server is busy checking other logins; try again in %s."}
		}
		return tokenResponse{}, gerr
	}
	cmpErr := bcrypt.CompareHashAndPassword(hash, []byte(password))
	s.bcryptGate.release()
	if cmpErr != nil || err != nil {
		s.lockout.fail(username, client, now)
		if !client.loopback {
			s.userFails.allow(userKey, now)
		}
		s.log.InfoContext(ctx, "login failed", "user_name", username, "remote_addr", r.RemoteAddr)
		return tokenResponse{}, &grantError{"unauthorized", msgBadCredentials}
	}
	s.lockout.succeed(username, client)
	return s.issue(u, "password", "", 0)
}

func (s *Service) refreshGrant(r *http.Request, raw string) (tokenResponse, error) {
	ctx := r.Context()
	invalid := &grantError{"invalid_token", "The refresh token is invalid or expired; log in again."}
	if raw == "" {
		return tokenResponse{}, invalid
	}
	c, err := s.parse(raw)
	if err != nil {
		s.log.DebugContext(ctx, "refresh token rejected", "err", err)
		return tokenResponse{}, invalid
	}
	if !c.isRefresh() || c.CID != ClientID {
		s.log.DebugContext(ctx, "refresh token rejected: not a refresh token", "user_name", c.UserName)
		return tokenResponse{}, invalid
	}
	u, err := s.users.GetUser(ctx, c.UserID)
	if pando.IsNotFound(err) {
		return tokenResponse{}, invalid
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if c.RevSig != revSig(u) {
		s.log.InfoContext(ctx, "refresh token rejected: revoked by a password change", "user_name", u.Name)
		return tokenResponse{}, invalid
	}
	return s.issue(u, "refresh_token", raw, c.AuthTime)
}
