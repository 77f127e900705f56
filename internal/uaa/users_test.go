package uaa

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

func (m *memUsers) ListUsers(_ context.Context, guids, names []string) ([]pando.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pando.User
	for _, u := range m.users {
		if (len(guids) == 0 || slices.Contains(guids, u.GUID)) && (len(names) == 0 || slices.Contains(names, u.Name)) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *memUsers) DeleteUser(_ context.Context, guid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[guid]; !ok {
		return pando.Errorf(pando.ENotFound, "user %q not found", guid)
	}
	delete(m.users, guid)
	return nil
}

// scim sends a SCIM request with a bearer token and decodes the answer.
func (f *fixture) scim(t *testing.T, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *fixture) passwordLogin(t *testing.T, user, password string) (int, string) {
	t.Helper()
	code, body := f.token(t, url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}})
	tok, _ := body["access_token"].(string)
	return code, tok
}

// TestUsers_cfCreateUserPasswdAndDelete replays cf create-user (trace 32),
// then the new user logs in, changes their password (cf passwd) and is
// deleted.
func TestUsers_cfCreateUserPasswdAndDelete(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t)["access_token"].(string)

	code, list := f.scim(t, admin, "GET", "/Users?filter="+url.QueryEscape(`userName eq "dev" and origin eq "uaa"`), "")
	if code != 200 || list["totalResults"] != float64(0) {
		t.Fatalf("filter before create: %d %v", code, list)
	}
	body := `{"userName":"dev","password":"dev-pw","origin":"","name":{"familyName":"dev","givenName":"dev"},"emails":[{"value":"dev","primary":true}]}`
	code, created := f.scim(t, admin, "POST", "/Users", body)
	if code != http.StatusCreated || created["id"] == "" || created["userName"] != "dev" || created["origin"] != "uaa" {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	if code, dup := f.scim(t, admin, "POST", "/Users", body); code != http.StatusConflict {
		t.Errorf("duplicate create: %d %v", code, dup)
	}
	code, list = f.scim(t, admin, "GET", "/Users?filter="+url.QueryEscape(`userName eq "dev" and origin eq "uaa"`), "")
	if code != 200 || list["totalResults"] != float64(1) {
		t.Fatalf("filter after create: %d %v", code, list)
	}
	if code, _ := f.scim(t, admin, "GET", "/Users?filter="+url.QueryEscape(`userName co "d"`), ""); code != http.StatusBadRequest {
		t.Errorf("unsupported filter: %d", code)
	}

	// The new user logs in with a password, as admin does, without admin
	// scopes; they may not manage users.
	code, dev := f.passwordLogin(t, "dev", "dev-pw")
	if code != 200 {
		t.Fatalf("dev login: %d", code)
	}
	idDev, err := f.svc.Verify(t.Context(), "bearer "+dev)
	if err != nil || idDev.Admin || idDev.UserGUID != id {
		t.Fatalf("dev's token: %+v %v", idDev, err)
	}
	if code, _ := f.scim(t, dev, "POST", "/Users", `{"userName":"x","password":"y"}`); code != http.StatusForbidden {
		t.Errorf("non-admin create: %d", code)
	}
	if code, _ := f.scim(t, "", "GET", "/Users", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}

	// cf passwd.
	if code, _ := f.scim(t, dev, "PUT", "/Users/"+id+"/password", `{"oldPassword":"wrong","password":"new-pw"}`); code != http.StatusUnauthorized {
		t.Errorf("passwd with a wrong old password: %d", code)
	}
	if code, _ := f.scim(t, dev, "PUT", "/Users/"+created["id"].(string)+"/password", `{"oldPassword":"dev-pw","password":"new-pw"}`); code != 200 {
		t.Fatalf("passwd: %d", code)
	}
	if code, _ := f.passwordLogin(t, "dev", "dev-pw"); code == 200 {
		t.Error("the old password still logs in")
	}
	if code, _ := f.passwordLogin(t, "dev", "new-pw"); code != 200 {
		t.Errorf("the new password: %d", code)
	}
	// Nobody but admins changes another user's password.
	adminID, _ := f.svc.Verify(t.Context(), "bearer "+admin)
	if code, _ := f.scim(t, dev, "PUT", "/Users/"+adminID.UserGUID+"/password", `{"oldPassword":"secret","password":"mine"}`); code != http.StatusForbidden {
		t.Errorf("dev changing admin's password: %d", code)
	}

	if code, _ := f.scim(t, admin, "DELETE", "/Users/"+id, ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := f.passwordLogin(t, "dev", "new-pw"); code == 200 {
		t.Error("a deleted user still logs in")
	}
	if code, _ := f.scim(t, admin, "DELETE", "/Users/"+id, ""); code != http.StatusNotFound {
		t.Errorf("second delete: %d", code)
	}
}

// TestVerify_deletedUserTokensEndAtOnce: a user's access and refresh tokens
// stop working the moment the user is deleted, not at their expiry; a user
// deleted behind the service's back (straight from the table) is noticed
// within the cache's lifetime.
func TestVerify_deletedUserTokensEndAtOnce(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t)["access_token"].(string)
	mk := func(name string) (id, access, refresh string) {
		t.Helper()
		code, u := f.scim(t, admin, "POST", "/Users", `{"userName":"`+name+`","password":"pw-`+name+`"}`)
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", name, code, u)
		}
		code, body := f.token(t, url.Values{"grant_type": {"password"}, "username": {name}, "password": {"pw-" + name}})
		if code != http.StatusOK {
			t.Fatalf("login %s: %d", name, code)
		}
		access = body["access_token"].(string)
		if _, err := f.svc.Verify(t.Context(), "bearer "+access); err != nil {
			t.Fatalf("%s's fresh token: %v", name, err)
		}
		return u["id"].(string), access, body["refresh_token"].(string)
	}

	id, access, refresh := mk("gone")
	if code, _ := f.scim(t, admin, "DELETE", "/Users/"+id, ""); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if _, err := f.svc.Verify(t.Context(), "bearer "+access); pando.ErrorKindOf(err) != pando.EUnauthenticated {
		t.Errorf("a deleted user's access token: %v", err)
	}
	if code, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); code != http.StatusUnauthorized {
		t.Errorf("a deleted user's refresh token: %d %v", code, body)
	}
	if code, _ := f.scim(t, access, "GET", "/Users/"+id, ""); code != http.StatusUnauthorized {
		t.Errorf("a deleted user's SCIM request: %d", code)
	}

	// The API deletes users from the same table and tells the service.
	id2, access2, _ := mk("apigone")
	if err := f.users.DeleteUser(t.Context(), id2); err != nil {
		t.Fatal(err)
	}
	f.svc.UserDeleted(id2)
	if _, err := f.svc.Verify(t.Context(), "bearer "+access2); err == nil {
		t.Error("a user deleted through the API keeps a valid token")
	}

	// Deleted without a word: the cached answer holds at most liveTTL.
	id3, access3, _ := mk("quiet")
	if err := f.users.DeleteUser(t.Context(), id3); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(liveTTL)
	if _, err := f.svc.Verify(t.Context(), "bearer "+access3); err == nil {
		t.Errorf("a user deleted %v ago keeps a valid token", liveTTL)
	}
	// Others are untouched.
	if _, err := f.svc.Verify(t.Context(), "bearer "+admin); err != nil {
		t.Errorf("admin's token: %v", err)
	}
}

// TestUsers_passwdRevokesRefreshTokens: cf passwd (PUT /Users/:id/password)
// revokes the refresh tokens issued before, as UAA does; the access token
// in hand, a JWT, lasts until it expires, as UAA's do for the Cloud
// Controller, and a fresh login gets a refresh token that works.
func TestUsers_passwdRevokesRefreshTokens(t *testing.T) {
	f := newFixture(t)
	admin := f.login(t)["access_token"].(string)
	code, u := f.scim(t, admin, "POST", "/Users", `{"userName":"pat","password":"old-pw"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, u)
	}
	login := func(pw string) map[string]any {
		t.Helper()
		code, body := f.token(t, url.Values{"grant_type": {"password"}, "username": {"pat"}, "password": {pw}})
		if code != http.StatusOK {
			t.Fatalf("login: %d %v", code, body)
		}
		return body
	}
	before := login("old-pw")
	access := before["access_token"].(string)
	if code, _ := f.scim(t, access, "PUT", "/Users/"+u["id"].(string)+"/password", `{"oldPassword":"old-pw","password":"new-pw"}`); code != http.StatusOK {
		t.Fatalf("passwd: %d", code)
	}
	if code, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before["refresh_token"].(string)}}); code != http.StatusUnauthorized {
		t.Errorf("refresh token from before the password change: %d", code)
	}
	if _, err := f.svc.Verify(t.Context(), "bearer "+access); err != nil {
		t.Errorf("access token in hand: %v", err)
	}
	after := login("new-pw")
	if code, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {after["refresh_token"].(string)}}); code != http.StatusOK {
		t.Errorf("refresh token from after: %d %v", code, body)
	}
}
