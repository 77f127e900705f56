package cc

import (
	"context"
	"fmt"
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
