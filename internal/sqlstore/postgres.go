package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgDialect is PostgreSQL through pgx's database/sql driver.
//
// Writers take turns, as on SQLite: every write transaction (InTx, and each
// write statement outside one) first takes one transaction-scoped advisory
// lock, pgWriterLock, and runs at READ COMMITTED. So a transaction's reads
// see every write committed before it took the lock and nothing can change
// under it but its own writes; seq (MAX+1 in the INSERT) follows commit
// order, which keeps creationOrder and the app usage events' after_guid
// cursor exact; and, one lock being the only one writers wait for first,
// PostgreSQL never has to abort one of them for a serialization failure or
// a deadlock among Pando's own transactions. Reads outside transactions take
// no lock and run beside the writer.
type pgDialect struct{}

// pgWriterLock is the advisory lock key of the writer turn ("pando" in
// ASCII). Migrations take it too, so two servers starting on one database
// never both migrate.
const pgWriterLock int64 = 0x70616e646f

// pgServerLock is the advisory lock key ClaimDatabase holds.
const pgServerLock = pgWriterLock + 1

// ClaimDatabase makes this Store the only one serving from its database
// until Close: on PostgreSQL it holds a session advisory lock on a
// connection of its own, and fails if another process (a second server on
// the same database) still holds it after wait (a server just killed
// holds it until PostgreSQL sees its connection close). On SQLite it does
// nothing: the data dir's server.lock covers the file.
//
// The claim lasts as long as its connection: PostgreSQL probes it with
// TCP keepalives, so the claim of a server whose machine died goes within
// about a minute.
func (s *Store) ClaimDatabase(ctx context.Context, wait time.Duration) error {
	if _, ok := s.d.(pgDialect); !ok || s.inTx || s.claim != nil {
		return nil
	}
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("claim the database: %w", err)
	}
	// Unix sockets have no keepalives; PostgreSQL ignores these there.
	if _, err := conn.ExecContext(ctx, "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"); err != nil {
		conn.Close()
		return fmt.Errorf("claim the database: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", pgServerLock).Scan(&got); err != nil {
			conn.Close()
			return fmt.Errorf("claim the database: %w", err)
		}
		if got {
			s.claim = conn
			return nil
		}
		if time.Now().After(deadline) {
			conn.Close()
			return errors.New("another Pando server is using this PostgreSQL database (one server per database): stop it, or give this one a database of its own")
		}
		select {
		case <-ctx.Done():
			conn.Close()
			return fmt.Errorf("claim the database: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// releaseClaim gives ClaimDatabase's lock back at once (the end of the
// session would too, but a moment after the connection closes).
func (s *Store) releaseClaim() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.claim.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", pgServerLock)
	if err != nil {
		err = fmt.Errorf("release the database claim: %w", err)
	}
	return errors.Join(err, s.claim.Close())
}

func (pgDialect) rebind(q string) string { return rebindDollar(q) }

func (pgDialect) lockWrites() string {
	return "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(pgWriterLock, 10) + ")"
}

func (pgDialect) txOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
}

func (pgDialect) bytewise(col string) string { return col + ` COLLATE "C"` }

func (pgDialect) constraint(err error) (violation, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return violation{}, false
	}
	switch pe.Code {
	case "23505": // unique_violation
		return violation{columns: pgUniqueColumns(pe)}, true
	case "23503": // foreign_key_violation
		return violation{foreignKey: true}, true
	}
	return violation{}, false
}

// badText is 22021 (a NUL byte or invalid UTF-8 in a text argument) and
// 22P05 (a character the database encoding cannot hold).
func (pgDialect) badText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05")
}

// pgUniqueColumns names the columns of a unique violation from its detail,
// "Key (space_guid, name)=(s-1, web) already exists.", or else from its
// constraint: every table's primary key "<table>_pkey" is its guid, but
// domain_shares'.
func pgUniqueColumns(pe *pgconn.PgError) []string {
	if rest, ok := strings.CutPrefix(pe.Detail, "Key ("); ok {
		if list, _, ok := strings.Cut(rest, ")="); ok {
			var cols []string
			for _, c := range strings.Split(list, ",") {
				if c = strings.Trim(strings.TrimSpace(c), `"`); c != "" {
					cols = append(cols, c)
				}
			}
			return cols
		}
	}
	if pe.ConstraintName == pe.TableName+"_pkey" && pe.TableName != "domain_shares" {
		return []string{"guid"}
	}
	return nil
}

const (
	pgConnectTimeout = 10 * time.Second
	// Writers wait their turn in PostgreSQL, not in Go; ClaimDatabase
	// keeps one more.
	pgWriterConns = 5
	pgReaderConns = 8
)

// openPostgres opens the database a postgres:// URL names. No error it
// returns carries the URL's password.
func openPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", pgParseError(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pando"
	}
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	fail := func(err error) error {
		return fmt.Errorf("open database: %w", redactPassword(err, cfg.Password))
	}

	wdb := stdlib.OpenDB(*cfg)
	wdb.SetMaxOpenConns(pgWriterConns)
	wdb.SetMaxIdleConns(pgWriterConns)
	wdb.SetConnMaxIdleTime(5 * time.Minute)
	wdb.SetConnMaxLifetime(time.Hour)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fail(pgConnectError(where, cfg, err))
	}
	d := pgDialect{}
	if err := migrate(ctx, wdb, d, migrationFiles, logger); err != nil {
		wdb.Close()
		return nil, fail(fmt.Errorf("PostgreSQL at %s: %w", where, err))
	}
	rdb := stdlib.OpenDB(*cfg)
	rdb.SetMaxOpenConns(pgReaderConns)
	rdb.SetMaxIdleConns(pgReaderConns)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	rdb.SetConnMaxLifetime(time.Hour)
	logger.Debug("database opened", "engine", enginePostgres, "address", where, "database", cfg.Database)
	return &Store{d: d, logger: logger, wdb: wdb, rdb: rdb, w: wdb, r: rdb}, nil
}

// pgParseError explains a URL pgx cannot parse without quoting it: pgx's
// own text masks the password only on a best-effort basis.
func pgParseError(err error) error {
	const form = "the form is postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require"
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot parse the PostgreSQL URL: %v (%s)", ue.Err, form)
	}
	return fmt.Errorf("cannot parse the PostgreSQL URL (%s)", form)
}

// pgConnectError says why the first connection failed: the server could
// not be reached, refused the login, or has no such database.
func pgConnectError(where string, cfg *pgx.ConnConfig, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return fmt.Errorf("PostgreSQL at %s refused the login of user %q: %s", where, cfg.User, pe.Message)
		case "3D000": // invalid_catalog_name
			return fmt.Errorf("PostgreSQL at %s has no database %q: create it first (docs/operating.md, PostgreSQL)", where, cfg.Database)
		}
		return fmt.Errorf("PostgreSQL at %s: %w", where, err)
	}
	// pgconn.ConnectError leads with the user and database, then the
	// address again; what went wrong there is the useful part.
	var oe *net.OpError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &oe) && oe.Err != nil:
		err = oe.Err
	case errors.As(err, &ce) && errors.Unwrap(ce) != nil:
		err = errors.Unwrap(ce)
	}
	return fmt.Errorf("cannot reach PostgreSQL at %s: %w", where, err)
}

// redactPassword masks password wherever err's text holds it. It keeps
// err (and what errors.Is sees in it) when the text is clean.
func redactPassword(err error, password string) error {
	if err == nil || password == "" {
		return err
	}
	msg := err.Error()
	masked := msg
	for _, p := range []string{password, url.QueryEscape(password), url.PathEscape(password)} {
		masked = strings.ReplaceAll(masked, p, "xxxxx")
	}
	if masked == msg {
		return err
	}
	return errors.New(masked)
}
