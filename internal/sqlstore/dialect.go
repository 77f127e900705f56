package sqlstore

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds everything that differs between SQL engines. Queries are
// written once with '?' placeholders and portable types (TEXT, BIGINT,
// INTEGER, BOOLEAN); timestamps are BIGINT unix nanoseconds.
type dialect interface {
	// engine is enginePostgres or engineSQLite.
	engine() string
	// rebind rewrites '?' placeholders into the engine's style.
	rebind(q string) string
	// constraint decodes a constraint violation; ok is false for any other
	// error.
	constraint(err error) (c violation, ok bool)
	// badText reports an error saying a text argument cannot be stored or
	// compared (PostgreSQL refuses NUL bytes and invalid UTF-8).
	badText(err error) bool
	// unreachable reports an error saying the database server cannot be
	// reached or its session ended (a restart, a network failure).
	unreachable(err error) bool
	// lockWrites is the statement every write transaction runs first, so
	// writers take turns as they do on SQLite, waiting at most wait (0: no
	// bound); "" when BEGIN already does.
	lockWrites(wait time.Duration) string
	// lockTimedOut reports lockWrites' statement giving up after its wait.
	lockTimedOut(err error) bool
	// txOptions are the options of a write transaction.
	txOptions() *sql.TxOptions
	// refusesText reports an argument the database would refuse as text
	// (PostgreSQL: a NUL byte or invalid UTF-8), so that it is never sent:
	// a statement PostgreSQL refuses aborts the transaction it is in.
	refusesText(args []any) bool
	// bytewise makes an ORDER BY on the text column col compare bytes, as
	// SQLite does, whatever collation the database has.
	bytewise(col string) string
}

// violation is a decoded constraint error.
type violation struct {
	foreignKey bool
	// columns of the violated unique constraint (unqualified), when known.
	columns []string
}

// sqliteDialect is modernc.org/sqlite.
type sqliteDialect struct{}

func (sqliteDialect) engine() string { return engineSQLite }

func (sqliteDialect) rebind(q string) string { return q }

func (sqliteDialect) badText(error) bool { return false }

func (sqliteDialect) unreachable(error) bool { return false }

func (sqliteDialect) refusesText([]any) bool { return false }

// lockWrites is empty: the writer pool's one connection begins every
// transaction IMMEDIATE, which takes SQLite's write lock.
func (sqliteDialect) lockWrites(time.Duration) string { return "" }

func (sqliteDialect) lockTimedOut(error) bool { return false }

func (sqliteDialect) txOptions() *sql.TxOptions { return nil }

func (sqliteDialect) bytewise(col string) string { return col }

func (sqliteDialect) constraint(err error) (violation, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return violation{}, false
	}
	msg := se.Error()
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return violation{columns: sqliteUniqueColumns(msg)}, true
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return violation{foreignKey: true}, true
	}
	// Without extended result codes only the text tells them apart.
	if se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		switch {
		case strings.Contains(msg, "UNIQUE constraint failed"):
			return violation{columns: sqliteUniqueColumns(msg)}, true
		case strings.Contains(msg, "FOREIGN KEY constraint failed"):
			return violation{foreignKey: true}, true
		}
	}
	return violation{}, false
}

// sqliteUniqueColumns extracts the columns from SQLite's message
// "UNIQUE constraint failed: apps.space_guid, apps.name (2067)".
func sqliteUniqueColumns(msg string) []string {
	const marker = "UNIQUE constraint failed: "
	i := strings.Index(msg, marker)
	if i < 0 {
		return nil
	}
	list := msg[i+len(marker):]
	if j := strings.Index(list, " ("); j >= 0 {
		list = list[:j]
	}
	var cols []string
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if k := strings.LastIndexByte(c, '.'); k >= 0 {
			c = c[k+1:]
		}
		if c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

// rebindDollar rewrites '?' into "$1", "$2"... (PostgreSQL), leaving quoted
// literals and identifiers alone.
func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
