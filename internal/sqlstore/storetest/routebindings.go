package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

func testServiceRouteBindings(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seedRoutes(t, s)
	r1 := pando.Route{GUID: newGUID("route"), Host: "web", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID}
	r2 := pando.Route{GUID: newGUID("route"), Host: "api", DomainGUID: f.d1.GUID, SpaceGUID: f.space.GUID}
	must(t, s.CreateRoute(ctx, r1))
	must(t, s.CreateRoute(ctx, r2))
	si := pando.ServiceInstance{GUID: newGUID("si"), Name: "auth", SpaceGUID: f.space.GUID, Type: pando.ServiceInstanceUserProvided, RouteServiceURL: "https://rs.example.com"}
	si2 := pando.ServiceInstance{GUID: newGUID("si"), Name: "other", SpaceGUID: f.space.GUID, Type: pando.ServiceInstanceUserProvided, RouteServiceURL: "https://rs2.example.com"}
	must(t, s.CreateServiceInstance(ctx, si))
	must(t, s.CreateServiceInstance(ctx, si2))

	b1 := pando.ServiceRouteBinding{GUID: newGUID("srb"), RouteGUID: r1.GUID, InstanceGUID: si.GUID, CreatedAt: at(1), UpdatedAt: at(2)}
	b2 := pando.ServiceRouteBinding{GUID: newGUID("srb"), RouteGUID: r2.GUID, InstanceGUID: si2.GUID, CreatedAt: at(3), UpdatedAt: at(3)}
	must(t, s.CreateServiceRouteBinding(ctx, b1))
	must(t, s.CreateServiceRouteBinding(ctx, b2))
	got, err := s.GetServiceRouteBinding(ctx, b1.GUID)
	must(t, err)
	wantEqual(t, got, b1)
	_, err = s.GetServiceRouteBinding(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "service route binding", "nope")

	// One route service per route.
	wantKind(t, s.CreateServiceRouteBinding(ctx, pando.ServiceRouteBinding{GUID: newGUID("srb"), RouteGUID: r1.GUID, InstanceGUID: si2.GUID}), pando.EConflict, r1.GUID)
	wantKind(t, s.CreateServiceRouteBinding(ctx, pando.ServiceRouteBinding{GUID: newGUID("srb"), RouteGUID: "no-such-route", InstanceGUID: si.GUID}), pando.EInvalid)

	list, err := s.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{})
	must(t, err)
	wantEqual(t, list, []pando.ServiceRouteBinding{b1, b2})
	list, err = s.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{InstanceGUIDs: []string{si2.GUID}})
	must(t, err)
	wantEqual(t, list, []pando.ServiceRouteBinding{b2})
	list, err = s.ListServiceRouteBindings(ctx, pando.ServiceRouteBindingFilter{RouteGUIDs: []string{r1.GUID}})
	must(t, err)
	wantEqual(t, list, []pando.ServiceRouteBinding{b1})

	// Deleting the route or the instance deletes the binding.
	must(t, s.DeleteRoute(ctx, r1.GUID))
	_, err = s.GetServiceRouteBinding(ctx, b1.GUID)
	wantKind(t, err, pando.ENotFound)
	must(t, s.DeleteServiceInstance(ctx, si2.GUID))
	_, err = s.GetServiceRouteBinding(ctx, b2.GUID)
	wantKind(t, err, pando.ENotFound)

	b3 := pando.ServiceRouteBinding{GUID: newGUID("srb"), RouteGUID: r2.GUID, InstanceGUID: si.GUID}
	must(t, s.CreateServiceRouteBinding(ctx, b3))
	must(t, s.DeleteServiceRouteBinding(ctx, b3.GUID))
	wantKind(t, s.DeleteServiceRouteBinding(ctx, b3.GUID), pando.ENotFound)
}
