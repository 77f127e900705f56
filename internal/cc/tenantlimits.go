package cc

import (
	"context"
	"fmt"
	"slices"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
)

// Per-tenant bounds that CF's quotas do not give: syslog drains (each
// holds a connection and a queue of lines in the forwarder) and
// user-provided service instances (which CF's total_service_instances
// does not count). The forwarder applies the drain limits too, so a bind
// that raced past this check is still not forwarded to.

// DefaultMaxServiceInstancesPerOrg bounds an org's service instances when
// the operator sets no limit: each may hold 64 KiB of credentials.
const DefaultMaxServiceInstancesPerOrg = 1000

// syslogDrains lists today's drains (live bindings to instances with a
// syslog_drain_url), oldest binding first, as the forwarder reads them;
// but not those of the instance except (whose URL is being replaced).
func (a *API) syslogDrains(ctx context.Context, except string) ([]drain.Binding, error) {
	sis, err := a.db(ctx).ListServiceInstances(ctx, pando.ServiceInstanceFilter{})
	if err != nil {
		return nil, fmt.Errorf("list service instances: %w", err)
	}
	byGUID := map[string]pando.ServiceInstance{}
	var guids []string
	for _, si := range sis {
		if si.SyslogDrainURL != "" && si.GUID != except {
			byGUID[si.GUID] = si
			guids = append(guids, si.GUID)
		}
	}
	if len(guids) == 0 {
		return nil, nil
	}
	bs, err := a.db(ctx).ListServiceBindings(ctx, pando.ServiceBindingFilter{InstanceGUIDs: guids})
	if err != nil {
		return nil, fmt.Errorf("list service bindings: %w", err)
	}
	orgs := map[string]string{}
	out := make([]drain.Binding, 0, len(bs))
	for _, b := range bs {
		si := byGUID[b.InstanceGUID]
		org, err := a.orgOfSpace(ctx, orgs, si.SpaceGUID)
		if err != nil {
			return nil, err
		}
		out = append(out, drain.Binding{AppGUID: b.AppGUID, URL: si.SyslogDrainURL, SpaceGUID: si.SpaceGUID, OrgGUID: org})
	}
	return out, nil
}

// orgOfSpace is the org of a space, remembered in known.
func (a *API) orgOfSpace(ctx context.Context, known map[string]string, spaceGUID string) (string, error) {
	if org, ok := known[spaceGUID]; ok {
		return org, nil
	}
	sp, err := a.db(ctx).GetSpace(ctx, spaceGUID)
	if err != nil {
		return "", fmt.Errorf("space %s: %w", spaceGUID, err)
	}
	known[spaceGUID] = sp.OrgGUID
	return sp.OrgGUID, nil
}

// newDrain is a drain a change would add: app to the syslog drain of si.
type newDrain struct {
	app pando.App
	si  pando.ServiceInstance
}

// checkDrainLimits refuses drains past the limits: adding is what a bind
// or an instance's new drain URL would add to today's drains (without
// those of the instance replacing, if any, whose URL changes). A drain
// already there (the app bound to that URL through another instance) adds
// nothing.
func (a *API) checkDrainLimits(ctx context.Context, replacing string, adding []newDrain) error {
	adding = slices.DeleteFunc(slices.Clone(adding), func(d newDrain) bool { return d.si.SyslogDrainURL == "" })
	if len(adding) == 0 {
		return nil
	}
	all, err := a.syslogDrains(ctx, replacing)
	if err != nil {
		return err
	}
	orgs := map[string]string{}
	added := make([]drain.Binding, len(adding))
	for i, d := range adding {
		org, err := a.orgOfSpace(ctx, orgs, d.si.SpaceGUID)
		if err != nil {
			return err
		}
		added[i] = drain.Binding{AppGUID: d.app.GUID, URL: d.si.SyslogDrainURL, SpaceGUID: d.si.SpaceGUID, OrgGUID: org}
	}
	_, over := a.cfg.DrainLimits.Admit(append(all, added...))
	for _, o := range over {
		if i := slices.Index(added, o.Binding); i >= 0 {
			return invalid("App '%s' cannot get the syslog drain of service instance '%s': %v", adding[i].app.Name, adding[i].si.Name, o)
		}
	}
	return nil
}

// checkServiceInstanceLimit refuses a new service instance in an org that
// has the most it may.
func (a *API) checkServiceInstanceLimit(ctx context.Context, spaceGUID string) error {
	limit := a.cfg.MaxServiceInstancesPerOrg
	if limit < 0 {
		return nil
	}
	sp, err := a.db(ctx).GetSpace(ctx, spaceGUID)
	if err != nil {
		return err
	}
	spaces, err := a.orgSpaceGUIDs(ctx, sp.OrgGUID)
	if err != nil {
		return err
	}
	sis, err := a.db(ctx).ListServiceInstances(ctx, pando.ServiceInstanceFilter{SpaceGUIDs: spaces})
	if err != nil {
		return fmt.Errorf("list service instances: %w", err)
	}
	if len(sis) >= limit {
		return invalid("You have exceeded your organization's services limit: it may have %d service instances on this platform. Delete one it no longer needs, or ask an admin to raise the limit (--max-service-instances-per-org).", limit)
	}
	return nil
}
