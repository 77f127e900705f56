package cc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

func TestPrune_keepsTheNewestDropletsAndPackagesAndDeletesTheRest(t *testing.T) {
	e := ctNew(t, ctOpts{})
	var first ctApp
	for i := 0; i < keepDroplets+3; i++ {
		// Each push changes a file, so each one stages a new droplet.
		files := append(ctStaticApp(), ctFile{Path: "version.txt", Mode: 0o644, Body: fmt.Sprintf("v%d", i)})
		app := e.pushFiles("busy", files)
		if i == 0 {
			first = app
		}
	}
	// The last staging's pruning runs once its build is recorded, so it
	// may still be deleting when the push returns: what it leaves is
	// checked until it holds (or 10 s pass).
	var problems []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		problems = prunedState(t, e, first.GUID)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// prunedState is what differs from an app whose pruning is done: the
// current droplet plus keepDroplets older ones kept with their blobs, the
// two oldest deleted with theirs, and the packages of the kept droplets.
func prunedState(t *testing.T, e *ctEnv, appGUID string) (problems []string) {
	t.Helper()
	ctx := context.Background()
	drops, err := e.store.ListDroplets(ctx, []string{appGUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(drops) != keepDroplets+1 {
		problems = append(problems, fmt.Sprintf("droplets kept = %d, want %d", len(drops), keepDroplets+1))
	}
	app, err := e.store.GetApp(ctx, appGUID)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, d := range drops {
		kept[d.GUID] = true
		if ok, _ := e.blobs.Exists(ctx, pando.DropletBlobKey(d.GUID)); !ok {
			problems = append(problems, fmt.Sprintf("kept droplet %s lost its blob", d.GUID))
		}
	}
	if !kept[app.DropletGUID] {
		problems = append(problems, fmt.Sprintf("current droplet %s was pruned", app.DropletGUID))
	}
	builds, err := e.store.ListBuilds(ctx, []string{appGUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pruned := 0
	for _, b := range builds {
		if !kept[b.DropletGUID] {
			pruned++
			if ok, _ := e.blobs.Exists(ctx, pando.DropletBlobKey(b.DropletGUID)); ok {
				problems = append(problems, fmt.Sprintf("pruned droplet %s still has its blob", b.DropletGUID))
			}
		}
	}
	if pruned != 2 {
		problems = append(problems, fmt.Sprintf("pruned droplets = %d, want 2", pruned))
	}
	pkgs, err := e.store.ListPackages(ctx, []string{appGUID})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != keepDroplets+1 {
		problems = append(problems, fmt.Sprintf("packages kept = %d, want %d (those of the kept droplets)", len(pkgs), keepDroplets+1))
	}
	return problems
}

// Uploading bits without staging them (as CF, each upload expires the
// app's older packages) keeps the newest keepPackages and their blobs,
// and the package of a droplet (here one still staging).
func TestPrune_uploadsWithoutStagingKeepTheNewestPackages(t *testing.T) {
	e := ctNew(t, ctOpts{})
	ctx := context.Background()
	app := e.pushToBuild("uploader", "applications:\n- name: uploader\n", ctStaticApp())
	var guids []string
	for range keepPackages + 2 {
		guids = append(guids, e.uploadBits(app.GUID, ctStaticApp()))
	}
	pkgs, err := e.store.ListPackages(ctx, []string{app.GUID})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, p := range pkgs {
		left[p.GUID] = true
	}
	if len(pkgs) != keepPackages+1 {
		t.Errorf("packages left = %d, want %d", len(pkgs), keepPackages+1)
	}
	// The first is staging (pushToBuild's build never ends here): its
	// droplet names it.
	all := append([]string{app.Package}, guids...)
	for i, g := range all {
		want := i == 0 || i >= len(all)-keepPackages
		ok, _ := e.blobs.Exists(ctx, pando.PackageBlobKey(g))
		if left[g] != want || ok != want {
			t.Errorf("package %d of %d: kept %v, blob %v; want %v (the droplet's and the newest %d stay)", i+1, len(all), left[g], ok, want, keepPackages)
		}
	}
}

// Packages created and never uploaded are pruned the same way.
func TestPrune_packagesNeverUploadedAreBoundedToo(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.pushToBuild("creator", "applications:\n- name: creator\n", ctStaticApp())
	for range keepPackages + 3 {
		e.expect(e.sendJSON("POST", "/v3/packages", map[string]any{
			"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.GUID}}},
			"type":          "bits",
		}), http.StatusCreated)
	}
	pkgs, err := e.store.ListPackages(context.Background(), []string{app.GUID})
	if err != nil {
		t.Fatal(err)
	}
	// The newest keepPackages, and the one its staging droplet names.
	if len(pkgs) != keepPackages+1 || !slices.ContainsFunc(pkgs, func(p pando.Package) bool { return p.GUID == app.Package }) {
		t.Errorf("packages left = %d (staged one kept: %v), want %d", len(pkgs), slices.ContainsFunc(pkgs, func(p pando.Package) bool { return p.GUID == app.Package }), keepPackages+1)
	}
}
