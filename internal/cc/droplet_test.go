package cc

import (
	"context"
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
)

func TestDroplet_listsEveryBuildpackOfAMultiBuildpackStaging(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.push("multi")
	d := pando.Droplet{
		GUID: "droplet-multi", AppGUID: app.GUID, PackageGUID: "p", State: pando.DropletStaged,
		LifecycleType: pando.LifecycleBuildpack, BuildpackName: "go_buildpack",
		Buildpacks: []pando.StagedBuildpack{{Name: "apt_buildpack", Version: "0.3"}, {Name: "go_buildpack", Version: "1.0.0", DetectOutput: "go"}},
	}
	if err := e.store.CreateDroplet(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	body := e.expect(e.get("/v3/droplets/droplet-multi"), http.StatusOK)
	bps, _ := body["buildpacks"].([]any)
	if len(bps) != 2 {
		t.Fatalf("buildpacks = %v", body["buildpacks"])
	}
	first, last := bps[0].(map[string]any), bps[1].(map[string]any)
	if first["name"] != "apt_buildpack" || first["version"] != "0.3" || last["name"] != "go_buildpack" || last["detect_output"] != "go" {
		t.Errorf("buildpacks = %v", bps)
	}
}
