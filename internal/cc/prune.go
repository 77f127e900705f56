package cc

import (
	"context"
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
// droplet until restart), and those of tasks not yet finished.
func (a *API) dropletsInUse(ctx context.Context, app pando.App) map[string]bool {
	used := map[string]bool{app.DropletGUID: true, app.RunningDropletGUID: true}
	if procs, err := a.store.ListProcesses(ctx, nil, []string{app.GUID}); err == nil {
		for _, p := range procs {
			if lrp, ok := a.rt.DesiredLRP(p.GUID); ok {
				used[strings.TrimPrefix(lrp.DropletKey, pando.DropletBlobKey(""))] = true
			}
		}
	}
	if tasks, err := a.store.ListAppTasks(ctx, []string{app.GUID}, activeTaskStates); err == nil {
		for _, t := range tasks {
			used[t.DropletGUID] = true
		}
	}
	return used
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
	inUse := a.dropletsInUse(ctx, app)
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
	pkgs, err := a.store.ListPackages(ctx, []string{appGUID})
	if err != nil {
		a.log.Warn("prune packages", "app_guid", appGUID, "err", err)
		return
	}
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].CreatedAt.After(pkgs[j].CreatedAt) })
	for n, p := range pkgs {
		if n < keepPackages || keptPackages[p.GUID] {
			continue
		}
		if err := a.store.DeletePackage(ctx, p.GUID); err != nil {
			a.log.Warn("prune package", "package_guid", p.GUID, "err", err)
			continue
		}
		_ = a.blobs.Delete(ctx, pando.PackageBlobKey(p.GUID))
	}
}
