package sqlstore

import (
	"context"
	"fmt"

	"github.com/pandoplatform/pando"
)

const appTaskCols = "guid, app_guid, name, command, state, sequence_id, memory_mb, disk_mb, droplet_guid, failure_reason, created_at, updated_at"

func scanAppTask(sc scanner) (pando.AppTask, error) {
	var t pando.AppTask
	var created, updated int64
	if err := sc.Scan(&t.GUID, &t.AppGUID, &t.Name, &t.Command, &t.State, &t.SequenceID, &t.MemoryMB, &t.DiskMB,
		&t.DropletGUID, &t.FailureReason, &created, &updated); err != nil {
		return t, err
	}
	t.CreatedAt, t.UpdatedAt = fromNanos(created), fromNanos(updated)
	return t, nil
}

// CreateAppTask stores a task with the app's next sequence id (from 1),
// assigned in the same statement so two tasks never share one.
func (s *Store) CreateAppTask(ctx context.Context, t pando.AppTask) (pando.AppTask, error) {
	t.CreatedAt, t.UpdatedAt = orNow(t.CreatedAt), orNow(t.UpdatedAt)
	q := "INSERT INTO app_tasks (guid, app_guid, name, command, state, sequence_id, memory_mb, disk_mb, droplet_guid, " +
		"failure_reason, created_at, updated_at, seq) VALUES (?, ?, ?, ?, ?, " +
		"(SELECT COALESCE(MAX(sequence_id), 0) + 1 FROM app_tasks WHERE app_guid = ?), ?, ?, ?, ?, ?, ?, " +
		"(SELECT COALESCE(MAX(seq), 0) + 1 FROM app_tasks))"
	_, err := s.exec(ctx, q, t.GUID, t.AppGUID, t.Name, t.Command, t.State, t.AppGUID, t.MemoryMB, t.DiskMB,
		t.DropletGUID, t.FailureReason, nanos(t.CreatedAt), nanos(t.UpdatedAt))
	if err := s.writeErr(err, "create", "task", t.GUID, nil, func() *pando.Error {
		return pando.Errorf(pando.EInvalid, "app %s not found", t.AppGUID)
	}); err != nil {
		return t, err
	}
	return s.GetAppTask(ctx, t.GUID)
}

// GetAppTask returns the task with guid.
func (s *Store) GetAppTask(ctx context.Context, guid string) (pando.AppTask, error) {
	return getOne(ctx, s, "task", guid, "SELECT "+appTaskCols+" FROM app_tasks WHERE guid = ?", []any{guid}, scanAppTask)
}

// UpdateAppTask replaces the task's state, failure reason and UpdatedAt
// (a zero UpdatedAt is set to now); the rest is fixed at creation.
func (s *Store) UpdateAppTask(ctx context.Context, t pando.AppTask) error {
	ok, err := s.update(ctx, "app_tasks", t.GUID, []string{"state", "failure_reason", "updated_at"},
		[]any{t.State, t.FailureReason, nanos(orNow(t.UpdatedAt))})
	if err != nil {
		return fmt.Errorf("update task %s: %w", t.GUID, err)
	}
	if !ok {
		return notFound("task", t.GUID)
	}
	return nil
}

// DeleteAppTask removes a task; a missing one is not an error.
func (s *Store) DeleteAppTask(ctx context.Context, guid string) error {
	if _, err := s.remove(ctx, "app_tasks", guid); err != nil {
		return fmt.Errorf("delete task %s: %w", guid, err)
	}
	return nil
}

// ListAppTasks lists tasks by app and state, oldest first.
func (s *Store) ListAppTasks(ctx context.Context, appGUIDs, states []string) ([]pando.AppTask, error) {
	var w where
	w.in("app_guid", appGUIDs)
	w.in("state", states)
	return list(ctx, s, "tasks", "SELECT "+appTaskCols+" FROM app_tasks"+w.String()+creationOrder, w.args, scanAppTask)
}
