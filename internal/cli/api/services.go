package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// User-provided service instances and their bindings, domains and routes,
// as the cf CLI's verbs use them (shared/cf-traces 36, 37, 40).

// ServiceInstance is a CF service instance.
type ServiceInstance struct {
	GUID            string   `json:"guid"`
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	SyslogDrainURL  *string  `json:"syslog_drain_url"`
	RouteServiceURL *string  `json:"route_service_url"`
	Tags            []string `json:"tags"`
}

// ServiceBinding is a CF service credential binding.
type ServiceBinding struct {
	GUID          string  `json:"guid"`
	Name          *string `json:"name"`
	Type          string  `json:"type"`
	Relationships struct {
		App             Rel `json:"app"`
		ServiceInstance Rel `json:"service_instance"`
	} `json:"relationships"`
}

// Domain is a CF domain; a private one belongs to an organization.
type Domain struct {
	GUID          string `json:"guid"`
	Name          string `json:"name"`
	Internal      bool   `json:"internal"`
	Relationships struct {
		Organization Rel `json:"organization"`
	} `json:"relationships"`
}

// UserProvidedService is what create-user-provided-service sends.
type UserProvidedService struct {
	Name            string
	SpaceGUID       string
	Credentials     map[string]any
	SyslogDrainURL  string
	RouteServiceURL string
	Tags            []string
}

// CreateUserProvidedService creates a user-provided service instance.
func (c *Client) CreateUserProvidedService(ctx context.Context, ups UserProvidedService) (*ServiceInstance, error) {
	body := map[string]any{
		"type":          "user-provided",
		"name":          ups.Name,
		"relationships": map[string]any{"space": relBody(ups.SpaceGUID)},
	}
	if ups.Credentials != nil {
		body["credentials"] = ups.Credentials
	}
	if ups.SyslogDrainURL != "" {
		body["syslog_drain_url"] = ups.SyslogDrainURL
	}
	if ups.RouteServiceURL != "" {
		body["route_service_url"] = ups.RouteServiceURL
	}
	if len(ups.Tags) > 0 {
		body["tags"] = ups.Tags
	}
	var si ServiceInstance
	if err := c.doJSONJob(ctx, http.MethodPost, "/v3/service_instances", body, &si); err != nil {
		return nil, err
	}
	return &si, nil
}

// doJSONJob sends a JSON request that may be answered by 202 + Location,
// and waits for the job.
func (c *Client) doJSONJob(ctx context.Context, method, path string, in, out any) error {
	b, n, err := jsonBody(in)
	if err != nil {
		return err
	}
	return c.doJob(ctx, request{method: method, url: path, body: b, length: n, contentType: "application/json"}, out)
}

// ServiceInstances lists the service instances of a space, by name when
// names are given.
func (c *Client) ServiceInstances(ctx context.Context, spaceGUID string, names ...string) ([]ServiceInstance, error) {
	q := url.Values{"space_guids": {spaceGUID}, "order_by": {"name"}, "per_page": {"5000"}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	sis, err := list[ServiceInstance](ctx, c, "/v3/service_instances?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return sis, nil
}

// DeleteServiceInstance deletes a service instance, waiting for the job.
func (c *Client) DeleteServiceInstance(ctx context.Context, guid string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/service_instances/" + url.PathEscape(guid)}, nil)
}

// Bind binds a service instance to an app (bindingName may be empty).
func (c *Client) Bind(ctx context.Context, appGUID, instanceGUID, bindingName string) error {
	body := map[string]any{
		"type": "app",
		"relationships": map[string]any{
			"app":              relBody(appGUID),
			"service_instance": relBody(instanceGUID),
		},
	}
	if bindingName != "" {
		body["name"] = bindingName
	}
	return c.doJSONJob(ctx, http.MethodPost, "/v3/service_credential_bindings", body, nil)
}

// Bindings lists app bindings filtered by app and service instance GUIDs
// (either may be empty).
func (c *Client) Bindings(ctx context.Context, appGUIDs, instanceGUIDs []string) ([]ServiceBinding, error) {
	q := url.Values{"type": {"app"}, "per_page": {"5000"}}
	if len(appGUIDs) > 0 {
		q.Set("app_guids", strings.Join(appGUIDs, ","))
	}
	if len(instanceGUIDs) > 0 {
		q.Set("service_instance_guids", strings.Join(instanceGUIDs, ","))
	}
	bs, err := list[ServiceBinding](ctx, c, "/v3/service_credential_bindings?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("list bindings: %w", err)
	}
	return bs, nil
}

// Unbind deletes a binding, waiting for the job.
func (c *Client) Unbind(ctx context.Context, bindingGUID string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/service_credential_bindings/" + url.PathEscape(bindingGUID)}, nil)
}

// Domains lists the domains the caller sees, by name when names are given.
func (c *Client) Domains(ctx context.Context, names ...string) ([]Domain, error) {
	q := url.Values{"order_by": {"name"}, "per_page": {"5000"}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	ds, err := list[Domain](ctx, c, "/v3/domains?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	return ds, nil
}

// CreateDomain creates a shared domain (orgGUID empty) or a private one.
func (c *Client) CreateDomain(ctx context.Context, name, orgGUID string) (*Domain, error) {
	body := map[string]any{"name": name, "internal": false}
	if orgGUID != "" {
		body["relationships"] = map[string]any{"organization": relBody(orgGUID)}
	}
	var d Domain
	if _, err := c.do(ctx, http.MethodPost, "/v3/domains", body, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SpaceRoutes lists the routes of a space.
func (c *Client) SpaceRoutes(ctx context.Context, spaceGUID string) ([]Route, error) {
	q := url.Values{"space_guids": {spaceGUID}, "per_page": {"5000"}}
	rs, err := list[Route](ctx, c, "/v3/routes?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return rs, nil
}

// FindRoute finds the route host.domain/path, or an error wrapping
// ErrNotFound.
func (c *Client) FindRoute(ctx context.Context, domainGUID, host, path string) (*Route, error) {
	q := url.Values{"domain_guids": {domainGUID}, "hosts": {host}, "paths": {path}}
	rs, err := list[Route](ctx, c, "/v3/routes?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("find route: %w", err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("route %w", ErrNotFound)
	}
	return &rs[0], nil
}

// CreateRoute creates the route host.domain/path in a space.
func (c *Client) CreateRoute(ctx context.Context, spaceGUID, domainGUID, host, path string) (*Route, error) {
	body := map[string]any{
		"host": host,
		"relationships": map[string]any{
			"space":  relBody(spaceGUID),
			"domain": relBody(domainGUID),
		},
	}
	if path != "" {
		body["path"] = path
	}
	var r Route
	if _, err := c.do(ctx, http.MethodPost, "/v3/routes", body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// MapRoute adds an app (its web process) as a destination of a route.
func (c *Client) MapRoute(ctx context.Context, routeGUID, appGUID string) error {
	body := map[string]any{"destinations": []any{map[string]any{"app": map[string]string{"guid": appGUID}}}}
	_, err := c.do(ctx, http.MethodPost, "/v3/routes/"+url.PathEscape(routeGUID)+"/destinations", body, nil)
	return err
}

// UnmapRoute removes one destination of a route.
func (c *Client) UnmapRoute(ctx context.Context, routeGUID, destGUID string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v3/routes/"+url.PathEscape(routeGUID)+"/destinations/"+url.PathEscape(destGUID), nil, nil)
	return err
}
