package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Names of server_state rows.
const (
	// StateClaimHolder names the server holding the claim (its host and
	// addresses), written by AwaitClaim; standbys show it.
	StateClaimHolder = "claim_holder"
	// StateSecretsFingerprint is the fingerprint of the data-dir secrets
	// the servers of this database share.
	StateSecretsFingerprint = "secrets_fingerprint"
	// StateKnownCells lists the joined cells the leader knew, for the
	// next leader to wait for.
	StateKnownCells = "known_cells"
)

// ServerState returns the value of the server_state row name; ok is false
// when there is none, or (OpenStandby, before AwaitClaim migrated) when
// the database is too old to have server_state.
func (s *Store) ServerState(ctx context.Context, name string) (value string, ok bool, err error) {
	err = s.queryRow(ctx, "SELECT value FROM server_state WHERE name = ?", name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) || (s.unmigrated.Load() && pgUndefinedTable(err)) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read server state %s: %w", name, s.down(err))
	}
	return value, true, nil
}

// PutServerState creates or replaces the server_state row name.
func (s *Store) PutServerState(ctx context.Context, name, value string) error {
	_, err := s.exec(ctx, `INSERT INTO server_state (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("put server state %s: %w", name, err)
	}
	return nil
}

// IsPostgres says whether dsn names a PostgreSQL database, which several
// servers may share (one leading: AwaitClaim).
func IsPostgres(dsn string) bool {
	t, err := parseDSN(dsn)
	return err == nil && t.engine == enginePostgres
}
