// Package sqlstore is the CCDB: it implements pando.Store on database/sql.
// SQLite (modernc.org/sqlite, CGO-free) is the embedded default and
// PostgreSQL (pgx) the one for operators who outgrow a file; the SQL is
// kept portable and every engine difference (placeholders, constraint error
// decoding, how writers take turns, connection settings) lives in one
// dialect value, behind the same schema, migrations and conformance suite.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando"
)

// Store is a pando.Store backed by SQL. The zero value is not usable; call
// Open. A Store returned to an InTx callback is bound to that transaction.
type Store struct {
	d      dialect
	logger *slog.Logger

	// wdb is the writer pool (one connection for SQLite, so writers queue in
	// Go instead of failing with SQLITE_BUSY; on PostgreSQL writers queue on
	// an advisory lock, see pgDialect); rdb serves reads outside
	// transactions (WAL lets them run beside the writer), so a reader never
	// waits for a connection a writer holds. Both are nil in a
	// transaction-bound Store.
	wdb *sql.DB
	rdb *sql.DB

	w, r querier // where writes and reads go: the pools, or the transaction
	inTx bool

	// writerWait bounds a write's wait for its turn (see InTx).
	writerWait time.Duration

	// claim is the connection holding ClaimDatabase's lock, if any;
	// HoldClaim replaces it, and Close releases it and sets closed.
	claimMu sync.Mutex
	claim   *sql.Conn
	closed  bool
	// claimSession is the session that took the claim last; claimPing
	// bounds HoldClaim's check of it (0: claimPingTimeout).
	claimSession pgSession
	claimPing    time.Duration
	// claimAlive is when HoldLeadership last saw the claim's session
	// alive (claimMu).
	claimAlive time.Time

	// circuit fails requests at once while PostgreSQL cannot be reached
	// (nil on SQLite and in a transaction-bound Store).
	circuit *pgCircuit

	// unmigrated is a PostgreSQL Store OpenStandby opened: its schema
	// may be older than this binary's until AwaitClaim migrates it.
	unmigrated atomic.Bool
}

var _ pando.Store = (*Store)(nil)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const sqliteBusyTimeoutMS = 5000

// Open opens (creating if needed) the database named by dsn and brings its
// schema up to date. dsn is a SQLite file path, "sqlite://PATH",
// ":memory:", or a PostgreSQL URL ("postgres://USER:PASSWORD@HOST/DB"; the
// database must exist). A database whose schema is newer than this binary
// knows fails to open. No error carries a PostgreSQL password.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch target.engine {
	case enginePostgres:
		return openPostgres(ctx, target.url, logger, true)
	case engineSQLite:
		return openSQLite(ctx, target.path, logger)
	default:
		return nil, fmt.Errorf("open database: unsupported engine %q", target.engine)
	}
}

// OpenStandby is Open for a server that may wait as a standby (AwaitClaim)
// while another, perhaps of an older version, leads on the same database:
// on PostgreSQL it leaves the schema as it is, and AwaitClaim migrates it
// once this Store holds the claim, so the schema never moves under a live
// leader. Until then only ServerState and AwaitClaim may be used; a
// database without server_state yet (older than this binary) reads as
// having no rows. A schema newer than this binary's is refused, here and
// while AwaitClaim waits. On SQLite (one server per file) it is Open.
func OpenStandby(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if target.engine != enginePostgres {
		return Open(ctx, dsn, logger)
	}
	return openPostgres(ctx, target.url, logger, false)
}

const (
	engineSQLite   = "sqlite"
	enginePostgres = "postgres"
)

type dsnTarget struct {
	engine string
	path   string // SQLite file path or ":memory:"
	url    string // PostgreSQL URL
}

// parseDSN recognises the engine from dsn. It never echoes a PostgreSQL URL
// back in an error, since those carry passwords.
func parseDSN(dsn string) (dsnTarget, error) {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return dsnTarget{}, errors.New("open database: empty database DSN")
	}
	scheme, rest, hasScheme := strings.Cut(dsn, "://")
	if !hasScheme {
		return dsnTarget{engine: engineSQLite, path: dsn}, nil
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return dsnTarget{engine: enginePostgres, url: dsn}, nil
	case "sqlite", "sqlite3":
		if rest == "" {
			return dsnTarget{}, errors.New("open database: sqlite:// DSN has no file path")
		}
		return dsnTarget{engine: engineSQLite, path: rest}, nil
	default:
		return dsnTarget{}, fmt.Errorf("open database: unsupported database URL scheme %q (want a SQLite path, sqlite:// or postgres://)", scheme)
	}
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	memory := path == ":memory:"
	var uri string
	if memory {
		uri = "file::memory:"
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		if err := prepareSQLiteFile(abs); err != nil {
			return nil, fmt.Errorf("open database %s: %w", abs, err)
		}
		path = abs
		// A file: URI with an escaped path copes with '?' and '#' in
		// directory names; SQLite decodes it.
		uri = "file:" + (&url.URL{Path: abs}).EscapedPath()
	}

	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", sqliteBusyTimeoutMS)
	wdb, err := sql.Open("sqlite", uri+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One writer connection: SQLite admits one writer at a time anyway, and
	// queueing in database/sql beats spinning on SQLITE_BUSY.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	d := sqliteDialect{}
	if err := migrate(ctx, wdb, d, migrationFiles, logger); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	rdb := wdb
	if !memory {
		rdb, err = sql.Open("sqlite", uri+"?"+common+"&_pragma=query_only(1)")
		if err != nil {
			wdb.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		rdb.SetMaxOpenConns(4)
		rdb.SetMaxIdleConns(4)
		if err := rdb.PingContext(ctx); err != nil {
			wdb.Close()
			rdb.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	logger.Debug("database opened", "engine", engineSQLite, "path", path)
	return &Store{d: d, logger: logger, wdb: wdb, rdb: rdb, w: wdb, r: rdb, writerWait: writerWait}, nil
}

// prepareSQLiteFile creates the parent directory and an empty 0600 database
// file, so the CCDB (password hashes, registry credentials) is not world
// readable; SQLite gives its -wal and -shm files the same mode.
func prepareSQLiteFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Close closes the database. On a transaction-bound Store it does nothing:
// the transaction ends when the InTx callback returns.
func (s *Store) Close() error {
	if s.inTx {
		return nil
	}
	var err error
	s.claimMu.Lock()
	if s.claim != nil {
		err = s.releaseClaim()
		s.claim = nil
	}
	s.closed = true
	s.claimMu.Unlock()
	err = errors.Join(err, s.wdb.Close())
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	s.circuit.close()
	return err
}

// writerWait is how long a write waits for its turn (a writer connection,
// then the writer lock) before it fails with EUnavailable: one slow or
// stuck writer does not hold every other request forever.
const writerWait = 30 * time.Second

// InTx runs fn in one transaction, committing if it returns nil and rolling
// back otherwise (or if it panics). fn must use the Store it is given: on
// SQLite the outer Store's writer is held by the transaction, so writing
// through it from fn would wait forever (on PostgreSQL, for the writer
// lock the transaction holds). Inside fn, InTx just calls its callback on
// the same transaction.
//
// Transactions are serial as on SQLite: on PostgreSQL each runs at READ
// COMMITTED after taking the writer lock (see pgDialect), so none is ever
// aborted for a serialization failure and fn is never retried. A
// transaction waits for its turn until ctx ends or writerWait passes,
// whichever is first: then it fails with EUnavailable, "busy".
func (s *Store) InTx(ctx context.Context, fn func(pando.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	if err := s.circuit.check(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, s.writerWait)
	conn, err := s.wdb.Conn(wctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return s.busy()
		}
		return fmt.Errorf("begin transaction: %w", s.down(err))
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, s.d.txOptions())
	if err != nil {
		return fmt.Errorf("begin transaction: %w", s.down(err))
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if lock := s.d.lockWrites(max(s.writerWait-time.Since(start), time.Millisecond)); lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			if s.d.lockTimedOut(err) {
				return s.busy()
			}
			return fmt.Errorf("wait for the writer lock: %w", s.down(err))
		}
	}
	if err := fn(&Store{d: s.d, logger: s.logger, w: tx, r: tx, inTx: true}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", s.down(err))
	}
	return nil
}

// busy is a write that waited writerWait for its turn.
func (s *Store) busy() error {
	s.logger.Warn("a write waited too long for its turn: a slow or stuck writer holds the database", "waited", s.writerWait)
	return pando.Errorf(pando.EUnavailable, "The database is busy (a write waited %s for its turn); try again in a moment", s.writerWait)
}

// exec runs a write. Outside a transaction on an engine whose writers take
// a lock (PostgreSQL), it runs in a transaction of its own that takes it.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s.d.refusesText(args) {
		return nil, errBadText
	}
	if !s.inTx && s.d.lockWrites(0) != "" {
		var res sql.Result
		err := s.InTx(ctx, func(tx pando.Store) error {
			var err error
			res, err = tx.(*Store).exec(ctx, q, args...)
			return err
		})
		return res, err
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(q), args...)
	if err != nil && s.d.badText(err) {
		return nil, errBadText
	}
	return res, s.down(err)
}

// down turns an error saying the database cannot be reached into
// EUnavailable (the connector already did, for a connection it could not
// make); it returns any other error as it is.
func (s *Store) down(err error) error {
	if err == nil || pando.ErrorKindOf(err) == pando.EUnavailable || !s.d.unreachable(err) {
		return err
	}
	return errUnreachable(err)
}

// errBadText is PostgreSQL refusing a text value (SQLite stores any).
var errBadText = pando.Errorf(pando.EInvalid, "text with a NUL character or invalid UTF-8 cannot be stored")

// Every read goes through query or queryRow, and every error either
// returns passes through down: whatever the read (a lookup, a list, inside
// a transaction or not), a database that cannot be reached is EUnavailable.

func (s *Store) query(ctx context.Context, q string, args ...any) (*rows, error) {
	if s.d.refusesText(args) {
		return nil, errBadText
	}
	if err := s.circuit.check(); err != nil {
		return nil, err
	}
	rs, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.down(err)
	}
	return &rows{Rows: rs, s: s}, nil
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) row {
	if err := s.circuit.check(); err != nil {
		return row{err: err, s: s}
	}
	return row{r: s.r.QueryRowContext(ctx, s.d.rebind(q), args...), s: s}
}

// row is a single-row result: the query's error comes with Scan.
type row struct {
	r   *sql.Row
	err error // the query was not sent
	s   *Store
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.s.down(r.r.Scan(dest...))
}

// rows is a multi-row result: a connection lost mid-read shows in Err.
type rows struct {
	*sql.Rows
	s *Store
}

func (r *rows) Scan(dest ...any) error { return r.s.down(r.Rows.Scan(dest...)) }

func (r *rows) Err() error { return r.s.down(r.Rows.Err()) }
