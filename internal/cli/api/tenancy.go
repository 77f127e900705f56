package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Orgs, spaces, users (UAA's /Users and CC's /v3/users), roles and org
// quotas, as the cf CLI's team verbs use them (shared/cf-traces 28-35).

// Rel is a to-one relationship.
type Rel struct {
	Data *struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

// GUID returns the related resource's GUID, or "".
func (r Rel) GUID() string {
	if r.Data == nil {
		return ""
	}
	return r.Data.GUID
}

// User is a CC user (GET /v3/users, or included with roles).
type User struct {
	GUID             string `json:"guid"`
	Username         string `json:"username"`
	PresentationName string `json:"presentation_name"`
	Origin           string `json:"origin"`
}

// Name is the user's name as the cf CLI shows it.
func (u User) Name() string {
	if u.PresentationName != "" {
		return u.PresentationName
	}
	if u.Username != "" {
		return u.Username
	}
	return u.GUID
}

// Role is a CF role.
type Role struct {
	GUID          string `json:"guid"`
	Type          string `json:"type"`
	Relationships struct {
		User         Rel `json:"user"`
		Organization Rel `json:"organization"`
		Space        Rel `json:"space"`
	} `json:"relationships"`
}

// Quota is an organization quota; nil limits are unlimited.
type Quota struct {
	GUID string `json:"guid"`
	Name string `json:"name"`
	QuotaValues
	Relationships struct {
		Organizations struct {
			Data []struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"organizations"`
	} `json:"relationships"`
}

// QuotaValues are the limits of an org or space quota; nil is unlimited.
type QuotaValues struct {
	Apps struct {
		TotalMemoryInMB      *int64 `json:"total_memory_in_mb"`
		PerProcessMemoryInMB *int64 `json:"per_process_memory_in_mb"`
		TotalInstances       *int64 `json:"total_instances"`
		PerAppTasks          *int64 `json:"per_app_tasks"`
		LogRateLimit         *int64 `json:"log_rate_limit_in_bytes_per_second"`
	} `json:"apps"`
	Routes struct {
		TotalRoutes        *int64 `json:"total_routes"`
		TotalReservedPorts *int64 `json:"total_reserved_ports"`
	} `json:"routes"`
	Services struct {
		TotalServiceInstances *int64 `json:"total_service_instances"`
	} `json:"services"`
}

// QuotaLimits are the limit groups of a quota request ("apps", "routes",
// ...), each field a number or nil for unlimited. Fields left out keep
// their value on an update.
type QuotaLimits map[string]map[string]any

func byName[T any](ctx context.Context, c *Client, kind, name, path string) (*T, error) {
	items, err := list[T](ctx, c, path)
	if err != nil {
		return nil, fmt.Errorf("find %s %s: %w", kind, name, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s '%s' %w", kind, name, ErrNotFound)
	}
	return &items[0], nil
}

// OrgByName finds an organization; an error wrapping ErrNotFound when the
// caller sees none of that name.
func (c *Client) OrgByName(ctx context.Context, name string) (*Org, error) {
	return byName[Org](ctx, c, "organization", name, "/v3/organizations?"+url.Values{"names": {name}}.Encode())
}

// SpaceByName finds a space of an org.
func (c *Client) SpaceByName(ctx context.Context, orgGUID, name string) (*Space, error) {
	q := url.Values{"names": {name}, "organization_guids": {orgGUID}}
	return byName[Space](ctx, c, "space", name, "/v3/spaces?"+q.Encode())
}

// CreateOrg creates an organization.
func (c *Client) CreateOrg(ctx context.Context, name string) (*Org, error) {
	var o Org
	if _, err := c.do(ctx, http.MethodPost, "/v3/organizations", map[string]string{"name": name}, &o); err != nil {
		return nil, fmt.Errorf("create org %s: %w", name, err)
	}
	return &o, nil
}

// DeleteOrg deletes an organization and all it holds, waiting for the job.
func (c *Client) DeleteOrg(ctx context.Context, guid string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/organizations/" + url.PathEscape(guid)}, nil)
}

func relBody(guid string) map[string]any {
	return map[string]any{"data": map[string]string{"guid": guid}}
}

// CreateSpace creates a space in an org.
func (c *Client) CreateSpace(ctx context.Context, orgGUID, name string) (*Space, error) {
	var s Space
	body := map[string]any{"name": name, "relationships": map[string]any{"organization": relBody(orgGUID)}}
	if _, err := c.do(ctx, http.MethodPost, "/v3/spaces", body, &s); err != nil {
		return nil, fmt.Errorf("create space %s: %w", name, err)
	}
	return &s, nil
}

// DeleteSpace deletes a space and all it holds, waiting for the job.
func (c *Client) DeleteSpace(ctx context.Context, guid string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/spaces/" + url.PathEscape(guid)}, nil)
}

// uaaURL is where /Users lives: links.uaa, else links.login, else the API.
func (c *Client) uaaURL(ctx context.Context) (string, error) {
	root, err := c.Root(ctx)
	if err != nil {
		return "", err
	}
	for _, name := range []string{"uaa", "login"} {
		if h := root.Href(name); h != "" {
			return h, nil
		}
	}
	return c.URL(), nil
}

// UAAUserID finds a UAA user (origin uaa) by name and returns its id, or
// an error wrapping ErrNotFound.
func (c *Client) UAAUserID(ctx context.Context, name string) (string, error) {
	base, err := c.uaaURL(ctx)
	if err != nil {
		return "", err
	}
	filter := fmt.Sprintf(`userName eq %q and origin eq "uaa"`, name)
	var out struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"resources"`
	}
	if _, err := c.do(ctx, http.MethodGet, base+"/Users?"+url.Values{"filter": {filter}}.Encode(), nil, &out); err != nil {
		return "", fmt.Errorf("find user %s: %w", name, err)
	}
	if len(out.Resources) == 0 {
		return "", fmt.Errorf("user '%s' %w", name, ErrNotFound)
	}
	return out.Resources[0].ID, nil
}

// CreateUser creates a password user in UAA, then in Cloud Controller (as
// cf create-user does), and returns its GUID.
func (c *Client) CreateUser(ctx context.Context, name, password string) (string, error) {
	base, err := c.uaaURL(ctx)
	if err != nil {
		return "", err
	}
	in := map[string]any{
		"userName": name, "password": password, "origin": "",
		"name":   map[string]string{"familyName": name, "givenName": name},
		"emails": []any{map[string]any{"value": name, "primary": true}},
	}
	var out struct {
		ID string `json:"id"`
	}
	if _, err := c.do(ctx, http.MethodPost, base+"/Users", in, &out); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	if _, err := c.do(ctx, http.MethodPost, "/v3/users", map[string]string{"guid": out.ID}, nil); err != nil {
		return "", fmt.Errorf("create user %s in Cloud Controller: %w", name, err)
	}
	return out.ID, nil
}

// DeleteUser deletes a user from Cloud Controller (its roles go with it,
// as a job) and from UAA.
func (c *Client) DeleteUser(ctx context.Context, guid string) error {
	err := c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/users/" + url.PathEscape(guid)}, nil)
	if err != nil && !IsNotFound(err) {
		return err
	}
	base, err := c.uaaURL(ctx)
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, http.MethodDelete, base+"/Users/"+url.PathEscape(guid), nil, nil); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// ChangePassword changes a user's password (UAA's PUT /Users/:id/password).
func (c *Client) ChangePassword(ctx context.Context, userID, oldPassword, newPassword string) error {
	base, err := c.uaaURL(ctx)
	if err != nil {
		return err
	}
	in := map[string]string{"oldPassword": oldPassword, "password": newPassword}
	_, err = c.do(ctx, http.MethodPut, base+"/Users/"+url.PathEscape(userID)+"/password", in, nil)
	return err
}

// CreateRole gives a user (by name, origin uaa) a role in an organization
// or a space (scope "organization" or "space").
func (c *Client) CreateRole(ctx context.Context, typ, scope, scopeGUID, username string) (*Role, error) {
	body := map[string]any{
		"type": typ,
		"relationships": map[string]any{
			scope:  relBody(scopeGUID),
			"user": map[string]any{"data": map[string]string{"username": username, "origin": "uaa"}},
		},
	}
	var r Role
	if _, err := c.do(ctx, http.MethodPost, "/v3/roles", body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Roles lists roles (q holds CF's filters) with their users.
func (c *Client) Roles(ctx context.Context, q url.Values) ([]Role, map[string]User, error) {
	q.Set("include", "user")
	q.Set("per_page", "5000")
	var roles []Role
	users := map[string]User{}
	next := "/v3/roles?" + q.Encode()
	for i := 0; next != ""; i++ {
		if i >= maxPages {
			return nil, nil, fmt.Errorf("list roles: more than %d pages", maxPages)
		}
		var p struct {
			page[Role]
			Included struct {
				Users []User `json:"users"`
			} `json:"included"`
		}
		if _, err := c.do(ctx, http.MethodGet, next, nil, &p); err != nil {
			return nil, nil, fmt.Errorf("list roles: %w", err)
		}
		roles = append(roles, p.Resources...)
		for _, u := range p.Included.Users {
			users[u.GUID] = u
		}
		next = ""
		if p.Pagination.Next != nil {
			next = p.Pagination.Next.Href
		}
	}
	return roles, users, nil
}

// DeleteRole removes a role, waiting for the job.
func (c *Client) DeleteRole(ctx context.Context, guid string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/roles/" + url.PathEscape(guid)}, nil)
}

// OrgQuotas lists organization quotas, by name when names are given.
func (c *Client) OrgQuotas(ctx context.Context, names ...string) ([]Quota, error) {
	q := url.Values{"order_by": {"name"}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	qs, err := list[Quota](ctx, c, "/v3/organization_quotas?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("list quotas: %w", err)
	}
	return qs, nil
}

// CreateOrgQuota creates an organization quota.
func (c *Client) CreateOrgQuota(ctx context.Context, name string, limits QuotaLimits) (*Quota, error) {
	body := map[string]any{"name": name}
	for k, v := range limits {
		body[k] = v
	}
	var q Quota
	if _, err := c.do(ctx, http.MethodPost, "/v3/organization_quotas", body, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// UpdateOrgQuota changes an organization quota's limits (and name when
// newName is not empty).
func (c *Client) UpdateOrgQuota(ctx context.Context, guid, newName string, limits QuotaLimits) (*Quota, error) {
	body := map[string]any{}
	if newName != "" {
		body["name"] = newName
	}
	for k, v := range limits {
		body[k] = v
	}
	var q Quota
	if _, err := c.do(ctx, http.MethodPatch, "/v3/organization_quotas/"+url.PathEscape(guid), body, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// ApplyOrgQuota assigns a quota to an organization.
func (c *Client) ApplyOrgQuota(ctx context.Context, quotaGUID, orgGUID string) error {
	body := map[string]any{"data": []any{map[string]string{"guid": orgGUID}}}
	_, err := c.do(ctx, http.MethodPost, "/v3/organization_quotas/"+url.PathEscape(quotaGUID)+"/relationships/organizations", body, nil)
	return err
}
