package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// pgServerLock is the advisory lock key ClaimDatabase holds.
const pgServerLock = pgWriterLock + 1

// claimPingTimeout bounds HoldClaim's check of its session: a network
// that drops packets fails it instead of hanging it.
const claimPingTimeout = 10 * time.Second

// errClaimTaken is another server holding the claim.
var errClaimTaken = errors.New("another Pando server is using this PostgreSQL database (one server per database): stop it, or give this one a database of its own")

// errClaimStale is the claim held by this Store's own previous session,
// which PostgreSQL has not seen end yet (the network failed while the
// session was idle: PostgreSQL learns of it from its keepalives or the
// client's close once packets flow again). tryClaim has ended it; the
// claim is free a moment later.
var errClaimStale = errors.New("the claim is still held by this server's previous session; it has been ended")

// pgSession names one PostgreSQL session: its backend's pid and start
// (a pid alone may be reused).
type pgSession struct {
	pid   int64
	start time.Time
}

// ClaimDatabase makes this Store the only one serving from its database
// until Close: on PostgreSQL it holds a session advisory lock on a
// connection of its own, and fails if another process (a second server on
// the same database) still holds it after wait (a server just killed
// holds it until PostgreSQL sees its connection close). On SQLite it does
// nothing: the data dir's server.lock covers the file.
//
// The claim lasts as long as its session: PostgreSQL probes it with TCP
// keepalives, so the claim of a server whose machine died goes within
// about a minute. A restart of PostgreSQL ends it too: HoldClaim takes it
// again.
func (s *Store) ClaimDatabase(ctx context.Context, wait time.Duration) error {
	if _, ok := s.d.(pgDialect); !ok || s.inTx {
		return nil
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if s.claim != nil {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		conn, err := s.tryClaim(ctx)
		if err != nil && !errors.Is(err, errClaimTaken) && !errors.Is(err, errClaimStale) {
			return fmt.Errorf("claim the database: %w", err)
		}
		if conn != nil {
			s.claim = conn
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("claim the database: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tryClaim takes the claim's lock on a connection of its own, or returns
// errClaimTaken.
func (s *Store) tryClaim(ctx context.Context) (*sql.Conn, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Unix sockets have no keepalives; PostgreSQL ignores these there.
	if _, err := conn.ExecContext(ctx, "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"); err != nil {
		conn.Close()
		return nil, err
	}
	var got bool
	var me pgSession
	var start sql.NullTime // NULL where pg_stat_activity is restricted
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1), pg_backend_pid(),
    (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`, pgServerLock).Scan(&got, &me.pid, &start); err != nil {
		conn.Close()
		return nil, err
	}
	if !got {
		err := s.endStaleClaim(ctx, conn)
		conn.Close()
		return nil, err
	}
	if me.start = start.Time; !start.Valid {
		me = pgSession{}
	}
	s.claimSession = me
	return conn, nil
}

// endStaleClaim is tryClaim finding the claim taken: it returns
// errClaimTaken, unless the holder is this Store's own previous claim
// session, which it ends (errClaimStale). s.claimMu is held.
func (s *Store) endStaleClaim(ctx context.Context, conn *sql.Conn) error {
	if s.claimSession.pid == 0 {
		return errClaimTaken
	}
	var holder pgSession
	var start sql.NullTime
	err := conn.QueryRowContext(ctx, `SELECT l.pid, a.backend_start FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((l.classid::bigint << 32) | l.objid::bigint) = $1`,
		pgServerLock).Scan(&holder.pid, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return errClaimStale // let go meanwhile: the next try takes it
	}
	if err != nil {
		return fmt.Errorf("find who holds the claim: %w", err)
	}
	if holder.start = start.Time; !start.Valid || holder.pid != s.claimSession.pid || !holder.start.Equal(s.claimSession.start) {
		return errClaimTaken
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_terminate_backend($1)", holder.pid); err != nil {
		return fmt.Errorf("end this server's previous claim session: %w", err)
	}
	return errClaimStale
}

// HoldClaim keeps ClaimDatabase's claim until ctx ends, checking every
// interval that its session lives. A PostgreSQL restart or a network
// failure ends the session and the claim with it: HoldClaim takes the
// claim again as soon as PostgreSQL answers, and returns an error (the
// server must stop) if another server took it meanwhile. It returns nil
// when ctx ends, at once on SQLite or without a claim.
func (s *Store) HoldClaim(ctx context.Context, every time.Duration) error {
	return s.holdClaim(ctx, every, 0)
}

// claimGiveUp is how long after its claim was last seen alive a leader
// that standbys may replace stops (HoldLeadership): PostgreSQL frees the
// claim of a session on a dead network about a minute after its last
// packet (tcp_keepalives_*: 30 s idle, then 3 probes 10 s apart), and a
// standby takes it within a second of that.
const claimGiveUp = 30 * time.Second

// HoldLeadership is HoldClaim for a server that standbys may replace
// (`pando api`): a claim whose session is gone and that it cannot take
// again within 30 s of its last sign of life ends it with an error, as
// another server taking it does. A leader cut off from PostgreSQL (while a
// standby reaches it) thus stops before PostgreSQL frees the claim for the
// standby, instead of serving its cells and clients beside the new leader
// until it reaches PostgreSQL again.
func (s *Store) HoldLeadership(ctx context.Context, every time.Duration) error {
	return s.holdClaim(ctx, every, claimGiveUp)
}

// holdClaim is HoldClaim; giveUp > 0 is HoldLeadership's bound.
func (s *Store) holdClaim(ctx context.Context, every, giveUp time.Duration) error {
	s.claimMu.Lock()
	held := s.claim != nil
	s.claimAlive = time.Now()
	s.claimMu.Unlock()
	if !held {
		return nil
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := s.checkClaim(ctx, giveUp); err != nil {
			return err
		}
	}
}

// checkClaim pings the claim's session; if it is gone, it tries once to
// take the claim again, and with giveUp > 0 fails once the claim was last
// seen alive longer ago than that.
func (s *Store) checkClaim(ctx context.Context, giveUp time.Duration) error {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if s.closed {
		return nil
	}
	if s.claim != nil {
		pctx, cancel := context.WithTimeout(ctx, cmp.Or(s.claimPing, claimPingTimeout))
		err := s.claim.PingContext(pctx)
		cancel()
		if err == nil {
			s.claimAlive = time.Now()
		}
		if err == nil || ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("lost the claim on the PostgreSQL database (its session ended: PostgreSQL restarted or is unreachable); taking it again when PostgreSQL answers", "err", err)
		s.claim.Close()
		s.claim = nil
	}
	conn, err := s.tryClaim(ctx)
	switch {
	case errors.Is(err, errClaimStale):
		s.logger.Info("PostgreSQL still held this server's claim in its previous session: ended it; taking the claim again")
		return nil
	case errors.Is(err, errClaimTaken):
		return errors.New("another Pando server took this PostgreSQL database while this one's session was gone (PostgreSQL restarted, the network failed, or an operator ended it): this one stops (one server per database)")
	case err != nil:
		if ctx.Err() != nil {
			return nil
		}
		if lost := time.Since(s.claimAlive); giveUp > 0 && lost > giveUp {
			return fmt.Errorf("the claim on the PostgreSQL database was lost %s ago and PostgreSQL still cannot be reached: this one stops before a standby takes over (a supervisor restarting it makes it a standby): %w", lost.Round(time.Second), err)
		}
		s.logger.Debug("PostgreSQL still unreachable: the claim waits", "err", err)
		return nil
	}
	s.claim = conn
	s.claimAlive = time.Now()
	s.logger.Info("took the claim on the PostgreSQL database again")
	return nil
}

// releaseClaim gives ClaimDatabase's lock back at once (the end of the
// session would too, but a moment after the connection closes).
// s.claimMu is held.
func (s *Store) releaseClaim() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.claim.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", pgServerLock)
	cerr := s.claim.Close()
	if errors.Is(err, sql.ErrConnDone) {
		// database/sql closed the connection when it broke: its session,
		// and the lock with it, is gone already.
		return nil
	}
	if err != nil {
		err = fmt.Errorf("release the database claim: %w", err)
	}
	return errors.Join(err, cerr)
}

// AwaitClaim is ClaimDatabase for a standby server: it waits until ctx
// ends, trying every interval, for as long as another server holds the
// claim. waiting runs after each try that found the claim taken, with the
// holder's name (its StateClaimHolder row, "" if unknown) and whether it
// changed since the last (true the first time); its error ends the wait.
// Once it has the claim it migrates the schema of a Store OpenStandby
// opened (the migration lock still orders it with any other migrating
// process) and records holder as the holder's name. A Store OpenStandby
// opened stops waiting with an error once the schema is newer than this
// binary's (a newer leader migrated it): it could not serve it. On SQLite
// it does nothing.
func (s *Store) AwaitClaim(ctx context.Context, holder string, every time.Duration, waiting func(holder string, changed bool) error) error {
	if _, ok := s.d.(pgDialect); !ok || s.inTx {
		return nil
	}
	shown, waited, lastErr := "", false, ""
	for {
		got, err := s.tryClaimOnce(ctx)
		if got {
			if err := s.migrateClaimed(ctx); err != nil {
				return fmt.Errorf("claim the database: %w", err)
			}
			if err := s.PutServerState(ctx, StateClaimHolder, holder); err != nil {
				return fmt.Errorf("claim the database: %w", err)
			}
			return nil
		}
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("claim the database: %w", ctx.Err())
		case err == nil || errors.Is(err, errClaimTaken) || errors.Is(err, errClaimStale):
			if err := s.refuseNewerWhileWaiting(ctx); err != nil {
				return err
			}
			name, _, herr := s.ServerState(ctx, StateClaimHolder)
			if herr != nil {
				name = ""
			}
			changed := !waited || name != shown
			waited, shown = true, name
			if err := waiting(name, changed); err != nil {
				return err
			}
		case err.Error() != lastErr:
			// PostgreSQL unreachable: the wait goes on, said once per reason.
			s.logger.Warn("cannot try to claim the database (retrying)", "err", err)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("claim the database: %w", ctx.Err())
		case <-time.After(every):
		}
	}
}

// tryClaimOnce tries once to take the claim: got is true when this Store
// holds it now.
func (s *Store) tryClaimOnce(ctx context.Context) (got bool, err error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if s.closed {
		return false, errors.New("the database is closed")
	}
	if s.claim != nil {
		return true, nil
	}
	conn, err := s.tryClaim(ctx)
	if err != nil {
		return false, err
	}
	s.claim = conn
	return true, nil
}

// migrateClaimed brings the schema of a Store OpenStandby opened up to
// date, now that it holds the claim: no older leader serves from it.
func (s *Store) migrateClaimed(ctx context.Context) error {
	if !s.unmigrated.Load() {
		return nil
	}
	if err := migrate(ctx, s.wdb, s.d, migrationFiles, s.logger); err != nil {
		return err
	}
	s.unmigrated.Store(false)
	return nil
}

// refuseNewerWhileWaiting fails when a Store OpenStandby opened finds the
// schema newer than this binary's while it waits. A failed read
// (PostgreSQL away a moment) is no answer: the wait goes on.
func (s *Store) refuseNewerWhileWaiting(ctx context.Context) error {
	if !s.unmigrated.Load() {
		return nil
	}
	err := refuseNewerSchema(ctx, s.wdb, s.d, migrationFiles, s.logger)
	if !errors.As(err, new(*schemaNewerError)) {
		return nil
	}
	return fmt.Errorf("this standby cannot take over: the leader migrated the database past this binary: %w", err)
}
