package session

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
)

// fillTables writes at least one row into the tables the store's features use, through their
// own methods, with awkward values: quotes, newlines, unicode, large and fractional numbers,
// raw bytes.
func fillTables(t *testing.T, s *SQLStore, clock *testClock) {
	t.Helper()
	ctx := t.Context()
	mustEnsureUser(t, s, "alice", "paid")
	sess := mustCreateSession(t, s, "alice")
	appendContents(t, s, sess.ID, "it's \"quoted\"\nand multi-line", "naïve café ☕ 𝄞")
	if err := s.AppendMessage(ctx, Message{ID: "m-assistant", SessionID: sess.ID, Role: RoleAssistant, Content: "Sure.", Metadata: map[string]any{"intent": "howto", "n": 1.5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEvent(ctx, Event{Type: "turn.completed", UserID: "alice", SessionID: sess.ID, AgentID: "fam", Data: map[string]any{"intent": "howto", "cost": 0.1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCost(ctx, Cost{ID: "m-assistant", UserID: "alice", AgentID: "fam", SessionID: sess.ID, Kind: "llm", Model: "gpt", InputTokens: math.MaxInt32 + 7, USD: 0.1 + 0.2, Cached: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateKey(ctx, "alice", "paid", "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDocument(ctx, KBDocument{KB: "default", Name: "faq.md", Title: "FAQ", ContentHash: "abc"},
		[]KBChunk{{Section: "Intro", Text: "Hello", Tokens: 2}, {Text: "World", Tokens: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEmbeddings(ctx, []Embedding{{Key: "k1", Model: "m", Vector: []float32{0.5, -1.25, float32(math.Pi), 0}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTicket(ctx, Ticket{UserID: "alice", Subject: "Broken", Status: TicketOpen, Priority: PriorityHigh}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTask(ctx, Task{UserID: "alice", Title: "milk", List: "shopping"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateReminder(ctx, Reminder{UserID: "alice", Text: "call mom", DueAt: clock.Now().Add(time.Hour), TimeZone: "Europe/Paris"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNote(ctx, Note{UserID: "alice", Title: "n", Body: "body"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "alice", Title: "dentist", Start: clock.Now(), End: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContact(ctx, Contact{UserID: "alice", Name: "Bob", Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AggregateAnalytics(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordJobRun(ctx, JobRun{Name: "archive", StartedAt: clock.Now(), FinishedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// backupTables reads a backup into its tables: header and end lines dropped, each table's
// column names and its rows as sorted JSON lines, so two databases compare by content.
func backupTables(t *testing.T, backup []byte) map[string][]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	out := map[string][]string{}
	current := ""
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if raw[0] == '[' {
			out[current] = append(out[current], string(raw))
			continue
		}
		var line backupLine
		if err := json.Unmarshal(raw, &line); err != nil {
			t.Fatal(err)
		}
		if line.Table != "" {
			current = line.Table
			out[current] = []string{strings.Join(line.Columns, ",") + " " + strings.Join(line.Types, ",")}
		}
	}
	for _, rows := range out {
		slices.Sort(rows[1:])
	}
	return out
}

func backupOf(t *testing.T, s *SQLStore) ([]byte, BackupStats) {
	t.Helper()
	var buf bytes.Buffer
	stats, err := s.Backup(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), stats
}

// A backup restores into a fresh database of either engine with every row and value intact,
// whichever engine it was taken from.
func TestBackupRestoreAcrossEngines(t *testing.T) {
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "db", "x.db") },
		"postgres": func(t *testing.T) string { return pgtest.Shared(t).NewDatabase(t) },
	}
	for _, from := range []string{"sqlite", "postgres"} {
		for _, to := range []string{"sqlite", "postgres"} {
			t.Run(from+" to "+to, func(t *testing.T) {
				clock := newTestClock()
				src := openStoreAt(t, engines[from](t), clock)
				fillTables(t, src, clock)
				backup, stats := backupOf(t, src)
				want := backupTables(t, backup)
				if stats.Dialect != from || stats.Schema < 6 || stats.Rows < 15 || stats.Tables != len(want) {
					t.Fatalf("backup stats %+v for %d tables", stats, len(want))
				}
				for _, table := range []string{"users", "sessions", "messages", "analytics_events", "costs", "api_keys", "kb_documents", "kb_chunks",
					"kb_embeddings", "kb_revisions", "tickets", "pa_tasks", "pa_reminders", "pa_notes", "pa_events", "pa_contacts", "analytics_hourly", "job_runs"} {
					if len(want[table]) < 2 {
						t.Errorf("the backup has no rows of %s", table)
					}
				}
				if _, ok := want["schema_migrations"]; ok {
					t.Error("schema_migrations was backed up")
				}

				dst := openStoreAt(t, engines[to](t), newTestClock())
				restored, err := dst.Restore(t.Context(), bytes.NewReader(backup), RestoreOptions{})
				if err != nil {
					t.Fatalf("Restore: %v", err)
				}
				if restored.Rows != stats.Rows || restored.Tables != stats.Tables || restored.Dialect != from {
					t.Fatalf("restored %+v, backed up %+v", restored, stats)
				}
				again, _ := backupOf(t, dst)
				if got := backupTables(t, again); !reflect.DeepEqual(got, want) {
					for table := range want {
						if !reflect.DeepEqual(got[table], want[table]) {
							t.Errorf("table %s:\n got %q\nwant %q", table, got[table], want[table])
						}
					}
					t.FailNow()
				}
				// And through the store's own reads.
				vecs, err := dst.GetEmbeddings(t.Context(), []string{"k1"})
				if err != nil || !reflect.DeepEqual(vecs["k1"], []float32{0.5, -1.25, float32(math.Pi), 0}) {
					t.Fatalf("embedding after restore: %v, %v", vecs, err)
				}
				totals, err := dst.CostTotals(t.Context(), "2000-01-01", "2100-01-01", ByNothing, "alice")
				if err != nil || len(totals) != 1 || totals[0].USD != 0.1+0.2 || totals[0].CachedRequests != 1 {
					t.Fatalf("costs after restore: %+v, %v", totals, err)
				}
			})
		}
	}
}

// Restore refuses a database that holds rows unless forced, and a broken backup changes
// nothing.
func TestRestoreRefusals(t *testing.T) { forEachBackend(t, testRestoreRefusals) }

func testRestoreRefusals(t *testing.T) {
	src, clock, _ := newTestStore(t)
	fillTables(t, src, clock)
	backup, stats := backupOf(t, src)

	dst, _, _ := newTestStore(t)
	mustEnsureUser(t, dst, "zed", "free")
	if _, err := dst.Restore(t.Context(), bytes.NewReader(backup), RestoreOptions{}); !errors.Is(err, ErrDatabaseNotEmpty) || !strings.Contains(err.Error(), "users") {
		t.Fatalf("restore into a database with a user: %v, want ErrDatabaseNotEmpty naming the table", err)
	}

	// Truncated: no end line. Nothing of it stays.
	zr, _ := gzip.NewReader(bytes.NewReader(backup))
	plain, _ := io.ReadAll(zr)
	lines := strings.SplitAfter(strings.TrimSuffix(string(plain), "\n"), "\n")
	var cut bytes.Buffer
	zw := gzip.NewWriter(&cut)
	_, _ = io.WriteString(zw, strings.Join(lines[:len(lines)-1], ""))
	_ = zw.Close()
	if _, err := dst.Restore(t.Context(), bytes.NewReader(cut.Bytes()), RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated backup: %v", err)
	}
	if _, err := dst.GetSession(t.Context(), "zed", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if u, err := dst.EnsureUser(t.Context(), "zed", ""); err != nil || u.Plan != "free" {
		t.Fatalf("a failed restore changed the database: %+v %v", u, err)
	}
	if n := queryInts(t, dst, `SELECT COUNT(*) FROM users`); n[0] != 1 {
		t.Fatalf("a failed restore left %d users", n[0])
	}

	// A schema newer than the binary's, and something that is no backup at all.
	var newer bytes.Buffer
	zw = gzip.NewWriter(&newer)
	_ = json.NewEncoder(zw).Encode(backupLine{Format: BackupFormat, Version: 1, Dialect: "sqlite", Schema: 9999})
	_ = zw.Close()
	if _, err := dst.Restore(t.Context(), &newer, RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("a newer schema: %v", err)
	}
	if _, err := dst.Restore(t.Context(), strings.NewReader("hello"), RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("not a backup: %v", err)
	}

	// Forced: the database holds the backup and nothing else.
	got, err := dst.Restore(t.Context(), bytes.NewReader(backup), RestoreOptions{Force: true})
	if err != nil || got.Rows != stats.Rows {
		t.Fatalf("forced restore: %+v, %v", got, err)
	}
	if n := queryInts(t, dst, `SELECT COUNT(*) FROM users WHERE id = 'zed'`); n[0] != 0 {
		t.Fatal("a forced restore kept a row the backup does not have")
	}
	again, _ := backupOf(t, dst)
	if !reflect.DeepEqual(backupTables(t, again), backupTables(t, backup)) {
		t.Fatal("a forced restore differs from the backup")
	}
}

// A backup is one instant of the database: rows written while it streams are not in it.
func TestBackupIsASnapshot(t *testing.T) { forEachBackend(t, testBackupIsASnapshot) }

func testBackupIsASnapshot(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	for i := range 50 {
		mustEnsureUser(t, s, "user"+strings.Repeat("x", i), "free")
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Backup(ctx, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	// Read the first bytes: the backup's transaction has begun and read. Then write.
	first := make([]byte, 1)
	if _, err := io.ReadFull(pr, first); err != nil {
		t.Fatal(err)
	}
	// The backup is blocked writing to the pipe, its transaction open: writers go on.
	if _, err := s.EnsureUser(ctx, "late", "free"); err != nil {
		t.Fatalf("a write during the backup failed: %v", err)
	}
	rest, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tables := backupTables(t, append(first, rest...))
	if n := len(tables["users"]) - 1; n != 50 {
		t.Fatalf("the backup holds %d users, want the 50 of its snapshot", n)
	}
}
