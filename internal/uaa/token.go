package uaa

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/pandoplatform/pando"
)

// Scopes. Admins get cloud_controller.admin on top of the user scopes.
const (
	ScopeAdmin = "cloud_controller.admin"
)

var (
	userScopes  = []string{"openid", "cloud_controller.read", "cloud_controller.write", "uaa.user"}
	adminScopes = []string{"openid", ScopeAdmin, "cloud_controller.read", "cloud_controller.write", "uaa.user"}
	audience    = jwt.ClaimStrings{"cloud_controller", "openid", "uaa", ClientID}
)

// refreshSuffix marks a refresh token's jti, as UAA does.
const refreshSuffix = "-r"

// claims are UAA's token claims, the ones the cf CLI decodes (exp, user_id,
// user_name, origin, scope) and the rest UAA carries.
type claims struct {
	jwt.RegisteredClaims
	UserID    string   `json:"user_id"`
	UserName  string   `json:"user_name"`
	Email     string   `json:"email,omitempty"`
	Origin    string   `json:"origin"`
	ClientID  string   `json:"client_id"`
	CID       string   `json:"cid"`
	AZP       string   `json:"azp"`
	Scope     []string `json:"scope"`
	GrantType string   `json:"grant_type"`
	ZID       string   `json:"zid"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	// Refresh tokens only: revocable marks them, rev_sig ties them to the
	// user's current password so a password change revokes them.
	Revocable bool   `json:"revocable,omitempty"`
	RevSig    string `json:"rev_sig,omitempty"`
}

func (c *claims) isRefresh() bool {
	return c.Revocable || strings.HasSuffix(c.ID, refreshSuffix)
}

// Identity is the authenticated caller.
type Identity struct {
	UserGUID string
	UserName string
	Admin    bool
	Scopes   []string // the token's, for the API's authorization
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// IdentityFrom returns the identity Middleware put in ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Errors the API maps to CF's 401 bodies. The cf CLI keys on the title.
func errInvalidToken() *pando.Error {
	return &pando.Error{Kind: pando.EUnauthenticated, Title: "CF-InvalidAuthToken", Code: 1000, Message: "Invalid Auth Token"}
}

func errNotAuthenticated() *pando.Error {
	return &pando.Error{Kind: pando.EUnauthenticated, Title: "CF-NotAuthenticated", Code: 10002, Message: "Authentication error"}
}

// tokenResponse is /oauth/token's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	JTI          string `json:"jti"`
}

func scopesFor(u pando.User) []string {
	if u.Admin {
		return slices.Clone(adminScopes)
	}
	return slices.Clone(userScopes)
}

// revSig ties a refresh token to the user's current password hash.
func revSig(u pando.User) string {
	sum := sha256.Sum256([]byte(u.GUID + "\x00" + u.PasswordHash + "\x00" + ClientID))
	return hex.EncodeToString(sum[:8])
}

func newJTI() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// sign signs c with the service key.
func (s *Service) sign(c *claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// baseClaims fills what access and refresh tokens share.
func (s *Service) baseClaims(u pando.User, grantType string, now time.Time, ttl time.Duration, authTime int64) *claims {
	return &claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        newJTI(),
			Subject:   u.GUID,
			Issuer:    s.issuer,
			Audience:  audience,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		UserID:    u.GUID,
		UserName:  u.Name,
		Email:     u.Name,
		Origin:    "uaa",
		ClientID:  ClientID,
		CID:       ClientID,
		AZP:       ClientID,
		Scope:     scopesFor(u),
		GrantType: grantType,
		ZID:       "uaa",
		AuthTime:  authTime,
	}
}

// issue makes an access token for u. With refresh empty it also makes a
// refresh token; otherwise that (still valid) refresh token is returned
// again, as UAA does for non-rotating refresh tokens.
func (s *Service) issue(u pando.User, grantType, refresh string, authTime int64) (tokenResponse, error) {
	now := s.now()
	if authTime == 0 {
		authTime = now.Unix()
	}
	ac := s.baseClaims(u, grantType, now, s.accessTTL, authTime)
	access, err := s.sign(ac)
	if err != nil {
		return tokenResponse{}, err
	}
	if refresh == "" {
		rc := s.baseClaims(u, grantType, now, s.refreshTTL, authTime)
		rc.ID += refreshSuffix
		rc.Revocable = true
		rc.RevSig = revSig(u)
		if refresh, err = s.sign(rc); err != nil {
			return tokenResponse{}, err
		}
	}
	return tokenResponse{
		AccessToken:  access,
		TokenType:    "bearer",
		RefreshToken: refresh,
		ExpiresIn:    int64(s.accessTTL / time.Second),
		Scope:        strings.Join(ac.Scope, " "),
		JTI:          ac.ID,
	}, nil
}

// parse checks a token's signature, algorithm and expiry.
func (s *Service) parse(raw string) (*claims, error) {
	c := &claims{}
	_, err := jwt.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		if kid, ok := t.Header["kid"].(string); ok && kid != s.kid {
			return nil, errors.New("unknown signing key")
		}
		return &s.key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, err
	}
	if c.UserID == "" {
		return nil, errors.New("token has no user_id")
	}
	return c, nil
}

// Verify checks an Authorization header ("bearer <jwt>", any case) and
// returns the caller. Errors are *pando.Error of kind EUnauthenticated with
// CF's titles: CF-NotAuthenticated when there is no header,
// CF-InvalidAuthToken otherwise (bad signature, expired, a refresh token,
// a deleted user's).
//
// The issuer is not checked: only this service's key signs tokens, and the
// issuer URL changes when the operator moves the API address, which would
// otherwise log everyone out.
func (s *Service) Verify(ctx context.Context, authorization string) (Identity, error) {
	authorization = strings.TrimSpace(authorization)
	if authorization == "" {
		return Identity{}, errNotAuthenticated()
	}
	scheme, raw, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return Identity{}, errInvalidToken()
	}
	c, err := s.parse(strings.TrimSpace(raw))
	if err != nil {
		s.log.DebugContext(ctx, "token rejected", "err", err)
		return Identity{}, errInvalidToken()
	}
	if c.isRefresh() {
		s.log.DebugContext(ctx, "token rejected: refresh token used as access token", "user_name", c.UserName)
		return Identity{}, errInvalidToken()
	}
	// A deleted user's tokens end with the user, not at their expiry.
	live, err := s.live.check(ctx, s.users, c.UserID, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "token rejected: cannot look the user up", "user_name", c.UserName, "err", err)
		return Identity{}, errInvalidToken()
	}
	if !live {
		s.log.InfoContext(ctx, "token rejected: the user was deleted", "user_name", c.UserName)
		return Identity{}, errInvalidToken()
	}
	return Identity{
		UserGUID: c.UserID,
		UserName: c.UserName,
		Admin:    slices.Contains(c.Scope, ScopeAdmin),
		Scopes:   c.Scope,
	}, nil
}

// Authenticate is Verify on a request's Authorization header.
func (s *Service) Authenticate(r *http.Request) (Identity, error) {
	return s.Verify(r.Context(), r.Header.Get("Authorization"))
}

// Middleware lets through requests with a valid access token, with the
// caller's Identity in the request context, and answers others with CF's
// 401 bodies.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.Authenticate(r)
		if err != nil {
			pe := errInvalidToken()
			errors.As(err, &pe)
			writeCFError(w, http.StatusUnauthorized, pe.Code, pe.Title, pe.Message)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

func writeCFError(w http.ResponseWriter, status, code int, title, detail string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"code": code, "title": title, "detail": detail}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}
