package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/redistest"
	"github.com/redis/go-redis/v9"
)

// attemptLog records the deliveries a handler saw.
type attemptLog struct {
	mu   sync.Mutex
	seen map[string][]Job
}

func (a *attemptLog) add(j Job) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string][]Job{}
	}
	a.seen[string(j.Payload)] = append(a.seen[string(j.Payload)], j)
}

func (a *attemptLog) of(payload string) []Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Job(nil), a.seen[`"`+payload+`"`]...)
}

// queueUnderTest is a queue with its dead-letter list, working with handlers until the test
// ends.
type queueUnderTest struct {
	Queue
	dead func() []DeadLetter
}

// queueContract is the behaviour both queues share: retries with backoff until success, the
// dead-letter list after MaxAttempts, a job's own MaxAttempts, unknown types dead at once.
// newQueue makes a queue whose default MaxAttempts is 3 and whose backoff is instant.
func queueContract(t *testing.T, newQueue func(t *testing.T) queueUnderTest) {
	t.Run("fails twice then succeeds", func(t *testing.T) {
		q := newQueue(t)
		log := &attemptLog{}
		done := make(chan Job, 1)
		handlers := map[string]Handler{"flaky": func(_ context.Context, j Job) error {
			log.add(j)
			if j.Attempt < 3 {
				return fmt.Errorf("attempt %d failed", j.Attempt)
			}
			done <- j
			return nil
		}}
		background(t, func(ctx context.Context) { _ = q.Work(ctx, handlers) })
		j, _ := NewJob("flaky", "email-1")
		if err := q.Enqueue(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		final := receive(t, done, "the third attempt")
		seen := log.of("email-1")
		if len(seen) != 3 || seen[0].Attempt != 1 || seen[1].Attempt != 2 || final.Attempt != 3 ||
			seen[0].LastError != "" || seen[1].LastError != "attempt 1 failed" || final.LastError != "attempt 2 failed" ||
			final.ID == "" || final.ID != seen[0].ID || final.EnqueuedAt.IsZero() {
			t.Fatalf("deliveries: %+v", seen)
		}
		if d := q.dead(); len(d) != 0 {
			t.Fatalf("dead letters after a success: %+v", d)
		}
	})

	t.Run("always fails: dead letter after MaxAttempts", func(t *testing.T) {
		q := newQueue(t)
		log := &attemptLog{}
		handlers := map[string]Handler{"broken": func(_ context.Context, j Job) error {
			log.add(j)
			if string(j.Payload) == `"panics"` {
				panic("handler bug")
			}
			return errors.New("smtp: 550 mailbox unavailable")
		}}
		background(t, func(ctx context.Context) { _ = q.Work(ctx, handlers) })
		for _, p := range []string{"fails", "panics"} {
			j, _ := NewJob("broken", p)
			if err := q.Enqueue(t.Context(), j); err != nil {
				t.Fatal(err)
			}
		}
		once, _ := NewJob("broken", "once")
		once.MaxAttempts = 1
		_ = q.Enqueue(t.Context(), once)
		orphan, _ := NewJob("nobody-handles-this", "x")
		_ = q.Enqueue(t.Context(), orphan)
		eventually(t, "four dead letters", func() bool { return len(q.dead()) == 4 })
		byPayload := map[string]DeadLetter{}
		for _, d := range q.dead() {
			byPayload[d.Job.Type+":"+string(d.Job.Payload)] = d
		}
		for key, want := range map[string]struct {
			attempts int
			err      string
		}{
			`broken:"fails"`:          {3, "550 mailbox unavailable"},
			`broken:"panics"`:         {3, "panic: handler bug"},
			`broken:"once"`:           {1, "550"},
			`nobody-handles-this:"x"`: {1, "no handler"},
		} {
			d, ok := byPayload[key]
			if !ok || d.Job.Attempt != want.attempts || !strings.Contains(d.Err, want.err) || d.At.IsZero() {
				t.Errorf("dead letter %s: %+v, want %d attempts and %q", key, d, want.attempts, want.err)
			}
		}
		if n := len(log.of("fails")); n != 3 {
			t.Fatalf("the failing job ran %d times, want 3", n)
		}
	})

	t.Run("a job needs a type", func(t *testing.T) {
		q := newQueue(t)
		if err := q.Enqueue(t.Context(), Job{}); err == nil {
			t.Fatal("a job without a type was accepted")
		}
	})
}

func TestMemoryQueue(t *testing.T) {
	queueContract(t, func(t *testing.T) queueUnderTest {
		q := NewMemoryQueue(MemoryQueueConfig{MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }})
		return queueUnderTest{Queue: q, dead: q.DeadLetters}
	})

	t.Run("bounded: a full queue refuses at once", func(t *testing.T) {
		q := NewMemoryQueue(MemoryQueueConfig{Size: 2})
		for i := range 2 {
			if err := q.Enqueue(t.Context(), Job{Type: "x", ID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Enqueue(t.Context(), Job{Type: "x"}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("a third job in a queue of 2: %v", err)
		}
		// Workers drain it.
		ran := make(chan string, 2)
		background(t, func(ctx context.Context) {
			_ = q.Work(ctx, map[string]Handler{"x": func(_ context.Context, j Job) error { ran <- j.ID; return nil }})
		})
		receive(t, ran, "a job")
		receive(t, ran, "a job")
		if err := q.Enqueue(t.Context(), Job{Type: "x"}); err != nil {
			t.Fatalf("after draining: %v", err)
		}
	})
}

func TestExponentialBackoff(t *testing.T) {
	b := ExponentialBackoff(time.Second, 10*time.Second)
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
		for range 20 {
			if d := b(attempt); d < base || d > base+base/5 {
				t.Fatalf("attempt %d waits %v, want %v plus at most a fifth", attempt, d, base)
			}
		}
	}
}

func newRedisQueue(t *testing.T, srv *redistest.Server, mutate func(*RedisQueueConfig)) *RedisQueue {
	t.Helper()
	cfg := RedisQueueConfig{
		Client: srv.Client(t), Stream: "jobs:" + strings.ReplaceAll(t.Name(), "/", ":"), MaxAttempts: 3,
		Backoff: func(int) time.Duration { return time.Millisecond }, Block: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		HandlerTimeout: 5 * time.Second, ClaimIdle: 5 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	q, err := NewRedisQueue(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestRedisQueue(t *testing.T) {
	srv := redistest.Start(t)
	queueContract(t, func(t *testing.T) queueUnderTest {
		q := newRedisQueue(t, srv, nil)
		return queueUnderTest{Queue: q, dead: func() []DeadLetter {
			d, err := q.DeadLetters(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})

	t.Run("replicas share the work, each job once", func(t *testing.T) {
		stream := "jobs:shared"
		ran := make(chan string, 100)
		var mu sync.Mutex
		count := map[string]int{}
		handler := func(_ context.Context, j Job) error {
			mu.Lock()
			count[string(j.Payload)]++
			mu.Unlock()
			ran <- string(j.Payload)
			return nil
		}
		var queues []*RedisQueue
		for range 3 {
			q := newRedisQueue(t, srv, func(c *RedisQueueConfig) { c.Stream = stream; c.Workers = 2 })
			queues = append(queues, q)
			background(t, func(ctx context.Context) { _ = q.Work(ctx, map[string]Handler{"x": handler}) })
		}
		for i := range 30 {
			j, _ := NewJob("x", i)
			if err := queues[i%3].Enqueue(t.Context(), j); err != nil {
				t.Fatal(err)
			}
		}
		for range 30 {
			receive(t, ran, "a job")
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range 30 {
			if count[fmt.Sprint(i)] != 1 {
				t.Fatalf("job %d ran %d times", i, count[fmt.Sprint(i)])
			}
		}
		if n := srv.Client(t).XLen(t.Context(), stream).Val(); n != 0 {
			t.Fatalf("%d finished jobs left in the stream", n)
		}
	})

	t.Run("a stuck job is taken over", func(t *testing.T) {
		q := newRedisQueue(t, srv, func(c *RedisQueueConfig) {
			c.HandlerTimeout = 50 * time.Millisecond
			c.ClaimIdle = 100 * time.Millisecond
		})
		rdb := srv.Client(t)
		j, _ := NewJob("x", "stuck")
		if err := q.Enqueue(t.Context(), j); err != nil {
			t.Fatal(err)
		}
		// A worker of another replica reads it and dies before acknowledging it.
		if err := q.ensureGroup(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := rdb.XReadGroup(t.Context(), &redis.XReadGroupArgs{Group: "workers", Consumer: "dead-replica", Streams: []string{q.cfg.Stream, ">"}, Count: 1}).Result(); err != nil {
			t.Fatal(err)
		}
		got := make(chan Job, 1)
		background(t, func(ctx context.Context) {
			_ = q.Work(ctx, map[string]Handler{"x": func(_ context.Context, j Job) error { got <- j; return nil }})
		})
		taken := receive(t, got, "the stuck job to be claimed")
		if string(taken.Payload) != `"stuck"` || taken.Attempt != 2 {
			t.Fatalf("claimed job: %+v, want the stuck job on its second delivery", taken)
		}
		eventually(t, "the claimed job to be acknowledged", func() bool {
			return rdb.XPending(t.Context(), q.cfg.Stream, "workers").Val().Count == 0
		})
	})

	t.Run("redis killed and restarted: work continues", func(t *testing.T) {
		own := redistest.Start(t)
		q := newRedisQueue(t, own, nil)
		got := make(chan string, 10)
		background(t, func(ctx context.Context) {
			_ = q.Work(ctx, map[string]Handler{"x": func(_ context.Context, j Job) error {
				var s string
				_ = json.Unmarshal(j.Payload, &s)
				got <- s
				return nil
			}})
		})
		enqueue := func(s string) error {
			j, _ := NewJob("x", s)
			return q.Enqueue(t.Context(), j)
		}
		if err := enqueue("before"); err != nil {
			t.Fatal(err)
		}
		if s := receive(t, got, "the job before the outage"); s != "before" {
			t.Fatal(s)
		}
		own.Stop()
		if err := enqueue("during"); err == nil {
			t.Fatal("Enqueue with Redis down succeeded")
		}
		own.Restart() // empty: the stream and the group are gone
		var err error
		eventually(t, "Enqueue to work again", func() bool { err = enqueue("after"); return err == nil })
		if s := receive(t, got, "the job after the restart"); s != "after" {
			t.Fatalf("after the restart the workers ran %q", s)
		}
	})

	t.Run("claim-idle shorter than the handler timeout is refused", func(t *testing.T) {
		_, err := NewRedisQueue(RedisQueueConfig{Client: srv.Client(t), HandlerTimeout: time.Minute, ClaimIdle: time.Second})
		if err == nil || !strings.Contains(err.Error(), "claim-idle") {
			t.Fatalf("NewRedisQueue: %v", err)
		}
	})
}
