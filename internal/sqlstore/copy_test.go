package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// fillEveryTable puts rows in every table of s (a SQLite store), parents
// first, with values that probe the copy: NULLs where a column allows them,
// both booleans, the extremes of each integer type, and text with quotes,
// backslashes, newlines and non-ASCII characters. Foreign keys take the
// referenced table's values. It returns the tables it filled.
func fillEveryTable(t *testing.T, s *Store) []table {
	t.Helper()
	ctx := t.Context()
	tables, err := sqliteTables(ctx, s.r)
	if err != nil {
		t.Fatal(err)
	}
	const perTable = 3
	for _, tb := range tables {
		type colInfo struct {
			typ     string
			notNull bool
			refT    string
			refC    string
		}
		info := map[string]*colInfo{}
		rows, err := s.r.QueryContext(ctx, "SELECT name, type, \"notnull\" FROM pragma_table_info(?)", tb.name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, typ string
			var nn bool
			if err := rows.Scan(&n, &typ, &nn); err != nil {
				t.Fatal(err)
			}
			info[n] = &colInfo{typ: typ, notNull: nn}
		}
		rows.Close()
		rows, err = s.r.QueryContext(ctx, `SELECT "from", "table", "to" FROM pragma_foreign_key_list(?)`, tb.name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var from, to, toCol string
			if err := rows.Scan(&from, &to, &toCol); err != nil {
				t.Fatal(err)
			}
			info[from].refT, info[from].refC = to, toCol
		}
		rows.Close()
		for i := range perTable {
			vals := make([]any, len(tb.columns))
			for j, c := range tb.columns {
				ci := info[c]
				switch {
				case ci.refT != "":
					var v any
					if err := s.r.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY rowid LIMIT 1 OFFSET %d", quoteIdent(ci.refC), quoteIdent(ci.refT), i)).Scan(&v); err != nil {
						t.Fatalf("%s.%s: parent %s: %v", tb.name, c, ci.refT, err)
					}
					if !ci.notNull && i == 1 {
						v = nil
					}
					vals[j] = v
				case ci.typ == "BOOLEAN":
					vals[j] = i%2 == 0
				case ci.typ == "BIGINT":
					vals[j] = []int64{1<<62 + int64(j), -1 << 40, int64(i)}[i]
				case ci.typ == "INTEGER":
					vals[j] = []int64{1<<31 - 1, -1 << 31, int64(j)}[i]
				default:
					vals[j] = fmt.Sprintf("%s-%d-%s 'q' \"d\" \\ \n\tünï ☃ %d", c, i, tb.name, j)
				}
			}
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
			cols := make([]string, len(tb.columns))
			for j, c := range tb.columns {
				cols[j] = quoteIdent(c)
			}
			if _, err := s.w.ExecContext(ctx, "INSERT INTO "+quoteIdent(tb.name)+" ("+strings.Join(cols, ", ")+") VALUES ("+marks+")", vals...); err != nil {
				t.Fatalf("fill %s: %v", tb.name, err)
			}
		}
	}
	return tables
}

// dumpTable reads every row of table in a stable order, booleans as
// booleans on either engine.
func dumpTable(t *testing.T, db *sql.DB, d dialect, tb table) [][]any {
	t.Helper()
	cols := make([]string, len(tb.columns))
	for i, c := range tb.columns {
		cols[i] = quoteIdent(c)
	}
	rows, err := db.QueryContext(t.Context(), "SELECT "+strings.Join(cols, ", ")+" FROM "+quoteIdent(tb.name)+" ORDER BY "+d.bytewise(cols[0])+", "+strings.Join(cols[1:], ", "))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// normalise makes a SQLite row comparable to a PostgreSQL one: SQLite
// returns booleans as 0 and 1.
func normalise(rows [][]any, types map[string]string, cols []string) [][]any {
	for _, r := range rows {
		for i, v := range r {
			if x, ok := v.(int64); ok && types[cols[i]] == "boolean" {
				r[i] = x == 1
			}
		}
	}
	return rows
}

func newSQLiteCCDB(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ccdb.sqlite")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestCopyToPostgres copies a SQLite CCDB with rows in every table into an
// empty PostgreSQL database: every table, row and column arrives as it
// was, and the Store on PostgreSQL reads it.
func TestCopyToPostgres(t *testing.T) {
	ctx := t.Context()
	src, path := newSQLiteCCDB(t)
	created := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)
	// Realistic rows through the Store, besides the probing ones.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(src.CreateOrg(ctx, pando.Org{GUID: "org-real", Name: "real", CreatedAt: created, UpdatedAt: created}))
	must(src.CreateSpace(ctx, pando.Space{GUID: "space-real", Name: "dev", OrgGUID: "org-real", CreatedAt: created, UpdatedAt: created}))
	tables := fillEveryTable(t, src)
	if len(tables) < 20 {
		t.Fatalf("only %d tables found in the CCDB", len(tables))
	}
	for _, tb := range tables {
		var n int
		must(src.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(tb.name)).Scan(&n))
		if n == 0 {
			t.Fatalf("table %s is empty: the fixture must fill every table", tb.name)
		}
	}
	want := map[string][][]any{}
	for _, tb := range tables {
		want[tb.name] = dumpTable(t, src.rdb, sqliteDialect{}, tb)
	}
	// src stays open, as a server killed with -9 leaves its file: the
	// latest writes are in the WAL, not yet in the database file.
	if st, err := os.Stat(path + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("no WAL beside the open CCDB: %v", err)
	}

	url := pgtest.URL(t) // empty: not even migrated
	var progress []string
	counts, err := CopyToPostgres(ctx, path, url, CopyOptions{Progress: func(m string) { progress = append(progress, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(tables) {
		t.Fatalf("copied %d tables, want %d", len(counts), len(tables))
	}
	dst := openTemp(t, url)
	for _, tb := range tables {
		types, err := pgColumnTypesSQL(t, dst.rdb, tb.name)
		if err != nil {
			t.Fatal(err)
		}
		got := dumpTable(t, dst.rdb, pgDialect{}, tb)
		w := normalise(want[tb.name], types, tb.columns)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("table %s differs after the copy\n got: %v\nwant: %v", tb.name, got, w)
		}
	}
	if !strings.Contains(strings.Join(progress, "\n"), "orgs: 4 rows copied") {
		t.Errorf("progress does not say the orgs copied: %q", progress)
	}
	// The Store on PostgreSQL reads what the Store on SQLite wrote.
	sp, err := dst.GetSpace(ctx, "space-real")
	if err != nil || sp.Name != "dev" || sp.OrgGUID != "org-real" || !sp.CreatedAt.Equal(created) {
		t.Fatalf("GetSpace on PostgreSQL = %+v, %v", sp, err)
	}
	// The source is unchanged and the target holds what it must: a
	// second copy is refused, saying why.
	_, err = CopyToPostgres(ctx, path, url, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a filled database: %v, want a refusal saying it is not empty", err)
	}
}

func pgColumnTypesSQL(t *testing.T, db *sql.DB, table string) (map[string]string, error) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			return nil, err
		}
		m[n] = ty
	}
	return m, rows.Err()
}

// A dry run reads both sides and changes neither; a target a server
// filled, one a server is using, and a source at another schema version
// are refused.
func TestCopyToPostgres_refusals(t *testing.T) {
	ctx := t.Context()
	src, path := newSQLiteCCDB(t)
	if err := src.CreateOrg(ctx, pando.Org{GUID: "o1", Name: "one", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	src.Close()

	url := pgtest.URL(t)
	var lines []string
	counts, err := CopyToPostgres(ctx, path, url, CopyOptions{DryRun: true, Progress: func(m string) { lines = append(lines, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "would copy orgs: 1 rows") {
		t.Errorf("dry run said %q", lines)
	}
	for _, c := range counts {
		if c.Table == "orgs" && c.Rows != 1 {
			t.Errorf("dry run counts %d orgs", c.Rows)
		}
	}
	if v := pgVersionOf(t, url); v != 0 {
		t.Fatalf("the dry run migrated the target to version %d", v)
	}

	// A server holds its claim: the copy refuses the database it serves.
	served, err := Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := served.ClaimDatabase(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyToPostgres(ctx, path, url, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "a Pando server is using") {
		t.Fatalf("copy into a served database: %v", err)
	}
	if err := served.CreateOrg(ctx, pando.Org{GUID: "o2", Name: "two", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := served.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyToPostgres(ctx, path, url, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "table orgs has rows") {
		t.Fatalf("copy into a database with an org: %v", err)
	}

	// A source at an older schema version is refused and left alone.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = CopyToPostgres(ctx, path, pgtest.URL(t), CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "start this version's server on it once") {
		t.Fatalf("copy of an older CCDB: %v", err)
	}
	if _, err := CopyToPostgres(ctx, filepath.Join(t.TempDir(), "none.sqlite"), url, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "no CCDB at") {
		t.Fatalf("copy of a missing file: %v", err)
	}
}

func pgVersionOf(t *testing.T, url string) int64 {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(context.Background(), "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return 0
	}
	v, err := schemaVersion(context.Background(), db, pgDialect{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Text PostgreSQL cannot hold stops the copy, naming the table, row and
// column, and leaves the target without rows, so a copy after the fix
// goes through.
func TestCopyToPostgres_textPostgreSQLCannotHold(t *testing.T) {
	ctx := t.Context()
	src, path := newSQLiteCCDB(t)
	now := time.Now()
	if err := src.CreateOrg(ctx, pando.Org{GUID: "o-fine", Name: "fine", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateOrg(ctx, pando.Org{GUID: "o-nul", Name: "nul\x00byte", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	_, err := CopyToPostgres(ctx, path, url, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "copy table orgs: row 2 (guid o-nul), column name: text PostgreSQL cannot hold") {
		t.Fatalf("copy of an org named with a NUL byte: %v", err)
	}
	if _, err := src.w.ExecContext(ctx, "UPDATE orgs SET name = 'nul byte' WHERE guid = 'o-nul'"); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyToPostgres(ctx, path, url, CopyOptions{}); err != nil {
		t.Fatalf("copy after the fix: %v", err)
	}
}
