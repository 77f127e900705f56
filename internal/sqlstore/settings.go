package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

// ListFeatureFlags returns the flags an admin set, by name.
func (s *Store) ListFeatureFlags(ctx context.Context) ([]pando.FeatureFlag, error) {
	return list(ctx, s, "feature flags", "SELECT name, enabled, custom_error_message, updated_at FROM feature_flags ORDER BY "+s.d.bytewise("name"), nil,
		func(sc scanner) (pando.FeatureFlag, error) {
			var f pando.FeatureFlag
			var updated int64
			err := sc.Scan(&f.Name, &f.Enabled, &f.CustomErrorMessage, &updated)
			f.UpdatedAt = fromNanos(updated)
			return f, err
		})
}

// PutFeatureFlag creates or replaces a flag's setting.
func (s *Store) PutFeatureFlag(ctx context.Context, f pando.FeatureFlag) error {
	_, err := s.exec(ctx, `INSERT INTO feature_flags (name, enabled, custom_error_message, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, custom_error_message = excluded.custom_error_message, updated_at = excluded.updated_at`,
		f.Name, f.Enabled, f.CustomErrorMessage, nanos(orNow(f.UpdatedAt)))
	if err != nil {
		return fmt.Errorf("put feature flag %s: %w", f.Name, err)
	}
	return nil
}

// GetEnvGroup returns an environment variable group; ENotFound when it was
// never set.
func (s *Store) GetEnvGroup(ctx context.Context, name string) (pando.EnvGroup, error) {
	return getOne(ctx, s, "environment variable group", name, "SELECT name, vars, updated_at FROM env_groups WHERE name = ?", []any{name},
		func(sc scanner) (pando.EnvGroup, error) {
			var g pando.EnvGroup
			var vars string
			var updated int64
			if err := sc.Scan(&g.Name, &vars, &updated); err != nil {
				return g, err
			}
			if err := fromJSON(vars, &g.Vars); err != nil {
				return g, fmt.Errorf("environment variable group %s: %w", name, err)
			}
			g.UpdatedAt = fromNanos(updated)
			return g, nil
		})
}

// PutEnvGroup creates or replaces an environment variable group.
func (s *Store) PutEnvGroup(ctx context.Context, g pando.EnvGroup) error {
	vars := g.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	data, err := toJSON(vars)
	if err != nil {
		return fmt.Errorf("put environment variable group %s: %w", g.Name, err)
	}
	_, err = s.exec(ctx, `INSERT INTO env_groups (name, vars, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET vars = excluded.vars, updated_at = excluded.updated_at`,
		g.Name, data, nanos(orNow(g.UpdatedAt)))
	if err != nil {
		return fmt.Errorf("put environment variable group %s: %w", g.Name, err)
	}
	return nil
}

func scanUsageEvent(sc scanner) (pando.AppUsageEvent, error) {
	var e pando.AppUsageEvent
	var guid, data string
	var created int64
	if err := sc.Scan(&guid, &data, &created); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return e, fmt.Errorf("app usage event %s: %w", guid, err)
	}
	e.GUID, e.CreatedAt = guid, fromNanos(created)
	return e, nil
}

// CreateAppUsageEvent records an app usage event.
func (s *Store) CreateAppUsageEvent(ctx context.Context, e pando.AppUsageEvent) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("create app usage event %s: %w", e.GUID, err)
	}
	err = s.insert(ctx, "app_usage_events", []string{"guid", "data", "created_at"}, []any{e.GUID, string(data), nanos(orNow(e.CreatedAt))})
	return s.writeErr(err, "create", "app usage event", e.GUID, nil, nil)
}

// GetAppUsageEvent returns the event with guid.
func (s *Store) GetAppUsageEvent(ctx context.Context, guid string) (pando.AppUsageEvent, error) {
	return getOne(ctx, s, "app usage event", guid, "SELECT guid, data, created_at FROM app_usage_events WHERE guid = ?", []any{guid}, scanUsageEvent)
}

// ListAppUsageEvents returns the events matching f in the order they were
// recorded (or the reverse).
func (s *Store) ListAppUsageEvents(ctx context.Context, f pando.AppUsageFilter) ([]pando.AppUsageEvent, error) {
	var w where
	w.in("guid", f.GUIDs)
	if f.AfterGUID != "" {
		w.conds = append(w.conds, "seq > (SELECT seq FROM app_usage_events WHERE guid = ?)")
		w.args = append(w.args, f.AfterGUID)
	}
	q := "SELECT guid, data, created_at FROM app_usage_events" + w.String() + " ORDER BY seq"
	if f.Descending {
		q += " DESC"
	}
	return list(ctx, s, "app usage events", q, w.args, scanUsageEvent)
}

// DeleteAppUsageEventsBefore deletes the events created before t, or all
// of them for a zero t.
func (s *Store) DeleteAppUsageEventsBefore(ctx context.Context, t time.Time) error {
	var err error
	if t.IsZero() {
		_, err = s.exec(ctx, "DELETE FROM app_usage_events")
	} else {
		_, err = s.exec(ctx, "DELETE FROM app_usage_events WHERE created_at < ?", nanos(t))
	}
	if err != nil {
		return fmt.Errorf("delete app usage events: %w", err)
	}
	return nil
}
