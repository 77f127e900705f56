package sqlstore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
	"github.com/pandoplatform/pando/internal/sqlstore/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// pgURL is a new database with the schema migrated, copied from a
// template: the suite's many databases are made quicker so.
func pgURL(t *testing.T) string {
	t.Helper()
	return pgtest.TemplateURL(t, "migrated", func(ctx context.Context, url string) error {
		s, err := Open(ctx, url, nil)
		if err != nil {
			return err
		}
		return s.Close()
	})
}

func TestStore_conformsOnPostgreSQL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pando.Store {
		return openTemp(t, pgURL(t))
	})
}

// parallel runs fn(i) for i in [0, n) at once and fails t with every error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Concurrent inserts, some in transactions, get distinct seqs in commit
// order: lists keep the insert order and the app usage events' after_guid
// cursor never skips an event committed later with a smaller seq.
func TestPostgres_concurrentInsertsGetDistinctSeqsInCommitOrder(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	const n = 30
	same := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	parallel(t, n, func(i int) error {
		o := pando.Org{GUID: fmt.Sprintf("org-%02d", i), Name: fmt.Sprintf("org-%02d", i), CreatedAt: same}
		e := pando.AppUsageEvent{GUID: fmt.Sprintf("usage-%02d", i), State: "STARTED", CreatedAt: same}
		if i%2 == 0 {
			if err := s.CreateOrg(ctx, o); err != nil {
				return err
			}
			return s.CreateAppUsageEvent(ctx, e)
		}
		return s.InTx(ctx, func(tx pando.Store) error {
			if err := tx.CreateOrg(ctx, o); err != nil {
				return err
			}
			return tx.CreateAppUsageEvent(ctx, e)
		})
	})
	for _, table := range []string{"orgs", "app_usage_events"} {
		var rows, seqs int
		var maxSeq int64
		if err := s.queryRow(ctx, "SELECT COUNT(*), COUNT(DISTINCT seq), MAX(seq) FROM "+table).Scan(&rows, &seqs, &maxSeq); err != nil {
			t.Fatal(err)
		}
		if rows != n || seqs != n || maxSeq != n {
			t.Errorf("%s: %d rows, %d distinct seqs, max seq %d; want %d of each", table, rows, seqs, maxSeq, n)
		}
	}
	// Commit order is seq order: walking the cursor one event at a time
	// from the first visits all of them.
	all, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{})
	if err != nil || len(all) != n {
		t.Fatalf("ListAppUsageEvents: %d events, %v", len(all), err)
	}
	for i := 1; i < n; i++ {
		next, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{AfterGUID: all[i-1].GUID})
		if err != nil || len(next) != n-i || next[0].GUID != all[i].GUID {
			t.Fatalf("after %s: %d events, %v; want %d starting with %s", all[i-1].GUID, len(next), err, n-i, all[i].GUID)
		}
	}
}

// Concurrent read-modify-write transactions lose no update, and tasks
// created at once still number 1..n per app: writers take turns.
func TestPostgres_concurrentTransactionsTakeTurns(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	org := pando.Org{GUID: "org-1", Name: "o"}
	space := pando.Space{GUID: "space-1", Name: "s", OrgGUID: org.GUID}
	app := pando.App{GUID: "app-1", Name: "a", SpaceGUID: space.GUID, State: pando.AppStopped,
		LifecycleType: pando.LifecycleBuildpack, Revision: 1}
	for _, err := range []error{s.CreateOrg(ctx, org), s.CreateSpace(ctx, space), s.CreateApp(ctx, app)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	parallel(t, n, func(i int) error {
		if err := s.InTx(ctx, func(tx pando.Store) error {
			a, err := tx.GetApp(ctx, app.GUID)
			if err != nil {
				return err
			}
			a.Revision++
			return tx.UpdateApp(ctx, a)
		}); err != nil {
			return err
		}
		_, err := s.CreateAppTask(ctx, pando.AppTask{GUID: fmt.Sprintf("task-%d", i), AppGUID: app.GUID, Name: "t",
			Command: "true", State: pando.AppTaskPending})
		return err
	})
	got, err := s.GetApp(ctx, app.GUID)
	if err != nil || got.Revision != 1+n {
		t.Fatalf("revision %d, %v; want %d after %d increments", got.Revision, err, 1+n, n)
	}
	tasks, err := s.ListAppTasks(ctx, []string{app.GUID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, task := range tasks {
		ids = append(ids, int(task.SequenceID))
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id != i+1 {
			t.Fatalf("task sequence ids %v, want 1..%d", ids, n)
		}
	}
	if len(ids) != n {
		t.Fatalf("%d tasks, want %d", len(ids), n)
	}
}

// Two servers opening one new database at once: one migrates, the other
// waits and finds the schema done.
func TestPostgres_twoOpensAtOnceMigrateOnce(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	stores := make([]*Store, 3)
	parallel(t, len(stores), func(i int) error {
		var err error
		stores[i], err = Open(ctx, dsn, nil)
		return err
	})
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := stores[0].queryRow(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

func TestPostgres_migrateAppliesInOrderAndStopsAtFailure(t *testing.T) {
	testMigrateStopsAtFailure(t, openTemp(t, pgtest.URL(t)))
}

func TestPostgres_postgresOnlyMigrationRuns(t *testing.T) {
	testPostgresOnlyMigration(t, openTemp(t, pgtest.URL(t)))
}

func TestPostgres_refusesNewerSchema(t *testing.T) {
	dsn := pgURL(t)
	s := openTemp(t, dsn)
	if _, err := s.exec(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version 9999 is newer") {
		t.Fatalf("Open of a newer schema: %v, want a clear refusal", err)
	}
}

// A unique violation names its columns, from PostgreSQL's detail.
func TestPostgres_uniqueViolationNamesItsColumns(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	org := pando.Org{GUID: "org-1", Name: "o"}
	if err := s.CreateOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	space := pando.Space{GUID: "space-1", Name: "s", OrgGUID: org.GUID}
	if err := s.CreateSpace(ctx, space); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO spaces (guid, seq, name, org_guid, created_at, updated_at) VALUES (?, 99, ?, ?, 0, 0)"
	for _, c := range []struct {
		guid, name string
		want       []string
	}{
		{"space-2", "s", []string{"org_guid", "name"}},
		{"space-1", "other", []string{"guid"}},
	} {
		_, err := s.exec(ctx, insert, c.guid, c.name, org.GUID)
		v, ok := s.d.constraint(err)
		if !ok || v.foreignKey || !slices.Equal(v.columns, c.want) {
			t.Errorf("insert %s %s: %v decoded as %+v, %v; want columns %v", c.guid, c.name, err, v, ok, c.want)
		}
	}
	_, err := s.exec(ctx, insert, "space-3", "x", "no-such-org")
	if v, ok := s.d.constraint(err); !ok || !v.foreignKey {
		t.Errorf("insert into a missing org: %v decoded as %+v, %v; want a foreign key violation", err, v, ok)
	}
	// Without the detail, a primary key still names the guid.
	if got := pgUniqueColumns(&pgconn.PgError{Code: "23505", TableName: "apps", ConstraintName: "apps_pkey"}); !slices.Equal(got, []string{"guid"}) {
		t.Errorf("apps_pkey without detail: %v, want [guid]", got)
	}
}

// Text PostgreSQL cannot hold is invalid input, not an internal error; a
// key holding it matches nothing.
func TestPostgres_textWithANULIsInvalid(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	err := s.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "bad\x00name"})
	if pando.ErrorKindOf(err) != pando.EInvalid {
		t.Fatalf("CreateOrg with a NUL: %v, want invalid", err)
	}
	if _, err := s.GetOrg(ctx, "org\x00"); !pando.IsNotFound(err) {
		t.Fatalf("GetOrg with a NUL: %v, want not found", err)
	}
}

// Inside a transaction too: a lookup by a key PostgreSQL cannot hold finds
// nothing and leaves the transaction usable, as on SQLite (a statement
// PostgreSQL refused would abort the whole transaction).
func TestPostgres_textWithANULInATransactionLeavesItUsable(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	err := s.InTx(ctx, func(tx pando.Store) error {
		if _, err := tx.GetOrg(ctx, "org\x00"); !pando.IsNotFound(err) {
			return fmt.Errorf("GetOrg with a NUL: %v, want not found", err)
		}
		if _, err := tx.GetOrg(ctx, "org\xff"); !pando.IsNotFound(err) {
			return fmt.Errorf("GetOrg with invalid UTF-8: %v, want not found", err)
		}
		if _, err := tx.ListOrgs(ctx, nil, []string{"a\x00"}); pando.ErrorKindOf(err) != pando.EInvalid {
			return fmt.Errorf("ListOrgs with a NUL: %v, want invalid", err)
		}
		return tx.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "one"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s.GetOrg(ctx, "org-1"); err != nil || o.Name != "one" {
		t.Fatalf("GetOrg after the transaction = %+v, %v", o, err)
	}
}

// Bytewise order whatever the database's collation: "B" before "a".
func TestPostgres_textOrderIsBytewise(t *testing.T) {
	s := openTemp(t, pgURL(t))
	ctx := t.Context()
	for _, name := range []string{"a", "B"} {
		if err := s.PutFeatureFlag(ctx, pando.FeatureFlag{Name: name, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	flags, err := s.ListFeatureFlags(ctx)
	if err != nil || len(flags) != 2 || flags[0].Name != "B" {
		t.Fatalf("flags %+v, %v; want B then a", flags, err)
	}
}

// A server that is not there, or a URL that does not parse, is said so;
// the password never shows.
func TestOpen_postgresErrorsNeverShowThePassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, c := range []struct{ dsn, want string }{
		{"postgres://pando:" + secret + "@" + closed + "/pando?connect_timeout=5", "cannot reach PostgreSQL at " + closed + ": "},
		{"postgres://pando:" + secret + "@" + "127.0.0.1:notaport/pando", "cannot parse the PostgreSQL URL"},
		{"postgres://pando:" + secret + "@127.0.0.1/pando?sslmode=bogus", "cannot parse the PostgreSQL URL"},
	} {
		wantOpenError(t, c.dsn, c.want)
	}
}

// A server that refuses the login, or has no such database, says so, without
// the password.
func TestPostgres_refusedLoginOrMissingDatabaseIsSaidWithoutThePassword(t *testing.T) {
	u, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	good := *u
	u.User = url.UserPassword(u.User.Username(), secret)
	wantOpenError(t, u.String(), "PostgreSQL at "+u.Host+" refused the login of user")
	good.Path = "/no_such_db"
	wantOpenError(t, good.String(), `PostgreSQL at `+u.Host+` has no database "no_such_db"`)
}

// The password may stay out of the URL, in PGPASSWORD as for libpq.
func TestPostgres_passwordFromPGPASSWORD(t *testing.T) {
	u, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	t.Setenv("PGPASSWORD", password)
	s := openTemp(t, u.String())
	if err := s.CreateOrg(t.Context(), pando.Org{GUID: "org-1", Name: "o"}); err != nil {
		t.Fatal(err)
	}
}

const secret = "s3cr3t-Pa55"

func wantOpenError(t *testing.T, dsn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, dsn, nil)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v, want %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// One server per database: a second claim fails while the first Store is
// open, and succeeds once it is closed.
func TestPostgres_claimDatabaseIsOneServerPerDatabase(t *testing.T) {
	dsn := pgURL(t)
	ctx := t.Context()
	first, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.ClaimDatabase(ctx, 0); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	second := openTemp(t, dsn)
	if err := second.ClaimDatabase(ctx, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "another Pando server is using this PostgreSQL database") {
		t.Fatalf("second claim while the first holds it: %v", err)
	}
	// The first still writes: its claim holds none of the writer's turns.
	if err := first.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "o"}); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.ClaimDatabase(ctx, 0); err != nil {
		t.Fatalf("claim after the first closed: %v", err)
	}
}

// On SQLite the data dir's lock is the claim: ClaimDatabase does nothing.
func TestSQLite_claimDatabaseDoesNothing(t *testing.T) {
	path := t.TempDir() + "/ccdb.sqlite"
	for range 2 {
		if err := openTemp(t, path).ClaimDatabase(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
	}
}
