package cc

import (
	"context"

	"github.com/pandoplatform/pando"
)

// Presenters render domain values in CF v3's JSON shapes.

func metadata() map[string]any {
	return map[string]any{"labels": map[string]any{}, "annotations": map[string]any{}}
}

func rel(guid string) map[string]any {
	if guid == "" {
		return map[string]any{"data": nil}
	}
	return map[string]any{"data": map[string]any{"guid": guid}}
}

func (a *API) presentApp(app pando.App) map[string]any {
	u := func(p string) map[string]any { return link(a.url("/v3/apps/%s%s", app.GUID, p)) }
	lifecycle := map[string]any{"type": app.LifecycleType, "data": map[string]any{}}
	if app.LifecycleType != pando.LifecycleDocker {
		bps := app.Buildpacks
		if bps == nil {
			bps = []string{}
		}
		lifecycle["data"] = map[string]any{"buildpacks": bps, "stack": app.Stack}
	}
	start := u("/actions/start")
	start["method"] = "POST"
	stop := u("/actions/stop")
	stop["method"] = "POST"
	return map[string]any{
		"guid":       app.GUID,
		"name":       app.Name,
		"state":      app.State,
		"created_at": ts(app.CreatedAt),
		"updated_at": ts(app.UpdatedAt),
		"lifecycle":  lifecycle,
		"relationships": map[string]any{
			"space": rel(app.SpaceGUID),
		},
		"metadata": metadata(),
		"links": map[string]any{
			"self":                  u(""),
			"space":                 link(a.url("/v3/spaces/%s", app.SpaceGUID)),
			"processes":             u("/processes"),
			"packages":              u("/packages"),
			"environment_variables": u("/environment_variables"),
			"current_droplet":       u("/droplets/current"),
			"droplets":              u("/droplets"),
			"tasks":                 u("/tasks"),
			"start":                 start,
			"stop":                  stop,
			"revisions":             u("/revisions"),
			"deployed_revisions":    u("/revisions/deployed"),
			"features":              u("/features"),
		},
	}
}

func healthCheckData(p pando.Process) map[string]any {
	data := map[string]any{
		"timeout":            nilIfZero(p.HealthCheckTimeout),
		"invocation_timeout": nilIfZero(p.HealthCheckInvocationTimeout),
	}
	if p.HealthCheckType == pando.HealthCheckHTTP {
		data["endpoint"] = p.HealthCheckEndpoint
	}
	return map[string]any{"type": p.HealthCheckType, "data": data}
}

func nilIfZero(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// presentProcess renders a process; its command is the user's or, as CF
// shows it, the one the current droplet detected.
func (a *API) presentProcess(p pando.Process, detected func(pando.Process) string) map[string]any {
	var cmd any
	c := detected(p)
	switch {
	case c == hiddenCommand:
		cmd = c // the caller may not see it (a space auditor), as CF hides it
	case p.Command != "":
		cmd = p.Command
	case c != "":
		cmd = c
	}
	return map[string]any{
		"guid":                               p.GUID,
		"type":                               p.Type,
		"command":                            cmd,
		"instances":                          p.Instances,
		"memory_in_mb":                       p.MemoryMB,
		"disk_in_mb":                         p.DiskMB,
		"log_rate_limit_in_bytes_per_second": p.LogRateLimitBytes,
		"health_check":                       healthCheckData(p),
		"readiness_health_check":             map[string]any{"type": "process", "data": map[string]any{"invocation_timeout": nil}},
		"version":                            p.GUID,
		"created_at":                         ts(p.CreatedAt),
		"updated_at":                         ts(p.UpdatedAt),
		"relationships": map[string]any{
			"app":      rel(p.AppGUID),
			"revision": map[string]any{"data": nil},
		},
		"metadata": metadata(),
		"links": map[string]any{
			"self":  link(a.url("/v3/processes/%s", p.GUID)),
			"scale": map[string]any{"href": a.url("/v3/processes/%s/actions/scale", p.GUID), "method": "POST"},
			"app":   link(a.url("/v3/apps/%s", p.AppGUID)),
			"space": link(a.url("/v3/apps/%s", p.AppGUID)),
			"stats": link(a.url("/v3/processes/%s/stats", p.GUID)),
		},
	}
}

// detectedCommands looks up the start command each process's app's
// current droplet gives its type, reading each app and droplet once.
// hiddenCommand stands for a command the caller may not read.
const hiddenCommand = "[PRIVATE DATA HIDDEN]"

func (a *API) detectedCommands(ctx context.Context) func(pando.Process) string {
	types := map[string]map[string]string{} // app guid -> process types
	hidden := map[string]bool{}             // app guid -> commands hidden from the caller
	perms := permsFrom(ctx)
	return func(p pando.Process) string {
		pt, ok := types[p.AppGUID]
		if !ok {
			app, err := a.store.GetApp(ctx, p.AppGUID)
			if err == nil && app.DropletGUID != "" {
				if d, err := a.store.GetDroplet(ctx, app.DropletGUID); err == nil {
					pt = d.ProcessTypes
				}
			}
			types[p.AppGUID] = pt
			// Commands carry secrets as env does: only those who read env see them.
			hidden[p.AppGUID] = !perms.envAll && (err != nil || !perms.spaceRoles[app.SpaceGUID][pando.RoleSpaceDeveloper])
		}
		if hidden[p.AppGUID] {
			return hiddenCommand
		}
		return pt[p.Type]
	}
}

func (a *API) presentPackage(p pando.Package) map[string]any {
	data := map[string]any{}
	if p.Type == "docker" {
		data["image"] = p.DockerImage
		if p.DockerUsername != "" {
			data["username"] = p.DockerUsername
			data["password"] = "***"
		} else {
			data["username"] = nil
			data["password"] = nil
		}
	} else {
		data["checksum"] = map[string]any{"type": "sha256", "value": nilIfEmpty(p.SHA256)}
		data["error"] = nilIfEmpty(p.Error)
	}
	return map[string]any{
		"guid":       p.GUID,
		"type":       p.Type,
		"state":      p.State,
		"data":       data,
		"created_at": ts(p.CreatedAt),
		"updated_at": ts(p.UpdatedAt),
		"relationships": map[string]any{
			"app": rel(p.AppGUID),
		},
		"metadata": metadata(),
		"links": map[string]any{
			"self":     link(a.url("/v3/packages/%s", p.GUID)),
			"upload":   map[string]any{"href": a.url("/v3/packages/%s/upload", p.GUID), "method": "POST"},
			"download": map[string]any{"href": a.url("/v3/packages/%s/download", p.GUID), "method": "GET"},
			"app":      link(a.url("/v3/apps/%s", p.AppGUID)),
		},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (a *API) presentBuild(b pando.Build) map[string]any {
	var droplet any
	if b.DropletGUID != "" && b.State == pando.BuildStaged {
		droplet = map[string]any{"guid": b.DropletGUID, "href": a.url("/v3/droplets/%s", b.DropletGUID)}
	}
	lifecycle := map[string]any{"type": b.LifecycleType, "data": map[string]any{}}
	if b.LifecycleType != pando.LifecycleDocker {
		bps := b.Buildpacks
		if bps == nil {
			bps = []string{}
		}
		lifecycle["data"] = map[string]any{"buildpacks": bps, "stack": b.Stack}
	}
	return map[string]any{
		"guid":                 b.GUID,
		"state":                b.State,
		"error":                nilIfEmpty(b.Error),
		"staging_memory_in_mb": b.StagingMemoryMB,
		"staging_disk_in_mb":   b.StagingDiskMB,
		"staging_log_rate_limit_bytes_per_second": pando.StagingLogRateLimit,
		"lifecycle":     lifecycle,
		"package":       map[string]any{"guid": b.PackageGUID},
		"droplet":       droplet,
		"created_by":    map[string]any{"guid": b.CreatedByGUID, "name": b.CreatedByName, "email": b.CreatedByName},
		"created_at":    ts(b.CreatedAt),
		"updated_at":    ts(b.UpdatedAt),
		"relationships": map[string]any{"app": rel(b.AppGUID)},
		"metadata":      metadata(),
		"links": map[string]any{
			"self": link(a.url("/v3/builds/%s", b.GUID)),
			"app":  link(a.url("/v3/apps/%s", b.AppGUID)),
		},
	}
}

func (a *API) presentDroplet(d pando.Droplet) map[string]any {
	pt := d.ProcessTypes
	if pt == nil {
		pt = map[string]string{}
	}
	out := map[string]any{
		"guid":               d.GUID,
		"state":              d.State,
		"error":              nilIfEmpty(d.Error),
		"lifecycle":          map[string]any{"type": d.LifecycleType, "data": map[string]any{}},
		"execution_metadata": d.ExecutionMetadata,
		"process_types":      pt,
		"checksum":           nil,
		"buildpacks":         []any{},
		"stack":              nilIfEmpty(d.Stack),
		"image":              nilIfEmpty(d.Image),
		"created_at":         ts(d.CreatedAt),
		"updated_at":         ts(d.UpdatedAt),
		"relationships":      map[string]any{"app": rel(d.AppGUID)},
		"metadata":           metadata(),
		"links": map[string]any{
			"self":                   link(a.url("/v3/droplets/%s", d.GUID)),
			"app":                    link(a.url("/v3/apps/%s", d.AppGUID)),
			"assign_current_droplet": map[string]any{"href": a.url("/v3/apps/%s/relationships/current_droplet", d.AppGUID), "method": "PATCH"},
		},
	}
	if d.PackageGUID != "" {
		out["links"].(map[string]any)["package"] = link(a.url("/v3/packages/%s", d.PackageGUID))
	}
	if d.LifecycleType != pando.LifecycleDocker {
		if d.SHA256 != "" {
			out["checksum"] = map[string]any{"type": "sha256", "value": d.SHA256}
			out["links"].(map[string]any)["download"] = link(a.url("/v3/droplets/%s/download", d.GUID))
		}
		switch {
		case len(d.Buildpacks) > 0:
			bps := make([]any, 0, len(d.Buildpacks))
			for _, b := range d.Buildpacks {
				bps = append(bps, map[string]any{
					"name":           b.Name,
					"detect_output":  nilIfEmpty(b.DetectOutput),
					"buildpack_name": b.Name,
					"version":        nilIfEmpty(b.Version),
				})
			}
			out["buildpacks"] = bps
		case d.BuildpackName != "" || d.DetectedBuildpack != "":
			out["buildpacks"] = []any{map[string]any{
				"name":           d.BuildpackName,
				"detect_output":  nilIfEmpty(d.DetectedBuildpack),
				"buildpack_name": d.BuildpackName,
				"version":        nilIfEmpty(d.BuildpackVersion),
			}}
		}
	}
	return out
}
