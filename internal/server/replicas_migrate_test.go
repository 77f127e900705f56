package server

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// schemaOf is the database's schema version and whether it has
// server_state (migration 0016).
func schemaOf(t *testing.T, db *sql.DB) (version int64, serverState bool) {
	t.Helper()
	if err := db.QueryRowContext(t.Context(), "SELECT MAX(version), to_regclass('server_state') IS NOT NULL FROM schema_migrations").Scan(&version, &serverState); err != nil {
		t.Fatal(err)
	}
	return version, serverState
}

// A newer `pando api` started beside an older leader (a rolling upgrade,
// the database at 0015 without server_state) waits as a standby without
// touching the schema, and migrates it once it takes the claim, before it
// serves.
func TestRunAPI_standbyMigratesAnOlderLeadersSchemaOnlyWhenItTakesOver(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	leader, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if err := leader.AwaitClaim(ctx, "old-leader", 10*time.Millisecond, func(string, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// What a leader of the release before 0016 left.
	if _, err := raw.ExecContext(ctx, "DROP TABLE server_state; DELETE FROM schema_migrations WHERE version >= 16"); err != nil {
		t.Fatal(err)
	}
	latest, _ := schemaOf(t, raw)

	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.DatabaseURL = dsn
	var logs logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	standby := start(t, func(ctx context.Context) error { return RunAPI(ctx, cfg) })
	awaitStandby(t, "the standby", standby, &logs, ready)
	if v, hasState := schemaOf(t, raw); v != latest || hasState {
		t.Fatalf("beside the older leader the schema is at %d (server_state %v), want %d and none", v, hasState, latest)
	}

	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case err := <-standby.done:
		standby.done = nil
		t.Fatalf("the standby returned instead of taking over: %v; logs:\n%s", err, logs.String())
	case <-time.After(bootTimeout):
		t.Fatalf("the standby did not take over within %s; logs:\n%s", bootTimeout, logs.String())
	}
	if v, hasState := schemaOf(t, raw); v <= latest || !hasState {
		t.Errorf("the new leader serves on schema %d (server_state %v), want it migrated past %d", v, hasState, latest)
	}
	standby.stop(t)
}

// A `pando api` older than the database's schema refuses to start, saying
// so, instead of waiting to serve a schema it cannot read.
func TestRunAPI_refusesASchemaNewerThanItsBinary(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) SELECT MAX(version) + 1, 'future', 0 FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	cfg := platformConfig(t, make(chan [2]string, 1))
	cfg.DatabaseURL = dsn
	rctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	if err := RunAPI(rctx, cfg); err == nil || !strings.Contains(err.Error(), "newer than this pando binary") {
		t.Fatalf("RunAPI on a newer schema: %v, want it to say the schema is newer", err)
	}
}
