package pa_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/session"
)

// inbox records delivered reminders and signals each one.
type inbox struct {
	mu   sync.Mutex
	got  []session.Reminder
	seen chan session.Reminder
	fail error
}

func newInbox() *inbox { return &inbox{seen: make(chan session.Reminder, 100)} }

func (b *inbox) DeliverReminder(_ context.Context, r session.Reminder) error {
	b.mu.Lock()
	b.got = append(b.got, r)
	b.mu.Unlock()
	b.seen <- r
	return b.fail
}

func (b *inbox) all() []session.Reminder {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]session.Reminder(nil), b.got...)
}

// schedulerRun is a scheduler running in its own goroutine, driven by a tick channel.
type schedulerRun struct {
	ticks chan time.Time
	stop  context.CancelFunc
	done  chan error
}

func startScheduler(t *testing.T, q pa.ReminderQueue, d pa.Deliverer, clock session.Clock) *schedulerRun {
	t.Helper()
	run := &schedulerRun{ticks: make(chan time.Time), done: make(chan error, 1)}
	s, err := pa.NewScheduler(pa.SchedulerConfig{Reminders: q, Deliverer: d, Clock: clock, Logger: slog.New(slog.DiscardHandler),
		Ticker: func(time.Duration) (<-chan time.Time, func()) { return run.ticks, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run.stop = cancel
	go func() { run.done <- s.Run(ctx) }()
	t.Cleanup(run.shutdown)
	return run
}

// tick runs one poll; the unbuffered send returns once the scheduler took it, and the next
// tick only after that poll finished.
func (r *schedulerRun) tick() { r.ticks <- time.Time{} }

func (r *schedulerRun) shutdown() {
	if r.stop == nil {
		return
	}
	r.stop()
	<-r.done
	r.stop = nil
}

func openStore(t *testing.T, path string, clock session.Clock) *session.SQLStore {
	t.Helper()
	s, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: path, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addReminder(t *testing.T, s *session.SQLStore, user, text string, due time.Time) session.Reminder {
	t.Helper()
	if _, err := s.EnsureUser(context.Background(), user, ""); err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateReminder(context.Background(), session.Reminder{UserID: user, Text: text, DueAt: due, TimeZone: "America/New_York"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A reminder due in two seconds fires when the clock reaches it, not before, exactly once.
func TestSchedulerFiresWhenDue(t *testing.T) {
	clock := &manualClock{now: scenarioNow}
	store := openStore(t, filepath.Join(t.TempDir(), "pa.db"), clock)
	r := addReminder(t, store, "nina", "call mom", scenarioNow.Add(2*time.Second))
	box := newInbox()
	run := startScheduler(t, store, box, clock)
	run.tick()
	run.tick() // the first poll (at start) and one tick: nothing due yet
	if got := box.all(); len(got) != 0 {
		t.Fatalf("fired early: %+v", got)
	}
	clock.Set(scenarioNow.Add(2 * time.Second))
	run.tick()
	fired := <-box.seen
	if fired.ID != r.ID || fired.Status != session.ReminderFired || fired.UserID != "nina" {
		t.Fatalf("delivered %+v", fired)
	}
	clock.Set(scenarioNow.Add(time.Minute))
	run.tick()
	run.tick()
	if got := box.all(); len(got) != 1 {
		t.Fatalf("delivered %d times", len(got))
	}
	stored, _ := store.GetReminder(context.Background(), "nina", r.ID)
	if stored.Status != session.ReminderFired || stored.FiredAt.IsZero() {
		t.Fatalf("stored %+v", stored)
	}
}

// State is in SQL: a scheduler stopped before a reminder is due, and a new one started on the
// same database file after it fell due (a restart), fires it.
func TestSchedulerFiresPendingReminderAfterRestart(t *testing.T) {
	clock := &manualClock{now: scenarioNow}
	path := filepath.Join(t.TempDir(), "pa.db")
	first := openStore(t, path, clock)
	r := addReminder(t, first, "nina", "take out the bins", scenarioNow.Add(time.Hour))
	box := newInbox()
	run := startScheduler(t, first, box, clock)
	run.tick()
	run.shutdown()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := box.all(); len(got) != 0 {
		t.Fatalf("fired before due: %+v", got)
	}

	clock.Set(scenarioNow.Add(2 * time.Hour)) // the process was down when it fell due
	second := openStore(t, path, clock)
	box2 := newInbox()
	startScheduler(t, second, box2, clock)
	if fired := <-box2.seen; fired.ID != r.ID || fired.Text != "take out the bins" {
		t.Fatalf("after restart delivered %+v", fired)
	}
}

// Two schedulers (two replicas) on one database, polling at the same time, fire every
// reminder exactly once between them.
func TestConcurrentSchedulersFireEachReminderOnce(t *testing.T) {
	clock := &manualClock{now: scenarioNow}
	path := filepath.Join(t.TempDir(), "pa.db")
	a, b := openStore(t, path, clock), openStore(t, path, clock)
	const n = 30
	for i := range n {
		addReminder(t, a, fmt.Sprint("user", i%3), fmt.Sprint("reminder ", i), scenarioNow.Add(-time.Duration(i)*time.Second))
	}
	box := newInbox()
	sa, _ := pa.NewScheduler(pa.SchedulerConfig{Reminders: a, Deliverer: box, Clock: clock, Batch: 7, Logger: slog.New(slog.DiscardHandler)})
	sb, _ := pa.NewScheduler(pa.SchedulerConfig{Reminders: b, Deliverer: box, Clock: clock, Batch: 5, Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i, s := range []*pa.Scheduler{sa, sb, sa, sb} {
		wg.Go(func() {
			fired, err := s.Poll(context.Background())
			if err != nil {
				t.Error(err)
			}
			counts[i] = fired
		})
	}
	wg.Wait()
	delivered := map[string]int{}
	for _, r := range box.all() {
		delivered[r.ID]++
	}
	if len(delivered) != n || counts[0]+counts[1]+counts[2]+counts[3] != n {
		t.Fatalf("delivered %d distinct of %d, fired counts %v", len(delivered), n, counts)
	}
	for id, c := range delivered {
		if c != 1 {
			t.Errorf("reminder %s delivered %d times", id, c)
		}
	}
}

// A failed delivery is logged, not retried (the reminder is claimed), and does not stop the
// others.
func TestSchedulerDeliveryFailureDoesNotBlockOthers(t *testing.T) {
	clock := &manualClock{now: scenarioNow}
	store := openStore(t, filepath.Join(t.TempDir(), "pa.db"), clock)
	addReminder(t, store, "nina", "one", scenarioNow.Add(-time.Minute))
	addReminder(t, store, "nina", "two", scenarioNow)
	box := newInbox()
	box.fail = errors.New("no open session")
	s, _ := pa.NewScheduler(pa.SchedulerConfig{Reminders: store, Deliverer: box, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if fired, err := s.Poll(context.Background()); err != nil || fired != 2 {
		t.Fatalf("poll fired %d, %v", fired, err)
	}
	if fired, _ := s.Poll(context.Background()); fired != 0 {
		t.Fatalf("a failed delivery was retried")
	}
}

func TestDeliverersFanOutAndJoinErrors(t *testing.T) {
	var got []string
	ok := pa.DelivererFunc(func(_ context.Context, r session.Reminder) error { got = append(got, "ws:"+r.ID); return nil })
	bad := pa.DelivererFunc(func(context.Context, session.Reminder) error { return errors.New("sms down") })
	err := pa.Deliverers{bad, ok}.DeliverReminder(context.Background(), session.Reminder{ID: "rem_1"})
	if err == nil || err.Error() != "sms down" || len(got) != 1 || got[0] != "ws:rem_1" {
		t.Fatalf("err %v, delivered %v", err, got)
	}
}

func TestReminderEventWording(t *testing.T) {
	ev := pa.NewReminderEvent(session.Reminder{ID: "rem_1", Text: "call my mom", DueAt: time.Date(2025, 3, 4, 22, 0, 0, 0, time.UTC), TimeZone: "America/New_York"})
	raw, _ := json.Marshal(ev)
	want := `{"type":"reminder","text":"Reminder: call your mom","reminder":{"id":"rem_1","text":"call my mom","dueAt":"2025-03-04T22:00:00Z","timeZone":"America/New_York","local":"Tuesday, March 4 at 5:00 PM EST"}}`
	if string(raw) != want {
		t.Fatalf("event\n%s\nwant\n%s", raw, want)
	}
}

func TestNewSchedulerNeedsItsParts(t *testing.T) {
	if _, err := pa.NewScheduler(pa.SchedulerConfig{}); err == nil {
		t.Fatal("a scheduler without a queue and deliverer was built")
	}
	if _, err := pa.New(pa.Config{}); err == nil {
		t.Fatal("an agent without a store was built")
	}
}
