package session

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// dialect keeps every difference between SQL engines in one place, so the queries below stay
// portable.
//
// Writing portable queries: "?" placeholders; ON CONFLICT (...) DO NOTHING / DO UPDATE for
// upserts; times as BIGINT Unix milliseconds, booleans as INTEGER 0/1 (pass ints, not bools),
// JSON as TEXT, bytes as BYTEA. PostgreSQL infers a parameter's type from where it stands,
// so one compared only with a literal ("CASE WHEN ? = 0") becomes a 32-bit integer there:
// write CAST(? AS BIGINT) when it may hold a time.
type dialect struct {
	name string
	// numberedPlaceholders turns "?" into "$1, $2, ..." (PostgreSQL).
	numberedPlaceholders bool
	// lockMigrations, when set, runs first in every migration transaction and holds until it
	// ends, so processes starting together apply each migration once. SQLite needs none: its
	// transactions begin immediate, which already excludes other writers.
	lockMigrations string
}

var sqliteDialect = dialect{name: "sqlite"}

// rebind rewrites "?" placeholders for the dialect. Our queries never put "?" in literals.
func (d dialect) rebind(query string) string {
	if !d.numberedPlaceholders {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SQLStore is the Store on database/sql: SQLite by default, PostgreSQL at scale.
type SQLStore struct {
	db      *sql.DB
	dialect dialect
	clock   Clock
	// writeRetry is how long the writes that must not be lost keep retrying through a lost
	// connection (see retryWrite); 0 tries once.
	writeRetry time.Duration
	logger     *slog.Logger
}

var _ Store = (*SQLStore)(nil)

// SQLiteConfig configures OpenSQLite.
type SQLiteConfig struct {
	// Path of the database file; its folder is created if missing. Required.
	Path string
	// BusyTimeout is how long a writer waits for the lock. Default 5s.
	BusyTimeout time.Duration
	// Clock stamps records. Default SystemClock.
	Clock Clock
}

// OpenSQLite opens (creating if needed) a SQLite database in WAL mode and applies the
// migrations.
func OpenSQLite(ctx context.Context, cfg SQLiteConfig) (*SQLStore, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: create folder: %w", err)
	}
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		cfg.Path, cfg.BusyTimeout.Milliseconds())
	// Marked errors: SQLITE_BUSY once the busy timeout has run out (another process holds the
	// write lock) reports the store as unavailable, not the request as failed.
	db := sql.OpenDB(markingConnector{newWriteGateConnector(dsn)})
	// database/sql keeps 2 idle connections by default: under concurrent requests each new
	// one re-opens the file and re-runs the pragmas, which cost more than the queries.
	db.SetMaxIdleConns(16)
	s := &SQLStore{db: db, dialect: sqliteDialect, clock: cfg.Clock}
	if err := s.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies every embedded migration that has not run yet, each in its own transaction.
func (s *SQLStore) Migrate(ctx context.Context) error {
	migrations, err := loadMigrations(migrationFiles, s.dialect.name)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Under the lock too: PostgreSQL lets two racing CREATE TABLE IF NOT EXISTS collide.
		if err := s.lockForMigration(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range migrations {
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.lockForMigration(ctx, tx); err != nil {
				return err
			}
			// Checked inside the transaction, so two processes opening the same database at
			// once cannot both see the migration as pending and both apply it.
			var applied int
			if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&applied); err != nil {
				return err
			}
			if applied > 0 {
				return nil
			}
			for _, stmt := range splitStatements(m.body) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", m.file, err)
				}
			}
			_, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, s.now())
			return err
		}); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

func (s *SQLStore) lockForMigration(ctx context.Context, tx *sql.Tx) error {
	if s.dialect.lockMigrations == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.dialect.lockMigrations); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// migration is one schema change as a dialect runs it.
type migration struct {
	version int
	file    string
	body    string
}

// loadMigrations returns the migrations of fsys's migrations folder for a dialect, by version.
//
// Every migration is a portable NNNN_name.sql. When one statement cannot be written for both
// engines, a file NNNN_name.<dialect>.sql ("postgres" or "sqlite") next to it replaces it
// for that dialect alone; the portable file stays the reference for the others, and an
// override without one is refused, so every engine gets every version.
func loadMigrations(fsys fs.FS, dialectName string) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	portable := map[int]string{}
	override := map[int]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("bad file name %s: want NNNN_name.sql", name)
		}
		target := portable
		if i := strings.LastIndexByte(base, '.'); i >= 0 {
			switch base[i+1:] {
			case sqliteDialect.name, postgresDialect.name:
			default:
				return nil, fmt.Errorf("bad file name %s: the part before .sql names no dialect (sqlite, postgres)", name)
			}
			if base[i+1:] != dialectName {
				continue
			}
			target = override
		}
		if other, dup := target[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, version)
		}
		target[version] = name
	}
	for version, name := range override {
		if _, ok := portable[version]; !ok {
			return nil, fmt.Errorf("%s overrides no portable migration %04d_*.sql", name, version)
		}
	}
	out := make([]migration, 0, len(portable))
	for version, name := range portable {
		if o, ok := override[version]; ok {
			name = o
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, file: path.Base(name), body: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements splits a migration on semicolons that end a line, dropping comments.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

func (s *SQLStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *SQLStore) now() int64 { return s.clock.Now().UnixMilli() }

// Ping implements Store.
func (s *SQLStore) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sql %s: %w", s.dialect.name, err)
	}
	return nil
}

// Close implements Store.
func (s *SQLStore) Close() error { return s.db.Close() }

// EnsureUser implements Store.
func (s *SQLStore) EnsureUser(ctx context.Context, id, plan string) (User, error) {
	if id == "" {
		return User{}, errors.New("ensure user: empty id")
	}
	if plan == "" {
		plan = "free"
	}
	// Read first: every turn ensures its user, nearly always one that exists, and a read does
	// not queue behind the single writer the way the insert would.
	u, err := s.getUser(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO users (id, plan, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`), id, plan, s.now()); err != nil {
			return User{}, fmt.Errorf("ensure user %s: %w", id, err)
		}
		u, err = s.getUser(ctx, id)
	}
	if err != nil {
		return User{}, fmt.Errorf("ensure user %s: %w", id, err)
	}
	return u, nil
}

func (s *SQLStore) getUser(ctx context.Context, id string) (User, error) {
	var u User
	var created int64
	if err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT id, plan, created_at FROM users WHERE id = ?`), id).Scan(&u.ID, &u.Plan, &created); err != nil {
		return User{}, err
	}
	u.CreatedAt = time.UnixMilli(created)
	return u, nil
}

// CreateSession implements Store.
func (s *SQLStore) CreateSession(ctx context.Context, sess Session) error {
	meta, err := encodeJSON(sess.Metadata)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	now := s.now()
	if !sess.CreatedAt.IsZero() {
		now = sess.CreatedAt.UnixMilli()
	}
	_, err = s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO sessions (id, user_id, agent_id, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?, ?)`),
		sess.ID, sess.UserID, sess.AgentID, now, now, meta)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession implements Store.
func (s *SQLStore) GetSession(ctx context.Context, userID, sessionID string) (Session, error) {
	var sess Session
	var created, updated int64
	var meta string
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT id, user_id, agent_id, created_at, updated_at, metadata FROM sessions WHERE id = ? AND user_id = ?`), sessionID, userID).
		Scan(&sess.ID, &sess.UserID, &sess.AgentID, &created, &updated, &meta)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("get session: %w", err)
	}
	sess.CreatedAt, sess.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	if sess.Metadata, err = decodeJSON(meta); err != nil {
		return Session{}, fmt.Errorf("get session: %w", err)
	}
	return sess, nil
}

// AppendMessage implements Store. On PostgreSQL a lost connection is retried (see
// retryWrite): a message is never silently dropped.
func (s *SQLStore) AppendMessage(ctx context.Context, m Message) error {
	meta, err := encodeJSON(m.Metadata)
	if err != nil {
		return fmt.Errorf("append message: %w", err)
	}
	created := s.now()
	if !m.CreatedAt.IsZero() {
		created = m.CreatedAt.UnixMilli()
	}
	err = s.retryWrite(ctx, "append message", func(retry bool) error {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Touching the session first locks its row until commit (PostgreSQL; SQLite locks
			// the whole database), so appends to one session take turns and each one's
			// MAX(seq) below sees the previous one's row. The unique index turns any race left
			// into an error rather than a reordering.
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE sessions SET updated_at = ? WHERE id = ?`), created, m.SessionID); err != nil {
				return fmt.Errorf("touch session: %w", err)
			}
			_, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO messages (id, session_id, seq, role, content, created_at, metadata)
			SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM messages WHERE session_id = ?`),
				m.ID, m.SessionID, m.Role, m.Content, created, meta, m.SessionID)
			return err
		})
		if retry && isUniqueViolation(err, "messages_pkey") {
			return nil // an earlier attempt committed before its connection was lost
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("append message: %w", err)
	}
	return nil
}

// ListMessages implements Store.
func (s *SQLStore) ListMessages(ctx context.Context, userID, sessionID string, limit int) ([]Message, error) {
	bound := int64(math.MaxInt64)
	if limit > 0 {
		bound = int64(limit)
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT m.id, m.session_id, m.role, m.content, m.created_at, m.metadata
		FROM messages m JOIN sessions s ON s.id = m.session_id
		WHERE m.session_id = ? AND s.user_id = ?
		ORDER BY m.seq DESC LIMIT ?`), sessionID, userID, bound)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var created int64
		var meta string
		if err := rows.Scan(&m.ID, &m.SessionID, &m.Role, &m.Content, &created, &meta); err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		m.CreatedAt = time.UnixMilli(created)
		if m.Metadata, err = decodeJSON(meta); err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// TruncateMessage implements Store. Like AppendMessage it retries through a lost connection;
// doing it twice changes nothing.
func (s *SQLStore) TruncateMessage(ctx context.Context, userID, sessionID, messageID, content string) error {
	return s.retryWrite(ctx, "truncate message", func(bool) error { return s.truncateMessage(ctx, userID, sessionID, messageID, content) })
}

func (s *SQLStore) truncateMessage(ctx context.Context, userID, sessionID, messageID, content string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var generated, meta string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT m.content, m.metadata FROM messages m JOIN sessions s ON s.id = m.session_id
			WHERE m.id = ? AND m.session_id = ? AND s.user_id = ?`), messageID, sessionID, userID).Scan(&generated, &meta)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("truncate message: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("truncate message: %w", err)
		}
		md, err := decodeJSON(meta)
		if err != nil {
			return fmt.Errorf("truncate message: %w", err)
		}
		if md == nil {
			md = map[string]any{}
		}
		if _, ok := md["generated"]; !ok { // a second truncation keeps the first original
			md["generated"] = generated
		}
		md["truncated"] = true
		encoded, err := encodeJSON(md)
		if err != nil {
			return fmt.Errorf("truncate message: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE messages SET content = ?, metadata = ? WHERE id = ?`), content, encoded, messageID); err != nil {
			return fmt.Errorf("truncate message: %w", err)
		}
		return nil
	})
}

// RecordEvent implements Store.
func (s *SQLStore) RecordEvent(ctx context.Context, e Event) error {
	data, err := encodeJSON(e.Data)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	created := s.now()
	if !e.CreatedAt.IsZero() {
		created = e.CreatedAt.UnixMilli()
	}
	_, err = s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO analytics_events (type, user_id, session_id, agent_id, created_at, data) VALUES (?, ?, ?, ?, ?, ?)`),
		e.Type, e.UserID, e.SessionID, e.AgentID, created, data)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// CountEvents returns how many events of a type a user has; used by analytics and tests.
func (s *SQLStore) CountEvents(ctx context.Context, userID, eventType string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM analytics_events WHERE user_id = ? AND type = ?`), userID, eventType).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

func encodeJSON(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeJSON(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return map[string]any{}, nil
	}
	var m map[string]any
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}
