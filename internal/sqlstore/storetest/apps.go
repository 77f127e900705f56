package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

func testOrgs(t *testing.T, s pando.Store) {
	ctx := t.Context()
	a := pando.Org{GUID: newGUID("org"), Name: "alpha", CreatedAt: at(0), UpdatedAt: at(1)}
	b := pando.Org{GUID: newGUID("org"), Name: "beta", CreatedAt: at(2), UpdatedAt: at(2)}
	must(t, s.CreateOrg(ctx, a))
	must(t, s.CreateOrg(ctx, b))

	got, err := s.GetOrg(ctx, a.GUID)
	must(t, err)
	wantEqual(t, got, a)

	_, err = s.GetOrg(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "org", "nope")

	wantKind(t, s.CreateOrg(ctx, pando.Org{GUID: newGUID("org"), Name: "alpha"}), pando.EConflict, `"alpha"`)
	wantKind(t, s.CreateOrg(ctx, pando.Org{GUID: a.GUID, Name: "gamma"}), pando.EConflict, a.GUID)

	all, err := s.ListOrgs(ctx, nil, nil)
	must(t, err)
	wantEqual(t, all, []pando.Org{a, b})

	byName, err := s.ListOrgs(ctx, nil, []string{"beta", "missing"})
	must(t, err)
	wantGUIDs(t, byName, b.GUID)

	byGUID, err := s.ListOrgs(ctx, []string{a.GUID, b.GUID}, []string{"alpha"})
	must(t, err)
	wantGUIDs(t, byGUID, a.GUID)

	none, err := s.ListOrgs(ctx, []string{"missing"}, nil)
	must(t, err)
	wantGUIDs(t, none)
}

func testSpaces(t *testing.T, s pando.Store) {
	ctx := t.Context()
	o1 := pando.Org{GUID: newGUID("org"), Name: "o1"}
	o2 := pando.Org{GUID: newGUID("org"), Name: "o2"}
	must(t, s.CreateOrg(ctx, o1))
	must(t, s.CreateOrg(ctx, o2))
	dev1 := pando.Space{GUID: newGUID("space"), Name: "dev", OrgGUID: o1.GUID, CreatedAt: at(0), UpdatedAt: at(0)}
	prod1 := pando.Space{GUID: newGUID("space"), Name: "prod", OrgGUID: o1.GUID, CreatedAt: at(1), UpdatedAt: at(1)}
	dev2 := pando.Space{GUID: newGUID("space"), Name: "dev", OrgGUID: o2.GUID, CreatedAt: at(2), UpdatedAt: at(2)}
	for _, sp := range []pando.Space{dev1, prod1, dev2} {
		must(t, s.CreateSpace(ctx, sp))
	}

	got, err := s.GetSpace(ctx, prod1.GUID)
	must(t, err)
	wantEqual(t, got, prod1)
	_, err = s.GetSpace(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "space", "nope")

	wantKind(t, s.CreateSpace(ctx, pando.Space{GUID: newGUID("space"), Name: "dev", OrgGUID: o1.GUID}), pando.EConflict, `"dev"`)
	wantKind(t, s.CreateSpace(ctx, pando.Space{GUID: newGUID("space"), Name: "x", OrgGUID: "no-such-org"}), pando.EInvalid, "no-such-org")

	all, err := s.ListSpaces(ctx, nil, nil, nil)
	must(t, err)
	wantGUIDs(t, all, dev1.GUID, prod1.GUID, dev2.GUID)

	devs, err := s.ListSpaces(ctx, nil, []string{"dev"}, nil)
	must(t, err)
	wantGUIDs(t, devs, dev1.GUID, dev2.GUID)

	inO1, err := s.ListSpaces(ctx, nil, nil, []string{o1.GUID})
	must(t, err)
	wantGUIDs(t, inO1, dev1.GUID, prod1.GUID)

	devInO2, err := s.ListSpaces(ctx, []string{dev1.GUID, dev2.GUID}, []string{"dev"}, []string{o2.GUID})
	must(t, err)
	wantGUIDs(t, devInO2, dev2.GUID)
}

func testApps(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	other := pando.Space{GUID: newGUID("space"), Name: "other", OrgGUID: f.org.GUID}
	must(t, s.CreateSpace(ctx, other))

	got, err := s.GetApp(ctx, f.app.GUID)
	must(t, err)
	wantEqual(t, got, f.app)

	_, err = s.GetApp(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "app", "nope")

	dup := newApp(f.space.GUID, f.app.Name)
	wantKind(t, s.CreateApp(ctx, dup), pando.EConflict, `"`+f.app.Name+`"`)
	sameGUID := newApp(f.space.GUID, "different")
	sameGUID.GUID = f.app.GUID
	wantKind(t, s.CreateApp(ctx, sameGUID), pando.EConflict, f.app.GUID)
	wantKind(t, s.CreateApp(ctx, newApp("no-such-space", "x")), pando.EInvalid, "no-such-space")

	// The same name in another space is fine.
	twin := newApp(other.GUID, f.app.Name)
	twin.CreatedAt, twin.UpdatedAt = at(10), at(10)
	must(t, s.CreateApp(ctx, twin))
	third := newApp(f.space.GUID, "third")
	third.CreatedAt, third.UpdatedAt = at(20), at(20)
	must(t, s.CreateApp(ctx, third))

	// Update replaces every field but GUID and CreatedAt.
	upd := f.app
	upd.Name = "renamed"
	upd.State = pando.AppStarted
	upd.LifecycleType = pando.LifecycleDocker
	upd.Buildpacks = []string{"a", "b"}
	upd.Stack = "cflinuxfs4"
	upd.EnvVars = map[string]string{"B": "2", "C": ""}
	upd.DropletGUID = "droplet-1"
	upd.Revision = 1<<33 + 7 // past 32 bits: a revision grows without bound
	upd.UpdatedAt = at(30)
	must(t, s.UpdateApp(ctx, upd))
	got, err = s.GetApp(ctx, f.app.GUID)
	must(t, err)
	wantEqual(t, got, upd)

	clash := upd
	clash.Name = "third"
	wantKind(t, s.UpdateApp(ctx, clash), pando.EConflict, `"third"`)
	missing := newApp(f.space.GUID, "ghost")
	wantKind(t, s.UpdateApp(ctx, missing), pando.ENotFound, missing.GUID)

	// Filters: empty matches all; each slice is an IN; slices AND together.
	all, err := s.ListApps(ctx, pando.AppFilter{})
	must(t, err)
	wantGUIDs(t, all, f.app.GUID, twin.GUID, third.GUID)
	byName, err := s.ListApps(ctx, pando.AppFilter{Names: []string{twin.Name, "third"}})
	must(t, err)
	wantGUIDs(t, byName, twin.GUID, third.GUID)
	bySpace, err := s.ListApps(ctx, pando.AppFilter{SpaceGUIDs: []string{f.space.GUID}})
	must(t, err)
	wantGUIDs(t, bySpace, f.app.GUID, third.GUID)
	combined, err := s.ListApps(ctx, pando.AppFilter{GUIDs: []string{f.app.GUID, twin.GUID}, SpaceGUIDs: []string{other.GUID}})
	must(t, err)
	wantGUIDs(t, combined, twin.GUID)

	must(t, s.DeleteApp(ctx, third.GUID))
	_, err = s.GetApp(ctx, third.GUID)
	wantKind(t, err, pando.ENotFound)
	wantKind(t, s.DeleteApp(ctx, third.GUID), pando.ENotFound, third.GUID)
	// The name is free again.
	again := newApp(f.space.GUID, "third")
	must(t, s.CreateApp(ctx, again))
}

func testAppJSON(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	cases := []struct {
		name       string
		buildpacks []string
		env        map[string]string
	}{
		{"nil", nil, nil},
		{"empty", []string{}, map[string]string{}},
		{"awkward", []string{"https://example.com/bp.zip?x=1&y=\"2\"", "ü"}, map[string]string{
			"QUOTES": `a "b" 'c'`, "NEWLINE": "l1\nl2", "UNICODE": "héllo ✓", "EMPTY": "", "JSON": `{"k":[1,2]}`,
		}},
	}
	for _, c := range cases {
		a := newApp(f.space.GUID, "json-"+c.name)
		a.Buildpacks, a.EnvVars, a.Features = c.buildpacks, c.env, c.buildpacks
		a.RunningDropletGUID, a.RunningEnvVars = "droplet-"+c.name, c.env
		a.RunningBindingFiles = c.name
		must(t, s.CreateApp(ctx, a))
		got, err := s.GetApp(ctx, a.GUID)
		must(t, err)
		wantEqual(t, got, a)
		a.RunningEnvVars = map[string]string{"PINNED": c.name}
		a.RunningDropletGUID = "droplet-2"
		must(t, s.UpdateApp(ctx, a))
		got, err = s.GetApp(ctx, a.GUID)
		must(t, err)
		wantEqual(t, got, a)
	}
}

func testProcesses(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	app2 := newApp(f.space.GUID, "second")
	must(t, s.CreateApp(ctx, app2))

	web := newProcess(f.app.GUID, "web")
	worker := newProcess(f.app.GUID, "worker")
	worker.CreatedAt, worker.UpdatedAt = at(10), at(10)
	web2 := newProcess(app2.GUID, "web")
	web2.CreatedAt, web2.UpdatedAt = at(20), at(20)
	for _, p := range []pando.Process{web, worker, web2} {
		must(t, s.CreateProcess(ctx, p))
	}

	got, err := s.GetProcess(ctx, web.GUID)
	must(t, err)
	wantEqual(t, got, web)
	_, err = s.GetProcess(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "process", "nope")

	wantKind(t, s.CreateProcess(ctx, newProcess(f.app.GUID, "web")), pando.EConflict, `"web"`)
	wantKind(t, s.CreateProcess(ctx, newProcess("no-such-app", "web")), pando.EInvalid, "no-such-app")

	upd := web
	upd.Command = ""
	upd.Instances = 0
	upd.MemoryMB = 2048
	upd.DiskMB = 2048
	upd.LogRateLimitBytes = 1 << 33
	upd.HealthCheckType = pando.HealthCheckProcess
	upd.HealthCheckEndpoint = ""
	upd.HealthCheckTimeout = 0
	upd.HealthCheckInvocationTimeout = 5
	upd.UpdatedAt = at(40)
	must(t, s.UpdateProcess(ctx, upd))
	got, err = s.GetProcess(ctx, web.GUID)
	must(t, err)
	wantEqual(t, got, upd)

	clash := worker
	clash.Type = "web"
	wantKind(t, s.UpdateProcess(ctx, clash), pando.EConflict, `"web"`)
	wantKind(t, s.UpdateProcess(ctx, newProcess(f.app.GUID, "ghost")), pando.ENotFound)

	all, err := s.ListProcesses(ctx, nil, nil)
	must(t, err)
	wantGUIDs(t, all, web.GUID, worker.GUID, web2.GUID)
	ofApp, err := s.ListProcesses(ctx, nil, []string{f.app.GUID})
	must(t, err)
	wantGUIDs(t, ofApp, web.GUID, worker.GUID)
	byGUID, err := s.ListProcesses(ctx, []string{web2.GUID, worker.GUID}, []string{app2.GUID})
	must(t, err)
	wantGUIDs(t, byGUID, web2.GUID)

	must(t, s.DeleteProcess(ctx, worker.GUID))
	wantKind(t, s.DeleteProcess(ctx, worker.GUID), pando.ENotFound, worker.GUID)
	ofApp, err = s.ListProcesses(ctx, nil, []string{f.app.GUID})
	must(t, err)
	wantGUIDs(t, ofApp, web.GUID)
}

func testPackages(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	app2 := newApp(f.space.GUID, "second")
	must(t, s.CreateApp(ctx, app2))

	bits := newPackage(f.app.GUID)
	docker := newPackage(app2.GUID)
	docker.Type = "docker"
	docker.State = pando.PackageReady
	docker.SHA1, docker.SHA256, docker.Size = "", "", 0
	docker.DockerImage = "registry.local:5000/app@sha256:abc"
	docker.DockerUsername = "bob"
	docker.DockerPassword = "s3cret"
	docker.CreatedAt, docker.UpdatedAt = at(10), at(10)
	must(t, s.CreatePackage(ctx, bits))
	must(t, s.CreatePackage(ctx, docker))

	for _, want := range []pando.Package{bits, docker} {
		got, err := s.GetPackage(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetPackage(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "package", "nope")
	wantKind(t, s.CreatePackage(ctx, bits), pando.EConflict, bits.GUID)
	wantKind(t, s.CreatePackage(ctx, newPackage("no-such-app")), pando.EInvalid, "no-such-app")

	upd := bits
	upd.State = pando.PackageFailed
	upd.Error = "upload failed: zip is corrupt"
	upd.UpdatedAt = at(50)
	must(t, s.UpdatePackage(ctx, upd))
	got, err := s.GetPackage(ctx, bits.GUID)
	must(t, err)
	wantEqual(t, got, upd)
	wantKind(t, s.UpdatePackage(ctx, newPackage(f.app.GUID)), pando.ENotFound)

	all, err := s.ListPackages(ctx, nil)
	must(t, err)
	wantGUIDs(t, all, bits.GUID, docker.GUID)
	ofApp2, err := s.ListPackages(ctx, []string{app2.GUID})
	must(t, err)
	wantGUIDs(t, ofApp2, docker.GUID)

	must(t, s.DeletePackage(ctx, bits.GUID))
	wantKind(t, s.DeletePackage(ctx, bits.GUID), pando.ENotFound, bits.GUID)
	all, err = s.ListPackages(ctx, nil)
	must(t, err)
	wantGUIDs(t, all, docker.GUID)
}

func testBuilds(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	app2 := newApp(f.space.GUID, "second")
	must(t, s.CreateApp(ctx, app2))
	pkg := newPackage(f.app.GUID)
	must(t, s.CreatePackage(ctx, pkg))

	b1 := newBuild(f.app.GUID, pkg.GUID)
	b2 := newBuild(f.app.GUID, pkg.GUID)
	b2.State = pando.BuildFailed
	b2.Error = "NoAppDetectedError"
	b2.Buildpacks = nil
	b2.CreatedAt, b2.UpdatedAt = at(10), at(10)
	b3 := newBuild(app2.GUID, "")
	b3.CreatedAt, b3.UpdatedAt = at(20), at(20)
	for _, b := range []pando.Build{b1, b2, b3} {
		must(t, s.CreateBuild(ctx, b))
	}
	for _, want := range []pando.Build{b1, b2, b3} {
		got, err := s.GetBuild(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetBuild(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "build", "nope")
	wantKind(t, s.CreateBuild(ctx, b1), pando.EConflict, b1.GUID)
	wantKind(t, s.CreateBuild(ctx, newBuild("no-such-app", "")), pando.EInvalid, "no-such-app")

	upd := b1
	upd.State = pando.BuildStaged
	upd.DropletGUID = "droplet-9"
	upd.UpdatedAt = at(60)
	must(t, s.UpdateBuild(ctx, upd))
	got, err := s.GetBuild(ctx, b1.GUID)
	must(t, err)
	wantEqual(t, got, upd)
	wantKind(t, s.UpdateBuild(ctx, newBuild(f.app.GUID, "")), pando.ENotFound)

	all, err := s.ListBuilds(ctx, nil, nil)
	must(t, err)
	wantGUIDs(t, all, b1.GUID, b2.GUID, b3.GUID)
	ofApp, err := s.ListBuilds(ctx, []string{f.app.GUID}, nil)
	must(t, err)
	wantGUIDs(t, ofApp, b1.GUID, b2.GUID)
	staging, err := s.ListBuilds(ctx, nil, []string{pando.BuildStaging})
	must(t, err)
	wantGUIDs(t, staging, b3.GUID)
	both, err := s.ListBuilds(ctx, []string{f.app.GUID}, []string{pando.BuildStaged, pando.BuildFailed})
	must(t, err)
	wantGUIDs(t, both, b1.GUID, b2.GUID)
}

func testDroplets(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	app2 := newApp(f.space.GUID, "second")
	must(t, s.CreateApp(ctx, app2))

	d1 := newDroplet(f.app.GUID, "pkg-1")
	d2 := newDroplet(f.app.GUID, "pkg-2")
	d2.State = pando.DropletFailed
	d2.ProcessTypes = nil
	d2.CreatedAt, d2.UpdatedAt = at(10), at(10)
	d3 := newDroplet(app2.GUID, "pkg-3")
	d3.LifecycleType = pando.LifecycleDocker
	d3.ProcessTypes = map[string]string{}
	d3.Image = "registry.local/app@sha256:0123"
	d3.CreatedAt, d3.UpdatedAt = at(20), at(20)
	for _, d := range []pando.Droplet{d1, d2, d3} {
		must(t, s.CreateDroplet(ctx, d))
	}
	for _, want := range []pando.Droplet{d1, d2, d3} {
		got, err := s.GetDroplet(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetDroplet(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "droplet", "nope")
	wantKind(t, s.CreateDroplet(ctx, d1), pando.EConflict, d1.GUID)
	wantKind(t, s.CreateDroplet(ctx, newDroplet("no-such-app", "")), pando.EInvalid, "no-such-app")

	upd := d1
	upd.State = pando.DropletExpired
	upd.ProcessTypes = map[string]string{"web": "bundle exec rackup -p $PORT"}
	upd.UpdatedAt = at(70)
	must(t, s.UpdateDroplet(ctx, upd))
	got, err := s.GetDroplet(ctx, d1.GUID)
	must(t, err)
	wantEqual(t, got, upd)
	wantKind(t, s.UpdateDroplet(ctx, newDroplet(f.app.GUID, "")), pando.ENotFound)

	all, err := s.ListDroplets(ctx, nil, nil)
	must(t, err)
	wantGUIDs(t, all, d1.GUID, d2.GUID, d3.GUID)
	staged, err := s.ListDroplets(ctx, nil, []string{pando.DropletStaged})
	must(t, err)
	wantGUIDs(t, staged, d3.GUID)
	ofApp, err := s.ListDroplets(ctx, []string{f.app.GUID}, []string{pando.DropletExpired, pando.DropletFailed})
	must(t, err)
	wantGUIDs(t, ofApp, d1.GUID, d2.GUID)

	must(t, s.DeleteDroplet(ctx, d2.GUID))
	wantKind(t, s.DeleteDroplet(ctx, d2.GUID), pando.ENotFound, d2.GUID)
	_, err = s.GetDroplet(ctx, d2.GUID)
	wantKind(t, err, pando.ENotFound)
}

func testDeleteAppCascades(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	keep := newApp(f.space.GUID, "keep")
	must(t, s.CreateApp(ctx, keep))
	dom := pando.Domain{GUID: newGUID("domain"), Name: "localhost"}
	must(t, s.CreateDomain(ctx, dom))
	route := pando.Route{GUID: newGUID("route"), Host: "x", DomainGUID: dom.GUID, SpaceGUID: f.space.GUID}
	must(t, s.CreateRoute(ctx, route))

	children := func(app pando.App) {
		pkg := newPackage(app.GUID)
		must(t, s.CreateProcess(ctx, newProcess(app.GUID, "web")))
		must(t, s.CreatePackage(ctx, pkg))
		must(t, s.CreateBuild(ctx, newBuild(app.GUID, pkg.GUID)))
		must(t, s.CreateDroplet(ctx, newDroplet(app.GUID, pkg.GUID)))
		must(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: route.GUID, AppGUID: app.GUID, ProcessType: "web", Port: 8080}))
		must(t, s.CreateEvent(ctx, pando.Event{GUID: newGUID("event"), Type: "audit.app.create", TargetGUID: app.GUID, TargetType: "app"}))
	}
	children(f.app)
	children(keep)

	must(t, s.DeleteApp(ctx, f.app.GUID))

	count := func(app string) (n [6]int) {
		procs, err := s.ListProcesses(ctx, nil, []string{app})
		must(t, err)
		pkgs, err := s.ListPackages(ctx, []string{app})
		must(t, err)
		builds, err := s.ListBuilds(ctx, []string{app}, nil)
		must(t, err)
		drops, err := s.ListDroplets(ctx, []string{app}, nil)
		must(t, err)
		dests, err := s.ListRouteDestinations(ctx, nil, []string{app})
		must(t, err)
		events, err := s.ListEvents(ctx, pando.EventFilter{TargetGUIDs: []string{app}})
		must(t, err)
		return [6]int{len(procs), len(pkgs), len(builds), len(drops), len(dests), len(events)}
	}
	if got := count(f.app.GUID); got != [6]int{0, 0, 0, 0, 0, 1} {
		t.Errorf("deleted app leaves [processes packages builds droplets destinations events] = %v, want only its event", got)
	}
	if got := count(keep.GUID); got != [6]int{1, 1, 1, 1, 1, 1} {
		t.Errorf("other app's rows = %v, want one of each", got)
	}
	if _, err := s.GetRoute(ctx, route.GUID); err != nil {
		t.Errorf("route must outlive the app: %v", err)
	}
}
