package uaa

import (
	"errors"
	"net/http"
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
)

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	form := r.PostForm
	// Client authentication, as UAA requires it: HTTP Basic "cf:" as the
	// cf CLI sends, or client_id (and an empty client_secret) in the form.
	clientID, clientSecret, ok := r.BasicAuth()
	if !ok {
		clientID, clientSecret = form.Get("client_id"), form.Get("client_secret")
	}
	if clientID == "" {
		oauthError(w, http.StatusUnauthorized, "unauthorized", "Full authentication is required to access this resource")
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
		var ge *grantError
		if errors.As(err, &ge) {
			oauthError(w, http.StatusUnauthorized, ge.code, ge.description)
			return
		}
		s.log.ErrorContext(r.Context(), "token request failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "The server could not issue a token; see the server log.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// grantError is a refused grant (401 with an OAuth error code).
type grantError struct{ code, description string }

func (e *grantError) Error() string { return e.code + ": " + e.description }

func (s *Service) passwordGrant(r *http.Request, username, password string) (tokenResponse, error) {
	ctx := r.Context()
	if username == "" || password == "" {
		return tokenResponse{}, &grantError{"unauthorized", msgBadCredentials}
	}
	now := s.now()
	if s.lockout.locked(username, now) {
		s.log.WarnContext(ctx, "login refused: account locked", "user_name", username, "remote_addr", r.RemoteAddr)
		return tokenResponse{}, &grantError{"unauthorized", msgLocked}
	}
	u, err := s.users.GetUserByName(ctx, username)
	if err != nil && !pando.IsNotFound(err) {
		return tokenResponse{}, err
	}
	hash := []byte(u.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = s.dummyHash // same cost as a real comparison
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		s.lockout.fail(username, now)
		s.log.InfoContext(ctx, "login failed", "user_name", username, "remote_addr", r.RemoteAddr)
		return tokenResponse{}, &grantError{"unauthorized", msgBadCredentials}
	}
	s.lockout.succeed(username)
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
