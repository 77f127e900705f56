package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

const eventCols = "guid, type, actor_guid, actor_type, actor_name, target_guid, target_type, target_name, space_guid, org_guid, data, created_at"

func scanEvent(sc scanner) (pando.Event, error) {
	var e pando.Event
	var data string
	var created int64
	if err := sc.Scan(&e.GUID, &e.Type, &e.ActorGUID, &e.ActorType, &e.ActorName, &e.TargetGUID, &e.TargetType,
		&e.TargetName, &e.SpaceGUID, &e.OrgGUID, &data, &created); err != nil {
		return e, err
	}
	if err := fromJSON(data, &e.Data); err != nil {
		return e, fmt.Errorf("event %s data: %w", e.GUID, err)
	}
	e.CreatedAt = fromNanos(created)
	return e, nil
}

// CreateEvent records an audit event. Data must be JSON-encodable; it reads
// back as JSON decodes it (numbers as float64).
func (s *Store) CreateEvent(ctx context.Context, e pando.Event) error {
	data, err := toJSON(e.Data)
	if err != nil {
		return fmt.Errorf("create event %s: %w", e.GUID, err)
	}
	err = s.insert(ctx, "events", []string{"guid", "type", "actor_guid", "actor_type", "actor_name", "target_guid",
		"target_type", "target_name", "space_guid", "org_guid", "data", "created_at"},
		[]any{e.GUID, e.Type, e.ActorGUID, e.ActorType, e.ActorName, e.TargetGUID, e.TargetType, e.TargetName,
			e.SpaceGUID, e.OrgGUID, data, nanos(orNow(e.CreatedAt))})
	return s.writeErr(err, "create", "event", e.GUID, nil, nil)
}

// ListEvents returns events matching the filter, oldest first or newest
// first (Descending), at most Limit of them when Limit > 0.
func (s *Store) ListEvents(ctx context.Context, f pando.EventFilter) ([]pando.Event, error) {
	var w where
	w.in("target_guid", f.TargetGUIDs)
	w.in("type", f.Types)
	w.in("space_guid", f.SpaceGUIDs)
	q := "SELECT " + eventCols + " FROM events" + w.String()
	if f.Descending {
		q += " ORDER BY created_at DESC, seq DESC"
	} else {
		q += creationOrder
	}
	args := w.args
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return list(ctx, s, "events", q, args, scanEvent)
}

const userCols = "guid, name, password_hash, admin, created_at"

func scanUser(sc scanner) (pando.User, error) {
	var u pando.User
	var created int64
	if err := sc.Scan(&u.GUID, &u.Name, &u.PasswordHash, &u.Admin, &created); err != nil {
		return u, err
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// CreateUser adds a user; names are unique.
func (s *Store) CreateUser(ctx context.Context, u pando.User) error {
	err := s.insert(ctx, "users", []string{"guid", "name", "password_hash", "admin", "created_at"},
		[]any{u.GUID, u.Name, u.PasswordHash, u.Admin, nanos(orNow(u.CreatedAt))})
	return s.writeErr(err, "create", "user", u.GUID, func() *pando.Error {
		return pando.Errorf(pando.EConflict, "user name %q is already taken", u.Name)
	}, nil)
}

// UpdateUser replaces a user's password hash and admin flag.
func (s *Store) UpdateUser(ctx context.Context, u pando.User) error {
	ok, err := s.update(ctx, "users", u.GUID, []string{"password_hash", "admin"}, []any{u.PasswordHash, u.Admin})
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.GUID, err)
	}
	if !ok {
		return notFound("user", u.GUID)
	}
	return nil
}

// GetUserByName returns the user called name.
func (s *Store) GetUserByName(ctx context.Context, name string) (pando.User, error) {
	return getOne(ctx, s, "user", fmt.Sprintf("%q", name), "SELECT "+userCols+" FROM users WHERE name = ?", []any{name}, scanUser)
}

// GetUser returns the user with guid.
func (s *Store) GetUser(ctx context.Context, guid string) (pando.User, error) {
	return getOne(ctx, s, "user", guid, "SELECT "+userCols+" FROM users WHERE guid = ?", []any{guid}, scanUser)
}

const jobCols = "guid, operation, state, errors, resource_type, resource_guid, user_guid, created_at, updated_at"

// jobError is the stored form of pando.JobError, with tags so renaming a Go
// field cannot silently change the column's format.
type jobError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func scanJob(sc scanner) (pando.Job, error) {
	var j pando.Job
	var errs string
	var created, updated int64
	if err := sc.Scan(&j.GUID, &j.Operation, &j.State, &errs, &j.ResourceType, &j.ResourceGUID, &j.UserGUID, &created, &updated); err != nil {
		return j, err
	}
	var stored []jobError
	if err := fromJSON(errs, &stored); err != nil {
		return j, fmt.Errorf("job %s errors: %w", j.GUID, err)
	}
	if stored != nil {
		j.Errors = make([]pando.JobError, len(stored))
		for i, e := range stored {
			j.Errors[i] = pando.JobError{Code: e.Code, Title: e.Title, Detail: e.Detail}
		}
	}
	j.CreatedAt, j.UpdatedAt = fromNanos(created), fromNanos(updated)
	return j, nil
}

func jobRow(j pando.Job) ([]string, []any, error) {
	var stored []jobError
	if j.Errors != nil {
		stored = make([]jobError, len(j.Errors))
		for i, e := range j.Errors {
			stored[i] = jobError{Code: e.Code, Title: e.Title, Detail: e.Detail}
		}
	}
	errs, err := toJSON(stored)
	if err != nil {
		return nil, nil, err
	}
	return []string{"operation", "state", "errors", "resource_type", "resource_guid", "updated_at"},
		[]any{j.Operation, j.State, errs, j.ResourceType, j.ResourceGUID, nanos(orNow(j.UpdatedAt))},
		nil
}

// CreateJob records an asynchronous API operation.
func (s *Store) CreateJob(ctx context.Context, j pando.Job) error {
	cols, args, err := jobRow(j)
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.GUID, err)
	}
	cols = append(cols, "guid", "user_guid", "created_at")
	args = append(args, j.GUID, j.UserGUID, nanos(orNow(j.CreatedAt)))
	return s.writeErr(s.insert(ctx, "jobs", cols, args), "create", "job", j.GUID, nil, nil)
}

// GetJob returns the job with guid.
func (s *Store) GetJob(ctx context.Context, guid string) (pando.Job, error) {
	return getOne(ctx, s, "job", guid, "SELECT "+jobCols+" FROM jobs WHERE guid = ?", []any{guid}, scanJob)
}

// UpdateJob replaces every field of the job but its GUID, UserGUID and
// CreatedAt. A zero UpdatedAt is set to now.
func (s *Store) UpdateJob(ctx context.Context, j pando.Job) error {
	cols, args, err := jobRow(j)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.GUID, err)
	}
	ok, err := s.update(ctx, "jobs", j.GUID, cols, args)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.GUID, err)
	}
	if !ok {
		return notFound("job", j.GUID)
	}
	return nil
}

// DeleteFinishedJobsBefore deletes the jobs created before t that are
// COMPLETE or FAILED.
func (s *Store) DeleteFinishedJobsBefore(ctx context.Context, t time.Time) error {
	if _, err := s.exec(ctx, "DELETE FROM jobs WHERE created_at < ? AND state IN (?, ?)", nanos(t), pando.JobComplete, pando.JobFailed); err != nil {
		return fmt.Errorf("delete jobs: %w", err)
	}
	return nil
}

// DeleteEventsBefore deletes the audit events created before t.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) error {
	if _, err := s.exec(ctx, "DELETE FROM events WHERE created_at < ?", nanos(t)); err != nil {
		return fmt.Errorf("delete audit events: %w", err)
	}
	return nil
}
