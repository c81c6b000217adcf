package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// The cleanup clears the rolling summaries of sessions idle for a day, once per idle period,
// and leaves active sessions, messages and unrelated keys alone.
func TestSessionCleanup(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	kv := session.NewMemoryKV(clock)
	ctx := t.Context()
	_, _ = store.EnsureUser(ctx, "alice", "free")
	newSession := func(messages int) string {
		id := session.NewID("ses")
		if err := store.CreateSession(ctx, session.Session{ID: id, UserID: "alice", AgentID: "fam"}); err != nil {
			t.Fatal(err)
		}
		for i := range messages {
			if err := store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: id, Role: session.RoleUser, Content: strings.Repeat("m", i+1)}); err != nil {
				t.Fatal(err)
			}
		}
		// The engine's summaries of this session (blocks of 4 messages here).
		for _, key := range SummaryKeys(id, messages, 4) {
			if err := kv.Set(ctx, key, []byte("summary"), 7*24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	idle := newSession(9) // summaries at 4 and 8
	clock.Advance(23 * time.Hour)
	active := newSession(5)
	_ = kv.Set(ctx, "ttscache:abc", []byte("keep"), 0)
	clock.Advance(2 * time.Hour)

	var also []string
	cleanup, err := NewCleanup(CleanupConfig{Sessions: store, KV: kv, SummaryBlock: 4, Batch: 1, Clock: clock,
		Also: func(_ context.Context, s session.IdleSession) error { also = append(also, s.ID); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := cleanup.Run(ctx); err != nil {
		t.Fatal(err)
	}
	exists := func(key string) bool { _, err := kv.Get(ctx, key); return err == nil }
	if exists("summary:"+idle+":4") || exists("summary:"+idle+":8") {
		t.Fatal("the idle session's summaries are still there")
	}
	if !exists("summary:"+active+":4") || !exists("ttscache:abc") {
		t.Fatal("the cleanup removed state it should not have")
	}
	if !slices.Equal(also, []string{idle}) {
		t.Fatalf("Also ran for %v", also)
	}
	if msgs, _ := store.ListMessages(ctx, "alice", idle, 0); len(msgs) != 9 {
		t.Fatalf("the idle session's messages: %d", len(msgs))
	}
	// Not again for the same idle period; again after new activity and another idle day.
	if err := cleanup.Run(ctx); err != nil || len(also) != 1 {
		t.Fatalf("second run: %v, Also ran for %v", err, also)
	}
	_ = store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: idle, Role: session.RoleUser, Content: "back"})
	clock.Advance(25 * time.Hour)
	if err := cleanup.Run(ctx); err != nil || len(also) != 3 {
		t.Fatalf("after another idle day: %v, Also ran for %v", err, also)
	}
	if exists("summary:" + active + ":4") {
		t.Fatal("the other session, idle now, kept its summary")
	}

	// A failing session fails the run (retried at the next tick) without stopping the others.
	clock.Advance(time.Hour)
	one, two := newSession(1), newSession(1)
	clock.Advance(25 * time.Hour)
	failing, _ := NewCleanup(CleanupConfig{Sessions: store, KV: kv, Clock: clock, Also: func(_ context.Context, s session.IdleSession) error {
		if s.ID == one {
			return errors.New("boom")
		}
		return nil
	}})
	if err := failing.Run(ctx); err == nil || !strings.Contains(err.Error(), "1 sessions failed") {
		t.Fatalf("run with a failing session: %v", err)
	}
	left, _ := store.IdleSessions(ctx, clock.Now().Add(-24*time.Hour), "", 10)
	if len(left) != 1 || left[0].ID != one {
		t.Fatalf("left for the next run: %+v (two is %s)", left, two)
	}
}

// Archival writes each finished conversation to archive/YYYY/MM/<id>.json.gz, gzipped JSON
// with its messages and costs, then removes the messages from the SQL store; active
// conversations stay. Through a queue it does the same, job by job.
func TestArchival(t *testing.T) {
	for _, viaQueue := range []bool{false, true} {
		name := map[bool]string{false: "inline", true: "through the queue"}[viaQueue]
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			store := openSQLite(t, clock)
			blobs, err := session.NewLocalBlobStore(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			ids := seedFinished(t, store, clock, 3)
			if err := store.RecordCost(ctx, session.Cost{ID: "c1", UserID: "alice", SessionID: ids[0], Kind: "tts", Units: 42, USD: 0.5}); err != nil {
				t.Fatal(err)
			}
			// A conversation idle only 29 days.
			clock.Advance(-29 * 24 * time.Hour)
			recent := session.NewID("ses")
			_ = store.CreateSession(ctx, session.Session{ID: recent, UserID: "alice", AgentID: "fam"})
			for _, role := range []string{session.RoleUser, session.RoleAssistant} {
				_ = store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: recent, Role: role, Content: "hi"})
			}
			clock.Advance(29 * 24 * time.Hour)

			cfg := ArchiveConfig{Store: store, Blobs: blobs, Clock: clock, Batch: 2}
			var q *MemoryQueue
			if viaQueue {
				q = NewMemoryQueue(MemoryQueueConfig{MaxAttempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }})
				cfg.Queue = q
			}
			archiver, err := NewArchiver(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := archiver.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if viaQueue {
				done := make(chan string, 10)
				background(t, func(ctx context.Context) {
					_ = q.Work(ctx, map[string]Handler{ArchiveJobType: func(ctx context.Context, j Job) error {
						err := archiver.Handle(ctx, j)
						done <- string(j.Payload)
						return err
					}})
				})
				for range ids {
					receive(t, done, "an archive job")
				}
				if d := q.DeadLetters(); len(d) != 0 {
					t.Fatalf("dead letters: %+v", d)
				}
			}
			for i, id := range ids {
				key := ArchiveKey(id, epoch)
				if !strings.HasPrefix(key, "archive/2023/11/") || !strings.HasSuffix(key, id+".json.gz") {
					t.Fatalf("archive key %q", key)
				}
				arc, err := ReadArchive(ctx, blobs, key)
				if err != nil {
					t.Fatalf("archive of %s: %v", id, err)
				}
				if arc.Session.ID != id || arc.Session.AgentID != "fam" || len(arc.Messages) != 2 || arc.Messages[1].Role != session.RoleAssistant ||
					arc.Messages[0].Content != strings.Repeat("x", i+1) {
					t.Fatalf("archive of %s: %+v", id, arc)
				}
				if (i == 0) != (len(arc.Costs) == 1) || (i == 0 && arc.Costs[0].Units != 42) {
					t.Fatalf("costs in the archive of %s: %+v", id, arc.Costs)
				}
				if msgs, _ := store.ListMessages(ctx, "alice", id, 0); len(msgs) != 0 {
					t.Fatalf("%s kept %d messages", id, len(msgs))
				}
			}
			if msgs, _ := store.ListMessages(ctx, "alice", recent, 0); len(msgs) != 2 {
				t.Fatalf("a conversation idle 29 days was archived")
			}
			if _, err := blobs.Get(ctx, ArchiveKey(recent, epoch)); !errors.Is(err, session.ErrBlobNotFound) {
				t.Fatalf("an archive of the recent conversation: %v", err)
			}
			// Nothing is archived twice.
			if ok, err := archiver.ArchiveSession(ctx, ids[0]); ok || err != nil {
				t.Fatalf("archiving again: %v %v", ok, err)
			}
			if err := archiver.Handle(ctx, Job{ID: "j", Type: ArchiveJobType, Payload: []byte(`{}`)}); err == nil {
				t.Fatal("a job without a session id was accepted")
			}
		})
	}
}

// recordingAnalytics records which hours were aggregated.
type recordingAnalytics struct {
	latest time.Time
	hours  []time.Time
}

func (r *recordingAnalytics) AggregateAnalytics(_ context.Context, hour time.Time) (int, error) {
	r.hours = append(r.hours, hour)
	return 0, nil
}

func (r *recordingAnalytics) LatestAnalyticsHour(context.Context) (time.Time, error) {
	return r.latest, nil
}

// The roll-up aggregates the hours that are over: the recent ones again each run, older ones
// back to the last aggregated hour, within the backfill limit.
func TestAnalyticsRollUpWindow(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 20, 0, 0, time.UTC)
	h := func(hour int) time.Time { return time.Date(2026, 3, 4, hour, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		latest time.Time
		want   []time.Time
	}{
		{"up to date: the last three hours", h(9), []time.Time{h(7), h(8), h(9)}},
		{"after an outage: from the last aggregated hour", h(6), []time.Time{h(6), h(7), h(8), h(9)}},
		{"never aggregated: the backfill", time.Time{}, []time.Time{h(5), h(6), h(7), h(8), h(9)}},
		{"older than the backfill", h(1), []time.Time{h(5), h(6), h(7), h(8), h(9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: now}
			store := &recordingAnalytics{latest: tt.latest}
			a, err := NewAnalyticsRollUp(AnalyticsConfig{Store: store, Backfill: 5 * time.Hour, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Task(time.Hour).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(store.hours, tt.want) {
				t.Fatalf("aggregated %v, want %v", store.hours, tt.want)
			}
		})
	}
}

// The roll-up task against the real store: the events of the last hour show up in usage.
func TestAnalyticsRollUpOnStore(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	ctx := t.Context()
	_, _ = store.EnsureUser(ctx, "alice", "premium")
	for range 3 {
		if err := store.RecordEvent(ctx, session.Event{Type: "turn.completed", UserID: "alice", AgentID: "fam", Data: map[string]any{"intent": "greeting"}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Hour)
	a, _ := NewAnalyticsRollUp(AnalyticsConfig{Store: store, Clock: clock})
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := store.AnalyticsUsage(ctx, epoch.Add(-time.Hour), clock.Now())
	if err != nil || len(rows) != 1 || rows[0].Turns != 3 || rows[0].Tier != session.TierText || rows[0].Intent != "greeting" || rows[0].AgentID != "fam" {
		t.Fatalf("usage after the roll-up: %+v %v", rows, err)
	}
}

// recordingSpeaker records the sentences it was asked to warm.
type recordingSpeaker struct {
	mu   sync.Mutex
	said []string
	fail string
}

func (r *recordingSpeaker) Warm(_ context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.said = append(r.said, text)
	if text == r.fail {
		return errors.New("tts down")
	}
	return nil
}

// The warmer synthesizes the most frequent assistant sentences of the last day, counting a
// sentence across the replies it appears in.
func TestSentenceWarmer(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	ctx := t.Context()
	_, _ = store.EnsureUser(ctx, "alice", "free")
	_ = store.CreateSession(ctx, session.Session{ID: "s", UserID: "alice", AgentID: "fam"})
	say := func(role, text string, times int) {
		for range times {
			if err := store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: "s", Role: role, Content: text}); err != nil {
				t.Fatal(err)
			}
		}
	}
	say(session.RoleAssistant, "An old favourite. Said long ago.", 9)
	clock.Advance(2 * 24 * time.Hour)
	say(session.RoleAssistant, "Hello! How can I help you today?", 4)
	say(session.RoleAssistant, "Hello! What is the weather like?", 2)
	say(session.RoleAssistant, "I set a reminder for 5 pm.\nAnything else?", 3)
	say(session.RoleAssistant, "Said once.", 1)
	say(session.RoleAssistant, "42.", 5)
	say(session.RoleUser, "Hello!", 20)
	say(session.RoleAssistant, strings.Repeat("very long ", 30)+"sentence.", 3)

	speaker := &recordingSpeaker{fail: "Anything else?"}
	w, err := NewSentenceWarmer(SentenceWarmerConfig{Replies: store, Speaker: speaker, Top: 5, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	err = WarmTask(time.Hour, w).Run(ctx)
	want := []string{"Hello!", "How can I help you today?", "Anything else?", "I set a reminder for 5 pm.", "What is the weather like?"}
	if !reflect.DeepEqual(speaker.said, want) {
		t.Fatalf("warmed %q, want %q", speaker.said, want)
	}
	if err == nil || !strings.Contains(err.Error(), "tts down") {
		t.Fatalf("a failed sentence: %v", err)
	}
}

func TestSplitSentences(t *testing.T) {
	tests := map[string][]string{
		"One. Two! Three?":            {"One.", " Two!", " Three?"},
		"Pi is 3.14 today.":           {"Pi is 3.14 today."},
		"He said \"Stop.\" Then left": {"He said \"Stop.\"", " Then left"},
		"Line one\nLine two":          {"Line one", "Line two"},
		"Wait... what?!":              {"Wait...", " what?!"},
	}
	for in, want := range tests {
		if got := splitSentences(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitSentences(%q) = %q, want %q", in, got, want)
		}
	}
}

// pollerFunc adapts a function to ReminderPoller.
type pollerFunc func(ctx context.Context) (int, error)

func (f pollerFunc) Poll(ctx context.Context) (int, error) { return f(ctx) }

// The reminders task polls at every tick under the lock, without the run log's interval.
func TestRemindersTask(t *testing.T) {
	polls := 0
	runLog := NewMemoryRunLog()
	task := RemindersTask(pollerFunc(func(context.Context) (int, error) { polls++; return 1, nil }), 0)
	if task.Name != TaskReminders || task.Interval != time.Second || !task.EveryTick {
		t.Fatalf("task: %+v", task)
	}
	s := newScheduler(t, SchedulerConfig{Clock: newFakeClock(), RunLog: runLog}, task)
	for range 3 {
		if res := s.Tick(t.Context(), TaskReminders); res.Outcome != Ran {
			t.Fatalf("tick: %+v", res)
		}
	}
	if polls != 3 || len(runLog.Runs()) != 0 {
		t.Fatalf("%d polls, %d runs logged; want 3 polls and no successful run logged", polls, len(runLog.Runs()))
	}
}
