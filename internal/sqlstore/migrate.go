package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema migrations, "migrations/NNNN_name.sql",
// applied in version order. A released migration is never edited: change
// the schema with a new file. "NNNN_name.postgres.sql" runs on PostgreSQL
// only and is recorded as applied on every engine, so that schema versions
// mean the same everywhere (e.g. widening INTEGER to BIGINT, which SQLite's
// 64-bit INTEGER never needs).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string
	sql     string
	only    string // the one engine that runs sql ("": every engine)
}

var migrationName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)(\.postgres)?\.sql$`)

// loadMigrations reads migrations/*.sql from fsys, sorted by version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	paths, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, p := range paths {
		m := migrationName.FindStringSubmatch(path.Base(p))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", p)
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version", p)
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", p, err)
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(body), only: strings.TrimPrefix(m[3], ".")})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate brings db's schema up to the newest migration in fsys. Each
// migration runs in its own transaction together with its schema_migrations
// row, so a failed migration leaves the database at the previous version.
// Re-running is a no-op; a database already past the newest known version
// is refused, since this binary would misread it.
func migrate(ctx context.Context, db *sql.DB, d dialect, fsys fs.FS, logger *slog.Logger) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if err := inMigrationTx(ctx, db, d, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, db, d)
	if err != nil {
		return err
	}
	var latest int64
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return schemaNewer(current, latest)
	}
	applied := 0
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := applyMigration(ctx, db, d, m); err != nil {
			return err
		}
		applied++
		logger.Debug("database migration applied", "version", m.version, "migration", m.name)
	}
	if applied > 0 {
		logger.Info("database migrated", "from_version", current, "to_version", latest, "migrations", applied)
	}
	return nil
}

// schemaNewerError is a database migrated past this binary's newest
// migration.
type schemaNewerError struct{ current, latest int64 }

func (e *schemaNewerError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this pando binary supports (%d): upgrade pando, or restore a backup made for this version", e.current, e.latest)
}

func schemaNewer(current, latest int64) error { return &schemaNewerError{current, latest} }

// latestVersion is the newest migration's version in fsys (0: none).
func latestVersion(fsys fs.FS) (int64, error) {
	ms, err := loadMigrations(fsys)
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	return ms[len(ms)-1].version, nil
}

// refuseNewerSchema is migrate's check alone, changing nothing: it fails
// when db's schema is newer than fsys's newest migration. A database
// without schema_migrations (never migrated) is at version 0.
func refuseNewerSchema(ctx context.Context, db *sql.DB, d dialect, fsys fs.FS, _ *slog.Logger) error {
	latest, err := latestVersion(fsys)
	if err != nil {
		return err
	}
	current, err := storedSchemaVersion(ctx, db, d)
	if err != nil {
		return err
	}
	if current > latest {
		return schemaNewer(current, latest)
	}
	return nil
}

// storedSchemaVersion is schemaVersion, 0 on a PostgreSQL database
// without schema_migrations.
func storedSchemaVersion(ctx context.Context, q querier, d dialect) (int64, error) {
	v, err := schemaVersion(ctx, q, d)
	if _, pg := d.(pgDialect); pg && pgUndefinedTable(err) {
		return 0, nil
	}
	return v, err
}

func schemaVersion(ctx context.Context, q querier, d dialect) (int64, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, d.rebind("SELECT MAX(version) FROM schema_migrations")).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v.Int64, nil
}

// inMigrationTx runs fn in a transaction holding the writer lock (SQLite's
// BEGIN IMMEDIATE; PostgreSQL's advisory lock), so two processes opening
// one database migrate one after the other.
func inMigrationTx(ctx context.Context, db *sql.DB, d dialect, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, d.txOptions())
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if lock := d.lockWrites(0); lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("wait for the writer lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, d dialect, m migration) error {
	err := inMigrationTx(ctx, db, d, func(tx *sql.Tx) error {
		// Another process may have migrated while this one waited for the lock.
		var n int
		if err := tx.QueryRowContext(ctx, d.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if m.only == "" || m.only == d.engine() {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
	}
	return nil
}
