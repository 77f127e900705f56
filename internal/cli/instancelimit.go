package cli

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// instanceLimits reads the targeted org's and space's caps on one
// instance's memory, for checkInstanceMemory; nil when they cannot be read
// (the server then refuses the start itself, as Cloud Foundry does).
func (s *session) instanceLimits(ctx context.Context) *api.InstanceMemoryLimits {
	if s.cfg.OrgGUID == "" || s.cfg.SpaceGUID == "" {
		return nil
	}
	l, err := s.c.InstanceMemoryLimits(ctx, s.cfg.OrgGUID, s.cfg.SpaceGUID)
	if err != nil {
		return nil
	}
	return &l
}

// checkInstanceMemory refuses, before anything is uploaded or staged, an
// app whose instances ask for more memory than the org's or the space's
// quota lets one instance have: Cloud Foundry refuses it only at the start
// that follows the staging, after the user waited for the staging.
func (s *session) checkInstanceMemory(ctx context.Context, app *api.App, limits *api.InstanceMemoryLimits) error {
	if limits == nil || (limits.Org == nil && limits.Space == nil) {
		return nil
	}
	procs, err := s.c.AppProcesses(ctx, app.GUID)
	if err != nil {
		return nil
	}
	for _, p := range procs {
		if p.Instances == 0 {
			continue
		}
		for _, l := range []struct {
			cap   *int64
			whose string
			list  string
		}{{limits.Org, "the org's", "'pando quotas'"}, {limits.Space, "the space's", "'pando space-quotas'"}} {
			if l.cap == nil || *l.cap < 0 || int64(p.MemoryInMB) <= *l.cap {
				continue
			}
			return fmt.Errorf("app %s's %s process asks for %s per instance, but %s quota caps one instance at %s: "+
				"nothing was uploaded or staged. Lower -m (or memory: in the manifest), or ask for a bigger quota (%s shows the limits)",
				app.Name, p.Type, megabytes(p.MemoryInMB), l.whose, megabytes(int(*l.cap)), l.list)
		}
	}
	return nil
}
