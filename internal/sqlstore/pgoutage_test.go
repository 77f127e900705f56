package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// wantUnavailable fails t unless err is EUnavailable saying want, as the
// API's 503 CF-ServiceUnavailable shows it.
func wantUnavailable(t *testing.T, what string, err error, want string) {
	t.Helper()
	var pe *pando.Error
	if !errors.As(err, &pe) || pe.Kind != pando.EUnavailable || !strings.Contains(pe.Message, want) {
		t.Errorf("%s: %v; want EUnavailable saying %q", what, err, want)
	}
}

// claimHeld reports whether some session holds the server claim's lock.
func claimHeld(t *testing.T, k *pgtest.Cluster) bool {
	t.Helper()
	var n int
	err := k.Admin().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, pgServerLock).Scan(&n)
	if err != nil {
		t.Fatalf("read pg_locks: %v", err)
	}
	return n > 0
}

// While PostgreSQL is down every call fails at once with EUnavailable
// (not a hang, not a driver's text), the claim waits; when PostgreSQL is
// back the Store serves again by itself (database/sql drops the broken
// connections) and HoldClaim has taken the claim again.
func TestPostgres_anOutageIsUnavailableAndTheStoreRecoversWithItsClaim(t *testing.T) {
	k := pgtest.Own(t)
	dsn := k.URL(t)
	ctx := t.Context()
	s := openTemp(t, dsn)
	if err := s.ClaimDatabase(ctx, 0); err != nil {
		t.Fatal(err)
	}
	holdCtx, stopHold := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- s.HoldClaim(holdCtx, 50*time.Millisecond) }()
	if err := s.CreateOrg(ctx, pando.Org{GUID: "org-1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	// Both pools hold several connections the restart will break.
	parallel(t, 8, func(int) error { _, err := s.ListOrgs(ctx, nil, nil); return err })
	parallel(t, 4, func(i int) error {
		return s.InTx(ctx, func(tx pando.Store) error { _, err := tx.GetOrg(ctx, "org-1"); return err })
	})

	k.Stop(t)
	const down = "The database cannot be reached"
	for i := range 3 { // the broken pooled connections, then the refused ones
		began := time.Now()
		_, err := s.GetOrg(ctx, "org-1")
		wantUnavailable(t, "GetOrg with PostgreSQL down", err, down)
		_, err = s.ListOrgs(ctx, nil, nil)
		wantUnavailable(t, "ListOrgs with PostgreSQL down", err, down)
		err = s.CreateOrg(ctx, pando.Org{GUID: fmt.Sprintf("org-down-%d", i), Name: fmt.Sprintf("down-%d", i)})
		wantUnavailable(t, "CreateOrg with PostgreSQL down", err, down)
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("three calls with PostgreSQL down took %s; want each to fail at once", d)
		}
	}
	select {
	case err := <-held:
		t.Fatalf("HoldClaim returned while PostgreSQL was down: %v", err)
	default:
	}

	k.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.GetOrg(ctx, "org-1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Store still fails 30s after PostgreSQL came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every connection is good again: none of these meets a broken one.
	parallel(t, 16, func(i int) error {
		if i%2 == 0 {
			return s.CreateOrg(ctx, pando.Org{GUID: fmt.Sprintf("org-back-%d", i), Name: fmt.Sprintf("back-%d", i)})
		}
		_, err := s.ListOrgs(ctx, nil, nil)
		return err
	})
	for !claimHeld(t, k) {
		if time.Now().After(deadline) {
			t.Fatal("the claim was not taken again after PostgreSQL came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := openTemp(t, dsn).ClaimDatabase(ctx, 0); err == nil {
		t.Fatal("a second Store claimed the database its first holds again")
	}
	stopHold()
	if err := <-held; err != nil {
		t.Fatalf("HoldClaim: %v", err)
	}
}

// A server that lost its claim in a restart and finds another server
// holding it when PostgreSQL is back must stop: HoldClaim says so.
func TestPostgres_aClaimTakenByAnotherDuringARestartStopsTheFirst(t *testing.T) {
	k := pgtest.Own(t)
	dsn := k.URL(t)
	ctx := t.Context()
	first := openTemp(t, dsn)
	if err := first.ClaimDatabase(ctx, 0); err != nil {
		t.Fatal(err)
	}
	k.Stop(t)
	k.Start(t)
	second := openTemp(t, dsn)
	if err := second.ClaimDatabase(ctx, 5*time.Second); err != nil {
		t.Fatalf("second claim after the restart: %v", err)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := first.HoldClaim(hctx, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another Pando server took this PostgreSQL database") {
		t.Fatalf("HoldClaim of the first: %v; want it to say another server took the database", err)
	}
}

// A write waits for its turn at most writerWait, or less if its context
// ends first (a client that left); either way it gives its place back, so
// when the slow writer is done the next write goes at once.
func TestPostgres_aWritesWaitIsBoundedAndGivesItsPlaceBack(t *testing.T) {
	s := openTemp(t, pgURL(t))
	s.writerWait = 500 * time.Millisecond
	ctx := t.Context()
	started, release := make(chan struct{}), make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		slow <- s.InTx(ctx, func(tx pando.Store) error {
			close(started)
			<-release
			return tx.CreateOrg(ctx, pando.Org{GUID: "org-slow", Name: "slow"})
		})
	}()
	<-started

	// More waiters than the writer pool has connections: some wait for
	// a connection, the others for the lock.
	const n = 3 * pgWriterConns
	var wg sync.WaitGroup
	errs, took := make([]error, n), make([]time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx := ctx
			if i%2 == 1 { // a client that goes away
				var cancel context.CancelFunc
				wctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
			}
			began := time.Now()
			errs[i] = s.CreateOrg(wctx, pando.Org{GUID: fmt.Sprintf("org-%d", i), Name: fmt.Sprintf("o-%d", i)})
			took[i] = time.Since(began)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("write %d whose client left: %v; want its context's error", i, err)
			}
		} else {
			wantUnavailable(t, fmt.Sprintf("write %d behind a slow writer", i), err, "The database is busy")
		}
		if took[i] > 5*time.Second {
			t.Errorf("write %d waited %s; want it bounded by writerWait (%s)", i, took[i], s.writerWait)
		}
	}

	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the slow writer: %v", err)
	}
	if err := s.CreateOrg(ctx, pando.Org{GUID: "org-after", Name: "after"}); err != nil {
		t.Fatalf("a write after the slow one: %v", err)
	}
	// A transaction whose context ended is rolled back by database/sql's
	// own goroutine, which gives its connection back just after InTx
	// returns: wait for that, within a bound.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st := s.wdb.Stats()
		if st.InUse == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writer connections still in use 10s after every write returned", st.InUse)
		}
	}
}

// A leader standbys may replace (HoldLeadership) that cannot take its
// claim again stops once the claim was last seen alive longer ago than
// its bound, before PostgreSQL would free it for a standby: it does not
// go on serving beside the new leader until PostgreSQL answers it again.
func TestPostgres_aLeaderCutOffFromItsClaimStopsWithinItsBound(t *testing.T) {
	k := pgtest.Own(t)
	ctx := t.Context()
	s := openTemp(t, k.URL(t))
	if err := s.ClaimDatabase(ctx, 0); err != nil {
		t.Fatal(err)
	}
	const giveUp = time.Second
	held := make(chan error, 1)
	go func() { held <- s.holdClaim(ctx, 20*time.Millisecond, giveUp) }()
	k.Stop(t)
	stopped := time.Now()
	select {
	case err := <-held:
		if err == nil || !strings.Contains(err.Error(), "stops before a standby takes over") {
			t.Fatalf("holdClaim: %v; want it to stop saying PostgreSQL cannot be reached", err)
		}
		if d := time.Since(stopped); d < giveUp/2 {
			t.Errorf("holdClaim stopped %s after PostgreSQL went; want it to wait about %s for the claim", d, giveUp)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("holdClaim still holds on a minute after PostgreSQL went away")
	}
}
