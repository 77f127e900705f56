package cc

import (
	"context"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/pandoplatform/pando"
)

// Manifest services (applications[].services): the named service
// instances of the space are bound to the app when the manifest is
// applied, as CF does; bindings the app has already are kept, others are
// not removed. They reach the app at its next start (cf push restarts it).

// manifestService is one entry: a name, or {name, binding_name}.
type manifestService struct {
	Name        string
	BindingName string
}

const maxManifestServices = 64

func (p *mparser) services(n *yaml.Node, at string) []manifestService {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(at, "must be a list of service instance names")
		return nil
	}
	if len(n.Content) > maxManifestServices {
		p.errorf(at, "at most %d services", maxManifestServices)
		return nil
	}
	var out []manifestService
	for i, e := range n.Content {
		e = deref(e)
		eat := fmt.Sprintf("%s[%d]", at, i)
		var s manifestService
		if e.Kind == yaml.MappingNode {
			for _, kv := range p.pairs(e, eat) {
				switch kv.key {
				case "name":
					s.Name, _ = p.str(kv.val, eat+".name")
				case "binding_name":
					s.BindingName, _ = p.str(kv.val, eat+".binding_name")
				case "parameters":
					if !isNull(kv.val) && len(kv.val.Content) > 0 {
						p.errorf(eat+".parameters", "binding parameters are not supported for user-provided service instances")
					}
				default:
					p.errorf(eat+"."+kv.key, "unknown service key")
				}
			}
		} else {
			s.Name, _ = p.str(e, eat)
		}
		if s.Name == "" {
			p.errorf(eat, "a service needs a name")
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkManifestServices finds the manifest's service instances in the
// space before anything changes.
func (a *API) checkManifestServices(ctx context.Context, space pando.Space, m manifestApp) error {
	for _, s := range m.Services {
		found, err := a.db(ctx).ListServiceInstances(ctx, pando.ServiceInstanceFilter{Names: []string{s.Name}, SpaceGUIDs: []string{space.GUID}})
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return invalid("Service instance '%s' not found", s.Name)
		}
	}
	return nil
}

// applyManifestServices binds the app to the instances it is not bound to,
// none if the drains they bring would pass a limit. It reports whether it
// bound any; the caller tells the drains once the bindings are committed.
func (a *API) applyManifestServices(ctx context.Context, id Identity, app pando.App, m manifestApp) (bool, error) {
	type toBind struct {
		si          pando.ServiceInstance
		bindingName string
	}
	var binds []toBind
	var drains []newDrain
	for _, s := range m.Services {
		found, err := a.db(ctx).ListServiceInstances(ctx, pando.ServiceInstanceFilter{Names: []string{s.Name}, SpaceGUIDs: []string{app.SpaceGUID}})
		if err != nil {
			return false, err
		}
		if len(found) == 0 {
			return false, invalid("Service instance '%s' not found", s.Name)
		}
		si := found[0]
		bound, err := a.db(ctx).ListServiceBindings(ctx, pando.ServiceBindingFilter{AppGUIDs: []string{app.GUID}, InstanceGUIDs: []string{si.GUID}})
		if err != nil {
			return false, err
		}
		if len(bound) > 0 || slices.ContainsFunc(binds, func(b toBind) bool { return b.si.GUID == si.GUID }) {
			continue
		}
		binds = append(binds, toBind{si, s.BindingName})
		drains = append(drains, newDrain{app, si})
	}
	if err := a.checkDrainLimits(ctx, "", drains); err != nil {
		return false, err
	}
	for _, tb := range binds {
		si := tb.si
		now := a.now()
		b := pando.ServiceBinding{GUID: a.newGUID(), Type: "app", Name: tb.bindingName, AppGUID: app.GUID, InstanceGUID: si.GUID, CreatedAt: now, UpdatedAt: now}
		if err := a.db(ctx).CreateServiceBinding(ctx, b); err != nil {
			return false, fmt.Errorf("bind service instance %s: %w", si.Name, err)
		}
		a.recordAppEvent(ctx, id, "audit.service_binding.create", app, map[string]any{"service_binding_guid": b.GUID, "service_instance_guid": si.GUID, "manifest_triggered": true})
	}
	return len(binds) > 0, nil
}
