package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// migrateOnly migrates the PostgreSQL database dsn up to version upTo of
// this binary's migrations, as an older pando would have.
func migrateOnly(t *testing.T, dsn string, upTo int64) {
	t.Helper()
	paths, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	older := fstest.MapFS{}
	for _, p := range paths {
		m := migrationName.FindStringSubmatch(path.Base(p))
		if v, err := strconv.ParseInt(m[1], 10, 64); err != nil || v > upTo {
			continue
		}
		body, err := fs.ReadFile(migrationFiles, p)
		if err != nil {
			t.Fatal(err)
		}
		older[p] = &fstest.MapFile{Data: body}
	}
	db := rawDB(t, dsn)
	if err := migrate(t.Context(), db, pgDialect{}, older, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate to %d: %v", upTo, err)
	}
}

func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// holdClaimRaw takes the database's claim as a leader would, on a
// session of its own; release gives it back.
func holdClaimRaw(t *testing.T, dsn string) (release func()) {
	t.Helper()
	conn, err := rawDB(t, dsn).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock($1)", pgServerLock); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", pgServerLock); err != nil {
			t.Error(err)
		}
		conn.Close()
	}
}

// schemaOf is the database's schema version and whether it has
// server_state.
func schemaOf(t *testing.T, db *sql.DB) (version int64, serverState bool) {
	t.Helper()
	if err := db.QueryRowContext(t.Context(), "SELECT COALESCE(MAX(version), 0), to_regclass('server_state') IS NOT NULL FROM schema_migrations").Scan(&version, &serverState); err != nil {
		t.Fatal(err)
	}
	return version, serverState
}

func openStandby(t *testing.T, dsn string, logger *slog.Logger) *Store {
	t.Helper()
	s, err := OpenStandby(t.Context(), dsn, logger)
	if err != nil {
		t.Fatalf("OpenStandby: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// awaitInBackground runs AwaitClaim; each wait is sent on waits.
func awaitInBackground(ctx context.Context, s *Store, holder string) (waits <-chan string, done <-chan error) {
	w, d := make(chan string, 64), make(chan error, 1)
	go func() {
		d <- s.AwaitClaim(ctx, holder, 20*time.Millisecond, func(h string, _ bool) error {
			select {
			case w <- h:
			default:
			}
			return nil
		})
	}()
	return w, d
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: nothing within 20s", what)
	}
	var zero T
	return zero
}

// A new standby on a database an older leader migrated to 0015 (no
// server_state) waits without failing and leaves the schema alone; it
// migrates once the leader lets go of the claim, before it records
// itself as the holder.
func TestPostgres_standbyMigratesAnOlderSchemaOnlyOnceItHoldsTheClaim(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	migrateOnly(t, dsn, 15)
	release := holdClaimRaw(t, dsn)

	standby := openStandby(t, dsn, nil)
	if v, ok, err := standby.ServerState(ctx, StateSecretsFingerprint); err != nil || ok {
		t.Fatalf("fingerprint on a database without server_state: %q %v %v, want none and no error", v, ok, err)
	}
	waits, done := awaitInBackground(ctx, standby, "new-host")
	for range 3 {
		if h := waitFor(t, waits, "the standby's wait"); h != "" {
			t.Errorf("the standby names the leader %q on a database without server_state", h)
		}
	}
	raw := rawDB(t, dsn)
	if v, hasState := schemaOf(t, raw); v != 15 || hasState {
		t.Fatalf("while the older leader holds the claim the schema is at %d (server_state %v), want 15 and none", v, hasState)
	}

	release()
	if err := waitFor(t, done, "AwaitClaim after the leader let go"); err != nil {
		t.Fatalf("AwaitClaim: %v", err)
	}
	latest, err := latestVersion(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if v, hasState := schemaOf(t, raw); v != latest || !hasState {
		t.Errorf("after the takeover the schema is at %d (server_state %v), want %d", v, hasState, latest)
	}
	if h, ok, err := standby.ServerState(ctx, StateClaimHolder); err != nil || !ok || h != "new-host" {
		t.Errorf("holder after takeover: %q %v %v", h, ok, err)
	}
}

// lockedBuffer is a log sink several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// Two replicas starting at once on an empty database: neither migrates
// before it holds the claim, the one that takes it migrates, and the
// other, taking over later, finds nothing to do.
func TestPostgres_twoStandbysOnAnEmptyDatabaseMigrateOnce(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, b := openStandby(t, dsn, logger), openStandby(t, dsn, logger)
	if v, ok, err := a.ServerState(ctx, StateClaimHolder); err != nil || ok {
		t.Fatalf("holder on an empty database: %q %v %v, want none and no error", v, ok, err)
	}
	var migrated bool
	if err := rawDB(t, dsn).QueryRowContext(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&migrated); err != nil || migrated {
		t.Fatalf("the standbys changed the schema before either held the claim (schema_migrations %v, %v)", migrated, err)
	}
	waitsA, doneA := awaitInBackground(ctx, a, "a")
	waitsB, doneB := awaitInBackground(ctx, b, "b")
	var leader *Store
	var otherDone <-chan error
	select {
	case err := <-doneA:
		leader, otherDone = a, doneB
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, waitsB, "b's wait")
	case err := <-doneB:
		leader, otherDone = b, doneA
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, waitsA, "a's wait")
	case <-time.After(20 * time.Second):
		t.Fatal("neither standby took the claim within 20s")
	}
	if n := logs.count("database migrated"); n != 1 {
		t.Errorf("%d migrations logged by the first leader, want 1:\n%s", n, logs)
	}
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, otherDone, "the second standby's takeover"); err != nil {
		t.Fatal(err)
	}
	if n := logs.count("database migrated"); n != 1 {
		t.Errorf("%d migrations logged after the takeover, want still 1", n)
	}
	if n := logs.count("database migration applied"); n != mustCount(t) {
		t.Errorf("%d migrations applied, want %d (each once)", n, mustCount(t))
	}
}

func mustCount(t *testing.T) int {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// A standby of an older binary refuses a schema newer than it knows: at
// once when it opens, and while it waits once the leader migrates past
// it (it could never serve that database), without taking the claim.
func TestPostgres_standbyRefusesANewerSchema(t *testing.T) {
	ctx := t.Context()
	latest, err := latestVersion(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	moveOn := func(db *sql.DB) {
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 0)", latest+1); err != nil {
			t.Fatal(err)
		}
	}

	dsn := pgURL(t)
	moveOn(rawDB(t, dsn))
	if s, err := OpenStandby(ctx, dsn, nil); err == nil {
		s.Close()
		t.Fatal("OpenStandby opened a database newer than its binary")
	} else if !strings.Contains(err.Error(), "newer than this pando binary") {
		t.Errorf("OpenStandby: %v, want it to say the schema is newer", err)
	}

	dsn = pgURL(t)
	release := holdClaimRaw(t, dsn)
	defer release()
	standby := openStandby(t, dsn, nil)
	waits, done := awaitInBackground(ctx, standby, "old")
	waitFor(t, waits, "the standby's wait")
	moveOn(rawDB(t, dsn))
	err = waitFor(t, done, "AwaitClaim on a newer schema")
	if !errors.As(err, new(*schemaNewerError)) || !strings.Contains(err.Error(), "standby cannot take over") {
		t.Errorf("AwaitClaim: %v, want it to refuse the newer schema", err)
	}
}

// On SQLite OpenStandby is Open: it migrates at once.
func TestSQLite_openStandbyMigrates(t *testing.T) {
	s, err := OpenStandby(t.Context(), t.TempDir()+"/ccdb.sqlite", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	latest, err := latestVersion(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := schemaVersion(t.Context(), s.r, s.d); err != nil || v != latest {
		t.Errorf("schema version %d %v, want %d", v, err, latest)
	}
}
