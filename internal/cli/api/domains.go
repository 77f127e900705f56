package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Deleting domains, sharing private domains, space quotas and
// updating user-provided services, as the cf CLI's verbs of the same
// names do.

// DeleteDomain deletes a domain and its routes, waiting for the job.
func (c *Client) DeleteDomain(ctx context.Context, guid string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/domains/" + url.PathEscape(guid)}, nil)
}

// ShareDomain shares a private domain with another organization.
func (c *Client) ShareDomain(ctx context.Context, domainGUID, orgGUID string) error {
	body := map[string]any{"data": []any{map[string]string{"guid": orgGUID}}}
	_, err := c.do(ctx, http.MethodPost, "/v3/domains/"+url.PathEscape(domainGUID)+"/relationships/shared_organizations", body, nil)
	return err
}

// UnshareDomain stops sharing a private domain with an organization.
func (c *Client) UnshareDomain(ctx context.Context, domainGUID, orgGUID string) error {
	_, err := c.do(ctx, http.MethodDelete,
		"/v3/domains/"+url.PathEscape(domainGUID)+"/relationships/shared_organizations/"+url.PathEscape(orgGUID), nil, nil)
	return err
}

// ServiceInstanceUpdate is what update-user-provided-service changes; a
// nil field stays as it is.
type ServiceInstanceUpdate struct {
	Credentials     map[string]any
	SyslogDrainURL  *string
	RouteServiceURL *string
	Tags            *[]string
}

// Empty reports whether the update changes nothing.
func (u ServiceInstanceUpdate) Empty() bool {
	return u.Credentials == nil && u.SyslogDrainURL == nil && u.RouteServiceURL == nil && u.Tags == nil
}

// UpdateServiceInstance changes a user-provided service instance (PATCH
// /v3/service_instances/:guid, waiting for a job if the API answers with
// one).
func (c *Client) UpdateServiceInstance(ctx context.Context, guid string, u ServiceInstanceUpdate) error {
	body := map[string]any{}
	if u.Credentials != nil {
		body["credentials"] = u.Credentials
	}
	if u.SyslogDrainURL != nil {
		body["syslog_drain_url"] = *u.SyslogDrainURL
	}
	if u.RouteServiceURL != nil {
		body["route_service_url"] = *u.RouteServiceURL
	}
	if u.Tags != nil {
		tags := *u.Tags
		if tags == nil {
			tags = []string{}
		}
		body["tags"] = tags
	}
	return c.doJSONJob(ctx, http.MethodPatch, "/v3/service_instances/"+url.PathEscape(guid), body, nil)
}

// SpaceQuota is a space quota: it belongs to an organization and applies
// to some of its spaces.
type SpaceQuota struct {
	GUID string `json:"guid"`
	Name string `json:"name"`
	QuotaValues
	Relationships struct {
		Organization Rel `json:"organization"`
		Spaces       struct {
			Data []struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"spaces"`
	} `json:"relationships"`
}

// SpaceQuotas lists an organization's space quotas, by name when names
// are given.
func (c *Client) SpaceQuotas(ctx context.Context, orgGUID string, names ...string) ([]SpaceQuota, error) {
	q := url.Values{"organization_guids": {orgGUID}, "order_by": {"name"}, "per_page": {"5000"}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	return list[SpaceQuota](ctx, c, "/v3/space_quotas?"+q.Encode())
}

// CreateSpaceQuota creates a space quota in an organization.
func (c *Client) CreateSpaceQuota(ctx context.Context, orgGUID, name string, limits QuotaLimits) (*SpaceQuota, error) {
	body := map[string]any{"name": name, "relationships": map[string]any{"organization": relBody(orgGUID)}}
	for k, v := range limits {
		body[k] = v
	}
	var q SpaceQuota
	if _, err := c.do(ctx, http.MethodPost, "/v3/space_quotas", body, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// ApplySpaceQuota assigns a space quota to a space of its organization.
func (c *Client) ApplySpaceQuota(ctx context.Context, quotaGUID, spaceGUID string) error {
	body := map[string]any{"data": []any{map[string]string{"guid": spaceGUID}}}
	_, err := c.do(ctx, http.MethodPost, "/v3/space_quotas/"+url.PathEscape(quotaGUID)+"/relationships/spaces", body, nil)
	return err
}

// RemoveSpaceQuota takes a space quota off a space.
func (c *Client) RemoveSpaceQuota(ctx context.Context, quotaGUID, spaceGUID string) error {
	_, err := c.do(ctx, http.MethodDelete,
		"/v3/space_quotas/"+url.PathEscape(quotaGUID)+"/relationships/spaces/"+url.PathEscape(spaceGUID), nil, nil)
	return err
}
