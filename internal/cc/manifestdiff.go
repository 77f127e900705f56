package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// manifest_diff: what applying a manifest would change, as JSON-patch-like
// operations the cf CLI prints as "Updating with these attributes...".
// Values on both sides are normalized (sizes as "256M") so equal settings
// never show as changes. Routes and env are additive when applied, so only
// additions and changes are reported for them; no-route reports the routes
// it would remove.

type diffOp struct {
	Op, Path   string
	Was, Value any
}

// MarshalJSON keeps "value" even when it is a zero value, except for
// removals, which have none.
func (d diffOp) MarshalJSON() ([]byte, error) {
	m := map[string]any{"op": d.Op, "path": d.Path, "was": d.Was}
	if d.Op != "remove" {
		m["value"] = d.Value
	}
	return json.Marshal(m)
}

func (a *API) manifestDiff(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	space, err := a.store.GetSpace(ctx, r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Space")
	}
	apps, err := readManifest(r)
	if err != nil {
		return err
	}
	ops := []diffOp{}
	for i, m := range apps {
		existing, err := a.store.ListApps(ctx, pando.AppFilter{Names: []string{m.Name}, SpaceGUIDs: []string{space.GUID}})
		if err != nil {
			return err
		}
		var cur map[string]any
		if len(existing) > 0 {
			if cur, err = a.currentManifest(ctx, existing[0]); err != nil {
				return err
			}
		}
		ops = append(ops, diffApp(i, m, cur)...)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"diff": ops})
	return nil
}

// processManifest is a process in normalized manifest form.
func processManifest(p pando.Process) map[string]any {
	m := map[string]any{
		"type":                      p.Type,
		"instances":                 p.Instances,
		"memory":                    formatMB(p.MemoryMB),
		"disk_quota":                formatMB(p.DiskMB),
		"log-rate-limit-per-second": formatLogRate(p.LogRateLimitBytes),
		"health-check-type":         p.HealthCheckType,
	}
	if p.Command != "" {
		m["command"] = p.Command
	}
	if p.HealthCheckType == pando.HealthCheckHTTP && p.HealthCheckEndpoint != "" {
		m["health-check-http-endpoint"] = p.HealthCheckEndpoint
	}
	if p.HealthCheckTimeout > 0 {
		m["timeout"] = p.HealthCheckTimeout
	}
	if p.HealthCheckInvocationTimeout > 0 {
		m["health-check-invocation-timeout"] = p.HealthCheckInvocationTimeout
	}
	return m
}

// currentManifest renders an app as the manifest that would describe it,
// with the web process's settings at the top level as CF does.
func (a *API) currentManifest(ctx context.Context, app pando.App) (map[string]any, error) {
	cur := map[string]any{"name": app.Name}
	procs, err := a.store.ListProcesses(ctx, nil, []string{app.GUID})
	if err != nil {
		return nil, fmt.Errorf("processes of app %s: %w", app.GUID, err)
	}
	var plist []any
	for _, p := range procs {
		pm := processManifest(p)
		plist = append(plist, pm)
		if p.Type == "web" {
			for k, v := range pm {
				if k != "type" {
					cur[k] = v
				}
			}
		}
	}
	if plist != nil {
		cur["processes"] = plist
	}
	if d, ok := cur["disk_quota"]; ok {
		cur["disk-quota"] = d
	}
	if app.LifecycleType == pando.LifecycleDocker {
		pkgs, err := a.store.ListPackages(ctx, []string{app.GUID})
		if err != nil {
			return nil, fmt.Errorf("packages of app %s: %w", app.GUID, err)
		}
		for i := len(pkgs) - 1; i >= 0; i-- {
			if pkgs[i].Type == "docker" && pkgs[i].DockerImage != "" {
				cur["docker"] = map[string]any{"image": pkgs[i].DockerImage}
				break
			}
		}
	} else {
		if app.Stack != "" {
			cur["stack"] = app.Stack
		}
		if len(app.Buildpacks) > 0 {
			list := make([]any, len(app.Buildpacks))
			for i, b := range app.Buildpacks {
				list[i] = b
			}
			cur["buildpacks"] = list
			cur["buildpack"] = app.Buildpacks[0]
		}
	}
	if len(app.EnvVars) > 0 {
		env := make(map[string]any, len(app.EnvVars))
		for k, v := range app.EnvVars {
			env[k] = v
		}
		cur["env"] = env
	}
	routes, err := a.store.ListRoutes(ctx, pando.RouteFilter{AppGUIDs: []string{app.GUID}})
	if err != nil {
		return nil, fmt.Errorf("routes of app %s: %w", app.GUID, err)
	}
	if len(routes) > 0 {
		domains, err := a.domainsByGUID(ctx)
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(routes))
		for _, rt := range routes {
			list = append(list, map[string]any{"route": routeURL(rt.Host, domains[rt.DomainGUID].Name, rt.Path)})
		}
		cur["routes"] = list
	}
	return cur, nil
}

// diffApp compares manifest application index i with cur (nil for an app
// that does not exist yet), key by key in manifest order.
func diffApp(i int, m manifestApp, cur map[string]any) []diffOp {
	prefix := fmt.Sprintf("/applications/%d/", i)
	var ops []diffOp
	for _, key := range m.keys {
		val, path := m.norm[key], prefix+key
		if cur == nil {
			if key != "no-route" {
				ops = append(ops, diffOp{Op: "add", Path: path, Value: val})
			}
			continue
		}
		switch key {
		case "no-route":
			if val == true && cur["routes"] != nil {
				ops = append(ops, diffOp{Op: "remove", Path: prefix + "routes", Was: cur["routes"]})
			}
		case "routes":
			ops = append(ops, diffRoutes(path, cur["routes"], val)...)
		case "processes":
			ops = append(ops, diffProcesses(path, cur["processes"], val)...)
		default:
			ops = diffValue(ops, path, cur[key], val)
		}
	}
	return ops
}

func diffRoutes(path string, was, val any) []diffOp {
	existing, _ := was.([]any)
	if len(existing) == 0 {
		return []diffOp{{Op: "add", Path: path, Value: val}}
	}
	have := map[string]bool{}
	for _, e := range existing {
		if em, ok := e.(map[string]any); ok {
			have[strings.ToLower(fmt.Sprint(em["route"]))] = true
		}
	}
	var ops []diffOp
	list, _ := val.([]any)
	for j, r := range list {
		rm, _ := r.(map[string]any)
		if !have[strings.ToLower(fmt.Sprint(rm["route"]))] {
			ops = append(ops, diffOp{Op: "add", Path: fmt.Sprintf("%s/%d", path, j), Value: r})
		}
	}
	return ops
}

func diffProcesses(path string, was, val any) []diffOp {
	existing, _ := was.([]any)
	byType := map[string]map[string]any{}
	for _, e := range existing {
		if em, ok := e.(map[string]any); ok {
			byType[fmt.Sprint(em["type"])] = em
		}
	}
	var ops []diffOp
	list, _ := val.([]any)
	for j, p := range list {
		pm, _ := p.(map[string]any)
		ppath := fmt.Sprintf("%s/%d", path, j)
		ep, ok := byType[fmt.Sprint(pm["type"])]
		if !ok {
			ops = append(ops, diffOp{Op: "add", Path: ppath, Value: p})
			continue
		}
		for _, k := range sortedKeys(pm) {
			if k != "type" {
				ops = diffValue(ops, ppath+"/"+k, ep[k], pm[k])
			}
		}
	}
	return ops
}

// diffValue appends the operations turning was into val: maps are compared
// key by key (additions and changes only), anything else as a whole.
func diffValue(ops []diffOp, path string, was, val any) []diffOp {
	if was == nil {
		return append(ops, diffOp{Op: "add", Path: path, Value: val})
	}
	wm, wok := was.(map[string]any)
	vm, vok := val.(map[string]any)
	if wok && vok {
		for _, k := range sortedKeys(vm) {
			ops = diffValue(ops, path+"/"+escapePointer(k), wm[k], vm[k])
		}
		return ops
	}
	if !sameJSON(was, val) {
		ops = append(ops, diffOp{Op: "replace", Path: path, Was: was, Value: val})
	}
	return ops
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// escapePointer escapes a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func sameJSON(x, y any) bool {
	bx, errx := json.Marshal(x)
	by, erry := json.Marshal(y)
	return errx == nil && erry == nil && string(bx) == string(by)
}
