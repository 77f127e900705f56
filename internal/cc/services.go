package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// User-provided service instances (cf create-user-provided-service,
// update-user-provided-service, services, service, delete-service). Their
// credentials are sealed before they are stored, shown only through
// /credentials (space developers, admins) and the bound apps' env, and
// never put in events or logs. Managed services (brokers, plans) are not
// offered.

// Bounds on what one instance may hold.
const (
	maxServiceCredentialsBytes = 64 << 10
	maxServiceTags             = 64
	maxServiceNameLen          = 255
)

func (a *API) registerServiceRoutes(h func(string, handlerFunc)) {
	h("GET /v3/service_instances", a.listServiceInstances)
	h("POST /v3/service_instances", a.postServiceInstance)
	h("GET /v3/service_instances/{guid}", a.getServiceInstance)
	h("PATCH /v3/service_instances/{guid}", a.patchServiceInstance)
	h("DELETE /v3/service_instances/{guid}", a.deleteServiceInstance)
	h("GET /v3/service_instances/{guid}/credentials", a.getServiceInstanceCredentials)
	a.registerBindingRoutes(h)
	a.registerRouteBindingRoutes(h)
}

func init() {
	for k, r := range map[string]rule{
		"GET /v3/service_instances":                          anyone,
		"POST /v3/service_instances":                         anyone, // the handler checks the space
		"GET /v3/service_instances/{guid}":                   on("service_instance", needRead),
		"PATCH /v3/service_instances/{guid}":                 on("service_instance", needWrite),
		"DELETE /v3/service_instances/{guid}":                on("service_instance", needWrite),
		"GET /v3/service_instances/{guid}/credentials":       on("service_instance", needEnv),
		"GET /v3/service_credential_bindings":                anyone,
		"POST /v3/service_credential_bindings":               anyone, // the handler checks the app
		"GET /v3/service_credential_bindings/{guid}":         on("service_binding", needRead),
		"DELETE /v3/service_credential_bindings/{guid}":      on("service_binding", needWrite),
		"GET /v3/service_credential_bindings/{guid}/details": on("service_binding", needEnv),
	} {
		accessRules[k] = r
	}
	notFoundTitles["service_instance"] = "Service instance"
	notFoundTitles["service_binding"] = "Service credential binding"
}

// servicesChanged tells Config.ServicesChanged, if set.
func (a *API) servicesChanged() {
	if a.cfg.ServicesChanged != nil {
		a.cfg.ServicesChanged()
	}
}

// credentialsPurpose binds an instance's sealed credentials to it.
func credentialsPurpose(instanceGUID string) string {
	return "service-instance-credentials:" + instanceGUID
}

func (a *API) presentServiceInstance(si pando.ServiceInstance) map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	tags := si.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"guid":              si.GUID,
		"name":              si.Name,
		"type":              si.Type,
		"created_at":        ts(si.CreatedAt),
		"updated_at":        ts(si.UpdatedAt),
		"syslog_drain_url":  nullable(si.SyslogDrainURL),
		"route_service_url": nullable(si.RouteServiceURL),
		"tags":              tags,
		"last_operation": map[string]any{
			"type": "create", "state": "succeeded", "description": "Operation succeeded",
			"created_at": ts(si.CreatedAt), "updated_at": ts(si.UpdatedAt),
		},
		"metadata":      metadata(),
		"relationships": map[string]any{"space": rel(si.SpaceGUID)},
		"links": map[string]any{
			"self":                        link(a.url("/v3/service_instances/%s", si.GUID)),
			"space":                       link(a.url("/v3/spaces/%s", si.SpaceGUID)),
			"credentials":                 link(a.url("/v3/service_instances/%s/credentials", si.GUID)),
			"service_credential_bindings": link(a.url("/v3/service_credential_bindings?service_instance_guids=%s", si.GUID)),
		},
	}
}

// serviceInstanceBody is CF's create and update body; pointers tell an
// update what it changes.
type serviceInstanceBody struct {
	Type            string           `json:"type"`
	Name            *string          `json:"name"`
	Credentials     *json.RawMessage `json:"credentials"`
	SyslogDrainURL  *string          `json:"syslog_drain_url"`
	RouteServiceURL *string          `json:"route_service_url"`
	Tags            *[]string        `json:"tags"`
	Relationships   struct {
		Space struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"space"`
	} `json:"relationships"`
}

// apply validates b's fields and sets them on si.
func (a *API) applyServiceInstanceBody(si *pando.ServiceInstance, b serviceInstanceBody) error {
	if b.Name != nil {
		n := strings.TrimSpace(*b.Name)
		if n == "" {
			return invalid("Name can't be blank")
		}
		if len(n) > maxServiceNameLen {
			return invalid("Name is too long (maximum is %d characters)", maxServiceNameLen)
		}
		si.Name = n
	}
	if b.Credentials != nil {
		raw := []byte(*b.Credentials)
		if len(raw) > maxServiceCredentialsBytes {
			return invalid("Credentials must be at most %d bytes", maxServiceCredentialsBytes)
		}
		var obj map[string]any
		if string(raw) == "null" {
			obj = map[string]any{}
		} else if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return invalid("Credentials must be an object")
		}
		sealed, err := a.sealCredentials(si.GUID, obj)
		if err != nil {
			return err
		}
		si.Credentials = sealed
	}
	for _, u := range []struct {
		in    *string
		out   *string
		what  string
		https bool
	}{{b.SyslogDrainURL, &si.SyslogDrainURL, "Syslog drain url", false}, {b.RouteServiceURL, &si.RouteServiceURL, "Route service url", true}} {
		if u.in == nil {
			continue
		}
		v := strings.TrimSpace(*u.in)
		if v != "" {
			p, err := url.Parse(v)
			if err != nil || p.Scheme == "" || p.Host == "" {
				return invalid("%s must be a valid url", u.what)
			}
			if u.https && p.Scheme != "https" {
				return invalid("%s must be https", u.what)
			}
		}
		*u.out = v
	}
	if b.Tags != nil {
		if len(*b.Tags) > maxServiceTags {
			return invalid("Tags must be at most %d", maxServiceTags)
		}
		si.Tags = slices.Clone(*b.Tags)
	}
	return nil
}

func (a *API) sealCredentials(instanceGUID string, creds map[string]any) (string, error) {
	if len(creds) == 0 {
		return "", nil
	}
	if a.cfg.Secrets == nil {
		return "", fmt.Errorf("service instance %s: no secrets key to seal credentials with", instanceGUID)
	}
	raw, err := json.Marshal(creds)
	if err != nil {
		return "", fmt.Errorf("service instance %s credentials: %w", instanceGUID, err)
	}
	sealed, err := a.cfg.Secrets.Seal(string(raw), credentialsPurpose(instanceGUID))
	if err != nil {
		return "", fmt.Errorf("service instance %s: seal credentials: %w", instanceGUID, err)
	}
	return sealed, nil
}

// instanceCredentials opens an instance's credentials ({} for none).
func (a *API) instanceCredentials(si pando.ServiceInstance) (map[string]any, error) {
	creds := map[string]any{}
	if si.Credentials == "" {
		return creds, nil
	}
	if a.cfg.Secrets == nil {
		return nil, fmt.Errorf("service instance %s: no secrets key to open credentials with", si.GUID)
	}
	raw, err := a.cfg.Secrets.Open(si.Credentials, credentialsPurpose(si.GUID))
	if err != nil {
		return nil, fmt.Errorf("service instance %s: open credentials: %w", si.GUID, err)
	}
	if err := json.Unmarshal([]byte(raw), &creds); err != nil {
		return nil, fmt.Errorf("service instance %s credentials: %w", si.GUID, err)
	}
	return creds, nil
}

func (a *API) postServiceInstance(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in serviceInstanceBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	switch in.Type {
	case pando.ServiceInstanceUserProvided:
	case "managed":
		return invalid("Managed service instances are not offered: this platform has no service brokers; create a user-provided service instance")
	default:
		return invalid("Type must be one of 'managed', 'user-provided'")
	}
	if in.Name == nil {
		return invalid("Name must be a string")
	}
	spaceGUID := in.Relationships.Space.Data.GUID
	if spaceGUID == "" {
		return invalid("Relationships Space can't be blank")
	}
	if err := a.checkSpace(ctx, spaceGUID, needWrite); err != nil {
		return err
	}
	now := a.now()
	si := pando.ServiceInstance{GUID: a.newGUID(), SpaceGUID: spaceGUID, Type: in.Type, Tags: []string{}, CreatedAt: now, UpdatedAt: now}
	// The limit is checked in the transaction that creates the instance:
	// concurrent creations cannot together pass it.
	err := a.inTx(ctx, func(ctx context.Context) error {
		if err := a.checkServiceInstanceLimit(ctx, spaceGUID); err != nil {
			return err
		}
		if err := a.applyServiceInstanceBody(&si, in); err != nil {
			return err
		}
		return a.db(ctx).CreateServiceInstance(ctx, si)
	})
	if err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("The service instance name is taken: %s.", si.Name)
		}
		return err
	}
	a.recordServiceInstanceEvent(ctx, "audit.user_provided_service_instance.create", si)
	writeJSON(w, http.StatusCreated, a.presentServiceInstance(si))
	return nil
}

func (a *API) recordServiceInstanceEvent(ctx context.Context, typ string, si pando.ServiceInstance) {
	org := ""
	if sp, err := a.store.GetSpace(ctx, si.SpaceGUID); err == nil {
		org = sp.OrgGUID
	}
	a.recordTenancyEvent(ctx, typ, "user_provided_service_instance", si.GUID, si.Name, si.SpaceGUID, org)
}

func (a *API) getServiceInstance(w http.ResponseWriter, r *http.Request) error {
	si, err := a.store.GetServiceInstance(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentServiceInstance(si))
	return nil
}

func (a *API) listServiceInstances(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if t := q.Get("type"); t != "" && t != pando.ServiceInstanceUserProvided {
		paginate(a, w, r, []pando.ServiceInstance{}, serviceInstanceKey, func(si pando.ServiceInstance) any { return nil })
		return nil
	}
	all, err := a.store.ListServiceInstances(ctx, pando.ServiceInstanceFilter{
		GUIDs: splitList(q, "guids"), Names: splitList(q, "names"), SpaceGUIDs: splitList(q, "space_guids"),
	})
	if err != nil {
		return err
	}
	p := permsFrom(ctx)
	var orgs []string
	if o := splitList(q, "organization_guids"); len(o) > 0 {
		orgs = o
	}
	visible := all[:0]
	for _, si := range all {
		if !p.seesSpace(si.SpaceGUID) {
			continue
		}
		if orgs != nil {
			sp, err := a.store.GetSpace(ctx, si.SpaceGUID)
			if err != nil || !slices.Contains(orgs, sp.OrgGUID) {
				continue
			}
		}
		visible = append(visible, si)
	}
	var inc func([]pando.ServiceInstance) map[string]any
	if q.Has("fields[space]") || q.Has("fields[space.organization]") {
		// cf service names the instance's space and org from these.
		inc = func(page []pando.ServiceInstance) map[string]any { return a.includeSpacesOf(ctx, page) }
	}
	paginateWith(a, w, r, visible, serviceInstanceKey, func(si pando.ServiceInstance) any { return a.presentServiceInstance(si) }, inc)
	return nil
}

// includeSpacesOf is the "included" spaces and organizations of the
// instances (CF's fields[space], fields[space.organization]).
func (a *API) includeSpacesOf(ctx context.Context, page []pando.ServiceInstance) map[string]any {
	spaces, orgs := []any{}, []any{}
	seen := map[string]bool{}
	for _, si := range page {
		if seen[si.SpaceGUID] {
			continue
		}
		seen[si.SpaceGUID] = true
		sp, err := a.store.GetSpace(ctx, si.SpaceGUID)
		if err != nil {
			continue
		}
		spaces = append(spaces, map[string]any{"guid": sp.GUID, "name": sp.Name, "relationships": map[string]any{"organization": rel(sp.OrgGUID)}})
		if seen[sp.OrgGUID] {
			continue
		}
		seen[sp.OrgGUID] = true
		if o, err := a.store.GetOrg(ctx, sp.OrgGUID); err == nil {
			orgs = append(orgs, map[string]any{"guid": o.GUID, "name": o.Name})
		}
	}
	return map[string]any{"spaces": spaces, "organizations": orgs}
}

func serviceInstanceKey(si pando.ServiceInstance) sortable {
	return sortable{name: si.Name, createdAt: si.CreatedAt, updatedAt: si.UpdatedAt}
}

func (a *API) patchServiceInstance(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	si, err := a.store.GetServiceInstance(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	var in serviceInstanceBody
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Relationships.Space.Data.GUID != "" {
		return invalid("Relationships cannot be changed")
	}
	// Re-read in the write's transaction: what another request changed
	// meanwhile stays.
	err = a.inTx(ctx, func(ctx context.Context) error {
		cur, err := a.db(ctx).GetServiceInstance(ctx, si.GUID)
		if err != nil {
			return err
		}
		si = cur
		oldDrain := si.SyslogDrainURL
		if err := a.applyServiceInstanceBody(&si, in); err != nil {
			return err
		}
		if si.SyslogDrainURL != oldDrain {
			if err := a.checkInstanceDrainLimits(ctx, si); err != nil {
				return err
			}
		}
		si.UpdatedAt = a.now()
		return a.db(ctx).UpdateServiceInstance(ctx, si)
	})
	if err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return invalid("The service instance name is taken: %s.", si.Name)
		}
		return err
	}
	a.servicesChanged()
	a.routeServicesChanged(ctx)
	a.recordServiceInstanceEvent(ctx, "audit.user_provided_service_instance.update", si)
	writeJSON(w, http.StatusOK, a.presentServiceInstance(si))
	return nil
}

// checkInstanceDrainLimits checks the drains an instance's new drain URL
// gives its bound apps.
func (a *API) checkInstanceDrainLimits(ctx context.Context, si pando.ServiceInstance) error {
	if si.SyslogDrainURL == "" {
		return nil
	}
	bs, err := a.db(ctx).ListServiceBindings(ctx, pando.ServiceBindingFilter{InstanceGUIDs: []string{si.GUID}})
	if err != nil {
		return err
	}
	adding := make([]newDrain, 0, len(bs))
	for _, b := range bs {
		app, err := a.db(ctx).GetApp(ctx, b.AppGUID)
		if pando.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		adding = append(adding, newDrain{app, si})
	}
	return a.checkDrainLimits(ctx, si.GUID, adding)
}

// deleteServiceInstance deletes a user-provided instance and its bindings
// at once (204), as CF does for user-provided instances; bound apps lose
// it at their next start.
func (a *API) deleteServiceInstance(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	si, err := a.store.GetServiceInstance(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if err := a.store.DeleteServiceInstance(ctx, si.GUID); err != nil {
		return err
	}
	a.servicesChanged()
	a.routeServicesChanged(ctx)
	a.recordServiceInstanceEvent(ctx, "audit.user_provided_service_instance.delete", si)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getServiceInstanceCredentials(w http.ResponseWriter, r *http.Request) error {
	si, err := a.store.GetServiceInstance(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	creds, err := a.instanceCredentials(si)
	if err != nil {
		return err
	}
	a.recordServiceInstanceEvent(r.Context(), "audit.user_provided_service_instance.show", si)
	writeJSON(w, http.StatusOK, creds)
	return nil
}
