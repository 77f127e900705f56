package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pandoplatform/pando"
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

func (pgDialect) engine() string { return enginePostgres }

func (pgDialect) rebind(q string) string { return rebindDollar(q) }

func (pgDialect) lockWrites(wait time.Duration) string {
	return "SET LOCAL lock_timeout = " + strconv.FormatInt(wait.Milliseconds(), 10) +
		"; SELECT pg_advisory_xact_lock(" + strconv.FormatInt(pgWriterLock, 10) + ")"
}

// lockTimedOut is 55P03 lock_not_available: lock_timeout passed.
func (pgDialect) lockTimedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
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

func (pgDialect) refusesText(args []any) bool {
	for _, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case sql.NullString:
			s = v.String
		default:
			continue
		}
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			return true
		}
	}
	return false
}

// unreachable is a connection that could not be made or broke: a network
// error, the server shutting down, starting up or out of connections
// (57P01-57P03, 53300), a connection exception (class 08).
func (pgDialect) unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, sql.ErrConnDone)
}

// errUnreachable is what a caller sees while PostgreSQL cannot be reached:
// the API's 503 CF-ServiceUnavailable, saying to try again. err (for the
// log) stays in the chain.
func errUnreachable(err error) error {
	return &pando.Error{Kind: pando.EUnavailable, Message: "The database cannot be reached; try again in a moment", Err: err}
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
func openPostgres(ctx context.Context, dsn string, logger *slog.Logger, migrateNow bool) (*Store, error) {
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
	cfg.DialFunc = pgDial
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	inner := stdlib.GetConnector(*cfg)
	circuit := newPGCircuit(inner.Connect, logger)
	connector := pgConnector{Connector: inner, circuit: circuit}
	fail := func(err error) error {
		circuit.close()
		return fmt.Errorf("open database: %w", redactPassword(err, cfg.Password))
	}

	wdb := sql.OpenDB(connector)
	wdb.SetMaxOpenConns(pgWriterConns)
	wdb.SetMaxIdleConns(pgWriterConns)
	wdb.SetConnMaxIdleTime(5 * time.Minute)
	wdb.SetConnMaxLifetime(time.Hour)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fail(pgConnectError(where, cfg, err))
	}
	d := pgDialect{}
	check := migrate
	if !migrateNow {
		check = refuseNewerSchema
	}
	if err := check(ctx, wdb, d, migrationFiles, logger); err != nil {
		wdb.Close()
		return nil, fail(fmt.Errorf("PostgreSQL at %s: %w", where, err))
	}
	rdb := sql.OpenDB(connector)
	rdb.SetMaxOpenConns(pgReaderConns)
	rdb.SetMaxIdleConns(pgReaderConns)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	rdb.SetConnMaxLifetime(time.Hour)
	logger.Debug("database opened", "engine", enginePostgres, "address", where, "database", cfg.Database, "migrated", migrateNow)
	s := &Store{d: d, logger: logger, wdb: wdb, rdb: rdb, w: wdb, r: rdb, writerWait: writerWait, circuit: circuit}
	s.unmigrated.Store(!migrateNow)
	return s, nil
}

// pgUndefinedTable is 42P01 undefined_table: a table a newer migration
// creates, read on a database not migrated yet (OpenStandby).
func pgUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
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
