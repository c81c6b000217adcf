package session

import (
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Backups are portable between the SQL engines: a snapshot of SQLite restores into PostgreSQL
// and the other way round. The format is gzipped JSON lines:
//
//	{"format":"dartmouth-backup","version":1,"dialect":"sqlite","schema":6,"createdAt":"..."}
//	{"table":"users","columns":["id","plan","created_at"],"types":["text","text","int"]}
//	["alice","paid",1700000000000]
//	...                                   (every table, parents before the tables naming them)
//	{"end":true,"tables":14,"rows":1234}
//
// Column types are portable kinds (int, float, text, bytes, bool); bytes are base64. The end
// line tells a complete backup from a truncated one. schema_migrations is not copied: the
// restoring store applies its own migrations first.

// BackupFormat names the backup documents.
const BackupFormat = "dartmouth-backup"

// ErrDatabaseNotEmpty is returned by Restore into a database that holds rows, unless forced.
var ErrDatabaseNotEmpty = errors.New("database is not empty")

// BackupStats describes a backup written or restored.
type BackupStats struct {
	// Dialect is the engine the backup was taken from; Schema its last migration.
	Dialect   string
	Schema    int
	CreatedAt time.Time
	Tables    int
	Rows      int64
}

// RestoreOptions tunes Restore.
type RestoreOptions struct {
	// Force restores into a database that holds rows, deleting them first (in the same
	// transaction). Default false: such a database is refused with ErrDatabaseNotEmpty.
	Force bool
}

// backupLine is any object line of a backup; which fields are set says which kind it is.
type backupLine struct {
	// the header
	Format    string    `json:"format,omitempty"`
	Version   int       `json:"version,omitempty"`
	Dialect   string    `json:"dialect,omitempty"`
	Schema    int       `json:"schema,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// a table: its rows follow, one JSON array each
	Table   string   `json:"table,omitempty"`
	Columns []string `json:"columns,omitempty"`
	Types   []string `json:"types,omitempty"`
	// the end
	End    bool  `json:"end,omitempty"`
	Tables int   `json:"tables,omitempty"`
	Rows   int64 `json:"rows,omitempty"`
}

// Portable column kinds.
const (
	kindInt   = "int"
	kindFloat = "float"
	kindText  = "text"
	kindBytes = "bytes"
	kindBool  = "bool"
)

// columnKind maps an engine's column type (SQLite's declared type, PostgreSQL's type name) to a
// portable kind.
func columnKind(dbType string) string {
	t := strings.ToUpper(dbType)
	switch {
	case strings.Contains(t, "INT"):
		return kindInt
	case strings.Contains(t, "BOOL"):
		return kindBool
	case strings.Contains(t, "FLOAT"), strings.Contains(t, "DOUBLE"), strings.Contains(t, "REAL"), strings.Contains(t, "NUMERIC"), strings.Contains(t, "DECIMAL"):
		return kindFloat
	case strings.Contains(t, "BYTEA"), strings.Contains(t, "BLOB"):
		return kindBytes
	}
	return kindText
}

// Backup writes a consistent snapshot of every table to w (see the format above): all tables
// are read in one read-only transaction, REPEATABLE READ on PostgreSQL, so the backup is one
// instant of the database even while the gateway keeps writing.
func (s *SQLStore) Backup(ctx context.Context, w io.Writer) (BackupStats, error) {
	stats := BackupStats{Dialect: s.dialect.name, CreatedAt: s.clock.Now().UTC()}
	gz := gzip.NewWriter(w)
	enc := json.NewEncoder(gz)
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&stats.Schema); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		tables, err := s.tablesInOrder(ctx, tx)
		if err != nil {
			return err
		}
		if err := enc.Encode(backupLine{Format: BackupFormat, Version: 1, Dialect: stats.Dialect, Schema: stats.Schema, CreatedAt: stats.CreatedAt}); err != nil {
			return err
		}
		for _, table := range tables {
			n, err := dumpTable(ctx, tx, enc, table)
			if err != nil {
				return fmt.Errorf("table %s: %w", table, err)
			}
			stats.Tables++
			stats.Rows += n
		}
		return enc.Encode(backupLine{End: true, Tables: stats.Tables, Rows: stats.Rows})
	})
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		return BackupStats{}, fmt.Errorf("backup: %w", err)
	}
	return stats, nil
}

func dumpTable(ctx context.Context, tx *sql.Tx, enc *json.Encoder, table string) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, err
	}
	kinds := make([]string, len(types))
	for i, t := range types {
		kinds[i] = columnKind(t.DatabaseTypeName())
	}
	if err := enc.Encode(backupLine{Table: table, Columns: cols, Types: kinds}); err != nil {
		return 0, err
	}
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		row := make([]any, len(cols))
		for i, v := range values {
			if row[i], err = portableValue(kinds[i], v); err != nil {
				return n, fmt.Errorf("column %s: %w", cols[i], err)
			}
		}
		if err := enc.Encode(row); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// portableValue turns what a driver scanned into the JSON value of its kind. SQLite types
// values, not columns, so a value is converted rather than trusted.
func portableValue(kind string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case []byte:
			return strconv.ParseInt(string(x), 10, 64)
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case []byte:
			return strconv.ParseFloat(string(x), 64)
		case string:
			return strconv.ParseFloat(x, 64)
		}
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		}
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil // base64 in JSON
		case string:
			return []byte(x), nil
		}
	default:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	}
	return nil, fmt.Errorf("a %T in a %s column", v, kind)
}

// restoredValue turns a JSON value of a backup back into a query argument of its kind.
func restoredValue(kind string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindInt:
		if n, ok := v.(json.Number); ok {
			return n.Int64()
		}
	case kindFloat:
		if n, ok := v.(json.Number); ok {
			return n.Float64()
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindBytes:
		if s, ok := v.(string); ok {
			return base64.StdEncoding.DecodeString(s)
		}
	case kindText:
		if s, ok := v.(string); ok {
			return s, nil
		}
	default:
		return nil, fmt.Errorf("unknown column type %q", kind)
	}
	return nil, fmt.Errorf("%v (%T) is not a %s value", v, v, kind)
}

// Restore brings a backup back: it applies the migrations, then, in one transaction, checks
// the database holds no rows (or with Force deletes them), and inserts every table of the
// backup, parents first. Any error rolls the whole restore back. A backup of a newer schema
// than this binary knows is refused; an older one restores, its missing columns taking their
// defaults.
func (s *SQLStore) Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (BackupStats, error) {
	var stats BackupStats
	if err := s.Migrate(ctx); err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	known, err := loadMigrations(migrationFiles, s.dialect.name)
	if err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return stats, fmt.Errorf("restore: not a gzipped backup: %w", err)
	}
	defer gz.Close()
	dec := json.NewDecoder(gz)
	dec.UseNumber()
	var head backupLine
	if err := dec.Decode(&head); err != nil || head.Format != BackupFormat {
		return stats, fmt.Errorf("restore: not a %s document (first line: %v)", BackupFormat, err)
	}
	if head.Version != 1 {
		return stats, fmt.Errorf("restore: backup format version %d is not supported (want 1)", head.Version)
	}
	if latest := known[len(known)-1].version; head.Schema > latest {
		return stats, fmt.Errorf("restore: the backup has schema %d, newer than this binary's %d: restore it with a newer dartmouth", head.Schema, latest)
	}
	stats = BackupStats{Dialect: head.Dialect, Schema: head.Schema, CreatedAt: head.CreatedAt}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		tables, err := s.tablesInOrder(ctx, tx)
		if err != nil {
			return err
		}
		if err := clearForRestore(ctx, tx, tables, opts.Force); err != nil {
			return err
		}
		rs := restorer{s: s, tx: tx, known: tables, seen: map[string]bool{}}
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					return errors.New("the backup is truncated: it has no end line")
				}
				return fmt.Errorf("read backup: %w", err)
			}
			if len(raw) > 0 && raw[0] == '[' {
				if err := rs.row(ctx, raw); err != nil {
					return err
				}
				continue
			}
			var line backupLine
			if err := json.Unmarshal(raw, &line); err != nil {
				return fmt.Errorf("read backup: %w", err)
			}
			if err := rs.flush(ctx); err != nil {
				return err
			}
			switch {
			case line.End:
				if line.Tables != rs.tables || line.Rows != rs.rows {
					return fmt.Errorf("the backup is inconsistent: its end line counts %d tables and %d rows, it holds %d and %d", line.Tables, line.Rows, rs.tables, rs.rows)
				}
				stats.Tables, stats.Rows = rs.tables, rs.rows
				return nil
			case line.Table != "":
				if err := rs.table(ctx, line); err != nil {
					return err
				}
			default:
				return fmt.Errorf("read backup: unexpected line %.80s", raw)
			}
		}
	})
	if err != nil {
		return BackupStats{}, fmt.Errorf("restore: %w", err)
	}
	return stats, nil
}

// clearForRestore refuses a database holding rows, or with force deletes them, children first.
func clearForRestore(ctx context.Context, tx *sql.Tx, tables []string, force bool) error {
	for i := len(tables) - 1; i >= 0; i-- {
		t := tables[i]
		if !force {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+quoteIdent(t)+` LIMIT 1`).Scan(&one)
			if err == nil {
				return fmt.Errorf("%w: table %s has rows (restore with --force to replace them)", ErrDatabaseNotEmpty, t)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("table %s: %w", t, err)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(t)); err != nil {
			return fmt.Errorf("empty table %s: %w", t, err)
		}
	}
	return nil
}

// restorer inserts the rows of a backup as they stream by, a batch per statement.
type restorer struct {
	s     *SQLStore
	tx    *sql.Tx
	known []string
	seen  map[string]bool

	tables int
	rows   int64

	current string
	columns []string
	kinds   []string
	batch   []any // arguments of the pending rows
	pending int
}

// restoreBatchParams bounds the arguments of one INSERT (SQLite's historical limit is 999).
const restoreBatchParams = 900

func (rs *restorer) table(ctx context.Context, line backupLine) error {
	if !slices.Contains(rs.known, line.Table) {
		return fmt.Errorf("the backup has a table %q this database does not", line.Table)
	}
	if rs.seen[line.Table] {
		return fmt.Errorf("the backup has table %s twice", line.Table)
	}
	if len(line.Columns) == 0 || len(line.Columns) != len(line.Types) {
		return fmt.Errorf("table %s: %d columns with %d types", line.Table, len(line.Columns), len(line.Types))
	}
	rows, err := rs.tx.QueryContext(ctx, `SELECT * FROM `+quoteIdent(line.Table)+` WHERE 1 = 0`)
	if err != nil {
		return fmt.Errorf("table %s: %w", line.Table, err)
	}
	have, err := rows.Columns()
	rows.Close()
	if err != nil {
		return fmt.Errorf("table %s: %w", line.Table, err)
	}
	for _, c := range line.Columns {
		if !slices.Contains(have, c) {
			return fmt.Errorf("table %s: the backup has a column %q this database does not", line.Table, c)
		}
	}
	rs.seen[line.Table] = true
	rs.tables++
	rs.current, rs.columns, rs.kinds = line.Table, line.Columns, line.Types
	return nil
}

func (rs *restorer) row(ctx context.Context, raw json.RawMessage) error {
	if rs.current == "" {
		return errors.New("read backup: a row before any table")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var values []any
	if err := dec.Decode(&values); err != nil {
		return fmt.Errorf("table %s: row %d: %w", rs.current, rs.rows+1, err)
	}
	if len(values) != len(rs.columns) {
		return fmt.Errorf("table %s: a row of %d values for %d columns", rs.current, len(values), len(rs.columns))
	}
	for i, v := range values {
		arg, err := restoredValue(rs.kinds[i], v)
		if err != nil {
			return fmt.Errorf("table %s: column %s: %w", rs.current, rs.columns[i], err)
		}
		rs.batch = append(rs.batch, arg)
	}
	rs.pending++
	rs.rows++
	if (rs.pending+1)*len(rs.columns) > restoreBatchParams {
		return rs.flush(ctx)
	}
	return nil
}

func (rs *restorer) flush(ctx context.Context) error {
	if rs.pending == 0 {
		return nil
	}
	cols := make([]string, len(rs.columns))
	for i, c := range rs.columns {
		cols[i] = quoteIdent(c)
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	query := `INSERT INTO ` + quoteIdent(rs.current) + ` (` + strings.Join(cols, ", ") + `) VALUES ` +
		strings.TrimSuffix(strings.Repeat(one+", ", rs.pending), ", ")
	if _, err := rs.tx.ExecContext(ctx, rs.s.dialect.rebind(query), rs.batch...); err != nil {
		return fmt.Errorf("table %s: insert: %w", rs.current, err)
	}
	rs.batch, rs.pending = rs.batch[:0], 0
	return nil
}

// quoteIdent quotes a table or column name; the names come from the database's own catalog.
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// tablesInOrder lists the store's tables (not schema_migrations) so that every table comes
// after the tables its foreign keys name; ties in name order.
func (s *SQLStore) tablesInOrder(ctx context.Context, tx *sql.Tx) ([]string, error) {
	var tablesQuery, refsQuery string
	switch s.dialect.name {
	case postgresDialect.name:
		tablesQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
		refsQuery = `SELECT cl.relname, ref.relname FROM pg_constraint c
			JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class ref ON ref.oid = c.confrelid
			JOIN pg_namespace n ON n.oid = c.connamespace
			WHERE c.contype = 'f' AND n.nspname = current_schema()`
	default:
		tablesQuery = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
		refsQuery = `SELECT m.name, f."table" FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'`
	}
	names, err := queryStrings(ctx, tx, tablesQuery)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == "schema_migrations" })
	slices.Sort(names)
	rows, err := tx.QueryContext(ctx, refsQuery)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	parents := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list foreign keys: %w", err)
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	// Depth-first: each table after its parents, in name order otherwise.
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(t string) error {
		switch state[t] {
		case 1:
			return fmt.Errorf("foreign keys form a cycle through %s", t)
		case 2:
			return nil
		}
		state[t] = 1
		ps := slices.Clone(parents[t])
		slices.Sort(ps)
		for _, p := range ps {
			if slices.Contains(names, p) {
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		state[t] = 2
		out = append(out, t)
		return nil
	}
	for _, t := range names {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func queryStrings(ctx context.Context, tx *sql.Tx, query string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query)
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
