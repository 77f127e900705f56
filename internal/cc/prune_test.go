package cc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/pandoplatform/pando"
)

func TestPrune_keepsTheNewestDropletsAndPackagesAndDeletesTheRest(t *testing.T) {
	e := ctNew(t, ctOpts{})
	ctx := context.Background()
	var first ctApp
	for i := 0; i < keepDroplets+3; i++ {
		// Each push changes a file, so each one stages a new droplet.
		files := append(ctStaticApp(), ctFile{Path: "version.txt", Mode: 0o644, Body: fmt.Sprintf("v%d", i)})
		app := e.pushFiles("busy", files)
		if i == 0 {
			first = app
		}
	}
	drops, err := e.store.ListDroplets(ctx, []string{first.GUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The current droplet plus keepDroplets older ones survive.
	if len(drops) != keepDroplets+1 {
		t.Fatalf("droplets kept = %d, want %d", len(drops), keepDroplets+1)
	}
	app, err := e.store.GetApp(ctx, first.GUID)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, d := range drops {
		kept[d.GUID] = true
		if ok, _ := e.blobs.Exists(ctx, pando.DropletBlobKey(d.GUID)); !ok {
			t.Errorf("kept droplet %s lost its blob", d.GUID)
		}
	}
	if !kept[app.DropletGUID] {
		t.Errorf("current droplet %s was pruned", app.DropletGUID)
	}
	builds, err := e.store.ListBuilds(ctx, []string{first.GUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pruned := 0
	for _, b := range builds {
		if !kept[b.DropletGUID] {
			pruned++
			if ok, _ := e.blobs.Exists(ctx, pando.DropletBlobKey(b.DropletGUID)); ok {
				t.Errorf("pruned droplet %s still has its blob", b.DropletGUID)
			}
		}
	}
	if pruned != 2 {
		t.Errorf("pruned droplets = %d, want 2", pruned)
	}
	pkgs, err := e.store.ListPackages(ctx, []string{first.GUID})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != keepDroplets+1 {
		t.Errorf("packages kept = %d, want %d (those of the kept droplets)", len(pkgs), keepDroplets+1)
	}
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
