package cc

import (
	"context"
	"net/http"
	"slices"

	"github.com/pandoplatform/pando"
)

// Users as Cloud Controller shows them. UAA (internal/uaa) and the CC
// share one user table: `cf create-user` makes the user at UAA's /Users,
// then POST /v3/users with the same GUID finds it.

func (a *API) registerUserRoutes(h func(string, handlerFunc)) {
	h("GET /v3/users", a.listUsers)
	h("POST /v3/users", a.postUser)
	h("GET /v3/users/{guid}", a.getUser)
	h("DELETE /v3/users/{guid}", a.deleteUserHandler)
}

func (a *API) presentUser(u pando.User) map[string]any {
	return map[string]any{
		"guid":              u.GUID,
		"created_at":        ts(u.CreatedAt),
		"updated_at":        ts(u.CreatedAt),
		"username":          u.Name,
		"presentation_name": u.Name,
		"origin":            "uaa",
		"metadata":          metadata(),
		"links":             map[string]any{"self": link(a.url("/v3/users/%s", u.GUID))},
	}
}

// visibleUsers filters users to those the caller may see: all for admins
// and global readers; otherwise themselves and everyone with a role in an
// org or space they see.
func (a *API) visibleUsers(ctx context.Context, users []pando.User) ([]pando.User, error) {
	p := permsFrom(ctx)
	if p.readAll {
		return users, nil
	}
	seen := map[string]bool{p.userGUID: true}
	var orgs, spaces []string
	for o := range p.orgs {
		orgs = append(orgs, o)
	}
	for s := range p.spaces {
		spaces = append(spaces, s)
	}
	for _, f := range []pando.RoleFilter{{OrgGUIDs: orgs}, {SpaceGUIDs: spaces}} {
		if len(f.OrgGUIDs) == 0 && len(f.SpaceGUIDs) == 0 {
			continue
		}
		roles, err := a.store.ListRoles(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range roles {
			seen[r.UserGUID] = true
		}
	}
	return slices.DeleteFunc(users, func(u pando.User) bool { return !seen[u.GUID] }), nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	users, err := a.store.ListUsers(ctx, splitList(q, "guids"), splitList(q, "usernames"))
	if err != nil {
		return err
	}
	if origins := splitList(q, "origins"); len(origins) > 0 && !slices.Contains(origins, "uaa") {
		users = nil
	}
	if users, err = a.visibleUsers(ctx, users); err != nil {
		return err
	}
	paginate(a, w, r, users, func(u pando.User) sortable {
		return sortable{name: u.Name, createdAt: u.CreatedAt, updatedAt: u.CreatedAt}
	}, func(u pando.User) any { return a.presentUser(u) })
	return nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.store.GetUser(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "User")
	}
	vis, err := a.visibleUsers(ctx, []pando.User{u})
	if err != nil {
		return err
	}
	if len(vis) == 0 {
		return notFound("User")
	}
	writeJSON(w, http.StatusOK, a.presentUser(u))
	return nil
}

// postUser is POST /v3/users {"guid"}: the user must exist in UAA already
// (POST /Users), since both share the user table.
func (a *API) postUser(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		GUID string `json:"guid"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.GUID == "" {
		return invalid("Guid can't be blank")
	}
	u, err := a.store.GetUser(r.Context(), in.GUID)
	if pando.IsNotFound(err) {
		return invalid("No UAA user has guid '%s': create the user with UAA's POST /Users (cf create-user) first", in.GUID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.presentUser(u))
	return nil
}

// userDeletedNotifier is an Authenticator that must hear of a deleted user
// to refuse their tokens at once (UAA caches which users exist).
type userDeletedNotifier interface{ UserDeleted(guid string) }

func (a *API) deleteUserHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.store.GetUser(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "User")
	}
	if u.GUID == identityFrom(ctx).UserGUID {
		return invalid("You cannot delete yourself")
	}
	job := a.runJob(ctx, "user.delete", "user", u.GUID, func(ctx context.Context) error {
		if err := a.store.DeleteUser(ctx, u.GUID); err != nil && !pando.IsNotFound(err) {
			return err
		}
		if n, ok := a.cfg.Auth.(userDeletedNotifier); ok {
			n.UserDeleted(u.GUID)
		}
		return nil
	})
	a.writeJobAccepted(w, job)
	return nil
}
