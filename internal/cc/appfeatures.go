package cc

import (
	"net/http"
	"slices"

	"github.com/pandoplatform/pando"
)

// App features (cf enable-/disable-app-feature... via
// PATCH /v3/apps/:guid/features/:name): "ssh" (always off, Pando has no
// SSH), and the two ways to receive service bindings as files instead of
// VCAP_SERVICES. They take effect at the app's next start, like bindings.

// appFeatureDescriptions are CF's app features, in CF's order.
var appFeatureDescriptions = []struct{ name, description string }{
	{"ssh", "Enable SSHing into the app."},
	{pando.AppFeatureServiceBindingK8s, "Enable k8s service bindings for the app"},
	{pando.AppFeatureFileVCAPServices, "Enable file-based VCAP service bindings for the app"},
}

func appFeature(app pando.App, name string) (map[string]any, bool) {
	for _, f := range appFeatureDescriptions {
		if f.name == name {
			return map[string]any{"name": f.name, "description": f.description, "enabled": slices.Contains(app.Features, f.name)}, true
		}
	}
	return nil, false
}

func (a *API) listAppFeatures(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	features := make([]map[string]any, 0, len(appFeatureDescriptions))
	for _, f := range appFeatureDescriptions {
		feature, _ := appFeature(app, f.name)
		features = append(features, feature)
	}
	paginate(a, w, r, features, func(map[string]any) sortable { return sortable{} }, func(f map[string]any) any { return f })
	return nil
}

func (a *API) getAppFeature(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	feature, ok := appFeature(app, r.PathValue("name"))
	if !ok {
		return notFound("Feature")
	}
	writeJSON(w, http.StatusOK, feature)
	return nil
}

// patchAppFeature enables or disables an app feature. As CF, the two
// file-based binding features exclude each other.
func (a *API) patchAppFeature(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := a.getAppByGUID(r.Context(), r.PathValue("guid")); err != nil {
		return err
	}
	if _, ok := appFeature(pando.App{}, name); !ok {
		return notFound("Feature")
	}
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return invalid("Enabled must be a boolean")
	}
	if name == "ssh" && *body.Enabled {
		return invalid("SSH is not supported by Pando")
	}
	app, err := a.mutateApp(r.Context(), r.PathValue("guid"), func(app *pando.App) error {
		on := slices.Contains(app.Features, name)
		if on == *body.Enabled {
			return errUnchanged
		}
		if !*body.Enabled {
			app.Features = slices.DeleteFunc(slices.Clone(app.Features), func(f string) bool { return f == name })
			return nil
		}
		other := pando.AppFeatureFileVCAPServices
		if name == other {
			other = pando.AppFeatureServiceBindingK8s
		}
		if name != "ssh" && slices.Contains(app.Features, other) {
			return invalid("'%s' and '%s' features cannot be enabled at the same time.",
				pando.AppFeatureFileVCAPServices, pando.AppFeatureServiceBindingK8s)
		}
		app.Features = append(slices.Clone(app.Features), name)
		return nil
	})
	if err != nil {
		return err
	}
	feature, _ := appFeature(app, name)
	writeJSON(w, http.StatusOK, feature)
	return nil
}

// bindingFiles is the binding-file feature the app enabled, if any.
func bindingFiles(app pando.App) string {
	for _, f := range []string{pando.AppFeatureFileVCAPServices, pando.AppFeatureServiceBindingK8s} {
		if slices.Contains(app.Features, f) {
			return f
		}
	}
	return ""
}
