package session

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// A session is idle once it has had no activity for the idle period; once its state is
// cleared it is not listed again until it has been active since.
func TestIdleSessions(t *testing.T) { forEachBackend(t, testIdleSessions) }

func testIdleSessions(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	old := mustCreateSession(t, s, "alice")
	appendContents(t, s, old.ID, "one", "two", "three")
	clock.Advance(2 * time.Hour)
	fresh := mustCreateSession(t, s, "bob")
	appendContents(t, s, fresh.ID, "hello")

	idleSince := clock.Now().Add(-time.Hour)
	got, err := s.IdleSessions(ctx, idleSince, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != old.ID || got[0].UserID != "alice" || got[0].Messages != 3 || !got[0].UpdatedAt.Equal(testEpoch) {
		t.Fatalf("IdleSessions = %+v, want only alice's session with 3 messages", got)
	}
	if more, _ := s.IdleSessions(ctx, idleSince, old.ID, 10); len(more) != 0 {
		t.Fatalf("after the cursor: %+v", more)
	}
	if err := s.MarkSessionStateCleared(ctx, old.ID, got[0].UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.IdleSessions(ctx, idleSince, "", 10); len(again) != 0 {
		t.Fatalf("a cleared session is listed again: %+v", again)
	}
	// New activity makes it due again once it is idle again.
	appendContents(t, s, old.ID, "four")
	clock.Advance(2 * time.Hour)
	again, _ := s.IdleSessions(ctx, clock.Now().Add(-time.Hour), "", 10)
	if len(again) != 2 {
		t.Fatalf("after new activity and another idle period: %+v, want both sessions", again)
	}
}

// Archival reads a session whole from one snapshot and marks it archived only if it has not
// been active since; its messages go, its costs stay in the ledger.
func TestSessionArchival(t *testing.T) { forEachBackend(t, testSessionArchival) }

func testSessionArchival(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	sess := mustCreateSession(t, s, "alice")
	appendContents(t, s, sess.ID, "hi", "how are you")
	if err := s.AppendMessage(ctx, Message{ID: "m-a", SessionID: sess.ID, Role: RoleAssistant, Content: "Fine.", Metadata: map[string]any{"intent": "greeting"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCost(ctx, Cost{ID: "m-a", UserID: "alice", AgentID: "agent-1", SessionID: sess.ID, Kind: "llm", Model: "m", InputTokens: 10, USD: 0.01, Cached: true}); err != nil {
		t.Fatal(err)
	}
	other := mustCreateSession(t, s, "bob")
	appendContents(t, s, other.ID, "keep me")
	clock.Advance(31 * 24 * time.Hour)

	list, err := s.ArchivableSessions(ctx, clock.Now().Add(-30*24*time.Hour), "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("ArchivableSessions = %d sessions, %v; want 2", len(list), err)
	}
	a, err := s.LoadSessionArchive(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Format != SessionArchiveFormat || a.Session.UserID != "alice" || len(a.Messages) != 3 || a.Messages[2].Content != "Fine." ||
		a.Messages[2].Metadata["intent"] != "greeting" || a.Messages[0].Seq != 1 || len(a.Costs) != 1 || !a.Costs[0].Cached || a.Costs[0].USD != 0.01 {
		t.Fatalf("archive: %+v", a)
	}

	// Active since it was read: not archived, nothing deleted.
	if ok, err := s.MarkSessionArchived(ctx, sess.ID, a.Session.UpdatedAt.Add(-time.Millisecond), "archive/x.json.gz"); err != nil || ok {
		t.Fatalf("MarkSessionArchived with a stale activity time = %v, %v; want false", ok, err)
	}
	if got := mustListMessages(t, s, "alice", sess.ID, 0); len(got) != 3 {
		t.Fatalf("messages after a refused archival: %d", len(got))
	}
	ok, err := s.MarkSessionArchived(ctx, sess.ID, a.Session.UpdatedAt, "archive/x.json.gz")
	if err != nil || !ok {
		t.Fatalf("MarkSessionArchived = %v, %v", ok, err)
	}
	if ok, _ := s.MarkSessionArchived(ctx, sess.ID, a.Session.UpdatedAt, "archive/y.json.gz"); ok {
		t.Fatal("archived twice")
	}
	if got := mustListMessages(t, s, "alice", sess.ID, 0); len(got) != 0 {
		t.Fatalf("messages left in hot storage: %v", contentsOf(got))
	}
	if got := mustListMessages(t, s, "bob", other.ID, 0); len(got) != 1 {
		t.Fatalf("another session lost its messages: %v", got)
	}
	if key, err := s.SessionArchiveKey(ctx, sess.ID); err != nil || key != "archive/x.json.gz" {
		t.Fatalf("SessionArchiveKey = %q, %v", key, err)
	}
	if _, err := s.LoadSessionArchive(ctx, sess.ID); !errors.Is(err, ErrSessionArchived) {
		t.Fatalf("loading an archived session: %v", err)
	}
	if _, err := s.LoadSessionArchive(ctx, "ses_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("loading a missing session: %v", err)
	}
	if totals, _ := s.CostTotals(ctx, "2000-01-01", "2100-01-01", ByNothing, "alice"); len(totals) != 1 || totals[0].Requests != 1 {
		t.Fatalf("the cost ledger changed: %+v", totals)
	}
	list, _ = s.ArchivableSessions(ctx, clock.Now().Add(-30*24*time.Hour), "", 10)
	if len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("after archival, archivable: %+v", list)
	}
}

// The run log keeps the last success through failed runs.
func TestJobRunLog(t *testing.T) { forEachBackend(t, testJobRunLog) }

func testJobRunLog(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	if last, err := s.LastJobSuccess(ctx, "archive"); err != nil || !last.IsZero() {
		t.Fatalf("a job never run: %v, %v", last, err)
	}
	ok := testEpoch.Add(time.Minute)
	if err := s.RecordJobRun(ctx, JobRun{Name: "archive", Replica: "a", StartedAt: testEpoch, FinishedAt: ok}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordJobRun(ctx, JobRun{Name: "archive", Replica: "b", StartedAt: ok, FinishedAt: ok.Add(time.Hour), Err: "boom"}); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LastJobSuccess(ctx, "archive"); err != nil || !last.Equal(ok) {
		t.Fatalf("LastJobSuccess = %v, %v; want %v", last, err, ok)
	}
	got := queryInts(t, s, `SELECT runs FROM job_runs WHERE name = ? UNION ALL SELECT failures FROM job_runs WHERE name = ?`, "archive", "archive")
	if !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("runs, failures = %v", got)
	}
}

func TestFrequentReplies(t *testing.T) { forEachBackend(t, testFrequentReplies) }

func testFrequentReplies(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	sess := mustCreateSession(t, s, "alice")
	say := func(role, content string) {
		t.Helper()
		if err := s.AppendMessage(ctx, Message{ID: NewID("msg"), SessionID: sess.ID, Role: role, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	say(RoleAssistant, "Too old.")
	clock.Advance(2 * 24 * time.Hour)
	for range 3 {
		say(RoleAssistant, "Hello! How can I help?")
	}
	say(RoleAssistant, "Goodbye.")
	say(RoleUser, "Hello! How can I help?")
	got, err := s.FrequentReplies(ctx, clock.Now().Add(-24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []ReplyCount{{"Hello! How can I help?", 3}, {"Goodbye.", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FrequentReplies = %+v, want %+v", got, want)
	}
}
