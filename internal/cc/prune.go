package cc

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pandoplatform/pando"
)

// Retention: how many packages and droplets an app keeps besides its
// current droplet (and the package it came from). Older ones and their
// blobs are deleted after each successful staging, so pushing often does
// not fill the disk.
const (
	keepDroplets = 5
	keepPackages = 5
)

// dropletsInUse are the droplets something still needs: the current one,
// the ones running instances were started from (a revision keeps its
// droplet until restart), and those of tasks not yet finished. When it
// cannot tell, it says so: pruning then waits for the next staging.
func (a *API) dropletsInUse(ctx context.Context, app pando.App) (map[string]bool, error) {
	used := map[string]bool{app.DropletGUID: true, app.RunningDropletGUID: true}
	procs, err := a.store.ListProcesses(ctx, nil, []string{app.GUID})
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, p := range procs {
		lrp, err := a.rt.DesiredLRP(ctx, p.GUID)
		switch {
		case err == nil:
			used[strings.TrimPrefix(lrp.DropletKey, pando.DropletBlobKey(""))] = true
		case !pando.IsNotFound(err):
			return nil, fmt.Errorf("read desired LRP %s: %w", p.GUID, err)
		}
	}
	tasks, err := a.store.ListAppTasks(ctx, []string{app.GUID}, activeTaskStates)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	for _, t := range tasks {
		used[t.DropletGUID] = true
	}
	return used, nil
}

// pruneApp deletes an app's old packages and droplets beyond retention.
// It never deletes a droplet in use (dropletsInUse), anything still
// staging, or the package of a kept droplet. Failures are logged: pruning is best effort.
func (a *API) pruneApp(ctx context.Context, appGUID string) {
	app, err := a.store.GetApp(ctx, appGUID)
	if err != nil {
		return
	}
	drops, err := a.store.ListDroplets(ctx, []string{appGUID}, nil)
	if err != nil {
		a.log.Warn("prune droplets", "app_guid", appGUID, "err", err)
		return
	}
	sort.SliceStable(drops, func(i, j int) bool { return drops[i].CreatedAt.After(drops[j].CreatedAt) })
	inUse, err := a.dropletsInUse(ctx, app)
	if err != nil {
		a.log.Warn("prune droplets", "app_guid", appGUID, "err", err)
		return
	}
	keptPackages := map[string]bool{}
	kept := 0
	for _, d := range drops {
		busy := d.State == pando.DropletProcessingUpload || d.State == pando.DropletAwaitingUpload || d.State == pando.DropletCopying
		// Failed droplets do not take the place of usable ones.
		spare := d.State == pando.DropletStaged && kept < keepDroplets
		if inUse[d.GUID] || busy || spare {
			if spare && !inUse[d.GUID] {
				kept++
			}
			keptPackages[d.PackageGUID] = true
			continue
		}
		if err := a.store.DeleteDroplet(ctx, d.GUID); err != nil {
			a.log.Warn("prune droplet", "droplet_guid", d.GUID, "err", err)
			continue
		}
		_ = a.blobs.Delete(ctx, pando.DropletBlobKey(d.GUID))
	}
	a.prunePackages(ctx, appGUID, keptPackages)
}

// prunePackagesOf deletes an app's packages beyond retention once a new
// one is created or uploaded, as CF expires packages at each upload:
// packages made or uploaded and never staged do not pile up either. The
// packages of the app's droplets stay.
func (a *API) prunePackagesOf(ctx context.Context, appGUID string) {
	drops, err := a.store.ListDroplets(ctx, []string{appGUID}, nil)
	if err != nil {
		a.log.Warn("prune packages", "app_guid", appGUID, "err", err)
		return
	}
	keep := map[string]bool{}
	for _, d := range drops {
		keep[d.PackageGUID] = true
	}
	a.prunePackages(ctx, appGUID, keep)
}

// prunePackages deletes an app's packages past the newest keepPackages,
// but not those in keep (a staging's droplet names its package from the
// start, so the package it reads is kept).
func (a *API) prunePackages(ctx context.Context, appGUID string, keep map[string]bool) {
	pkgs, err := a.store.ListPackages(ctx, []string{appGUID})
	if err != nil {
		a.log.Warn("prune packages", "app_guid", appGUID, "err", err)
		return
	}
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].CreatedAt.After(pkgs[j].CreatedAt) })
	for n, p := range pkgs {
		if n < keepPackages || keep[p.GUID] {
			continue
		}
		if err := a.store.DeletePackage(ctx, p.GUID); err != nil {
			a.log.Warn("prune package", "package_guid", p.GUID, "err", err)
			continue
		}
		_ = a.blobs.Delete(ctx, pando.PackageBlobKey(p.GUID))
	}
}
