package api

import (
	"context"
	"net/http"
	"net/url"
)

// InstanceMemoryLimits are the per-instance memory caps of an org's and a
// space's quotas (nil: none, or no quota applied).
type InstanceMemoryLimits struct {
	Org, Space *int64
}

// InstanceMemoryLimits reads the quotas applied to the org and the space
// (each found through its relationships.quota) and returns their caps on
// one instance's memory.
func (c *Client) InstanceMemoryLimits(ctx context.Context, orgGUID, spaceGUID string) (InstanceMemoryLimits, error) {
	var l InstanceMemoryLimits
	var err error
	if l.Org, err = c.quotaInstanceMemory(ctx, "/v3/organizations/", "/v3/organization_quotas/", orgGUID); err != nil {
		return l, err
	}
	l.Space, err = c.quotaInstanceMemory(ctx, "/v3/spaces/", "/v3/space_quotas/", spaceGUID)
	return l, err
}

// quotaInstanceMemory reads owner+guid's applied quota (under quotas) and
// returns its per-process memory cap.
func (c *Client) quotaInstanceMemory(ctx context.Context, owners, quotas, guid string) (*int64, error) {
	var owner struct {
		Relationships struct {
			Quota Rel `json:"quota"`
		} `json:"relationships"`
	}
	if _, err := c.do(ctx, http.MethodGet, owners+url.PathEscape(guid), nil, &owner); err != nil {
		return nil, err
	}
	qGUID := owner.Relationships.Quota.GUID()
	if qGUID == "" {
		return nil, nil
	}
	var q QuotaValues
	if _, err := c.do(ctx, http.MethodGet, quotas+url.PathEscape(qGUID), nil, &q); err != nil {
		return nil, err
	}
	return q.Apps.PerProcessMemoryInMB, nil
}
