package jobs

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

func newScheduler(t *testing.T, cfg SchedulerConfig, tasks ...Task) *Scheduler {
	t.Helper()
	s, err := NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if err := s.Add(task); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// A task runs once per interval; a failed run is tried again at the next tick; a panic is a
// failure, not a crash.
func TestSchedulerIntervalsAndRetries(t *testing.T) {
	clock := newFakeClock()
	runLog := NewMemoryRunLog()
	var calls atomic.Int32
	failures := map[int32]string{1: "error", 3: "panic"}
	s := newScheduler(t, SchedulerConfig{Clock: clock, RunLog: runLog}, Task{Name: "t", Interval: time.Hour, Run: func(context.Context) error {
		switch failures[calls.Add(1)] {
		case "error":
			return errors.New("boom")
		case "panic":
			panic("kaboom")
		}
		return nil
	}})
	ctx := t.Context()
	steps := []struct {
		advance time.Duration
		want    Outcome
		calls   int32
	}{
		{0, Failed, 1},                // never ran: due; fails
		{0, Ran, 2},                   // the failure is retried at the next tick
		{30 * time.Minute, NotDue, 2}, // succeeded half an interval ago
		{23 * time.Minute, NotDue, 2}, // 53 minutes: still not due
		{time.Minute, Failed, 3},      // 54 minutes, 9/10 of the interval: due; panics
		{time.Second, Ran, 4},         // retried at the next tick
		{53 * time.Minute, NotDue, 4},
		{time.Minute, Ran, 5},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		res := s.Tick(ctx, "t")
		if res.Outcome != st.want || calls.Load() != st.calls {
			t.Fatalf("step %d: outcome %s (%v) after %d calls, want %s after %d", i, res.Outcome, res.Err, calls.Load(), st.want, st.calls)
		}
		if st.want == Failed && (res.Err == nil || !strings.Contains(res.Err.Error(), map[int32]string{1: "boom", 3: "kaboom"}[st.calls])) {
			t.Fatalf("step %d: the failure's error is %v", i, res.Err)
		}
	}
	runs := runLog.Runs()
	if len(runs) != 5 || runs[0].Err == "" || runs[1].Err != "" || !strings.Contains(runs[2].Err, "panic: kaboom") || runs[4].Replica == "" {
		t.Fatalf("run log: %+v", runs)
	}
	if res := s.Tick(ctx, "nope"); res.Outcome != Skipped || res.Err == nil {
		t.Fatalf("an unknown task: %+v", res)
	}
}

// A tick while the task runs is Busy: runs never overlap, and the run's context ends at its
// timeout.
func TestSchedulerRunsNeverOverlap(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var deadline time.Time
	s := newScheduler(t, SchedulerConfig{}, Task{Name: "slow", Interval: time.Minute, Timeout: time.Hour, EveryTick: true, Run: func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		close(started)
		<-release
		return nil
	}})
	done := make(chan TickResult)
	go func() { done <- s.Tick(t.Context(), "slow") }()
	<-started
	if res := s.Tick(t.Context(), "slow"); res.Outcome != Busy {
		t.Fatalf("a tick during a run: %s", res.Outcome)
	}
	close(release)
	if res := <-done; res.Outcome != Ran {
		t.Fatalf("the run: %+v", res)
	}
	if until := time.Until(deadline); until < 59*time.Minute {
		t.Fatalf("the run's context ends in %v, want its timeout of 1h", until)
	}
}

// manualTicker hands each task a tick channel the test drives.
type manualTicker struct {
	mu      sync.Mutex
	chans   map[string]chan time.Time
	stopped atomic.Int32
}

func (m *manualTicker) ticker(name string, _ time.Duration) (<-chan time.Time, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.chans == nil {
		m.chans = map[string]chan time.Time{}
	}
	if m.chans[name] == nil {
		m.chans[name] = make(chan time.Time)
	}
	return m.chans[name], func() { m.stopped.Add(1) }
}

func (m *manualTicker) tick(name string) {
	m.mu.Lock()
	ch := m.chans[name]
	m.mu.Unlock()
	ch <- time.Now()
}

// Run ticks every task once at start and then on its ticks, and stops with its context.
func TestSchedulerRunLoop(t *testing.T) {
	clock := newFakeClock()
	ticker := &manualTicker{}
	results := make(chan TickResult)
	var aRuns, bRuns atomic.Int32
	s := newScheduler(t, SchedulerConfig{Clock: clock, Ticker: ticker.ticker, Observe: func(r TickResult) { results <- r }},
		Task{Name: "a", Interval: time.Hour, Run: func(context.Context) error { aRuns.Add(1); return nil }},
		Task{Name: "b", Interval: time.Minute, Run: func(context.Context) error { bRuns.Add(1); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- s.Run(ctx) }()
	first := map[string]Outcome{}
	for range 2 {
		r := receive(t, results, "the first ticks")
		first[r.Task] = r.Outcome
	}
	if first["a"] != Ran || first["b"] != Ran {
		t.Fatalf("first ticks: %v", first)
	}
	if err := s.Add(Task{Name: "late", Interval: time.Minute, Run: func(context.Context) error { return nil }}); err == nil {
		t.Fatal("a task was added to a running scheduler")
	}
	clock.Advance(2 * time.Minute)
	ticker.tick("b")
	if r := receive(t, results, "b's tick"); r.Task != "b" || r.Outcome != Ran {
		t.Fatalf("b's tick: %+v", r)
	}
	ticker.tick("a")
	if r := receive(t, results, "a's tick"); r.Task != "a" || r.Outcome != NotDue {
		t.Fatalf("a's tick two minutes after its run: %+v", r)
	}
	cancel()
	if err := receive(t, stopped, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if aRuns.Load() != 1 || bRuns.Load() != 2 || ticker.stopped.Load() != 2 {
		t.Fatalf("runs a=%d b=%d, tickers stopped %d", aRuns.Load(), bRuns.Load(), ticker.stopped.Load())
	}
}

// With the lock unreachable nothing runs, and the task runs at the first tick after it is
// back.
func TestSchedulerRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	locker, _ := NewRedisLocker(RedisLockerConfig{Client: srv.Client(t)})
	var runs atomic.Int32
	s := newScheduler(t, SchedulerConfig{Locker: locker}, Task{Name: "t", Interval: time.Hour, Run: func(context.Context) error { runs.Add(1); return nil }})
	srv.Stop()
	if res := s.Tick(t.Context(), "t"); res.Outcome != Skipped || res.Err == nil || runs.Load() != 0 {
		t.Fatalf("a tick with Redis down: %+v after %d runs", res, runs.Load())
	}
	srv.Restart()
	if res := s.Tick(t.Context(), "t"); res.Outcome != Ran || runs.Load() != 1 {
		t.Fatalf("a tick with Redis back: %+v", res)
	}
}

// countingBlobs counts the writes per key and can hold the first write until released.
type countingBlobs struct {
	session.BlobStore
	hold chan struct{} // nil: no holding

	mu     sync.Mutex
	puts   map[string]int
	held   bool
	inside chan struct{} // closed when the first write is held
}

func (c *countingBlobs) Put(ctx context.Context, key string, r io.Reader, contentType string) error {
	c.mu.Lock()
	c.puts[key]++
	first := !c.held && c.hold != nil
	c.held = true
	c.mu.Unlock()
	if first {
		close(c.inside)
		<-c.hold
	}
	return c.BlobStore.Put(ctx, key, r, contentType)
}

func (c *countingBlobs) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.puts {
		out[k] = v
	}
	return out
}

// seedFinished writes n conversations that then go idle for 31 days.
func seedFinished(t *testing.T, store *session.SQLStore, clock *fakeClock, n int) []string {
	t.Helper()
	ctx := t.Context()
	if _, err := store.EnsureUser(ctx, "alice", "paid"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		id := session.NewID("ses")
		if err := store.CreateSession(ctx, session.Session{ID: id, UserID: "alice", AgentID: "fam"}); err != nil {
			t.Fatal(err)
		}
		for j, role := range []string{session.RoleUser, session.RoleAssistant} {
			if err := store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: id, Role: role, Content: strings.Repeat("x", i+j+1)}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, id)
	}
	clock.Advance(31 * 24 * time.Hour)
	return ids
}

// Acceptance: three replicas share a Redis lock, a PostgreSQL database and a blob store. The
// archival job runs once: while one replica archives, the other two are refused the lock;
// each conversation is written to the blob store once, and the run log keeps the replicas
// from running it again within the interval.
func TestArchivalRunsOnceAcrossThreeReplicas(t *testing.T) {
	redisSrv := redistest.Start(t)
	dbURL := pgtest.Shared(t).NewDatabase(t)
	clock := newFakeClock()
	local, err := session.NewLocalBlobStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := &countingBlobs{BlobStore: local, hold: make(chan struct{}), puts: map[string]int{}, inside: make(chan struct{})}

	type replica struct {
		store     *session.SQLStore
		scheduler *Scheduler
	}
	var replicas []replica
	for i := range 3 {
		store := openPostgres(t, dbURL, clock)
		locker, err := NewRedisLocker(RedisLockerConfig{Client: redisSrv.Client(t)})
		if err != nil {
			t.Fatal(err)
		}
		archiver, err := NewArchiver(ArchiveConfig{Store: store, Blobs: blobs, Clock: clock, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		s := newScheduler(t, SchedulerConfig{Locker: locker, RunLog: store, Clock: clock, Replica: "replica-" + string(rune('a'+i))}, archiver.Task(6*time.Hour))
		replicas = append(replicas, replica{store, s})
	}
	ids := seedFinished(t, replicas[0].store, clock, 5)

	results := make(chan TickResult, 3)
	for _, r := range replicas {
		go func() { results <- r.scheduler.Tick(context.Background(), TaskArchive) }()
	}
	<-blobs.inside // one replica holds the lock and is writing its first archive
	var outcomes []Outcome
	for range 2 {
		outcomes = append(outcomes, receive(t, results, "the other replicas' ticks").Outcome)
	}
	if !slices.Equal(outcomes, []Outcome{Busy, Busy}) {
		t.Fatalf("while one replica archives, the others got %v; want busy, busy", outcomes)
	}
	close(blobs.hold)
	if r := receive(t, results, "the archiving replica's tick"); r.Outcome != Ran {
		t.Fatalf("the archiving replica: %+v", r)
	}

	counts := blobs.counts()
	if len(counts) != len(ids) {
		t.Fatalf("%d archive objects for %d conversations: %v", len(counts), len(ids), counts)
	}
	for _, id := range ids {
		key, err := replicas[1].store.SessionArchiveKey(t.Context(), id)
		if err != nil || key != ArchiveKey(id, epoch) || counts[key] != 1 {
			t.Fatalf("session %s: key %q (%v), written %d times", id, key, err, counts[key])
		}
		arc, err := ReadArchive(t.Context(), local, key)
		if err != nil || arc.Session.ID != id || len(arc.Messages) != 2 {
			t.Fatalf("archive of %s: %+v %v", id, arc, err)
		}
		if msgs, _ := replicas[2].store.ListMessages(t.Context(), "alice", id, 0); len(msgs) != 0 {
			t.Fatalf("session %s still has %d messages in hot storage", id, len(msgs))
		}
	}

	// Later ticks within the interval run nowhere; after it, one replica runs (nothing left).
	clock.Advance(time.Hour)
	for _, r := range replicas {
		if res := r.scheduler.Tick(t.Context(), TaskArchive); res.Outcome != NotDue {
			t.Fatalf("an hour later: %+v", res)
		}
	}
	clock.Advance(6 * time.Hour)
	var ran int
	for _, r := range replicas {
		if r.scheduler.Tick(t.Context(), TaskArchive).Outcome == Ran {
			ran++
		}
	}
	if ran != 1 || len(blobs.counts()) != len(ids) {
		t.Fatalf("the next interval: %d runs, archives %v", ran, blobs.counts())
	}
}
