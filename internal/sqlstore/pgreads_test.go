package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// storeReads are the Store's kinds of read: a lookup (getOne), a list, a
// list whose filter is a subquery, and both inside a transaction.
func storeReads(s *Store) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"lookup": func(ctx context.Context) error { _, err := s.GetOrg(ctx, "org-1"); return err },
		"list":   func(ctx context.Context) error { _, err := s.ListOrgs(ctx, nil, nil); return err },
		"list after a cursor": func(ctx context.Context) error {
			_, err := s.ListAppUsageEvents(ctx, pando.AppUsageFilter{AfterGUID: "ev-1"})
			return err
		},
		"lookup in a transaction": func(ctx context.Context) error {
			return s.InTx(ctx, func(tx pando.Store) error { _, err := tx.GetOrg(ctx, "org-1"); return err })
		},
		"list in a transaction": func(ctx context.Context) error {
			return s.InTx(ctx, func(tx pando.Store) error { _, err := tx.ListOrgs(ctx, nil, nil); return err })
		},
	}
}

// Every kind of read answers EUnavailable (the API's 503) while
// PostgreSQL is down and when the sessions it had were cut, never another
// error (a 500), and serves again once PostgreSQL is back.
func TestPostgres_everyReadIsUnavailableInAnOutageThenRecovers(t *testing.T) {
	k := pgtest.Own(t)
	ctx := t.Context()
	s := openTemp(t, k.URL(t))
	if err := s.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAppUsageEvent(ctx, pando.AppUsageEvent{GUID: "ev-1"}); err != nil {
		t.Fatal(err)
	}
	reads := storeReads(s)
	warm := func() {
		t.Helper()
		for name, read := range reads {
			parallel(t, 4, func(int) error { return read(ctx) })
			if err := read(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	// unavailableOrServed reads until every kind is served, failing on
	// any error but EUnavailable on the way.
	unavailableOrServed := func(when string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for name, read := range reads {
			for {
				err := read(ctx)
				if err == nil {
					break
				}
				if pando.ErrorKindOf(err) != pando.EUnavailable {
					t.Fatalf("%s %s: %v; want EUnavailable or success", name, when, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still fails 30s %s: %v", name, when, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	warm()
	// Cut every session of the Store's pools with the server up: the
	// pooled connections are broken under the reads.
	if _, err := k.Admin().ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pando'"); err != nil {
		t.Fatal(err)
	}
	unavailableOrServed("after its sessions were cut")

	warm()
	k.Stop(t)
	for name, read := range reads {
		for i := range 3 { // the broken pooled connections, then the refused ones
			err := read(ctx)
			var pe *pando.Error
			if !errors.As(err, &pe) || pe.Kind != pando.EUnavailable {
				t.Errorf("%s #%d with PostgreSQL down: %v; want EUnavailable", name, i, err)
			}
		}
	}
	k.Start(t)
	unavailableOrServed("after PostgreSQL came back")
	for name, read := range reads {
		if err := read(ctx); err != nil {
			t.Errorf("%s once recovered: %v", name, err)
		}
	}
}

// A read's other errors keep their meaning: a missing row is ENotFound,
// not EUnavailable.
func TestPostgres_aMissingRowIsNotAnOutage(t *testing.T) {
	s := openTemp(t, pgURL(t))
	_, err := s.GetOrg(t.Context(), "nope")
	if pando.ErrorKindOf(err) != pando.ENotFound {
		t.Fatalf("GetOrg of a missing org: %v; want ENotFound", err)
	}
	err = s.InTx(t.Context(), func(tx pando.Store) error { _, err := tx.GetOrg(t.Context(), "nope"); return err })
	if pando.ErrorKindOf(err) != pando.ENotFound {
		t.Fatalf("GetOrg of a missing org in a transaction: %v; want ENotFound", err)
	}
}
