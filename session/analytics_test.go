package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// batchRecorder wraps a writer: it counts the writes, fails the first failFirst of them (or
// every one with failAlways), and reports each write's size on writes.
type batchRecorder struct {
	inner      EventBatchWriter
	failFirst  int
	failAlways bool
	writes     chan int

	mu     sync.Mutex
	calls  int
	failed int
}

func newBatchRecorder(inner EventBatchWriter) *batchRecorder {
	return &batchRecorder{inner: inner, writes: make(chan int, 100_000)}
}

var errDatabaseDown = errors.New("connection refused (test)")

func (r *batchRecorder) RecordEvents(ctx context.Context, events []Event) error {
	r.mu.Lock()
	r.calls++
	fail := r.failAlways || r.calls <= r.failFirst
	if fail {
		r.failed++
	}
	r.mu.Unlock()
	if fail {
		return errDatabaseDown
	}
	if err := r.inner.RecordEvents(ctx, events); err != nil {
		return err
	}
	r.writes <- len(events)
	return nil
}

func (r *batchRecorder) counts() (calls, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.failed
}

// logRecords is a slog handler that keeps every record and signals each error-level one.
type logRecords struct {
	mu     sync.Mutex
	lines  []string
	errors chan string
}

func newLogRecords() *logRecords { return &logRecords{errors: make(chan string, 100)} }

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, b.String())
	h.mu.Unlock()
	if r.Level >= slog.LevelError {
		h.errors <- b.String()
	}
	return nil
}

func (h *logRecords) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// never is an After whose time never comes: only the batch size (or Close) writes.
func never(time.Duration) <-chan time.Time { return nil }

// at once is an After whose time has already come: backoffs end immediately.
func atOnce(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- testEpoch
	return ch
}

// manualTimers is an After the test fires by hand: each wait is announced on asked.
type manualTimers struct{ asked chan chan time.Time }

func (m *manualTimers) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	m.asked <- ch
	return ch
}

// runBuffer starts b.Run and returns a function that closes b and waits for Run.
func runBuffer(t *testing.T, b *AnalyticsBuffer) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var closeErr error
	stop := func() error {
		once.Do(func() {
			closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelClose()
			closeErr = b.Close(closeCtx)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return closeErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func turnEvent(i int) Event {
	return Event{Type: EventTurnCompleted, UserID: "alice", SessionID: "ses_1", AgentID: "fam",
		Data: map[string]any{"n": i}}
}

func countAllEvents(t *testing.T, s *SQLStore) int64 {
	t.Helper()
	return queryInts(t, s, `SELECT COUNT(*) FROM analytics_events`)[0]
}

func TestRecordEventsWritesOneBatch(t *testing.T) { forEachBackend(t, testRecordEventsWritesOneBatch) }

func testRecordEventsWritesOneBatch(t *testing.T) {
	s, _, _ := newTestStore(t)
	explicit := testEpoch.Add(-3 * time.Hour)
	// More than one statement's worth, so the chunking is exercised too.
	events := make([]Event, 1203)
	for i := range events {
		events[i] = turnEvent(i)
	}
	events[7].CreatedAt = explicit
	if err := s.RecordEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	if n := countAllEvents(t, s); n != 1203 {
		t.Fatalf("stored %d events, want 1203", n)
	}
	if got := queryInts(t, s, `SELECT created_at FROM analytics_events WHERE data = ?`, `{"n":7}`); len(got) != 1 || got[0] != explicit.UnixMilli() {
		t.Errorf("an event's own time was not kept: %v", got)
	}
	if got := queryInts(t, s, `SELECT COUNT(*) FROM analytics_events WHERE created_at = ?`, testEpoch.UnixMilli()); got[0] != 1202 {
		t.Errorf("events without a time should get the store clock's: %v", got)
	}
	if err := s.RecordEvents(t.Context(), nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}
}

// Acceptance 4 of the scale-out issue: 10,000 events make at most a few hundred writes, and a
// graceful shutdown loses none.
func TestAnalyticsBufferTenThousandEvents(t *testing.T) {
	forEachBackend(t, testAnalyticsBufferTenThousandEvents)
}

func testAnalyticsBufferTenThousandEvents(t *testing.T) {
	s, _, _ := newTestStore(t)
	w := newBatchRecorder(s)
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, After: never, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runBuffer(t, b)
	const total = 10_000
	var wg sync.WaitGroup
	for p := range 4 { // several turns end at once
		wg.Go(func() {
			for i := range total / 4 {
				if err := b.RecordEvent(t.Context(), turnEvent(p*total+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls, _ := w.counts()
	if calls > 300 || calls < total/500 {
		t.Errorf("%d writes for %d events; want at most a few hundred (batches of 500)", calls, total)
	}
	if n := countAllEvents(t, s); n != total {
		t.Fatalf("stored %d events after a graceful shutdown, want %d", n, total)
	}
	t.Logf("%d events in %d writes", total, calls)
}

func TestAnalyticsBufferWritesFullBatchesAtOnce(t *testing.T) {
	s, _, _ := newTestStore(t)
	w := newBatchRecorder(s)
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 10, After: never})
	if err != nil {
		t.Fatal(err)
	}
	runBuffer(t, b)
	for i := range 25 {
		if err := b.RecordEvent(t.Context(), turnEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The flush interval never comes: only the size writes, in batches of exactly 10.
	for range 2 {
		if n := within(t, w.writes, "a full batch"); n != 10 {
			t.Fatalf("a batch of %d, want 10", n)
		}
	}
	select {
	case n := <-w.writes:
		t.Fatalf("a partial batch of %d was written without its time having come", n)
	default:
	}
	// The 5 left over wait for 5 more to make the third batch. (Pending is not read here: the
	// buffer drops a batch from it only after the write returns, a moment after the recorder
	// reported the write.)
	for i := range 5 {
		if err := b.RecordEvent(t.Context(), turnEvent(25+i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := within(t, w.writes, "the third batch"); n != 10 {
		t.Fatalf("the third batch has %d events, want the 5 left over and the 5 new", n)
	}
}

func TestAnalyticsBufferWritesWhenTheIntervalEnds(t *testing.T) {
	s, clock, _ := newTestStore(t)
	w := newBatchRecorder(s)
	timers := &manualTimers{asked: make(chan chan time.Time, 10)}
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 100, FlushInterval: time.Minute, After: timers.After, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	runBuffer(t, b)
	for i := range 3 {
		if err := b.RecordEvent(t.Context(), turnEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	timer := within(t, timers.asked, "the flush timer")
	clock.Advance(time.Hour) // the events keep the time they were recorded at
	select {
	case n := <-w.writes:
		t.Fatalf("%d events written before the interval ended", n)
	default:
	}
	timer <- testEpoch
	if n := within(t, w.writes, "the timed batch"); n != 3 {
		t.Fatalf("a batch of %d, want the 3 pending", n)
	}
	if got := queryInts(t, s, `SELECT COUNT(*) FROM analytics_events WHERE created_at = ?`, testEpoch.UnixMilli()); got[0] != 3 {
		t.Errorf("events were stamped when written, not when recorded: %v", got)
	}
	// An idle buffer waits for nothing.
	select {
	case <-timers.asked:
		t.Error("the buffer started a timer with nothing pending")
	default:
	}
}

func TestAnalyticsBufferCloseWritesWhatIsPending(t *testing.T) {
	s, _, _ := newTestStore(t)
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: s, BatchSize: 100, After: never})
	if err != nil {
		t.Fatal(err)
	}
	stop := runBuffer(t, b)
	for i := range 7 {
		if err := b.RecordEvent(t.Context(), turnEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := countAllEvents(t, s); n != 0 {
		t.Fatalf("%d events written before their time", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := countAllEvents(t, s); n != 7 {
		t.Fatalf("Close wrote %d events, want 7", n)
	}
	// A turn that ends during shutdown is written straight away.
	if err := b.RecordEvent(t.Context(), turnEvent(8)); err != nil {
		t.Fatal(err)
	}
	if n := countAllEvents(t, s); n != 8 {
		t.Fatalf("an event after Close: %d stored, want 8", n)
	}
	if err := b.Run(t.Context()); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestAnalyticsBufferCloseWithoutRun(t *testing.T) {
	s, _, _ := newTestStore(t)
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_ = b.RecordEvent(t.Context(), turnEvent(i))
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countAllEvents(t, s); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
}

func TestAnalyticsBufferRetriesTransientErrors(t *testing.T) {
	s, _, _ := newTestStore(t)
	w := newBatchRecorder(s)
	w.failFirst = 3
	logs := newLogRecords()
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 5, After: atOnce, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runBuffer(t, b)
	for i := range 12 {
		if err := b.RecordEvent(t.Context(), turnEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	calls, failed := w.counts()
	if failed != 3 {
		t.Errorf("%d failed writes, want 3", failed)
	}
	if n := countAllEvents(t, s); n != 12 {
		t.Fatalf("stored %d events through a transient outage, want all 12 exactly once (%d writes)", n, calls)
	}
	if !strings.Contains(logs.String(), "retrying") || strings.Contains(logs.String(), "GAVE UP") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestAnalyticsBufferGivesUpLoudly(t *testing.T) {
	s, _, _ := newTestStore(t)
	w := newBatchRecorder(s)
	w.failAlways = true
	logs := newLogRecords()
	// Backoffs end at once; the flush interval never does, so only the full batch is written.
	backoffOnly := func(d time.Duration) <-chan time.Time {
		if d == time.Hour {
			return nil
		}
		return atOnce(d)
	}
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 5, MaxAttempts: 3, FlushInterval: time.Hour, After: backoffOnly, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	runBuffer(t, b)
	for i := range 5 {
		_ = b.RecordEvent(t.Context(), turnEvent(i))
	}
	line := within(t, logs.errors, "the give-up log")
	if !strings.Contains(line, "GAVE UP") || !strings.Contains(line, "lost=5") || !strings.Contains(line, "attempts=3") || !strings.Contains(line, errDatabaseDown.Error()) {
		t.Errorf("give-up log: %s", line)
	}
	if calls, _ := w.counts(); calls != 3 {
		t.Errorf("%d attempts, want 3", calls)
	}
	if p := b.Pending(); p != 0 {
		t.Errorf("%d events still pending after giving up", p)
	}
}

func TestAnalyticsBufferCloseDeadlineLogsLoss(t *testing.T) {
	s, _, _ := newTestStore(t)
	w := newBatchRecorder(s)
	w.failAlways = true
	logs := newLogRecords()
	timers := &manualTimers{asked: make(chan chan time.Time, 100)}
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 100, After: timers.After, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		_ = b.RecordEvent(t.Context(), turnEvent(i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	within(t, timers.asked, "a retry backoff") // the first write failed and Close waits to retry
	cancel()                                   // the shutdown grace is over
	if err := within(t, closed, "Close"); err == nil || !strings.Contains(err.Error(), "4 events") {
		t.Fatalf("Close: %v", err)
	}
	if line := within(t, logs.errors, "the loss log"); !strings.Contains(line, "lost=4") {
		t.Errorf("loss log: %s", line)
	}
}

func TestAnalyticsBufferBoundsMemory(t *testing.T) {
	w := newBatchRecorder(nil)
	w.failAlways = true
	logs := newLogRecords()
	b, err := NewAnalyticsBuffer(AnalyticsBufferConfig{Writer: w, BatchSize: 10, MaxPending: 20, After: never, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := b.RecordEvent(t.Context(), turnEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if p := b.Pending(); p != 20 {
		t.Errorf("pending %d, want the bound of 20", p)
	}
	if line := within(t, logs.errors, "the drop log"); !strings.Contains(line, "DROPPED") {
		t.Errorf("drop log: %s", line)
	}
	select {
	case line := <-logs.errors:
		t.Errorf("the drop was logged more than once: %s", line)
	default:
	}
}

func TestNewAnalyticsBufferNeedsAWriter(t *testing.T) {
	if _, err := NewAnalyticsBuffer(AnalyticsBufferConfig{}); err == nil {
		t.Fatal("no error without a writer")
	}
}

func TestEventUsage(t *testing.T) { forEachBackend(t, testEventUsage) }

func testEventUsage(t *testing.T) {
	s, _, _ := newTestStore(t)
	day1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	completed := func(at time.Time, agent, session, msg, intent string, in, out int, cost float64, cached bool) Event {
		return Event{Type: EventTurnCompleted, UserID: "alice", SessionID: session, AgentID: agent, CreatedAt: at,
			Data: map[string]any{"intent": intent, "messageId": msg, "inputTokens": in, "outputTokens": out, "cost": cost, "cached": cached}}
	}
	events := []Event{
		completed(day1, "fam", "ses_text", "msg_1", "greeting", 10, 5, 0.001, false),
		completed(day1.Add(time.Minute), "fam", "ses_text", "msg_2", "greeting", 0, 0, 0, true),
		completed(day2, "fam", "ses_voice", "msg_3", "calculation", 20, 10, 0.002, false),
		{Type: EventVoiceTurn, UserID: "alice", SessionID: "ses_voice", AgentID: "fam", CreatedAt: day2.Add(time.Second),
			Data: map[string]any{"tier": "local", "messageId": "msg_3", "ttsCost": 0.5}},
		{Type: EventTurnFailed, UserID: "alice", SessionID: "ses_voice", AgentID: "fam", CreatedAt: day2.Add(time.Minute), Data: map[string]any{"error": "boom"}},
		completed(day2, "support", "ses_s", "msg_4", "howto", 100, 50, 0.01, false),
		{Type: EventTurnCompleted, UserID: "bob", SessionID: "ses_b", AgentID: "support", CreatedAt: day2, Data: map[string]any{"intent": "howto", "cost": 1.0}},
		{Type: "budget.alert", UserID: "system", CreatedAt: day2},
		completed(day2.Add(48*time.Hour), "fam", "ses_late", "msg_5", "greeting", 1, 1, 1, false), // outside the period
	}
	if err := s.RecordEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	from, to := day1.Truncate(24*time.Hour), day2.Truncate(24*time.Hour).Add(24*time.Hour)
	usage := func(q EventUsageQuery) []EventUsageRow {
		t.Helper()
		q.From, q.To = from, to
		rows, err := s.EventUsage(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}

	totals := usage(EventUsageQuery{})
	want := EventUsageRow{Turns: 6, Errors: 1, CachedTurns: 1, InputTokens: 130, OutputTokens: 65, Tokens: 195}
	if len(totals) != 1 {
		t.Fatalf("totals: %+v", totals)
	}
	gotCost := totals[0].CostUSD
	totals[0].CostUSD = 0
	if totals[0] != want || !near(gotCost, 0.001+0.002+0.5+0.01+1.0) {
		t.Errorf("totals = %+v cost %v, want %+v cost 1.513", totals[0], gotCost, want)
	}

	byTier := usage(EventUsageQuery{GroupBy: []string{UsageByTier}})
	if len(byTier) != 2 || byTier[0].Tier != "local" || byTier[0].Turns != 2 || byTier[0].Errors != 1 || !near(byTier[0].CostUSD, 0.502) ||
		byTier[1].Tier != TierText || byTier[1].Turns != 4 {
		t.Errorf("by tier: %+v", byTier)
	}

	rows := usage(EventUsageQuery{GroupBy: []string{UsageByDay, UsageByAgent, UsageByIntent}, UserID: "alice"})
	type key struct{ day, agent, intent string }
	got := map[key]EventUsageRow{}
	for _, r := range rows {
		if r.Tier != "" {
			t.Errorf("tier set without being grouped by: %+v", r)
		}
		got[key{r.Day, r.Agent, r.Intent}] = r
	}
	if len(got) != 4 {
		t.Fatalf("rows: %+v", rows)
	}
	if r := got[key{"2026-03-01", "fam", "greeting"}]; r.Turns != 2 || r.CachedTurns != 1 || r.Tokens != 15 {
		t.Errorf("day 1 fam greeting: %+v", r)
	}
	if r := got[key{"2026-03-02", "fam", "unknown"}]; r.Turns != 1 || r.Errors != 1 {
		t.Errorf("the failed turn: %+v", r)
	}
	if r := got[key{"2026-03-02", "support", "howto"}]; r.Turns != 1 || r.InputTokens != 100 {
		t.Errorf("alice's support turn (bob's left out): %+v", r)
	}
	if rows[0].Day != "2026-03-01" {
		t.Errorf("rows are not sorted by day: %+v", rows)
	}

	for name, q := range map[string]EventUsageQuery{
		"unknown dimension": {From: from, To: to, GroupBy: []string{"model"}},
		"twice":             {From: from, To: to, GroupBy: []string{UsageByDay, UsageByDay}},
		"backwards":         {From: to, To: from},
	} {
		if _, err := s.EventUsage(t.Context(), q); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestCallWindow(t *testing.T) {
	w := NewCallWindow(10, time.Minute)
	now := testEpoch
	if s := w.Stats(now); s.Calls != 0 || s.P95Ms != 0 {
		t.Fatalf("empty window: %+v", s)
	}
	for i := 1; i <= 8; i++ {
		w.Record(now, time.Duration(i)*10*time.Millisecond, true)
	}
	w.Record(now, 5*time.Second, false)
	w.Record(now, 5*time.Second, false)
	s := w.Stats(now)
	if s.Calls != 10 || s.Failures != 2 || s.SuccessRate != 0.8 || s.P50Ms != 40 || s.P95Ms != 80 {
		t.Errorf("stats = %+v", s)
	}
	// The ring keeps the last 10: two more successes push out the two oldest.
	w.Record(now, time.Millisecond, true)
	w.Record(now, time.Millisecond, true)
	if s := w.Stats(now); s.Calls != 10 || s.Failures != 2 {
		t.Errorf("after wrapping: %+v", s)
	}
	// Calls older than the span leave the window.
	later := now.Add(2 * time.Minute)
	w.Record(later, 300*time.Millisecond, true)
	if s := w.Stats(later); s.Calls != 1 || s.SuccessRate != 1 || s.P50Ms != 300 {
		t.Errorf("after the span: %+v", s)
	}
}

// within receives from ch, failing the test after 10 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
	var zero T
	return zero
}
