package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

func testDomains(t *testing.T, s pando.Store) {
	ctx := t.Context()
	a := pando.Domain{GUID: newGUID("domain"), Name: "localhost", CreatedAt: at(0), UpdatedAt: at(0)}
	b := pando.Domain{GUID: newGUID("domain"), Name: "apps.internal", Internal: true, CreatedAt: at(1), UpdatedAt: at(2)}
	must(t, s.CreateDomain(ctx, a))
	must(t, s.CreateDomain(ctx, b))

	for _, want := range []pando.Domain{a, b} {
		got, err := s.GetDomain(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetDomain(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "domain", "nope")
	wantKind(t, s.CreateDomain(ctx, pando.Domain{GUID: newGUID("domain"), Name: "localhost"}), pando.EConflict, `"localhost"`)

	all, err := s.ListDomains(ctx, nil, nil)
	must(t, err)
	wantEqual(t, all, []pando.Domain{a, b})
	byName, err := s.ListDomains(ctx, nil, []string{"apps.internal"})
	must(t, err)
	wantGUIDs(t, byName, b.GUID)
	byGUID, err := s.ListDomains(ctx, []string{a.GUID}, nil)
	must(t, err)
	wantGUIDs(t, byGUID, a.GUID)

	// A private domain keeps its org; a domain with routes is not deleted.
	f := seed(t, s)
	p := pando.Domain{GUID: newGUID("domain"), Name: "mine.test", OrgGUID: f.org.GUID, CreatedAt: at(3), UpdatedAt: at(3)}
	must(t, s.CreateDomain(ctx, p))
	got, err := s.GetDomain(ctx, p.GUID)
	must(t, err)
	wantEqual(t, got, p)
	// Shared with other orgs: in the order shared, once each; deleting an
	// org ends its share.
	o2 := pando.Org{GUID: newGUID("org"), Name: "o2"}
	o3 := pando.Org{GUID: newGUID("org"), Name: "o3"}
	must(t, s.CreateOrg(ctx, o2))
	must(t, s.CreateOrg(ctx, o3))
	must(t, s.ShareDomain(ctx, p.GUID, o3.GUID))
	must(t, s.ShareDomain(ctx, p.GUID, o2.GUID))
	must(t, s.ShareDomain(ctx, p.GUID, o3.GUID))
	wantKind(t, s.ShareDomain(ctx, p.GUID, "no-such-org"), pando.ENotFound)
	got, err = s.GetDomain(ctx, p.GUID)
	must(t, err)
	wantEqual(t, got.SharedOrgGUIDs, []string{o3.GUID, o2.GUID})
	listed, err := s.ListDomains(ctx, []string{p.GUID, a.GUID}, nil)
	must(t, err)
	wantEqual(t, listed[1].SharedOrgGUIDs, []string{o3.GUID, o2.GUID})
	must(t, s.DeleteOrg(ctx, o3.GUID))
	must(t, s.UnshareDomain(ctx, p.GUID, o2.GUID))
	wantKind(t, s.UnshareDomain(ctx, p.GUID, o2.GUID), pando.ENotFound)
	got, err = s.GetDomain(ctx, p.GUID)
	must(t, err)
	wantEqual(t, got, p)

	rt := pando.Route{GUID: newGUID("route"), Host: "x", DomainGUID: p.GUID, SpaceGUID: f.space.GUID}
	must(t, s.CreateRoute(ctx, rt))
	wantKind(t, s.DeleteDomain(ctx, p.GUID), pando.EInvalid, "still has routes")
	must(t, s.DeleteRoute(ctx, rt.GUID))
	must(t, s.DeleteDomain(ctx, p.GUID))
	_, err = s.GetDomain(ctx, p.GUID)
	wantKind(t, err, pando.ENotFound, "domain")
	wantKind(t, s.DeleteDomain(ctx, p.GUID), pando.ENotFound, "domain")
}

// routeFixture is two spaces, two domains and two apps to hang routes on.
type routeFixture struct {
	fixture
	space2 pando.Space
	d1, d2 pando.Domain
	app2   pando.App
}

func seedRoutes(t *testing.T, s pando.Store) routeFixture {
	ctx := t.Context()
	f := routeFixture{fixture: seed(t, s)}
	f.space2 = pando.Space{GUID: newGUID("space"), Name: "second", OrgGUID: f.org.GUID}
	must(t, s.CreateSpace(ctx, f.space2))
	f.d1 = pando.Domain{GUID: newGUID("domain"), Name: "localhost"}
	f.d2 = pando.Domain{GUID: newGUID("domain"), Name: "example.com"}
	must(t, s.CreateDomain(ctx, f.d1))
	must(t, s.CreateDomain(ctx, f.d2))
	f.app2 = newApp(f.space2.GUID, "other")
	must(t, s.CreateApp(ctx, f.app2))
	return f
}

func testRoutes(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seedRoutes(t, s)
	r1 := pando.Route{GUID: newGUID("route"), Host: "web", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID, CreatedAt: at(1), UpdatedAt: at(1)}
	r2 := pando.Route{GUID: newGUID("route"), Host: "web", Path: "/api", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID, CreatedAt: at(2), UpdatedAt: at(3)}
	r3 := pando.Route{GUID: newGUID("route"), Host: "web", DomainGUID: f.d2.GUID, SpaceGUID: f.space2.GUID, CreatedAt: at(4), UpdatedAt: at(4)}
	r4 := pando.Route{GUID: newGUID("route"), Host: "", DomainGUID: f.d2.GUID, SpaceGUID: f.space2.GUID, CreatedAt: at(5), UpdatedAt: at(5)}
	for _, r := range []pando.Route{r1, r2, r3, r4} {
		must(t, s.CreateRoute(ctx, r))
	}
	for _, want := range []pando.Route{r1, r2, r3, r4} {
		got, err := s.GetRoute(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetRoute(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "route", "nope")

	dup := r2
	dup.GUID = newGUID("route")
	dup.SpaceGUID = f.space2.GUID
	wantKind(t, s.CreateRoute(ctx, dup), pando.EConflict, `"web"`, `"/api"`)
	wantKind(t, s.CreateRoute(ctx, pando.Route{GUID: newGUID("route"), Host: "h", DomainGUID: "no-such-domain", SpaceGUID: f.space.GUID}), pando.EInvalid, "no-such-domain")
	wantKind(t, s.CreateRoute(ctx, pando.Route{GUID: newGUID("route"), Host: "h", DomainGUID: f.d1.GUID, SpaceGUID: "no-such-space"}), pando.EInvalid, "no-such-space")

	must(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r2.GUID, AppGUID: f.app.GUID, ProcessType: "web", Port: 8080}))
	must(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r3.GUID, AppGUID: f.app.GUID, ProcessType: "web", Port: 8080}))
	must(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r3.GUID, AppGUID: f.app2.GUID, ProcessType: "web", Port: 8080}))

	cases := []struct {
		name   string
		filter pando.RouteFilter
		want   []string
	}{
		{"all", pando.RouteFilter{}, []string{r1.GUID, r2.GUID, r3.GUID, r4.GUID}},
		{"guids", pando.RouteFilter{GUIDs: []string{r4.GUID, r1.GUID}}, []string{r1.GUID, r4.GUID}},
		{"hosts", pando.RouteFilter{Hosts: []string{"web"}}, []string{r1.GUID, r2.GUID, r3.GUID}},
		{"empty host", pando.RouteFilter{Hosts: []string{""}}, []string{r4.GUID}},
		{"paths", pando.RouteFilter{Paths: []string{"/api"}}, []string{r2.GUID}},
		{"empty path", pando.RouteFilter{Paths: []string{""}, DomainGUIDs: []string{f.d1.GUID}}, []string{r1.GUID}},
		{"domains", pando.RouteFilter{DomainGUIDs: []string{f.d2.GUID}}, []string{r3.GUID, r4.GUID}},
		{"spaces", pando.RouteFilter{SpaceGUIDs: []string{f.space.GUID}}, []string{r1.GUID, r2.GUID}},
		{"apps", pando.RouteFilter{AppGUIDs: []string{f.app.GUID}}, []string{r2.GUID, r3.GUID}},
		{"apps once per route", pando.RouteFilter{AppGUIDs: []string{f.app.GUID, f.app2.GUID}}, []string{r2.GUID, r3.GUID}},
		{"apps and host", pando.RouteFilter{AppGUIDs: []string{f.app2.GUID}, Hosts: []string{"web"}}, []string{r3.GUID}},
		{"no match", pando.RouteFilter{Hosts: []string{"web"}, SpaceGUIDs: []string{"none"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListRoutes(ctx, c.filter)
			must(t, err)
			wantGUIDs(t, got, c.want...)
		})
	}

	// Deleting a route takes its destinations with it.
	must(t, s.DeleteRoute(ctx, r3.GUID))
	wantKind(t, s.DeleteRoute(ctx, r3.GUID), pando.ENotFound, r3.GUID)
	dests, err := s.ListRouteDestinations(ctx, []string{r3.GUID}, nil)
	must(t, err)
	wantGUIDs(t, dests)
	dests, err = s.ListRouteDestinations(ctx, nil, nil)
	must(t, err)
	if len(dests) != 1 || dests[0].RouteGUID != r2.GUID {
		t.Fatalf("destinations after route delete = %+v, want only the one on %s", dests, r2.GUID)
	}
}

func testRouteDestinations(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seedRoutes(t, s)
	r1 := pando.Route{GUID: newGUID("route"), Host: "a", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID}
	r2 := pando.Route{GUID: newGUID("route"), Host: "b", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID}
	must(t, s.CreateRoute(ctx, r1))
	must(t, s.CreateRoute(ctx, r2))

	d1 := pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r1.GUID, AppGUID: f.app.GUID, ProcessType: "web", Port: 8080, CreatedAt: at(1)}
	d2 := pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r1.GUID, AppGUID: f.app.GUID, ProcessType: "admin", Port: 9090, CreatedAt: at(2)}
	d3 := pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r2.GUID, AppGUID: f.app2.GUID, ProcessType: "web", Port: 8080, CreatedAt: at(3)}
	for _, d := range []pando.RouteDestination{d1, d2, d3} {
		must(t, s.CreateRouteDestination(ctx, d))
	}

	dup := d1
	dup.GUID = newGUID("dest")
	dup.Port = 1234
	wantKind(t, s.CreateRouteDestination(ctx, dup), pando.EConflict, `"web"`)
	wantKind(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: "no-such-route", AppGUID: f.app.GUID, ProcessType: "web"}), pando.EInvalid, "no-such-route")
	wantKind(t, s.CreateRouteDestination(ctx, pando.RouteDestination{GUID: newGUID("dest"), RouteGUID: r1.GUID, AppGUID: "no-such-app", ProcessType: "web"}), pando.EInvalid, "no-such-app")

	all, err := s.ListRouteDestinations(ctx, nil, nil)
	must(t, err)
	wantEqual(t, all, []pando.RouteDestination{d1, d2, d3})
	onR1, err := s.ListRouteDestinations(ctx, []string{r1.GUID}, nil)
	must(t, err)
	wantGUIDs(t, onR1, d1.GUID, d2.GUID)
	ofApp2, err := s.ListRouteDestinations(ctx, nil, []string{f.app2.GUID})
	must(t, err)
	wantGUIDs(t, ofApp2, d3.GUID)
	both, err := s.ListRouteDestinations(ctx, []string{r1.GUID, r2.GUID}, []string{f.app.GUID})
	must(t, err)
	wantGUIDs(t, both, d1.GUID, d2.GUID)

	must(t, s.DeleteRouteDestination(ctx, d1.GUID))
	wantKind(t, s.DeleteRouteDestination(ctx, d1.GUID), pando.ENotFound, d1.GUID)
	onR1, err = s.ListRouteDestinations(ctx, []string{r1.GUID}, nil)
	must(t, err)
	wantGUIDs(t, onR1, d2.GUID)
	// The same mapping can be made again once removed.
	again := d1
	again.GUID = newGUID("dest")
	must(t, s.CreateRouteDestination(ctx, again))
}
