package e2e

import (
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// `pando server --database-url postgres://...` keeps its CCDB in
// PostgreSQL: an app pushed there answers, and after a restart it is still
// there and answers again; no SQLite file appears in the data dir.
func TestServer_onPostgreSQLKeepsItsAppAcrossARestart(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	dsn := pgtest.URL(t)
	s := ownServer(t, "--database-url", dsn)
	const name = "pg-app"
	host := name + ".localhost"
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "kept in postgres\n"})
	s.mustPando(t, "push", name, "-p", dir, "-b", "binary_buildpack", "-m", "64M",
		"-c", "exec busybox httpd -f -p $PORT -h /home/vcap/app")
	answers := func(status int, body string) bool { return status == http.StatusOK && body == "kept in postgres\n" }
	s.waitRoute(t, host, "/", "the app answering", answers)
	guid := s.appGUID(t, name)

	if err := s.stop(); err != nil {
		t.Fatalf("stop the server: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	s.waitRoute(t, host, "/", "the app answering after the restart", answers)
	if got := s.appGUID(t, name); got != guid {
		t.Fatalf("after the restart the app is %s, want %s", got, guid)
	}

	if _, err := os.Stat(filepath.Join(s.dataDir, "ccdb.sqlite")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a SQLite CCDB in the data dir (%v): the server did not use PostgreSQL", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM apps WHERE guid = $1", guid).Scan(&n); err != nil || n != 1 {
		t.Fatalf("apps rows with the app's GUID in PostgreSQL: %d, %v; want 1", n, err)
	}
}
