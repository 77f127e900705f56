package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/storetest"
)

func openTemp(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore_conformsOnSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pando.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "ccdb.sqlite"))
	})
}

func TestStore_conformsOnSQLiteInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pando.Store {
		return openTemp(t, ":memory:")
	})
}

func TestOpen_reopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "ccdb.sqlite")
	ctx := t.Context()
	s, err := Open(ctx, "sqlite://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	org := pando.Org{GUID: "org-1", Name: "keep-me"}
	if err := s.CreateOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s = openTemp(t, path)
		got, err := s.GetOrg(ctx, org.GUID)
		if err != nil || got.Name != org.Name {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows after three opens, want %d", n, len(ms))
	}
}

func TestOpen_refusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ccdb.sqlite")
	s := openTemp(t, path)
	if _, err := s.exec(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version 9999 is newer") {
		t.Fatalf("Open of a newer schema: %v, want a clear refusal", err)
	}
}

func TestOpen_dsn(t *testing.T) {
	cases := []struct {
		dsn     string
		engine  string
		path    string
		wantErr string
	}{
		{dsn: "/var/lib/pando/ccdb.sqlite", engine: engineSQLite, path: "/var/lib/pando/ccdb.sqlite"},
		{dsn: "rel/ccdb.sqlite", engine: engineSQLite, path: "rel/ccdb.sqlite"},
		{dsn: "sqlite:///abs/ccdb.sqlite", engine: engineSQLite, path: "/abs/ccdb.sqlite"},
		{dsn: "sqlite://rel.sqlite", engine: engineSQLite, path: "rel.sqlite"},
		{dsn: ":memory:", engine: engineSQLite, path: ":memory:"},
		{dsn: "postgres://u:secret@db/pando", engine: enginePostgres},
		{dsn: "postgresql://db/pando", engine: enginePostgres},
		{dsn: "", wantErr: "empty"},
		{dsn: "sqlite://", wantErr: "no file path"},
		{dsn: "mysql://db", wantErr: `unsupported database URL scheme "mysql"`},
	}
	for _, c := range cases {
		got, err := parseDSN(c.dsn)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseDSN(%q) = %+v, %v; want error %q", c.dsn, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got.engine != c.engine || got.path != c.path {
			t.Errorf("parseDSN(%q) = %+v, %v; want %s %q", c.dsn, got, err, c.engine, c.path)
		}
	}
}

func TestOpen_sqliteSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd?dir#name", "ccdb.sqlite")
	s := openTemp(t, path)
	ctx := t.Context()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "1", // NORMAL
	} {
		var got string
		if err := s.w.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	var fk string
	if err := s.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != "1" {
		t.Errorf("reader foreign_keys = %s, %v", fk, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database not at the literal path %s: %v", path, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600", st.Mode().Perm())
	}
}

// Many goroutines writing at once, some in transactions, must all succeed:
// writers queue for the one connection instead of failing with SQLITE_BUSY.
func TestStore_concurrentWritersQueue(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "ccdb.sqlite"))
	ctx := t.Context()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := pando.Org{GUID: fmt.Sprintf("org-%d", i), Name: fmt.Sprintf("org-%d", i)}
			var err error
			if i%2 == 0 {
				err = s.CreateOrg(ctx, o)
			} else {
				err = s.InTx(ctx, func(tx pando.Store) error {
					if err := tx.CreateOrg(ctx, o); err != nil {
						return err
					}
					_, err := tx.ListOrgs(ctx, nil, nil)
					return err
				})
			}
			if err == nil {
				_, err = s.ListOrgs(ctx, nil, nil)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	orgs, err := s.ListOrgs(ctx, nil, nil)
	if err != nil || len(orgs) != n {
		t.Fatalf("got %d orgs, %v; want %d", len(orgs), err, n)
	}
}

func TestMigrate_appliesInOrderAndStopsAtFailure(t *testing.T) {
	testMigrateStopsAtFailure(t, openTemp(t, ":memory:"))
}

func testMigrateStopsAtFailure(t *testing.T, db *Store) {
	ctx := t.Context()
	fsys := fstest.MapFS{
		// Numbered past the real migrations (already applied by Open);
		// 0100 depends on 0020, which sorts after it as a string.
		"migrations/0020_a.sql": {Data: []byte("CREATE TABLE t_a (x INTEGER);")},
		"migrations/0100_b.sql": {Data: []byte("INSERT INTO t_a (x) VALUES (1); INSERT INTO t_a (x) VALUES (2);")},
		"migrations/0101_c.sql": {Data: []byte("INSERT INTO t_a (x) VALUES (3); THIS IS NOT SQL;")},
		"migrations/README.txt": {Data: []byte("ignored")},
	}
	err := migrate(ctx, db.wdb, db.d, fsys, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "0101_c") {
		t.Fatalf("migrate = %v, want failure naming 0101_c", err)
	}
	var count int
	if err := db.wdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM t_a").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 2 {
		t.Fatalf("t_a has %d rows, want 2: the failed migration must leave nothing behind", count)
	}
	v, err := schemaVersion(ctx, db.wdb, db.d)
	if err != nil || v != 100 {
		t.Fatalf("schema version %d, %v; want 100", v, err)
	}

	delete(fsys, "migrations/0101_c.sql")
	if err := migrate(ctx, db.wdb, db.d, fsys, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("re-running applied migrations: %v", err)
	}
}

// testPostgresOnlyMigration: a NNNN_name.postgres.sql migration runs on
// PostgreSQL only and is recorded as applied on every engine.
func testPostgresOnlyMigration(t *testing.T, db *Store) {
	ctx := t.Context()
	fsys := fstest.MapFS{
		"migrations/0020_a.sql":             {Data: []byte("CREATE TABLE t_w (x INTEGER);")},
		"migrations/0021_wide.postgres.sql": {Data: []byte("ALTER TABLE t_w ALTER COLUMN x TYPE BIGINT; INSERT INTO t_w (x) VALUES (5000000000);")},
	}
	if err := migrate(ctx, db.wdb, db.d, fsys, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	v, err := schemaVersion(ctx, db.wdb, db.d)
	if err != nil || v != 21 {
		t.Fatalf("schema version %d, %v; want 21", v, err)
	}
	var n int
	if err := db.wdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM t_w WHERE x = 5000000000").Scan(&n); err != nil {
		t.Fatal(err)
	}
	want := 0
	if db.d.engine() == enginePostgres {
		want = 1
	}
	if n != want {
		t.Fatalf("%s: the PostgreSQL-only migration left %d rows, want %d", db.d.engine(), n, want)
	}
}

func TestMigrate_postgresOnlyMigrationIsRecordedOnSQLite(t *testing.T) {
	testPostgresOnlyMigration(t, openTemp(t, filepath.Join(t.TempDir(), "ccdb.sqlite")))
}

func TestLoadMigrations_rejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":      {"migrations/init.sql": {}},
		"short number":   {"migrations/1_init.sql": {}},
		"duplicate":      {"migrations/0001_a.sql": {}, "migrations/00001_b.sql": {}},
		"capital letter": {"migrations/0001_Init.sql": {}},
		"other engine":   {"migrations/0001_init.mysql.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted %v", name, fsys)
		}
	}
}

func TestRebindDollar(t *testing.T) {
	got := rebindDollar(`SELECT a FROM t WHERE b = ? AND c = '?' AND "d?" IN (?, ?)`)
	want := `SELECT a FROM t WHERE b = $1 AND c = '?' AND "d?" IN ($2, $3)`
	if got != want {
		t.Fatalf("rebindDollar = %s, want %s", got, want)
	}
}

func TestSQLiteUniqueColumns(t *testing.T) {
	got := sqliteUniqueColumns("constraint failed: UNIQUE constraint failed: apps.space_guid, apps.name (2067)")
	if strings.Join(got, ",") != "space_guid,name" {
		t.Fatalf("columns = %v", got)
	}
}

func TestInTx_outerContextCancelled(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "ccdb.sqlite"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.InTx(ctx, func(pando.Store) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("InTx with a cancelled context = %v, want context.Canceled", err)
	}
}
