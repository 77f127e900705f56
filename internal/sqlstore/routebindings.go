package sqlstore

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
)

const serviceRouteBindingCols = "guid, route_guid, instance_guid, created_at, updated_at"

func scanServiceRouteBinding(sc scanner) (pando.ServiceRouteBinding, error) {
	var b pando.ServiceRouteBinding
	var created, updated int64
	if err := sc.Scan(&b.GUID, &b.RouteGUID, &b.InstanceGUID, &created, &updated); err != nil {
		return b, err
	}
	b.CreatedAt, b.UpdatedAt = fromNanos(created), fromNanos(updated)
	return b, nil
}

// CreateServiceRouteBinding binds a route to a service instance.
func (s *Store) CreateServiceRouteBinding(ctx context.Context, b pando.ServiceRouteBinding) error {
	err := s.insert(ctx, "service_route_bindings",
		[]string{"guid", "route_guid", "instance_guid", "created_at", "updated_at"},
		[]any{b.GUID, b.RouteGUID, b.InstanceGUID, nanos(orNow(b.CreatedAt)), nanos(orNow(b.UpdatedAt))})
	return s.writeErr(err, "create", "service route binding", b.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "route %s is already bound to a service instance", b.RouteGUID)
	}, nil)
}

// GetServiceRouteBinding returns the route binding with guid.
func (s *Store) GetServiceRouteBinding(ctx context.Context, guid string) (pando.ServiceRouteBinding, error) {
	return getOne(ctx, s, "service route binding", guid,
		"SELECT "+serviceRouteBindingCols+" FROM service_route_bindings WHERE guid = ?", []any{guid}, scanServiceRouteBinding)
}

// DeleteServiceRouteBinding unbinds a route from its service instance.
func (s *Store) DeleteServiceRouteBinding(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "service_route_bindings", guid)
	if err != nil {
		return fmt.Errorf("delete service route binding %s: %w", guid, err)
	}
	if !ok {
		return notFound("service route binding", guid)
	}
	return nil
}

// ListServiceRouteBindings returns route bindings matching f, oldest first.
func (s *Store) ListServiceRouteBindings(ctx context.Context, f pando.ServiceRouteBindingFilter) ([]pando.ServiceRouteBinding, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("route_guid", f.RouteGUIDs)
	w.in("instance_guid", f.InstanceGUIDs)
	return list(ctx, s, "service route bindings", "SELECT "+serviceRouteBindingCols+" FROM service_route_bindings"+w.String()+creationOrder, w.args, scanServiceRouteBinding)
}
