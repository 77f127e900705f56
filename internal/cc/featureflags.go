package cc

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/pandoplatform/pando"
)

// CF's feature flags, with CF's defaults. Pando stores only what an admin
// changed. When a flag is off, what it guards is refused with 403
// CF-FeatureDisabled to everyone but admins (CF's rule for every flag but
// user_org_creation); the env visibility flags also let admin read-only
// users through.
const (
	FlagUserOrgCreation                    = "user_org_creation"
	FlagPrivateDomainCreation              = "private_domain_creation"
	FlagAppBitsUpload                      = "app_bits_upload"
	FlagAppScaling                         = "app_scaling"
	FlagRouteCreation                      = "route_creation"
	FlagServiceInstanceCreation            = "service_instance_creation"
	FlagDiegoDocker                        = "diego_docker"
	FlagSetRolesByUsername                 = "set_roles_by_username"
	FlagUnsetRolesByUsername               = "unset_roles_by_username"
	FlagTaskCreation                       = "task_creation"
	FlagEnvVarVisibility                   = "env_var_visibility"
	FlagSpaceScopedPrivateBrokerCreation   = "space_scoped_private_broker_creation"
	FlagSpaceDeveloperEnvVarVisibility     = "space_developer_env_var_visibility"
	FlagServiceInstanceSharing             = "service_instance_sharing"
	FlagHideMarketplaceFromUnauthenticated = "hide_marketplace_from_unauthenticated_users"
	FlagResourceMatching                   = "resource_matching"
	FlagRouteSharing                       = "route_sharing"
	FlagDiegoCNB                           = "diego_cnb"
)

// flagDefaults is every flag CF knows, in CF's order, with its default.
// diego_docker's default is the API's Config.DockerEnabled (CF's is off:
// a Pando whose cells run images lets users push them).
func (a *API) flagDefaults() []pando.FeatureFlag {
	return []pando.FeatureFlag{
		{Name: FlagUserOrgCreation, Enabled: false},
		{Name: FlagPrivateDomainCreation, Enabled: true},
		{Name: FlagAppBitsUpload, Enabled: true},
		{Name: FlagAppScaling, Enabled: true},
		{Name: FlagRouteCreation, Enabled: true},
		{Name: FlagServiceInstanceCreation, Enabled: true},
		{Name: FlagDiegoDocker, Enabled: a.cfg.DockerEnabled},
		{Name: FlagSetRolesByUsername, Enabled: true},
		{Name: FlagUnsetRolesByUsername, Enabled: true},
		{Name: FlagTaskCreation, Enabled: true},
		{Name: FlagEnvVarVisibility, Enabled: true},
		{Name: FlagSpaceScopedPrivateBrokerCreation, Enabled: true},
		{Name: FlagSpaceDeveloperEnvVarVisibility, Enabled: true},
		{Name: FlagServiceInstanceSharing, Enabled: false},
		{Name: FlagHideMarketplaceFromUnauthenticated, Enabled: false},
		{Name: FlagResourceMatching, Enabled: true},
		{Name: FlagRouteSharing, Enabled: false},
		{Name: FlagDiegoCNB, Enabled: false},
	}
}

// featureFlags is every flag with its current setting.
func (a *API) featureFlags(ctx context.Context) ([]pando.FeatureFlag, error) {
	set, err := a.db(ctx).ListFeatureFlags(ctx)
	if err != nil {
		return nil, fmt.Errorf("feature flags: %w", err)
	}
	flags := a.flagDefaults()
	for i, f := range flags {
		if j := slices.IndexFunc(set, func(s pando.FeatureFlag) bool { return s.Name == f.Name }); j >= 0 {
			flags[i] = set[j]
		}
	}
	return flags, nil
}

func (a *API) featureFlag(ctx context.Context, name string) (pando.FeatureFlag, error) {
	flags, err := a.featureFlags(ctx)
	if err != nil {
		return pando.FeatureFlag{}, err
	}
	i := slices.IndexFunc(flags, func(f pando.FeatureFlag) bool { return f.Name == name })
	if i < 0 {
		return pando.FeatureFlag{}, notFound("Feature flag")
	}
	return flags[i], nil
}

// featureDisabled is CF's error for a disabled flag.
func featureDisabled(f pando.FeatureFlag) error {
	msg := "Feature Disabled: " + f.Name
	if f.CustomErrorMessage != "" {
		msg = f.CustomErrorMessage
	}
	return &pando.Error{Kind: pando.EForbidden, Code: 330002, Title: "CF-FeatureDisabled", Message: msg}
}

// requireFeature refuses what the flag name guards while it is off,
// except to admins (and, for the env visibility flags, admin read-only
// users).
func (a *API) requireFeature(ctx context.Context, id Identity, name string) error {
	if id.hasScope(ScopeAdmin) {
		return nil
	}
	if (name == FlagEnvVarVisibility || name == FlagSpaceDeveloperEnvVarVisibility) && id.hasScope(ScopeAdminReadOnly) {
		return nil
	}
	f, err := a.featureFlag(ctx, name)
	if err != nil {
		return err
	}
	if !f.Enabled {
		return featureDisabled(f)
	}
	return nil
}

// featureEnabled reads a flag for behaviour that changes rather than
// refuses (resource matching); a store error counts as the default.
func (a *API) featureEnabled(ctx context.Context, name string) bool {
	f, err := a.featureFlag(ctx, name)
	if err != nil {
		a.log.Warn("read feature flag", "name", name, "err", err)
		i := slices.IndexFunc(a.flagDefaults(), func(f pando.FeatureFlag) bool { return f.Name == name })
		return i >= 0 && a.flagDefaults()[i].Enabled
	}
	return f.Enabled
}

func (a *API) registerFeatureFlagRoutes(h func(string, handlerFunc)) {
	h("GET /v3/feature_flags", a.listFeatureFlags)
	h("GET /v3/feature_flags/{name}", a.getFeatureFlag)
	h("PATCH /v3/feature_flags/{name}", a.patchFeatureFlag)
}

func (a *API) presentFeatureFlag(f pando.FeatureFlag) map[string]any {
	var updated any
	if !f.UpdatedAt.IsZero() {
		updated = ts(f.UpdatedAt)
	}
	return map[string]any{
		"name":                 f.Name,
		"enabled":              f.Enabled,
		"updated_at":           updated,
		"custom_error_message": nilIfEmpty(f.CustomErrorMessage),
		"links":                map[string]any{"self": link(a.url("/v3/feature_flags/%s", f.Name))},
	}
}

func (a *API) listFeatureFlags(w http.ResponseWriter, r *http.Request) error {
	flags, err := a.featureFlags(r.Context())
	if err != nil {
		return err
	}
	paginate(a, w, r, flags, func(f pando.FeatureFlag) sortable {
		return sortable{name: f.Name, updatedAt: f.UpdatedAt}
	}, func(f pando.FeatureFlag) any { return a.presentFeatureFlag(f) })
	return nil
}

func (a *API) getFeatureFlag(w http.ResponseWriter, r *http.Request) error {
	f, err := a.featureFlag(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentFeatureFlag(f))
	return nil
}

// maxFlagMessage bounds a flag's custom error message.
const maxFlagMessage = 1000

// patchFeatureFlag is cf enable-feature-flag / disable-feature-flag
// (admin only: authorize.go).
func (a *API) patchFeatureFlag(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := a.featureFlag(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	var body struct {
		Enabled            *bool          `json:"enabled"`
		CustomErrorMessage nullableString `json:"custom_error_message"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.CustomErrorMessage.set && len(body.CustomErrorMessage.value) > maxFlagMessage {
		return invalid("Custom error message is too long (maximum is %d characters)", maxFlagMessage)
	}
	// Re-read in the write's transaction: a message or setting another
	// request gave the flag meanwhile stays.
	err = a.inTx(ctx, func(ctx context.Context) error {
		var err error
		if f, err = a.featureFlag(ctx, f.Name); err != nil {
			return err
		}
		if body.Enabled != nil {
			f.Enabled = *body.Enabled
		}
		if body.CustomErrorMessage.set {
			f.CustomErrorMessage = body.CustomErrorMessage.value
		}
		f.UpdatedAt = a.now()
		if err := a.db(ctx).PutFeatureFlag(ctx, f); err != nil {
			return fmt.Errorf("set feature flag %s: %w", f.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	id := identityFrom(ctx)
	a.log.Info("feature flag set", "name", f.Name, "enabled", f.Enabled, "user_name", id.UserName)
	writeJSON(w, http.StatusOK, a.presentFeatureFlag(f))
	return nil
}
