package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pandoplatform/pando"
)

// Service credential bindings of type app (cf bind-service,
// unbind-service). A binding reaches the app's VCAP_SERVICES at its next
// start or restage, as in CF. Keys (type key) are for managed instances
// only in CF, so they are refused with CF's message.

func (a *API) registerBindingRoutes(h func(string, handlerFunc)) {
	h("GET /v3/service_credential_bindings", a.listServiceBindings)
	h("POST /v3/service_credential_bindings", a.postServiceBinding)
	h("GET /v3/service_credential_bindings/{guid}", a.getServiceBinding)
	h("DELETE /v3/service_credential_bindings/{guid}", a.deleteServiceBinding)
	h("GET /v3/service_credential_bindings/{guid}/details", a.getServiceBindingDetails)
}

func (a *API) presentServiceBinding(b pando.ServiceBinding) map[string]any {
	var name any
	if b.Name != "" {
		name = b.Name
	}
	return map[string]any{
		"guid":       b.GUID,
		"type":       b.Type,
		"name":       name,
		"created_at": ts(b.CreatedAt),
		"updated_at": ts(b.UpdatedAt),
		"last_operation": map[string]any{
			"type": "create", "state": "succeeded", "description": nil,
			"created_at": ts(b.CreatedAt), "updated_at": ts(b.UpdatedAt),
		},
		"metadata": metadata(),
		"relationships": map[string]any{
			"app":              rel(b.AppGUID),
			"service_instance": rel(b.InstanceGUID),
		},
		"links": map[string]any{
			"self":             link(a.url("/v3/service_credential_bindings/%s", b.GUID)),
			"details":          link(a.url("/v3/service_credential_bindings/%s/details", b.GUID)),
			"app":              link(a.url("/v3/apps/%s", b.AppGUID)),
			"service_instance": link(a.url("/v3/service_instances/%s", b.InstanceGUID)),
		},
	}
}

type bindingBody struct {
	Type          string          `json:"type"`
	Name          *string         `json:"name"`
	Parameters    json.RawMessage `json:"parameters"`
	Relationships struct {
		ServiceInstance struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"service_instance"`
		App *struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"app"`
	} `json:"relationships"`
}

func (a *API) postServiceBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in bindingBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Type != "app" && in.Type != "key" {
		return invalid("Type must be one of 'app', 'key'")
	}
	si, err := a.visibleServiceInstance(ctx, in.Relationships.ServiceInstance.Data.GUID)
	if pando.IsNotFound(err) {
		return invalid("The service instance could not be found: '%s'.", in.Relationships.ServiceInstance.Data.GUID)
	}
	if err != nil {
		return err
	}
	if in.Type == "key" {
		return invalid("Service credential bindings of type 'key' are not supported for user-provided service instances.")
	}
	if err := noBindingParameters(in.Parameters); err != nil {
		return err
	}
	if in.Relationships.App == nil || in.Relationships.App.Data.GUID == "" {
		return invalid("Relationships App can't be blank")
	}
	appGUID := in.Relationships.App.Data.GUID
	if err := a.checkApp(ctx, appGUID, needWrite); err != nil {
		return err
	}
	app, err := a.store.GetApp(ctx, appGUID)
	if err != nil {
		return err
	}
	if app.SpaceGUID != si.SpaceGUID {
		return invalid("The service instance and the app are in different spaces")
	}
	now := a.now()
	b := pando.ServiceBinding{GUID: a.newGUID(), Type: "app", AppGUID: app.GUID, InstanceGUID: si.GUID, CreatedAt: now, UpdatedAt: now}
	if in.Name != nil {
		b.Name = *in.Name
		if len(b.Name) > maxServiceNameLen {
			return invalid("Name is too long (maximum is %d characters)", maxServiceNameLen)
		}
	}
	// The drain limits are checked in the transaction that creates the
	// binding: concurrent binds (or drain changes) cannot together pass them.
	err = a.inTx(ctx, func(ctx context.Context) error {
		if err := a.checkDrainLimits(ctx, "", []newDrain{{app, si}}); err != nil {
			return err
		}
		return a.db(ctx).CreateServiceBinding(ctx, b)
	})
	if err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("The app is already bound to the service instance.")
		}
		return err
	}
	a.servicesChanged()
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.service_binding.create", app, map[string]any{"service_binding_guid": b.GUID, "service_instance_guid": si.GUID})
	writeJSON(w, http.StatusCreated, a.presentServiceBinding(b))
	return nil
}

func (a *API) getServiceBinding(w http.ResponseWriter, r *http.Request) error {
	b, err := a.store.GetServiceBinding(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentServiceBinding(b))
	return nil
}

func (a *API) listServiceBindings(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if t := splitList(q, "type"); len(t) > 0 && !contains(t, "app") {
		paginate(a, w, r, []pando.ServiceBinding{}, bindingKey, func(pando.ServiceBinding) any { return nil })
		return nil
	}
	instances, err := a.instancesQueried(ctx, q)
	if err != nil {
		return err
	}
	all, err := a.store.ListServiceBindings(ctx, pando.ServiceBindingFilter{
		GUIDs: splitList(q, "guids"), Names: splitList(q, "names"), AppGUIDs: splitList(q, "app_guids"), InstanceGUIDs: instances,
	})
	if err != nil {
		return err
	}
	visible := visibleBindings(ctx, a, all, "app", func(b pando.ServiceBinding) string { return b.AppGUID })
	include := splitList(q, "include")
	var inc func([]pando.ServiceBinding) map[string]any
	if len(include) > 0 {
		inc = func(page []pando.ServiceBinding) map[string]any { return a.includeForBindings(ctx, page, include) }
	}
	paginateWith(a, w, r, visible, bindingKey, func(b pando.ServiceBinding) any { return a.presentServiceBinding(b) }, inc)
	return nil
}

func (a *API) includeForBindings(ctx context.Context, page []pando.ServiceBinding, include []string) map[string]any {
	out := map[string]any{}
	if contains(include, "app") {
		apps := []any{}
		for _, guid := range eachOnce(page, func(b pando.ServiceBinding) string { return b.AppGUID }) {
			if app, err := a.store.GetApp(ctx, guid); err == nil {
				apps = append(apps, a.presentApp(app))
			}
		}
		out["apps"] = apps
	}
	if contains(include, "service_instance") {
		out["service_instances"] = a.includedServiceInstances(ctx, eachOnce(page, func(b pando.ServiceBinding) string { return b.InstanceGUID }))
	}
	return out
}

// What credential bindings (app to instance) and route bindings (route to
// instance) share: how a list narrows and filters, how a request names
// its instance, and what an include= adds.

// instancesQueried is a bindings list's service_instance_guids filter,
// narrowed to the instances service_instance_names names when it is given.
func (a *API) instancesQueried(ctx context.Context, q url.Values) ([]string, error) {
	instances := splitList(q, "service_instance_guids")
	names := splitList(q, "service_instance_names")
	if len(names) == 0 {
		return instances, nil
	}
	sis, err := a.store.ListServiceInstances(ctx, pando.ServiceInstanceFilter{Names: names})
	if err != nil {
		return nil, fmt.Errorf("service instances named %v: %w", names, err)
	}
	byName := []string{"-"} // matches nothing when no instance has the names
	for _, si := range sis {
		if len(instances) == 0 || contains(instances, si.GUID) {
			byName = append(byName, si.GUID)
		}
	}
	return byName, nil
}

// visibleBindings keeps the bindings whose app or route (kind, ownerOf)
// is in a space the caller sees.
func visibleBindings[B any](ctx context.Context, a *API, all []B, kind string, ownerOf func(B) string) []B {
	p := permsFrom(ctx)
	visible := all[:0]
	for _, b := range all {
		if t, err := a.resolve(ctx, kind, ownerOf(b)); err == nil && p.seesSpace(t.space) {
			visible = append(visible, b)
		}
	}
	return visible
}

// visibleServiceInstance is the instance a binding request names: one in
// a space the caller cannot see is not found, as if it did not exist.
func (a *API) visibleServiceInstance(ctx context.Context, guid string) (pando.ServiceInstance, error) {
	si, err := a.store.GetServiceInstance(ctx, guid)
	if err == nil && !permsFrom(ctx).seesSpace(si.SpaceGUID) {
		return pando.ServiceInstance{}, pando.Errorf(pando.ENotFound, "service instance not visible")
	}
	return si, err
}

// noBindingParameters refuses a binding request's parameters, which
// user-provided instances do not take ("null" and "{}" are none).
func noBindingParameters(raw json.RawMessage) error {
	if len(raw) > 0 && string(raw) != "null" && string(raw) != "{}" {
		return invalid("Binding parameters are not supported for user-provided service instances")
	}
	return nil
}

// eachOnce is the guids of page's bindings (guidOf), each once, in order.
func eachOnce[B any](page []B, guidOf func(B) string) []string {
	var guids []string
	seen := make(map[string]bool, len(page))
	for _, b := range page {
		if g := guidOf(b); !seen[g] {
			seen[g] = true
			guids = append(guids, g)
		}
	}
	return guids
}

// includedServiceInstances presents the instances of guids that still
// exist: what include=service_instance adds to a page of bindings.
func (a *API) includedServiceInstances(ctx context.Context, guids []string) []any {
	sis := []any{}
	for _, guid := range guids {
		if si, err := a.store.GetServiceInstance(ctx, guid); err == nil {
			sis = append(sis, a.presentServiceInstance(si))
		}
	}
	return sis
}

func bindingKey(b pando.ServiceBinding) sortable {
	return sortable{name: b.Name, createdAt: b.CreatedAt, updatedAt: b.UpdatedAt}
}

// deleteServiceBinding unbinds at once (204), as CF does for user-provided
// instances; the app keeps the binding in its env until its next start.
func (a *API) deleteServiceBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := a.store.GetServiceBinding(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if err := a.store.DeleteServiceBinding(ctx, b.GUID); err != nil {
		return err
	}
	a.servicesChanged()
	if app, err := a.store.GetApp(ctx, b.AppGUID); err == nil {
		a.recordAppEvent(ctx, identityFrom(ctx), "audit.service_binding.delete", app, map[string]any{"service_binding_guid": b.GUID, "service_instance_guid": b.InstanceGUID})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getServiceBindingDetails(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	b, err := a.store.GetServiceBinding(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	si, err := a.store.GetServiceInstance(ctx, b.InstanceGUID)
	if err != nil {
		return err
	}
	creds, err := a.instanceCredentials(si)
	if err != nil {
		return err
	}
	out := map[string]any{"credentials": creds}
	if si.SyslogDrainURL != "" {
		out["syslog_drain_url"] = si.SyslogDrainURL
	}
	if app, err := a.store.GetApp(ctx, b.AppGUID); err == nil {
		a.recordAppEvent(ctx, identityFrom(ctx), "audit.service_binding.show", app, map[string]any{"service_binding_guid": b.GUID, "service_instance_guid": si.GUID})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// vcapServices is the app's VCAP_SERVICES: its bindings by service label,
// in CF's layout ("user-provided" for user-provided instances), those of
// its running revision (running) or its live ones (staging, tasks, env).
// The credentials are the instance's current ones.
func (a *API) vcapServices(ctx context.Context, appGUID string, running bool) (map[string]any, error) {
	bindings, err := a.store.ListServiceBindings(ctx, pando.ServiceBindingFilter{AppGUIDs: []string{appGUID}, Running: running})
	if err != nil {
		return nil, fmt.Errorf("bindings of app %s: %w", appGUID, err)
	}
	out := map[string]any{}
	var ups []any
	for _, b := range bindings {
		si, err := a.store.GetServiceInstance(ctx, b.InstanceGUID)
		if err != nil {
			return nil, fmt.Errorf("binding %s of app %s: %w", b.GUID, appGUID, err)
		}
		creds, err := a.instanceCredentials(si)
		if err != nil {
			return nil, err
		}
		name := si.Name
		var bindingName, drain any
		if b.Name != "" {
			name, bindingName = b.Name, b.Name
		}
		if si.SyslogDrainURL != "" {
			drain = si.SyslogDrainURL
		}
		tags := si.Tags
		if tags == nil {
			tags = []string{}
		}
		ups = append(ups, map[string]any{
			"label": "user-provided", "name": name, "tags": tags,
			"instance_guid": si.GUID, "instance_name": si.Name,
			"binding_guid": b.GUID, "binding_name": bindingName,
			"credentials": creds, "syslog_drain_url": drain, "volume_mounts": []any{},
		})
	}
	if len(ups) > 0 {
		out["user-provided"] = ups
	}
	return out, nil
}

// withServices prepends VCAP_SERVICES to env when the app has bindings
// (the cell sets "{}" otherwise).
func (a *API) withServices(ctx context.Context, appGUID string, running bool, env []pando.EnvVar) ([]pando.EnvVar, error) {
	vs, err := a.vcapServices(ctx, appGUID, running)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return env, nil
	}
	raw, err := json.Marshal(vs)
	if err != nil {
		return nil, fmt.Errorf("VCAP_SERVICES of app %s: %w", appGUID, err)
	}
	return append([]pando.EnvVar{{Name: "VCAP_SERVICES", Value: string(raw)}}, env...), nil
}
