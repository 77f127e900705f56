package uaa

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pandoplatform/pando"
	"golang.org/x/crypto/bcrypt"
)

// memUsers is an in-memory UserStore.
type memUsers struct {
	mu      sync.Mutex
	users   map[string]pando.User // by guid
	byNames int                   // GetUserByName calls
}

func (m *memUsers) lookups() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byNames
}

func newMemUsers() *memUsers { return &memUsers{users: map[string]pando.User{}} }

func (m *memUsers) GetUserByName(_ context.Context, name string) (pando.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byNames++
	for _, u := range m.users {
		if u.Name == name {
			return u, nil
		}
	}
	return pando.User{}, pando.Errorf(pando.ENotFound, "user %q not found", name)
}

func (m *memUsers) GetUser(_ context.Context, guid string) (pando.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[guid]
	if !ok {
		return pando.User{}, pando.Errorf(pando.ENotFound, "user %q not found", guid)
	}
	return u, nil
}

func (m *memUsers) UpdateUser(_ context.Context, u pando.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.GUID]; !ok {
		return pando.Errorf(pando.ENotFound, "user %q not found", u.GUID)
	}
	m.users[u.GUID] = u
	return nil
}

func (m *memUsers) CreateUser(_ context.Context, u pando.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.users {
		if x.Name == u.Name {
			return pando.Errorf(pando.EConflict, "user %q exists", u.Name)
		}
	}
	m.users[u.GUID] = u
	return nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	svc   *Service
	users *memUsers
	clock *clock
	srv   *httptest.Server
	mux   *http.ServeMux
	dir   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{users: newMemUsers(), clock: &clock{t: time.Now()}, dir: t.TempDir()}
	svc, err := New(Config{
		Users:      f.users,
		KeyPath:    filepath.Join(f.dir, "uaa-key.pem"),
		Issuer:     "http://127.0.0.1:9022/oauth/token",
		BcryptCost: bcrypt.MinCost,
		Now:        f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	if err := svc.EnsureAdmin(context.Background(), "admin", "secret"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	f.mux = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// token posts a token request the way the cf CLI does.
func (f *fixture) token(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("cf:")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode token response: %v", err)
	}
	return resp.StatusCode, body
}

func (f *fixture) login(t *testing.T) map[string]any {
	t.Helper()
	code, body := f.token(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}})
	if code != http.StatusOK {
		t.Fatalf("password grant: status %d, body %v", code, body)
	}
	return body
}

func TestPasswordGrant_tokenVerifies(t *testing.T) {
	f := newFixture(t)
	body := f.login(t)
	if body["token_type"] != "bearer" {
		t.Errorf("token_type = %v, want bearer", body["token_type"])
	}
	if body["expires_in"] != float64(1200) {
		t.Errorf("expires_in = %v, want 1200", body["expires_in"])
	}
	for _, k := range []string{"access_token", "refresh_token", "jti", "scope"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("%s missing in %v", k, body)
		}
	}
	id, err := f.svc.Verify(context.Background(), "bearer "+body["access_token"].(string))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.UserName != "admin" || !id.Admin || id.UserGUID == "" {
		t.Errorf("identity = %+v", id)
	}
	for _, want := range []string{"cloud_controller.read", "cloud_controller.write", "cloud_controller.admin"} {
		if !slices.Contains(id.Scopes, want) {
			t.Errorf("admin's scopes %v lack %s", id.Scopes, want)
		}
	}
	// The scheme is case-insensitive (the CLI sends token_type verbatim).
	if _, err := f.svc.Verify(context.Background(), "Bearer "+body["access_token"].(string)); err != nil {
		t.Errorf("Verify with Bearer: %v", err)
	}
}

func TestPasswordGrant_badCredentialsAre401(t *testing.T) {
	f := newFixture(t)
	for _, form := range []url.Values{
		{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}},
		{"grant_type": {"password"}, "username": {"nobody"}, "password": {"secret"}},
		{"grant_type": {"password"}, "username": {"admin"}},
	} {
		code, body := f.token(t, form)
		if code != http.StatusUnauthorized || body["error"] != "unauthorized" || body["error_description"] != "Bad credentials" {
			t.Errorf("%v: status %d body %v", form, code, body)
		}
	}
}

func TestTokenRequest_rejectsOtherClientsAndGrants(t *testing.T) {
	f := newFixture(t)
	code, body := f.token(t, url.Values{"grant_type": {"client_credentials"}})
	if code != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Errorf("client_credentials: status %d body %v", code, body)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/oauth/token", strings.NewReader("grant_type=password&username=admin&password=secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("other", "x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown client: status %d", resp.StatusCode)
	}
	// No client at all is refused, as UAA does.
	req, _ = http.NewRequest("POST", f.srv.URL+"/oauth/token", strings.NewReader("grant_type=password&username=admin&password=secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no client: status %d, want 401", resp.StatusCode)
	}
}

func TestRefreshGrant(t *testing.T) {
	f := newFixture(t)
	login := f.login(t)
	refresh := login["refresh_token"].(string)

	f.clock.Add(time.Minute)
	code, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if code != http.StatusOK {
		t.Fatalf("refresh: status %d body %v", code, body)
	}
	if body["access_token"] == login["access_token"] {
		t.Error("refresh returned the old access token")
	}
	if body["token_type"] != "bearer" {
		t.Errorf("token_type = %v", body["token_type"])
	}
	if _, err := f.svc.Verify(context.Background(), "bearer "+body["access_token"].(string)); err != nil {
		t.Errorf("refreshed token does not verify: %v", err)
	}

	// An access token is not a refresh token, and the reverse.
	code, body = f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login["access_token"].(string)}})
	if code != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Errorf("access token as refresh: status %d body %v", code, body)
	}
	if _, err := f.svc.Verify(context.Background(), "bearer "+refresh); pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Errorf("refresh token accepted as access token: %v", err)
	}
}

func TestRefreshGrant_revokedByPasswordChange(t *testing.T) {
	f := newFixture(t)
	refresh := f.login(t)["refresh_token"].(string)
	u, err := f.users.GetUserByName(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash, _ = f.svc.HashPassword("new-secret")
	f.users.mu.Lock()
	f.users.users[u.GUID] = u
	f.users.mu.Unlock()
	code, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if code != http.StatusUnauthorized {
		t.Errorf("refresh after password change: status %d body %v", code, body)
	}
}

func TestVerify_rejectsExpiredTokens(t *testing.T) {
	f := newFixture(t)
	login := f.login(t)
	access := "bearer " + login["access_token"].(string)
	f.clock.Add(DefaultAccessTTL - time.Second)
	if _, err := f.svc.Verify(context.Background(), access); err != nil {
		t.Fatalf("token rejected before expiry: %v", err)
	}
	f.clock.Add(2 * time.Second)
	_, err := f.svc.Verify(context.Background(), access)
	var pe *pando.Error
	if !asError(err, &pe) || pe.Kind != pando.EUnauthenticated || pe.Title != "CF-InvalidAuthToken" || pe.Message != "Invalid Auth Token" {
		t.Fatalf("expired token: %#v", err)
	}
	// The refresh token outlives the access token.
	code, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login["refresh_token"].(string)}})
	if code != http.StatusOK {
		t.Errorf("refresh after access expiry: status %d", code)
	}
	f.clock.Add(DefaultRefreshTTL)
	code, _ = f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login["refresh_token"].(string)}})
	if code != http.StatusUnauthorized {
		t.Errorf("expired refresh token: status %d", code)
	}
}

func asError(err error, target **pando.Error) bool {
	pe, ok := err.(*pando.Error)
	if ok {
		*target = pe
	}
	return ok
}

func TestVerify_rejectsForeignAndMalformedTokens(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // a different key
	foreign := other.login(t)["access_token"].(string)
	for _, h := range []string{"bearer " + foreign, "bearer not-a-jwt", "basic abc", "bearer", "bearer " + unsignedToken(t)} {
		if _, err := f.svc.Verify(context.Background(), h); pando.ErrorKindOf(err) != pando.EUnauthenticated {
			t.Errorf("%.30q accepted: %v", h, err)
		}
	}
}

func unsignedToken(t *testing.T) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"user_id": "x", "exp": time.Now().Add(time.Hour).Unix()})
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestToken_claimsDecodeAsTheCLIExpects(t *testing.T) {
	f := newFixture(t)
	access := f.login(t)["access_token"].(string)
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", access)
	}
	var header, payload map[string]any
	decodeSegment(t, parts[0], &header)
	decodeSegment(t, parts[1], &payload)
	if header["alg"] != "RS256" || header["kid"] != f.svc.PublicKey().Kid {
		t.Errorf("header = %v", header)
	}
	if _, ok := payload["exp"].(float64); !ok {
		t.Errorf("exp not numeric: %#v", payload["exp"])
	}
	if _, ok := payload["iat"].(float64); !ok {
		t.Errorf("iat not numeric: %#v", payload["iat"])
	}
	want := map[string]string{"user_name": "admin", "origin": "uaa", "client_id": "cf", "cid": "cf", "zid": "uaa",
		"grant_type": "password", "iss": "http://127.0.0.1:9022/oauth/token"}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("%s = %#v, want %q", k, payload[k], v)
		}
	}
	if s, _ := payload["user_id"].(string); s == "" || payload["sub"] != s {
		t.Errorf("user_id %#v, sub %#v", payload["user_id"], payload["sub"])
	}
	scope, ok := payload["scope"].([]any)
	if !ok || len(scope) == 0 {
		t.Fatalf("scope not an array: %#v", payload["scope"])
	}
	var hasAdmin bool
	for _, s := range scope {
		if s == "cloud_controller.admin" {
			hasAdmin = true
		}
	}
	if !hasAdmin {
		t.Errorf("admin scope missing: %v", scope)
	}
	if _, ok := payload["aud"].([]any); !ok {
		t.Errorf("aud not an array: %#v", payload["aud"])
	}
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestNew_keyPersistsAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	access := f.login(t)["access_token"].(string)
	keyPath := filepath.Join(f.dir, "uaa-key.pem")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := New(Config{Users: f.users, KeyPath: keyPath, Now: f.clock.Now, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	if again.PublicKey().Kid != f.svc.PublicKey().Kid {
		t.Error("key id changed across New calls")
	}
	if _, err := again.Verify(context.Background(), "bearer "+access); err != nil {
		t.Errorf("token from before the restart rejected: %v", err)
	}
}

func TestTokenKeys_verifyIssuedTokens(t *testing.T) {
	f := newFixture(t)
	access := f.login(t)["access_token"].(string)
	resp, err := http.Get(f.srv.URL + "/token_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var keys struct{ Keys []JWK }
	if err := json.NewDecoder(resp.Body).Decode(&keys); err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 {
		t.Fatalf("keys = %+v", keys)
	}
	k := keys.Keys[0]
	if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || !strings.HasPrefix(k.Value, "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("jwk = %+v", k)
	}
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if _, err := jwt.Parse(access, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		t.Errorf("token does not verify with the published key: %v", err)
	}
	resp2, err := http.Get(f.srv.URL + "/token_key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var one JWK
	if err := json.NewDecoder(resp2.Body).Decode(&one); err != nil || one.Kid != k.Kid {
		t.Errorf("token_key = %+v, %v", one, err)
	}
}

func TestLogin_offersOnlyUsernameAndPasswordPrompts(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Prompts map[string][]string
		Links   map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Prompts) != 2 || body.Prompts["username"][0] != "text" || body.Prompts["password"][0] != "password" {
		t.Errorf("prompts = %v", body.Prompts)
	}
	if body.Links["login"] != f.srv.URL {
		t.Errorf("links = %v", body.Links)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	access := f.login(t)["access_token"].(string)
	var got Identity
	h := f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = IdentityFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	cases := []struct {
		name, header string
		status       int
		body         string
	}{
		{"no header", "", 401, `{"errors":[{"code":10002,"detail":"Authentication error","title":"CF-NotAuthenticated"}]}`},
		{"bad token", "bearer nope", 401, `{"errors":[{"code":1000,"detail":"Invalid Auth Token","title":"CF-InvalidAuthToken"}]}`},
		{"good token", "bearer " + access, 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/v3/apps", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.body != "" && strings.TrimSpace(rec.Body.String()) != tc.body {
				t.Errorf("body %s, want %s", rec.Body.String(), tc.body)
			}
		})
	}
	if got.UserName != "admin" || !got.Admin {
		t.Errorf("identity in context = %+v", got)
	}
}

func TestEnsureAdmin_isIdempotent(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.EnsureAdmin(context.Background(), "admin", "secret"); err != nil {
		t.Fatal(err)
	}
	if len(f.users.users) != 1 {
		t.Errorf("users = %d, want 1", len(f.users.users))
	}
	f.login(t)
}

func TestEnsureAdmin_appliesANewPassword(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.EnsureAdmin(context.Background(), "admin", "other"); err != nil {
		t.Fatal(err)
	}
	if len(f.users.users) != 1 {
		t.Errorf("users = %d, want 1", len(f.users.users))
	}
	code, _ := f.token(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"secret"}})
	if code != http.StatusUnauthorized {
		t.Errorf("old password: status %d, want 401", code)
	}
	code, body := f.token(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"other"}})
	if code != http.StatusOK {
		t.Errorf("new password: status %d, body %v", code, body)
	}
}

func TestLoadOrCreateAdminPassword(t *testing.T) {
	dir := t.TempDir()
	p1, created, err := LoadOrCreateAdminPassword(dir)
	if err != nil || !created || len(p1) != 24 {
		t.Fatalf("first call: %q %v %v", p1, created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "admin-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", fi, err)
	}
	p2, created, err := LoadOrCreateAdminPassword(dir)
	if err != nil || created || p2 != p1 {
		t.Fatalf("second call: %q %v %v (first %q)", p2, created, err, p1)
	}
}
