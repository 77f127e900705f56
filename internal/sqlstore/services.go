package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

const serviceInstanceCols = "guid, name, space_guid, type, credentials, syslog_drain_url, route_service_url, tags, created_at, updated_at"

func scanServiceInstance(sc scanner) (pando.ServiceInstance, error) {
	var si pando.ServiceInstance
	var tags string
	var created, updated int64
	if err := sc.Scan(&si.GUID, &si.Name, &si.SpaceGUID, &si.Type, &si.Credentials, &si.SyslogDrainURL,
		&si.RouteServiceURL, &tags, &created, &updated); err != nil {
		return si, err
	}
	if err := fromJSON(tags, &si.Tags); err != nil {
		return si, fmt.Errorf("service instance %s tags: %w", si.GUID, err)
	}
	si.CreatedAt, si.UpdatedAt = fromNanos(created), fromNanos(updated)
	return si, nil
}

func serviceNameTaken(name string) func() *pando.Error {
	return func() *pando.Error {
		return pando.Errorf(pando.EConflict, "service instance name %q is already taken in this space", name)
	}
}

// CreateServiceInstance adds a service instance.
func (s *Store) CreateServiceInstance(ctx context.Context, si pando.ServiceInstance) error {
	tags, err := toJSON(orEmpty(si.Tags))
	if err != nil {
		return fmt.Errorf("create service instance %s: %w", si.GUID, err)
	}
	err = s.insert(ctx, "service_instances",
		[]string{"guid", "name", "space_guid", "type", "credentials", "syslog_drain_url", "route_service_url", "tags", "created_at", "updated_at"},
		[]any{si.GUID, si.Name, si.SpaceGUID, si.Type, si.Credentials, si.SyslogDrainURL, si.RouteServiceURL, tags,
			nanos(orNow(si.CreatedAt)), nanos(orNow(si.UpdatedAt))})
	return s.writeErr(err, "create", "service instance", si.GUID, serviceNameTaken(si.Name), nil)
}

// GetServiceInstance returns the service instance with guid.
func (s *Store) GetServiceInstance(ctx context.Context, guid string) (pando.ServiceInstance, error) {
	return getOne(ctx, s, "service instance", guid,
		"SELECT "+serviceInstanceCols+" FROM service_instances WHERE guid = ?", []any{guid}, scanServiceInstance)
}

// UpdateServiceInstance replaces an instance's name, credentials, URLs and tags.
func (s *Store) UpdateServiceInstance(ctx context.Context, si pando.ServiceInstance) error {
	tags, err := toJSON(orEmpty(si.Tags))
	if err != nil {
		return fmt.Errorf("update service instance %s: %w", si.GUID, err)
	}
	ok, err := s.update(ctx, "service_instances", si.GUID,
		[]string{"name", "credentials", "syslog_drain_url", "route_service_url", "tags", "updated_at"},
		[]any{si.Name, si.Credentials, si.SyslogDrainURL, si.RouteServiceURL, tags, nanos(orNow(si.UpdatedAt))})
	if err = s.writeErr(err, "update", "service instance", si.GUID, serviceNameTaken(si.Name), nil); err != nil {
		return err
	}
	if !ok {
		return notFound("service instance", si.GUID)
	}
	return nil
}

// DeleteServiceInstance deletes an instance; its bindings go with it.
func (s *Store) DeleteServiceInstance(ctx context.Context, guid string) error {
	ok, err := s.remove(ctx, "service_instances", guid)
	if err != nil {
		return fmt.Errorf("delete service instance %s: %w", guid, err)
	}
	if !ok {
		return notFound("service instance", guid)
	}
	return nil
}

// ListServiceInstances returns instances matching f, oldest first.
func (s *Store) ListServiceInstances(ctx context.Context, f pando.ServiceInstanceFilter) ([]pando.ServiceInstance, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("name", f.Names)
	w.in("space_guid", f.SpaceGUIDs)
	return list(ctx, s, "service instances", "SELECT "+serviceInstanceCols+" FROM service_instances"+w.String()+creationOrder, w.args, scanServiceInstance)
}

const serviceBindingCols = "guid, type, name, app_guid, instance_guid, created_at, updated_at"

func scanServiceBinding(sc scanner) (pando.ServiceBinding, error) {
	var b pando.ServiceBinding
	var created, updated int64
	if err := sc.Scan(&b.GUID, &b.Type, &b.Name, &b.AppGUID, &b.InstanceGUID, &created, &updated); err != nil {
		return b, err
	}
	b.CreatedAt, b.UpdatedAt = fromNanos(created), fromNanos(updated)
	return b, nil
}

// CreateServiceBinding binds an app to a service instance.
func (s *Store) CreateServiceBinding(ctx context.Context, b pando.ServiceBinding) error {
	err := s.insert(ctx, "service_bindings",
		[]string{"guid", "type", "name", "app_guid", "instance_guid", "created_at", "updated_at"},
		[]any{b.GUID, b.Type, b.Name, b.AppGUID, b.InstanceGUID, nanos(orNow(b.CreatedAt)), nanos(orNow(b.UpdatedAt))})
	return s.writeErr(err, "create", "service binding", b.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "app %s is already bound to service instance %s", b.AppGUID, b.InstanceGUID)
	}, nil)
}

// GetServiceBinding returns the live (not unbound) binding with guid.
func (s *Store) GetServiceBinding(ctx context.Context, guid string) (pando.ServiceBinding, error) {
	return getOne(ctx, s, "service binding", guid,
		"SELECT "+serviceBindingCols+" FROM service_bindings WHERE guid = ? AND unbound_at = 0", []any{guid}, scanServiceBinding)
}

// PinServiceBindings makes the app's live bindings its running ones (at a
// start): unbound ones are deleted, the others pinned.
func (s *Store) PinServiceBindings(ctx context.Context, appGUID string) error {
	return s.InTx(ctx, func(tx pando.Store) error {
		st := tx.(*Store)
		if _, err := st.exec(ctx, "DELETE FROM service_bindings WHERE app_guid = ? AND unbound_at <> 0", appGUID); err != nil {
			return fmt.Errorf("pin service bindings of app %s: %w", appGUID, err)
		}
		if _, err := st.exec(ctx, "UPDATE service_bindings SET pinned = 1 WHERE app_guid = ?", appGUID); err != nil {
			return fmt.Errorf("pin service bindings of app %s: %w", appGUID, err)
		}
		return nil
	})
}

// DeleteServiceBinding unbinds: a pinned binding stays in its app's
// running env (unbound) until PinServiceBindings, others are deleted.
func (s *Store) DeleteServiceBinding(ctx context.Context, guid string) error {
	res, err := s.exec(ctx, "UPDATE service_bindings SET unbound_at = ? WHERE guid = ? AND pinned = 1 AND unbound_at = 0", nanos(time.Now()), guid)
	if err != nil {
		return fmt.Errorf("delete service binding %s: %w", guid, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	res, err = s.exec(ctx, "DELETE FROM service_bindings WHERE guid = ? AND unbound_at = 0", guid)
	if err != nil {
		return fmt.Errorf("delete service binding %s: %w", guid, err)
	}
	n, err := res.RowsAffected()
	ok := n > 0
	if err != nil {
		return fmt.Errorf("delete service binding %s: %w", guid, err)
	}
	if !ok {
		return notFound("service binding", guid)
	}
	return nil
}

// ListServiceBindings returns bindings matching f, oldest first.
func (s *Store) ListServiceBindings(ctx context.Context, f pando.ServiceBindingFilter) ([]pando.ServiceBinding, error) {
	var w where
	w.in("guid", f.GUIDs)
	w.in("name", f.Names)
	w.in("app_guid", f.AppGUIDs)
	w.in("instance_guid", f.InstanceGUIDs)
	if f.Running {
		w.conds = append(w.conds, "pinned = 1")
	} else {
		w.conds = append(w.conds, "unbound_at = 0")
	}
	return list(ctx, s, "service bindings", "SELECT "+serviceBindingCols+" FROM service_bindings"+w.String()+creationOrder, w.args, scanServiceBinding)
}

func orEmpty(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}
