package session

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

func mustEnsureUser(t *testing.T, s *SQLStore, id, plan string) User {
	t.Helper()
	u, err := s.EnsureUser(t.Context(), id, plan)
	if err != nil {
		t.Fatalf("EnsureUser(%q, %q): %v", id, plan, err)
	}
	return u
}

// mustCreateSession creates the user if needed, then a session of theirs.
func mustCreateSession(t *testing.T, s *SQLStore, userID string) Session {
	t.Helper()
	mustEnsureUser(t, s, userID, "")
	sess := Session{ID: NewID("ses"), UserID: userID, AgentID: "agent-1"}
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess
}

// appendContents appends one user message per content, in order.
func appendContents(t *testing.T, s *SQLStore, sessionID string, contents ...string) {
	t.Helper()
	for _, c := range contents {
		m := Message{ID: NewID("msg"), SessionID: sessionID, Role: RoleUser, Content: c}
		if err := s.AppendMessage(t.Context(), m); err != nil {
			t.Fatalf("AppendMessage(%q): %v", c, err)
		}
	}
}

func mustListMessages(t *testing.T, s *SQLStore, userID, sessionID string, limit int) []Message {
	t.Helper()
	msgs, err := s.ListMessages(t.Context(), userID, sessionID, limit)
	if err != nil {
		t.Fatalf("ListMessages(%q, %q, %d): %v", userID, sessionID, limit, err)
	}
	return msgs
}

func contentsOf(msgs []Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Content)
	}
	return out
}

// numbered returns prefix0, prefix1, ... prefix(n-1).
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// queryInts runs a query whose rows are one integer each.
func queryInts(t *testing.T, s *SQLStore, query string, args ...any) []int64 {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), s.dialect.rebind(query), args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("%s: scan: %v", query, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func queryString(t *testing.T, s *SQLStore, query string, args ...any) string {
	t.Helper()
	var v string
	if err := s.db.QueryRowContext(t.Context(), s.dialect.rebind(query), args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// migrationVersions is the version of every embedded migration, ascending.
func migrationVersions(t *testing.T) []int64 {
	t.Helper()
	var out []int64
	for _, m := range mustLoadMigrations(t, sqliteDialect.name) {
		out = append(out, int64(m.version))
	}
	return out
}

func assertAppliedMigrations(t *testing.T, s *SQLStore, want []int64) {
	t.Helper()
	got := queryInts(t, s, `SELECT version FROM schema_migrations ORDER BY version`)
	if !slices.Equal(got, want) {
		t.Fatalf("schema_migrations versions = %v, want %v (one row per file)", got, want)
	}
}

func assertTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestOpenSQLiteRejectsEmptyPath(t *testing.T) {
	if _, err := OpenSQLite(t.Context(), SQLiteConfig{}); err == nil {
		t.Fatal("OpenSQLite with an empty path succeeded")
	}
}

func TestOpenSQLiteCreatesFolderAndPings(t *testing.T) {
	s, _, path := newTestStore(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

func TestMigrationsAreAppliedOnce(t *testing.T) { forEachBackend(t, testMigrationsAreAppliedOnce) }

func testMigrationsAreAppliedOnce(t *testing.T) {
	want := migrationVersions(t)
	first, clock, path := newTestStore(t)
	assertAppliedMigrations(t, first, want)

	clock.Advance(time.Hour)
	second := openStoreAt(t, path, clock) // while the first is still open
	assertAppliedMigrations(t, second, want)
	if err := first.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	for _, s := range []*SQLStore{first, second} {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	reopened := openStoreAt(t, path, clock)
	assertAppliedMigrations(t, reopened, want)
	// Re-opening must not re-run (or re-stamp) a migration.
	applied := queryInts(t, reopened, `SELECT DISTINCT applied_at FROM schema_migrations`)
	if !slices.Equal(applied, []int64{testEpoch.UnixMilli()}) {
		t.Errorf("applied_at = %v, want only the first open's time %d", applied, testEpoch.UnixMilli())
	}
	// Every table the migrations create is there (a query on a missing one fails).
	tables := []string{"schema_migrations"}
	for _, m := range mustLoadMigrations(t, reopened.Dialect()) {
		for _, match := range createTable.FindAllStringSubmatch(m.body, -1) {
			tables = append(tables, match[1])
		}
	}
	if len(tables) < 5 {
		t.Fatalf("found only the tables %v in the migrations", tables)
	}
	for _, table := range tables {
		queryInts(t, reopened, `SELECT COUNT(*) FROM `+table)
	}
}

var createTable = regexp.MustCompile(`(?m)^\s*CREATE TABLE (\w+)`)

func mustLoadMigrations(t *testing.T, dialectName string) []migration {
	t.Helper()
	migrations, err := loadMigrations(migrationFiles, dialectName)
	if err != nil || len(migrations) == 0 {
		t.Fatalf("embedded migrations for %s: %v (%d files)", dialectName, err, len(migrations))
	}
	return migrations
}

// TestConcurrentOpenAppliesMigrationsOnce opens one database from several goroutines at once,
// as several processes starting together would. The file is created in WAL mode beforehand:
// SQLite itself may answer SQLITE_BUSY, without waiting, to connections racing to convert a
// brand-new file to WAL, which is not what this test is about.
func TestConcurrentOpenAppliesMigrationsOnce(t *testing.T) {
	want := migrationVersions(t)
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "db.sqlite")
		createEmptyWALDatabase(t, path)

		const openers = 4
		stores := make([]*SQLStore, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				stores[i], errs[i] = OpenSQLite(t.Context(), SQLiteConfig{Path: path})
			})
		}
		wg.Wait()
		for i, s := range stores {
			if s != nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			if errs[i] != nil {
				t.Fatalf("round %d: opener %d: %v", round, i, errs[i])
			}
		}
		assertAppliedMigrations(t, stores[0], want)
	}
}

func createEmptyWALDatabase(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `SELECT 1`); err != nil {
		t.Fatal(err)
	}
}

func TestSQLitePragmas(t *testing.T) {
	tests := []struct {
		name        string
		busyTimeout time.Duration
		wantBusyMS  string
	}{
		{"default busy timeout", 0, "5000"},
		{"custom busy timeout", 250 * time.Millisecond, "250"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			s, err := OpenSQLite(t.Context(), SQLiteConfig{Path: path, BusyTimeout: tt.busyTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			for pragma, want := range map[string]string{
				"journal_mode": "wal",
				"foreign_keys": "1",
				"busy_timeout": tt.wantBusyMS,
			} {
				if got := queryString(t, s, "PRAGMA "+pragma); got != want {
					t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
				}
			}
		})
	}
}

func TestEnsureUser(t *testing.T) { forEachBackend(t, testEnsureUser) }

func testEnsureUser(t *testing.T) {
	s, clock, _ := newTestStore(t)

	created := mustEnsureUser(t, s, "alice", "pro")
	if created.ID != "alice" || created.Plan != "pro" {
		t.Fatalf("created user = %+v", created)
	}
	assertTime(t, "CreatedAt", created.CreatedAt, testEpoch)

	clock.Advance(time.Hour)
	again := mustEnsureUser(t, s, "alice", "enterprise")
	if again.Plan != "pro" {
		t.Errorf("existing user's plan = %q, want it unchanged (pro)", again.Plan)
	}
	assertTime(t, "existing user's CreatedAt", again.CreatedAt, testEpoch)

	if u := mustEnsureUser(t, s, "bob", ""); u.Plan != "free" {
		t.Errorf("default plan = %q, want free", u.Plan)
	}
	if _, err := s.EnsureUser(t.Context(), "", "free"); err == nil {
		t.Error("EnsureUser with an empty id succeeded")
	}
}

func TestSessionRoundTrip(t *testing.T) { forEachBackend(t, testSessionRoundTrip) }

func testSessionRoundTrip(t *testing.T) {
	explicit := testEpoch.Add(-24 * time.Hour)
	tests := []struct {
		name        string
		createdAt   time.Time
		metadata    map[string]any
		wantCreated time.Time
		wantMeta    map[string]any
	}{
		{
			name:        "metadata and clock time",
			metadata:    map[string]any{"title": "hello", "turns": 3.0, "tags": []any{"a", "b"}, "nested": map[string]any{"ok": true}},
			wantCreated: testEpoch,
			wantMeta:    map[string]any{"title": "hello", "turns": 3.0, "tags": []any{"a", "b"}, "nested": map[string]any{"ok": true}},
		},
		{
			name:        "nil metadata reads back empty",
			wantCreated: testEpoch,
			wantMeta:    map[string]any{},
		},
		{
			name:        "explicit creation time",
			createdAt:   explicit,
			metadata:    map[string]any{"k": "v"},
			wantCreated: explicit,
			wantMeta:    map[string]any{"k": "v"},
		},
	}
	s, _, _ := newTestStore(t)
	mustEnsureUser(t, s, "alice", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Session{ID: NewID("ses"), UserID: "alice", AgentID: "support", CreatedAt: tt.createdAt, Metadata: tt.metadata}
			if err := s.CreateSession(t.Context(), in); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
			got, err := s.GetSession(t.Context(), "alice", in.ID)
			if err != nil {
				t.Fatalf("GetSession: %v", err)
			}
			if got.ID != in.ID || got.UserID != "alice" || got.AgentID != "support" {
				t.Errorf("GetSession = %+v, want ids of %+v", got, in)
			}
			assertTime(t, "CreatedAt", got.CreatedAt, tt.wantCreated)
			assertTime(t, "UpdatedAt", got.UpdatedAt, tt.wantCreated)
			if !reflect.DeepEqual(got.Metadata, tt.wantMeta) {
				t.Errorf("Metadata = %#v, want %#v", got.Metadata, tt.wantMeta)
			}
		})
	}
}

func TestGetSessionNotFound(t *testing.T) { forEachBackend(t, testGetSessionNotFound) }

func testGetSessionNotFound(t *testing.T) {
	s, _, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")
	mustEnsureUser(t, s, "mallory", "")
	tests := []struct {
		name, userID, sessionID string
	}{
		{"another user's session", "mallory", sess.ID},
		{"unknown user", "nobody", sess.ID},
		{"missing session", "alice", NewID("ses")},
		{"empty session id", "alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.GetSession(t.Context(), tt.userID, tt.sessionID)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetSession(%q, %q) error = %v, want ErrNotFound", tt.userID, tt.sessionID, err)
			}
		})
	}
}

func TestCreateSessionRejectsInvalid(t *testing.T) {
	forEachBackend(t, testCreateSessionRejectsInvalid)
}

func testCreateSessionRejectsInvalid(t *testing.T) {
	s, _, _ := newTestStore(t)
	existing := mustCreateSession(t, s, "alice")
	tests := []struct {
		name string
		sess Session
	}{
		{"unknown user", Session{ID: NewID("ses"), UserID: "nobody", AgentID: "a"}},
		{"duplicate id", Session{ID: existing.ID, UserID: "alice", AgentID: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateSession(t.Context(), tt.sess); err == nil {
				t.Fatal("CreateSession succeeded")
			}
		})
	}
}

func TestAppendMessageOrdersByInsertionWithIdenticalTimestamps(t *testing.T) {
	forEachBackend(t, testAppendMessageOrdersByInsertionWithIdenticalTimestamps)
}

func testAppendMessageOrdersByInsertionWithIdenticalTimestamps(t *testing.T) {
	s, _, _ := newTestStore(t) // the clock never moves: every message has the same time
	sess := mustCreateSession(t, s, "alice")
	want := numbered("m", 12)
	appendContents(t, s, sess.ID, want...)

	msgs := mustListMessages(t, s, "alice", sess.ID, 0)
	if got := contentsOf(msgs); !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	for _, m := range msgs {
		assertTime(t, "message CreatedAt", m.CreatedAt, testEpoch)
	}
}

func TestAppendMessageRoundTripsFields(t *testing.T) {
	forEachBackend(t, testAppendMessageRoundTripsFields)
}

func testAppendMessageRoundTripsFields(t *testing.T) {
	s, _, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")
	at := testEpoch.Add(-time.Minute)
	in := Message{
		ID: NewID("msg"), SessionID: sess.ID, Role: RoleAssistant, Content: "héllo ✓",
		CreatedAt: at, Metadata: map[string]any{"model": "x", "tokens": 42.0},
	}
	if err := s.AppendMessage(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	msgs := mustListMessages(t, s, "alice", sess.ID, 0)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	assertTime(t, "CreatedAt", got.CreatedAt, at)
	got.CreatedAt = in.CreatedAt
	if !reflect.DeepEqual(got, in) {
		t.Errorf("message = %#v, want %#v", got, in)
	}
}

func TestAppendMessageUpdatesSession(t *testing.T) {
	forEachBackend(t, testAppendMessageUpdatesSession)
}

func testAppendMessageUpdatesSession(t *testing.T) {
	s, clock, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")

	clock.Advance(time.Minute)
	appendContents(t, s, sess.ID, "hi")
	assertSessionTimes(t, s, sess, testEpoch, testEpoch.Add(time.Minute))

	explicit := testEpoch.Add(5 * time.Minute)
	m := Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleUser, Content: "later", CreatedAt: explicit}
	if err := s.AppendMessage(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	assertSessionTimes(t, s, sess, testEpoch, explicit)
}

func assertSessionTimes(t *testing.T, s *SQLStore, sess Session, created, updated time.Time) {
	t.Helper()
	got, err := s.GetSession(t.Context(), sess.UserID, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertTime(t, "session CreatedAt", got.CreatedAt, created)
	assertTime(t, "session UpdatedAt", got.UpdatedAt, updated)
}

func TestListMessagesLimit(t *testing.T) { forEachBackend(t, testListMessagesLimit) }

func testListMessagesLimit(t *testing.T) {
	s, _, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")
	all := numbered("m", 5)
	appendContents(t, s, sess.ID, all...)
	tests := []struct {
		limit int
		want  []string
	}{
		{-1, all},
		{0, all},
		{1, all[4:]},
		{3, all[2:]},
		{5, all},
		{50, all},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit=%d", tt.limit), func(t *testing.T) {
			got := contentsOf(mustListMessages(t, s, "alice", sess.ID, tt.limit))
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListMessages(limit=%d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
}

func TestListMessagesScopedToUser(t *testing.T) { forEachBackend(t, testListMessagesScopedToUser) }

func testListMessagesScopedToUser(t *testing.T) {
	s, _, _ := newTestStore(t)
	alices := mustCreateSession(t, s, "alice")
	appendContents(t, s, alices.ID, "secret")
	mustCreateSession(t, s, "mallory")
	tests := []struct {
		name, userID, sessionID string
	}{
		{"another user's session", "mallory", alices.ID},
		{"missing session", "alice", NewID("ses")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustListMessages(t, s, tt.userID, tt.sessionID, 0); len(got) != 0 {
				t.Errorf("ListMessages = %v, want none", contentsOf(got))
			}
		})
	}
}

func TestAppendMessageToMissingSessionFails(t *testing.T) {
	forEachBackend(t, testAppendMessageToMissingSessionFails)
}

func testAppendMessageToMissingSessionFails(t *testing.T) {
	s, _, _ := newTestStore(t)
	m := Message{ID: NewID("msg"), SessionID: NewID("ses"), Role: RoleUser, Content: "orphan"}
	if err := s.AppendMessage(t.Context(), m); err == nil {
		t.Fatal("AppendMessage to a missing session succeeded; are foreign keys on?")
	}
	if n := queryInts(t, s, `SELECT COUNT(*) FROM messages`); n[0] != 0 {
		t.Errorf("messages table holds %d rows after the failed append", n[0])
	}
}

func TestStoreIsDurableAcrossReopen(t *testing.T) { forEachBackend(t, testStoreIsDurableAcrossReopen) }

func testStoreIsDurableAcrossReopen(t *testing.T) {
	s, clock, path := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")
	appendContents(t, s, sess.ID, "one", "two")
	if err := s.RecordEvent(t.Context(), Event{Type: "turn", UserID: "alice", SessionID: sess.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reopened := openStoreAt(t, path, clock)
	if _, err := reopened.GetSession(t.Context(), "alice", sess.ID); err != nil {
		t.Fatalf("GetSession after reopen: %v", err)
	}
	appendContents(t, reopened, sess.ID, "three") // numbering continues after a reopen
	if got, want := contentsOf(mustListMessages(t, reopened, "alice", sess.ID, 0)), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("messages after reopen = %v, want %v", got, want)
	}
	if n, err := reopened.CountEvents(t.Context(), "alice", "turn"); err != nil || n != 1 {
		t.Errorf("CountEvents after reopen = %d, %v; want 1", n, err)
	}
}

func TestAppendMessageConcurrent(t *testing.T) { forEachBackend(t, testAppendMessageConcurrent) }

func testAppendMessageConcurrent(t *testing.T) {
	const writers, perWriter = 8, 25
	s, _, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")

	errs := make(chan error, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				m := Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleUser, Content: fmt.Sprintf("w%d-%02d", w, i)}
				if err := s.AppendMessage(t.Context(), m); err != nil {
					errs <- fmt.Errorf("writer %d message %d: %w", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	msgs := mustListMessages(t, s, "alice", sess.ID, 0)
	if len(msgs) != writers*perWriter {
		t.Fatalf("got %d messages, want %d", len(msgs), writers*perWriter)
	}
	seqs := queryInts(t, s, `SELECT seq FROM messages WHERE session_id = ? ORDER BY seq`, sess.ID)
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("seq[%d] = %d, want %d (seqs must be 1..%d without gaps or repeats)", i, seq, i+1, len(msgs))
		}
	}
	// Each writer appended in order, so its own messages must come back in that order.
	next := make([]int, writers)
	ids := map[string]bool{}
	for _, m := range msgs {
		var w, i int
		if _, err := fmt.Sscanf(m.Content, "w%d-%d", &w, &i); err != nil {
			t.Fatalf("content %q: %v", m.Content, err)
		}
		if i != next[w] {
			t.Errorf("writer %d: got message %d, want %d", w, i, next[w])
		}
		next[w] = i + 1
		if ids[m.ID] {
			t.Errorf("duplicate message id %s", m.ID)
		}
		ids[m.ID] = true
	}
}

func TestRecordAndCountEvents(t *testing.T) { forEachBackend(t, testRecordAndCountEvents) }

func testRecordAndCountEvents(t *testing.T) {
	s, _, _ := newTestStore(t)
	explicit := testEpoch.Add(-time.Hour)
	events := []Event{
		{Type: "turn", UserID: "alice", SessionID: "ses_1", AgentID: "a", Data: map[string]any{"tokens": 10.0}},
		{Type: "turn", UserID: "alice", CreatedAt: explicit},
		{Type: "turn", UserID: "alice"},
		{Type: "failover", UserID: "alice", Data: map[string]any{"from": "p1", "to": "p2"}},
		{Type: "turn", UserID: "bob"},
	}
	for _, e := range events {
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent(%+v): %v", e, err)
		}
	}
	counts := []struct {
		userID, eventType string
		want              int
	}{
		{"alice", "turn", 3},
		{"alice", "failover", 1},
		{"bob", "turn", 1},
		{"bob", "failover", 0},
		{"nobody", "turn", 0},
	}
	for _, c := range counts {
		n, err := s.CountEvents(t.Context(), c.userID, c.eventType)
		if err != nil || n != c.want {
			t.Errorf("CountEvents(%q, %q) = %d, %v; want %d", c.userID, c.eventType, n, err, c.want)
		}
	}
	if data := queryString(t, s, `SELECT data FROM analytics_events WHERE type = 'failover'`); data != `{"from":"p1","to":"p2"}` {
		t.Errorf("stored data = %s", data)
	}
	times := queryInts(t, s, `SELECT created_at FROM analytics_events WHERE user_id = 'alice' AND type = 'turn' ORDER BY created_at`)
	if want := []int64{explicit.UnixMilli(), testEpoch.UnixMilli(), testEpoch.UnixMilli()}; !slices.Equal(times, want) {
		t.Errorf("created_at = %v, want %v (clock time unless the event names one)", times, want)
	}
}

// TestTruncateMessageKeepsWhatWasPlayed: an interrupted spoken reply is cut to what the user
// heard, the generated text stays in the metadata, and another user cannot touch it.
func TestTruncateMessageKeepsWhatWasPlayed(t *testing.T) {
	forEachBackend(t, testTruncateMessageKeepsWhatWasPlayed)
}

func testTruncateMessageKeepsWhatWasPlayed(t *testing.T) {
	s, _, _ := newTestStore(t)
	sess := mustCreateSession(t, s, "alice")
	mustCreateSession(t, s, "mallory")
	msg := Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleAssistant, Content: "One. Two. Three.", Metadata: map[string]any{"provider": "offline"}}
	if err := s.AppendMessage(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateMessage(t.Context(), "mallory", sess.ID, msg.ID, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user's truncation: err = %v, want ErrNotFound", err)
	}
	if err := s.TruncateMessage(t.Context(), "alice", sess.ID, "msg_missing", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown message: err = %v, want ErrNotFound", err)
	}
	for _, played := range []string{"One. Two.", "One."} {
		if err := s.TruncateMessage(t.Context(), "alice", sess.ID, msg.ID, played); err != nil {
			t.Fatalf("TruncateMessage(%q): %v", played, err)
		}
	}
	got := mustListMessages(t, s, "alice", sess.ID, 0)
	if len(got) != 1 || got[0].Content != "One." {
		t.Fatalf("messages = %+v, want the one reply cut to %q", got, "One.")
	}
	md := got[0].Metadata
	if md["generated"] != "One. Two. Three." || md["truncated"] != true || md["provider"] != "offline" {
		t.Errorf("metadata = %v, want the generated text, truncated and the provider kept", md)
	}
}
