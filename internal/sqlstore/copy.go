package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// CopyOptions are CopyToPostgres's options.
type CopyOptions struct {
	// DryRun checks the source and the target and reports what would be
	// copied, changing neither.
	DryRun bool
	// Progress is told of each step ("orgs: 3 rows copied"); nil: silent.
	Progress func(msg string)
	Logger   *slog.Logger
}

// TableCount is the rows one table holds.
type TableCount struct {
	Table string
	Rows  int64
}

// CopyToPostgres copies the CCDB in the SQLite file sqlitePath into the
// empty PostgreSQL database pgURL: it migrates the target to this binary's
// schema version, then copies every table, parents before children, every
// row and column as stored, in one transaction that checks each table's row
// count before it commits. The source must be at this binary's schema
// version (start the server on it once to migrate it) and is only read; a
// target with rows in any table, or served by a Pando server, is refused.
// It returns the tables in the order copied with their row counts. No
// error carries the URL's password.
func CopyToPostgres(ctx context.Context, sqlitePath, pgURL string, opts CopyOptions) ([]TableCount, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	say := opts.Progress
	if say == nil {
		say = func(string) {}
	}
	src, err := openSQLiteSource(ctx, sqlitePath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	latest := ms[len(ms)-1].version
	// One read transaction: a consistent view of the whole file.
	stx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sqlitePath, err)
	}
	defer stx.Rollback()
	v, err := schemaVersion(ctx, stx, sqliteDialect{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sqlitePath, err)
	}
	if v != latest {
		return nil, fmt.Errorf("the CCDB %s is at schema version %d and this pando binary's is %d: start this version's server on it once (it migrates the file), stop it, then copy", sqlitePath, v, latest)
	}
	tables, err := sqliteTables(ctx, stx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sqlitePath, err)
	}
	counts := make([]TableCount, len(tables))
	for i, t := range tables {
		counts[i].Table = t.name
		if err := stx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(t.name)).Scan(&counts[i].Rows); err != nil {
			return nil, fmt.Errorf("count %s rows: %w", t.name, err)
		}
	}

	cfg, err := pgx.ParseConfig(pgURL)
	if err != nil {
		return nil, fmt.Errorf("target database: %w", pgParseError(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pando copy-data"
	}
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	redact := func(err error) error { return redactPassword(err, cfg.Password) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, redact(pgConnectError(where, cfg, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// No server may start on the target while it is filled: hold the
	// claim a server holds (ClaimDatabase).
	var claimed bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", pgServerLock).Scan(&claimed); err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: claim the database: %w", where, err))
	}
	if !claimed {
		return nil, fmt.Errorf("PostgreSQL at %s: a Pando server is using database %q: stop it (the target must be an empty database no server uses)", where, cfg.Database)
	}
	// Given back before the session ends: PostgreSQL frees a closed
	// session's locks only once its backend has gone, after Close
	// returns, so a copy run again at once would find it still held.
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", pgServerLock)
	}()
	tv, err := pgSchemaVersion(ctx, conn)
	if err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: %w", where, err))
	}
	if tv > latest {
		return nil, fmt.Errorf("PostgreSQL at %s: database %q is at schema version %d, newer than this pando binary's %d", where, cfg.Database, tv, latest)
	}
	if err := pgRefuseRows(ctx, conn, cfg.Database); err != nil {
		return nil, redact(err)
	}
	if opts.DryRun {
		for _, c := range counts {
			say(fmt.Sprintf("would copy %s: %d rows", c.Table, c.Rows))
		}
		say(fmt.Sprintf("would migrate database %q at %s to schema version %d (it is at %d) and copy %d tables into it", cfg.Database, where, latest, tv, len(counts)))
		return counts, nil
	}

	db := stdlib.OpenDB(*cfg)
	err = migrate(ctx, db, pgDialect{}, migrationFiles, opts.Logger)
	db.Close()
	if err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: %w", where, err))
	}
	say(fmt.Sprintf("database %q at %s migrated to schema version %d", cfg.Database, where, latest))

	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: begin: %w", where, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, pgDialect{}.lockWrites(0)); err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: wait for the writer lock: %w", where, err))
	}
	if err := pgRefuseRows(ctx, tx, cfg.Database); err != nil {
		return nil, redact(err)
	}
	for i, t := range tables {
		n, err := copyTable(ctx, stx, tx, t)
		if err != nil {
			return nil, redact(fmt.Errorf("copy table %s: %w", t.name, err))
		}
		if n != counts[i].Rows {
			return nil, fmt.Errorf("copy table %s: read %d rows, counted %d", t.name, n, counts[i].Rows)
		}
		say(fmt.Sprintf("%s: %d rows copied", t.name, n))
	}
	for _, c := range counts {
		var got int64
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM "+quoteIdent(c.Table)).Scan(&got); err != nil {
			return nil, redact(fmt.Errorf("count %s rows in PostgreSQL: %w", c.Table, err))
		}
		if got != c.Rows {
			return nil, fmt.Errorf("table %s holds %d rows in PostgreSQL after the copy, %d in SQLite: nothing committed", c.Table, got, c.Rows)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, redact(fmt.Errorf("PostgreSQL at %s: commit: %w", where, err))
	}
	say(fmt.Sprintf("CCDB copied: %d tables, row counts checked", len(counts)))
	return counts, nil
}

// openSQLiteSource opens an existing SQLite CCDB for reading only: it
// neither creates nor migrates it.
func openSQLiteSource(ctx context.Context, path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CCDB at %s (is --data-dir right? a server on PostgreSQL has no SQLite file to copy)", abs)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a file", abs)
	}
	uri := "file:" + (&url.URL{Path: abs}).EscapedPath() +
		fmt.Sprintf("?mode=rw&_pragma=busy_timeout(%d)&_pragma=query_only(1)", sqliteBusyTimeoutMS)
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	return db, nil
}

// table is one table of the source and its columns, in storage order.
type table struct {
	name    string
	columns []string
	parents []string // the tables its foreign keys reference
}

// sqliteTables lists the CCDB's tables but schema_migrations (the target
// has its own), each after the tables it references.
func sqliteTables(ctx context.Context, q querier) ([]table, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name")
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	byName := map[string]*table{}
	for _, n := range names {
		t := &table{name: n}
		if t.columns, err = queryStrings(ctx, q, "SELECT name FROM pragma_table_info(?) ORDER BY cid", n); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", n, err)
		}
		if t.parents, err = queryStrings(ctx, q, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, n); err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", n, err)
		}
		byName[n] = t
	}
	return dependencyOrder(names, byName)
}

// dependencyOrder puts each table after its parents (names sorted within a
// level, so the order is the same every run).
func dependencyOrder(names []string, byName map[string]*table) ([]table, error) {
	var out []table
	done := map[string]bool{}
	for len(out) < len(names) {
		progressed := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, p := range byName[n].parents {
				if p != n && !done[p] {
					if _, ok := byName[p]; !ok {
						return nil, fmt.Errorf("table %s references %s, which does not exist", n, p)
					}
					ready = false
				}
			}
			if ready {
				out = append(out, *byName[n])
				done[n] = true
				progressed = true
			}
		}
		if !progressed {
			return nil, errors.New("the tables' foreign keys form a cycle")
		}
	}
	return out, nil
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// pgQuerier is what pgx's Conn and Tx have in common that the copy uses.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgSchemaVersion(ctx context.Context, q pgQuerier) (int64, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v *int64
	if err := q.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// pgRefuseRows fails when any table of the target's schema but
// schema_migrations holds a row.
func pgRefuseRows(ctx context.Context, q pgQuerier, database string) error {
	rows, err := q.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name")
	if err != nil {
		return fmt.Errorf("list the target's tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list the target's tables: %w", err)
	}
	for _, n := range names {
		var has bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+quoteIdent(n)+")").Scan(&has); err != nil {
			return fmt.Errorf("read the target's table %s: %w", n, err)
		}
		if has {
			return fmt.Errorf("the target database %q is not empty (table %s has rows): copy into a new, empty database (a server started on it fills it: drop and create it again)", database, n)
		}
	}
	return nil
}

// copyTable streams t's rows from the SQLite transaction into the
// PostgreSQL one with COPY, each value converted to the target column's
// type, and returns how many it copied.
func copyTable(ctx context.Context, src *sql.Tx, dst pgx.Tx, t table) (int64, error) {
	types, err := pgColumnTypes(ctx, dst, t.name)
	if err != nil {
		return 0, err
	}
	for _, c := range t.columns {
		if _, ok := types[c]; !ok {
			return 0, fmt.Errorf("column %s is not in the target's table: are both at the same schema version?", c)
		}
	}
	if len(types) != len(t.columns) {
		return 0, fmt.Errorf("the target's table has %d columns, the source's %d: are both at the same schema version?", len(types), len(t.columns))
	}
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = quoteIdent(c)
	}
	rows, err := src.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+quoteIdent(t.name)+" ORDER BY rowid")
	if err != nil {
		// A WITHOUT ROWID table has no rowid; none of the CCDB's is one.
		return 0, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var row int64
	next := func() ([]any, error) {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("read: %w", err)
			}
			return nil, nil
		}
		row++
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read row %d: %w", row, err)
		}
		out := make([]any, len(vals))
		for i, v := range vals {
			cv, err := convertValue(v, types[t.columns[i]])
			if err != nil {
				return nil, fmt.Errorf("row %d (%s), column %s: %w", row, rowKey(t.columns, vals), t.columns[i], err)
			}
			out[i] = cv
		}
		return out, nil
	}
	src1 := &rowSource{next: next}
	n, err := dst.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, src1)
	if src1.err != nil {
		return 0, src1.err
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// rowSource adapts next to pgx.CopyFromSource.
type rowSource struct {
	next func() ([]any, error)
	row  []any
	err  error
}

func (r *rowSource) Next() bool {
	if r.err != nil {
		return false
	}
	r.row, r.err = r.next()
	return r.err == nil && r.row != nil
}

func (r *rowSource) Values() ([]any, error) { return r.row, nil }
func (r *rowSource) Err() error             { return r.err }

// pgColumnTypes returns the data types of table's columns in the target.
func pgColumnTypes(ctx context.Context, q pgQuerier, table string) (map[string]string, error) {
	rows, err := q.Query(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", table)
	if err != nil {
		return nil, fmt.Errorf("read the target's columns: %w", err)
	}
	types := map[string]string{}
	var name, typ string
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error { types[name] = typ; return nil }); err != nil {
		return nil, fmt.Errorf("read the target's columns: %w", err)
	}
	if len(types) == 0 {
		return nil, errors.New("the target has no such table: are both at the same schema version?")
	}
	return types, nil
}

// convertValue turns a value SQLite returned into one for a PostgreSQL
// column of type pgType, refusing what PostgreSQL would change or refuse.
func convertValue(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		switch x := v.(type) {
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case bool:
			return x, nil
		}
	case "bigint", "integer", "smallint":
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case "text":
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			return nil, fmt.Errorf("a %T where text belongs", v)
		}
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return nil, errors.New("text PostgreSQL cannot hold (a NUL byte or invalid UTF-8): fix or delete that row in SQLite, then copy again")
		}
		return s, nil
	default:
		return nil, fmt.Errorf("column type %s is not one the CCDB uses", pgType)
	}
	return nil, fmt.Errorf("the value %v (%T) does not fit a %s column", v, v, pgType)
}

// rowKey names a row in an error by its guid (or first column).
func rowKey(cols []string, vals []any) string {
	i := slices.Index(cols, "guid")
	if i < 0 {
		i = 0
	}
	return fmt.Sprintf("%s %v", cols[i], vals[i])
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
