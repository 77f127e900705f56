package sqlstore

import (
	"context"
	"testing"
	"time"
)

// A standby waits for the claim as long as the leader holds it, names
// the leader while it waits, and takes the claim (recording itself as
// the holder) once the leader's session ends.
func TestPostgres_awaitClaimWaitsForTheLeaderThenTakesOver(t *testing.T) {
	dsn := pgURL(t)
	ctx := t.Context()
	leader, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if err := leader.AwaitClaim(ctx, "leader-host 10.0.0.1", 20*time.Millisecond, func(string, bool) error { t.Error("the first server waited"); return nil }); err != nil {
		t.Fatalf("leader: %v", err)
	}
	standby := openTemp(t, dsn)
	holders := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- standby.AwaitClaim(ctx, "standby-host 10.0.0.2", 20*time.Millisecond, func(h string, changed bool) error {
			if changed {
				holders <- h
			}
			return nil
		})
	}()
	select {
	case h := <-holders:
		if h != "leader-host 10.0.0.1" {
			t.Errorf("the standby waits for %q, want the leader's name", h)
		}
	case err := <-done:
		t.Fatalf("AwaitClaim returned while the leader holds the claim: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the standby did not say it waits within 20s")
	}
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("standby: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the standby did not take the claim within 20s of the leader's end")
	}
	if h, ok, err := standby.ServerState(ctx, StateClaimHolder); err != nil || !ok || h != "standby-host 10.0.0.2" {
		t.Errorf("holder after takeover: %q %v %v", h, ok, err)
	}
	// The new leader is alone: another waits in turn.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := openTemp(t, dsn).AwaitClaim(wctx, "third", 20*time.Millisecond, func(string, bool) error { return nil }); err == nil {
		t.Error("a third server claimed the database the standby holds")
	}
}

// On SQLite the data dir's lock is the claim: AwaitClaim does nothing.
func TestSQLite_awaitClaimDoesNothing(t *testing.T) {
	path := t.TempDir() + "/ccdb.sqlite"
	for range 2 {
		if err := openTemp(t, path).AwaitClaim(t.Context(), "h", time.Millisecond, func(string, bool) error { t.Error("waited on SQLite"); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// Server state rows are created, replaced and read on both engines.
func TestStore_serverStateRoundTrips(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{
		"sqlite":   func(t *testing.T) string { return t.TempDir() + "/ccdb.sqlite" },
		"postgres": pgURL,
	} {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t, dsn(t))
			ctx := t.Context()
			if _, ok, err := s.ServerState(ctx, StateKnownCells); err != nil || ok {
				t.Fatalf("unset row: ok=%v err=%v", ok, err)
			}
			for _, v := range []string{"a\nb", "c"} {
				if err := s.PutServerState(ctx, StateKnownCells, v); err != nil {
					t.Fatal(err)
				}
				if got, ok, err := s.ServerState(ctx, StateKnownCells); err != nil || !ok || got != v {
					t.Fatalf("read back %q, %v, %v; want %q", got, ok, err, v)
				}
			}
		})
	}
}
