package server

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
)

// drainBindings lists the syslog drains of every app from the CCDB: each
// live binding to a service instance with a syslog_drain_url (CF applies
// a drain binding without a restart), with the app's org.space.app.
type drainBindings struct{ store pando.Store }

func (d drainBindings) SyslogDrains(ctx context.Context) ([]drain.Binding, error) {
	sis, err := d.store.ListServiceInstances(ctx, pando.ServiceInstanceFilter{})
	if err != nil {
		return nil, fmt.Errorf("list service instances: %w", err)
	}
	urls := map[string]string{}
	var guids []string
	for _, si := range sis {
		if si.SyslogDrainURL != "" {
			urls[si.GUID] = si.SyslogDrainURL
			guids = append(guids, si.GUID)
		}
	}
	if len(guids) == 0 {
		return nil, nil
	}
	bs, err := d.store.ListServiceBindings(ctx, pando.ServiceBindingFilter{InstanceGUIDs: guids})
	if err != nil {
		return nil, fmt.Errorf("list service bindings: %w", err)
	}
	apps := map[string]drain.Binding{}
	out := make([]drain.Binding, 0, len(bs))
	for _, b := range bs {
		of, ok := apps[b.AppGUID]
		if !ok {
			of, err = d.appOf(ctx, b.AppGUID)
			if err != nil {
				continue // deleted meanwhile
			}
			apps[b.AppGUID] = of
		}
		of.URL = urls[b.InstanceGUID]
		out = append(out, of)
	}
	return out, nil
}

// appOf is an app's drain binding without its URL: CF's drain HOSTNAME
// (org.space.app) and the space and org whose limits it counts against.
func (d drainBindings) appOf(ctx context.Context, appGUID string) (drain.Binding, error) {
	app, err := d.store.GetApp(ctx, appGUID)
	if err != nil {
		return drain.Binding{}, err
	}
	space, err := d.store.GetSpace(ctx, app.SpaceGUID)
	if err != nil {
		return drain.Binding{}, err
	}
	org, err := d.store.GetOrg(ctx, space.OrgGUID)
	if err != nil {
		return drain.Binding{}, err
	}
	return drain.Binding{AppGUID: app.GUID, Hostname: drain.Hostname(org.Name, space.Name, app.Name), SpaceGUID: space.GUID, OrgGUID: org.GUID}, nil
}

// routeServicesFunc is a router.RouteServices from a function.
type routeServicesFunc func(host, path string) string

func (f routeServicesFunc) RouteServiceURL(host, path string) string { return f(host, path) }
