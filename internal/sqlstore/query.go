package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// where accumulates AND-ed conditions. Empty filters add nothing, so they
// match everything.
type where struct {
	conds []string
	args  []any
}

// in adds "col IN (?, ...)" unless vals is empty.
func (w *where) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	w.conds = append(w.conds, col+" IN ("+placeholders(len(vals))+")")
	for _, v := range vals {
		w.args = append(w.args, v)
	}
}

// inSub adds "col IN (SELECT sel FROM ... WHERE subCol IN (?, ...))" unless
// vals is empty.
func (w *where) inSub(col, sel, from, subCol string, vals []string) {
	if len(vals) == 0 {
		return
	}
	w.conds = append(w.conds, fmt.Sprintf("%s IN (SELECT %s FROM %s WHERE %s IN (%s))", col, sel, from, subCol, placeholders(len(vals))))
	for _, v := range vals {
		w.args = append(w.args, v)
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// creationOrder is how lists are ordered: by creation time, then by insert
// order (seq) for rows created in the same nanosecond or with truncated
// caller-supplied timestamps.
const creationOrder = " ORDER BY created_at, seq"

// insert adds a row to table. seq is assigned max+1 in the same statement,
// which is portable SQL and race-free because writers take turns (SQLite's
// single writer; PostgreSQL's writer lock, see pgDialect), so seq also
// follows commit order.
func (s *Store) insert(ctx context.Context, table string, cols []string, args []any) error {
	q := fmt.Sprintf("INSERT INTO %s (%s, seq) VALUES (%s, (SELECT COALESCE(MAX(seq), 0) + 1 FROM %s))",
		table, strings.Join(cols, ", "), placeholders(len(cols)), table)
	_, err := s.exec(ctx, q, args...)
	return err
}

// update sets cols on the row with guid and reports whether it existed.
func (s *Store) update(ctx context.Context, table, guid string, cols []string, args []any) (bool, error) {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = ?"
	}
	q := fmt.Sprintf("UPDATE %s SET %s WHERE guid = ?", table, strings.Join(set, ", "))
	res, err := s.exec(ctx, q, append(slices.Clip(args), guid)...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// remove deletes the row with guid and reports whether it existed.
func (s *Store) remove(ctx context.Context, table, guid string) (bool, error) {
	res, err := s.exec(ctx, "DELETE FROM "+table+" WHERE guid = ?", guid)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// getOne runs a single-row query; no row becomes ENotFound "<entity> <key>
// not found".
func getOne[T any](ctx context.Context, s *Store, entity, key, q string, args []any, scan func(scanner) (T, error)) (T, error) {
	// A key PostgreSQL cannot even compare (a NUL byte) matches no row; it
	// is not sent, which would abort the transaction the query is in.
	if s.d.refusesText(args) {
		var zero T
		return zero, pando.Errorf(pando.ENotFound, "%s %s not found", entity, key)
	}
	v, err := scan(s.queryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) || (err != nil && s.d.badText(err)) {
		var zero T
		return zero, pando.Errorf(pando.ENotFound, "%s %s not found", entity, key)
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("get %s %s: %w", entity, key, err)
	}
	return v, nil
}

// list runs a multi-row query. It returns an empty, non-nil slice when no
// row matches.
func list[T any](ctx context.Context, s *Store, what, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil && s.d.badText(err) {
		err = errBadText
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// writeErr explains a failed write. A duplicate GUID is "<entity> <guid>
// already exists"; any other unique violation is natural() (the entity's
// human key, e.g. an app name in a space); a foreign key violation is
// parent() (a referenced row is missing). Other errors are wrapped with op.
func (s *Store) writeErr(err error, op, entity, guid string, natural, parent func() *pando.Error) error {
	if err == nil {
		return nil
	}
	if v, ok := s.d.constraint(err); ok {
		switch {
		case v.foreignKey && parent != nil:
			return parent()
		case v.foreignKey:
			return pando.Errorf(pando.EInvalid, "%s %s refers to a record that does not exist", entity, guid)
		case slices.Equal(v.columns, []string{"guid"}) || natural == nil:
			return pando.Errorf(pando.EConflict, "%s %s already exists", entity, guid)
		default:
			return natural()
		}
	}
	return fmt.Errorf("%s %s %s: %w", op, entity, guid, err)
}

func notFound(entity, guid string) error {
	return pando.Errorf(pando.ENotFound, "%s %s not found", entity, guid)
}

// Timestamps are stored as unix nanoseconds: an integer sorts correctly and
// means the same thing on every engine, and time.Time round-trips exactly
// (returned in UTC).
func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// orNow returns t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

// toJSON encodes a JSON column. nil encodes as null and an empty value as
// []/{}, so both round-trip as they were.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode JSON column: %w", err)
	}
	return string(b), nil
}

func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decode JSON column: %w", err)
	}
	return nil
}
