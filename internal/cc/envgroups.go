package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/pandoplatform/pando"
)

// Environment variable groups (cf running-environment-variable-group and
// friends): platform-wide variables an admin sets. The running group is
// in every instance's and task's environment, the staging group in every
// staging's, each under the app's own variables (the app wins, as in CF).
// A change reaches instances when they restart.

func (a *API) registerEnvGroupRoutes(h func(string, handlerFunc)) {
	h("GET /v3/environment_variable_groups/{name}", a.getEnvGroup)
	h("PATCH /v3/environment_variable_groups/{name}", a.patchEnvGroup)
}

func validEnvGroup(name string) bool {
	return name == pando.EnvGroupRunning || name == pando.EnvGroupStaging
}

// envGroup returns a group; one never set is empty.
func (a *API) envGroup(ctx context.Context, name string) (pando.EnvGroup, error) {
	g, err := a.db(ctx).GetEnvGroup(ctx, name)
	if pando.IsNotFound(err) {
		return pando.EnvGroup{Name: name, Vars: map[string]string{}}, nil
	}
	if err != nil {
		return g, fmt.Errorf("%s environment variable group: %w", name, err)
	}
	if g.Vars == nil {
		g.Vars = map[string]string{}
	}
	return g, nil
}

// withEnvGroup is the app's variables over the group's.
func (a *API) withEnvGroup(ctx context.Context, group string, own map[string]string) (map[string]string, error) {
	g, err := a.envGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	env := maps.Clone(g.Vars)
	maps.Copy(env, own)
	return env, nil
}

func (a *API) presentEnvGroup(g pando.EnvGroup) map[string]any {
	var updated any
	if !g.UpdatedAt.IsZero() {
		updated = ts(g.UpdatedAt)
	}
	return map[string]any{
		"name":       g.Name,
		"var":        g.Vars,
		"updated_at": updated,
		"links":      map[string]any{"self": link(a.url("/v3/environment_variable_groups/%s", g.Name))},
	}
}

func (a *API) getEnvGroup(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !validEnvGroup(name) {
		return notFound("Environment variable group")
	}
	g, err := a.envGroup(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentEnvGroup(g))
	return nil
}

// patchEnvGroup merges the body's variables into the group: a null value
// removes one (the cf CLI sends nulls for the names it drops). Admin only
// (authorize.go).
func (a *API) patchEnvGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := r.PathValue("name")
	if !validEnvGroup(name) {
		return notFound("Environment variable group")
	}
	var body struct {
		Var map[string]json.RawMessage `json:"var"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	// The merge reads and writes the group in one transaction: variables
	// another request set meanwhile stay.
	var g pando.EnvGroup
	err := a.inTx(ctx, func(ctx context.Context) error {
		var err error
		if g, err = a.envGroup(ctx, name); err != nil {
			return err
		}
		for k, raw := range body.Var {
			v, set, err := envValue(raw)
			if err != nil {
				return invalid("Environment variable %q: %v", k, err)
			}
			if set {
				g.Vars[k] = v
			} else {
				delete(g.Vars, k)
			}
		}
		if err := validateEnvVars(g.Vars); err != nil {
			return err
		}
		g.UpdatedAt = a.now()
		if err := a.db(ctx).PutEnvGroup(ctx, g); err != nil {
			return fmt.Errorf("set %s environment variable group: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("environment variable group set", "name", name, "vars", len(g.Vars), "user_name", identityFrom(ctx).UserName)
	writeJSON(w, http.StatusOK, a.presentEnvGroup(g))
	return nil
}

// envValue reads one variable's JSON value: a string, or a number or
// boolean kept as written; null unsets it.
func envValue(raw json.RawMessage) (string, bool, error) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "null":
		return "", false, nil
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", false, err
		}
		return v, true, nil
	case s == "true" || s == "false":
		return s, true, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, fmt.Errorf("value must be a string, number, boolean or null")
	}
	return n.String(), true, nil
}
