package uaa

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pandoplatform/pando"
	"golang.org/x/crypto/bcrypt"
)

// UAA's SCIM user endpoints, as `cf create-user`, `cf delete-user` and
// `cf passwd` use them. Admins (cloud_controller.admin, or a token with
// scim.read/scim.write) list, create and delete users; every user may
// change their own password given the old one.

const (
	ScopeSCIMRead  = "scim.read"
	ScopeSCIMWrite = "scim.write"
	// maxUserNameLen bounds user names (UAA's column is 255).
	maxUserNameLen = 255
	maxSCIMBody    = 64 << 10
)

func (s *Service) userRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /Users", s.handleListUsers)
	mux.HandleFunc("POST /Users", s.handleCreateUser)
	mux.HandleFunc("GET /Users/{id}", s.handleGetUser)
	mux.HandleFunc("DELETE /Users/{id}", s.handleDeleteUser)
	mux.HandleFunc("PUT /Users/{id}/password", s.handleChangePassword)
}

func scimError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": msg, "message": msg})
}

// caller checks the bearer token; admin says whether it may manage users.
func (s *Service) caller(w http.ResponseWriter, r *http.Request, needAdmin bool, read bool) (Identity, bool) {
	id, err := s.Authenticate(r)
	if err != nil {
		scimError(w, http.StatusUnauthorized, "invalid_token", "A valid access token is required")
		return id, false
	}
	ok := id.Admin || slices.Contains(id.Scopes, ScopeSCIMWrite) || (read && slices.Contains(id.Scopes, ScopeSCIMRead))
	if needAdmin && !ok {
		scimError(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope for this resource")
		return id, false
	}
	return id, true
}

func (s *Service) presentUser(u pando.User) map[string]any {
	created := u.CreatedAt.UTC().Format(time.RFC3339)
	return map[string]any{
		"id":       u.GUID,
		"userName": u.Name,
		"origin":   "uaa",
		"zoneId":   "uaa",
		"active":   true,
		"verified": true,
		"emails":   []any{map[string]any{"value": u.Name, "primary": true}},
		"name":     map[string]any{"familyName": u.Name, "givenName": u.Name},
		"meta":     map[string]any{"version": 0, "created": created, "lastModified": created},
		"schemas":  []string{"urn:scim:schemas:core:1.0"},
	}
}

// filterTerm is one `attr eq "value"` of a SCIM filter.
var filterTerm = regexp.MustCompile(`(?i)^\s*(username|origin|id)\s+eq\s+"([^"]*)"\s*$`)

// parseFilter understands what the cf CLI sends: `attr eq "v"` terms
// (userName, origin, id) joined by "and".
func parseFilter(f string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(f) == "" {
		return out, nil
	}
	for _, term := range regexp.MustCompile(`(?i)\s+and\s+`).Split(f, -1) {
		m := filterTerm.FindStringSubmatch(term)
		if m == nil {
			return nil, errors.New("Invalid filter expression: " + f + " (Pando supports userName, origin and id with eq, joined by and)")
		}
		out[strings.ToLower(m[1])] = m[2]
	}
	return out, nil
}

func (s *Service) handleListUsers(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.caller(w, r, true, true); !ok {
		return
	}
	q := r.URL.Query()
	f, err := parseFilter(q.Get("filter"))
	if err != nil {
		scimError(w, http.StatusBadRequest, "invalid_filter", err.Error())
		return
	}
	var guids, names []string
	if v, ok := f["id"]; ok {
		guids = []string{v}
	}
	if v, ok := f["username"]; ok {
		names = []string{v}
	}
	users, err := s.users.ListUsers(r.Context(), guids, names)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list users", "err", err)
		scimError(w, http.StatusInternalServerError, "server_error", "Could not list users")
		return
	}
	if o, ok := f["origin"]; ok && o != "uaa" {
		users = nil
	}
	start, _ := strconv.Atoi(q.Get("startIndex"))
	start = max(start, 1)
	count, err := strconv.Atoi(q.Get("count"))
	if err != nil || count <= 0 || count > 500 {
		count = 100
	}
	total := len(users)
	page := users[min(start-1, total):min(start-1+count, total)]
	res := make([]any, 0, len(page))
	for _, u := range page {
		res = append(res, s.presentUser(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"resources": res, "startIndex": start, "itemsPerPage": count, "totalResults": total,
		"schemas": []string{"urn:scim:schemas:core:1.0"},
	})
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) {
	id, ok := s.caller(w, r, false, true)
	if !ok {
		return
	}
	if r.PathValue("id") != id.UserGUID {
		if _, ok := s.caller(w, r, true, true); !ok {
			return
		}
	}
	u, err := s.users.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.userLookupError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.presentUser(u))
}

func (s *Service) userLookupError(w http.ResponseWriter, r *http.Request, err error) {
	if pando.IsNotFound(err) {
		scimError(w, http.StatusNotFound, "scim_resource_not_found", "User "+r.PathValue("id")+" does not exist")
		return
	}
	s.log.ErrorContext(r.Context(), "get user", "err", err)
	scimError(w, http.StatusInternalServerError, "server_error", "Could not read the user")
}

func readSCIM(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSCIMBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxSCIMBody {
		return errors.New("request body is too large")
	}
	return json.Unmarshal(body, v)
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.caller(w, r, true, false); !ok {
		return
	}
	var in struct {
		UserName string `json:"userName"`
		Password string `json:"password"`
		Origin   string `json:"origin"`
	}
	if err := readSCIM(r, &in); err != nil {
		scimError(w, http.StatusBadRequest, "invalid_scim_resource", "Request body must be a SCIM user: "+err.Error())
		return
	}
	switch {
	case strings.TrimSpace(in.UserName) == "" || len(in.UserName) > maxUserNameLen || strings.ContainsAny(in.UserName, "\x00\r\n\t"):
		scimError(w, http.StatusBadRequest, "invalid_scim_resource", "A username must be 1 to 255 printable characters")
		return
	case in.Origin != "" && in.Origin != "uaa":
		scimError(w, http.StatusBadRequest, "invalid_scim_resource", "Pando's users have origin uaa only")
		return
	case in.Password == "":
		scimError(w, http.StatusBadRequest, "invalid_password", "A password is required")
		return
	}
	hash, err := s.HashPassword(in.Password)
	if err != nil {
		scimError(w, http.StatusBadRequest, "invalid_password", err.Error())
		return
	}
	u := pando.User{GUID: uuid.NewString(), Name: in.UserName, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.users.CreateUser(r.Context(), u); err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			scimError(w, http.StatusConflict, "scim_resource_already_exists", "Username already in use: "+in.UserName)
			return
		}
		s.log.ErrorContext(r.Context(), "create user", "err", err)
		scimError(w, http.StatusInternalServerError, "server_error", "Could not create the user")
		return
	}
	s.log.InfoContext(r.Context(), "user created", "user_name", u.Name)
	writeJSON(w, http.StatusCreated, s.presentUser(u))
}

func (s *Service) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := s.caller(w, r, true, false)
	if !ok {
		return
	}
	u, err := s.users.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.userLookupError(w, r, err)
		return
	}
	if u.GUID == id.UserGUID {
		scimError(w, http.StatusBadRequest, "invalid_request", "You cannot delete yourself")
		return
	}
	if err := s.users.DeleteUser(r.Context(), u.GUID); err != nil && !pando.IsNotFound(err) {
		s.log.ErrorContext(r.Context(), "delete user", "err", err)
		scimError(w, http.StatusInternalServerError, "server_error", "Could not delete the user")
		return
	}
	s.UserDeleted(u.GUID)
	s.log.InfoContext(r.Context(), "user deleted", "user_name", u.Name)
	writeJSON(w, http.StatusOK, s.presentUser(u))
}

// handleChangePassword is `cf passwd`: a user changes their own password
// given the old one; an admin sets anyone's. Refresh tokens issued before
// stop working (they are bound to the password hash).
func (s *Service) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	id, ok := s.caller(w, r, false, false)
	if !ok {
		return
	}
	self := r.PathValue("id") == id.UserGUID
	if !self {
		if _, ok := s.caller(w, r, true, false); !ok {
			return
		}
	}
	var in struct {
		OldPassword string `json:"oldPassword"`
		Password    string `json:"password"`
	}
	if err := readSCIM(r, &in); err != nil {
		scimError(w, http.StatusBadRequest, "invalid_request", "Request body must be JSON: "+err.Error())
		return
	}
	if in.Password == "" {
		scimError(w, http.StatusBadRequest, "invalid_password", "A new password is required")
		return
	}
	u, err := s.users.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.userLookupError(w, r, err)
		return
	}
	if self {
		if gerr := s.bcryptGate.acquire(r.Context()); gerr != nil {
			scimError(w, http.StatusTooManyRequests, "too_many_requests", "The server is busy checking passwords; try again in a moment")
			return
		}
		cmp := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(in.OldPassword))
		s.bcryptGate.release()
		if cmp != nil {
			scimError(w, http.StatusUnauthorized, "unauthorized", "Old password is incorrect")
			return
		}
	}
	if u.PasswordHash, err = s.HashPassword(in.Password); err != nil {
		scimError(w, http.StatusBadRequest, "invalid_password", err.Error())
		return
	}
	if err := s.users.UpdateUser(r.Context(), u); err != nil {
		s.log.ErrorContext(r.Context(), "change password", "err", err)
		scimError(w, http.StatusInternalServerError, "server_error", "Could not change the password")
		return
	}
	s.log.InfoContext(r.Context(), "password changed", "user_name", u.Name, "by", id.UserName)
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "message": "password updated"})
}
