package pgtest

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/testenv"
)

// Cluster is a PostgreSQL server of one test's own, which the test may
// stop and start again to see what an outage or a restart does to its
// clients. It is gone when the test ends.
type Cluster struct{ c *cluster }

// Own starts a cluster for t alone (PANDO_TEST_DATABASE_URL does not
// apply: the test stops it). It skips t (fails it under CI=true) when
// PostgreSQL is not installed, and with -short.
func Own(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL tests do not run with -short")
	}
	bin, err := binDir()
	if errors.Is(err, errNotInstalled) {
		testenv.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	var c *cluster
	for range 3 { // another process may take the port first
		if c, err = start(bin); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	if c.db, err = sql.Open("pgx", c.admin.String()); err != nil {
		t.Fatal(err)
	}
	c.db.SetMaxOpenConns(2)
	return &Cluster{c: c}
}

// URL creates a new, empty database and returns its URL.
func (k *Cluster) URL(t testing.TB) string {
	t.Helper()
	name := "pando_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := k.c.db.ExecContext(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return k.c.url(name)
}

// Admin is a connection pool to the cluster as its superuser.
func (k *Cluster) Admin() *sql.DB { return k.c.db }

// Stop shuts the server down as an operator's fast shutdown does: every
// session ends, and connecting is refused until Start.
func (k *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := k.c.halt(); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
}

// Start starts the server again on the same port and data.
func (k *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := k.c.launch(); err != nil {
		t.Fatalf("pgtest: start again: %v", err)
	}
}
