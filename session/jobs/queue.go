package jobs

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Job is one unit of queued work: send this email, ingest that document, archive this session.
type Job struct {
	// ID identifies the job in logs and the dead-letter list. Default a random id.
	ID string `json:"id"`
	// Type selects the Handler. Required.
	Type string `json:"type"`
	// Payload is the handler's input, JSON.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Attempt is which delivery this is, 1 for the first; set by the queue.
	Attempt int `json:"attempt"`
	// MaxAttempts is how many deliveries a failing job gets before the dead-letter list.
	// Default the queue's.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// EnqueuedAt is set by Enqueue.
	EnqueuedAt time.Time `json:"enqueuedAt"`
	// LastError is why the previous attempt failed; set by the queue.
	LastError string `json:"lastError,omitempty"`
}

// NewJob builds a job of a type with its payload marshalled to JSON.
func NewJob(jobType string, payload any) (Job, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Job{}, fmt.Errorf("job %s: payload: %w", jobType, err)
	}
	return Job{Type: jobType, Payload: raw}, nil
}

// Handler does one job. An error (or a panic) fails the attempt: the job is delivered again
// after a backoff, until its attempts are spent, then it goes to the dead-letter list.
// Delivery is at least once, so handlers must tolerate running a job twice.
type Handler func(ctx context.Context, j Job) error

// Queue runs jobs in the background with retries.
type Queue interface {
	// Enqueue adds a job; it does not wait for it to run.
	Enqueue(ctx context.Context, j Job) error
	// Work runs jobs with the handlers of their types until ctx ends, then returns ctx's
	// error once the jobs in progress have stopped. A job of a type with no handler goes to
	// the dead-letter list.
	Work(ctx context.Context, handlers map[string]Handler) error
}

// DeadLetter is a job that failed all its attempts.
type DeadLetter struct {
	Job Job       `json:"job"`
	Err string    `json:"error"`
	At  time.Time `json:"at"`
}

// ErrQueueFull is returned by MemoryQueue.Enqueue when its buffer is full.
var ErrQueueFull = errors.New("jobs: queue full")

// ExponentialBackoff returns the wait before the attempt after attempt n (1 for the first):
// base, 2·base, 4·base ... capped at max, with up to a fifth of jitter so jobs that failed
// together do not retry together.
func ExponentialBackoff(base, maxWait time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < maxWait; i++ {
			d *= 2
		}
		d = min(d, maxWait)
		if d > 0 {
			d += rand.N(d/5 + 1)
		}
		return d
	}
}

// Defaults shared by the queues.
const (
	defaultMaxAttempts    = 5
	defaultHandlerTimeout = time.Minute
	defaultWorkers        = 4
)

var defaultBackoff = ExponentialBackoff(time.Second, 5*time.Minute)

// prepare fills what Enqueue sets.
func prepare(j *Job, now time.Time) error {
	if j.Type == "" {
		return errors.New("jobs: a job needs a type")
	}
	if j.ID == "" {
		j.ID = session.NewID("job")
	}
	if j.EnqueuedAt.IsZero() {
		j.EnqueuedAt = now
	}
	j.Attempt = 0
	return nil
}

// errNoHandler fails a job no retry can help: nothing handles its type.
var errNoHandler = errors.New("no handler for the job's type")

// runHandler runs the job's handler within timeout, turning a panic or a missing handler into
// an error.
func runHandler(ctx context.Context, handlers map[string]Handler, j Job, timeout time.Duration) error {
	h, ok := handlers[j.Type]
	if !ok {
		return fmt.Errorf("%w %q", errNoHandler, j.Type)
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return safeRun(hctx, func(ctx context.Context) error { return h(ctx, j) })
}

// MemoryQueueConfig configures a MemoryQueue.
type MemoryQueueConfig struct {
	// Size bounds the jobs waiting to run (retries waiting for their backoff are not
	// counted). Enqueue into a full queue fails with ErrQueueFull rather than block the
	// caller. Default 1024.
	Size int
	// Workers run jobs concurrently, per Work call. Default 4.
	Workers int
	// MaxAttempts is the default of Job.MaxAttempts. Default 5.
	MaxAttempts int
	// Backoff is the wait after failed attempt n. Default ExponentialBackoff(1s, 5m).
	Backoff func(attempt int) time.Duration
	// HandlerTimeout ends a handler's context. Default 1m.
	HandlerTimeout time.Duration
	// Clock stamps jobs and dead letters. Default session.SystemClock.
	Clock session.Clock
	// Logger receives failures. Default slog.Default().
	Logger *slog.Logger
}

// MemoryQueue is the in-process Queue: a bounded buffer served by workers. Jobs waiting or
// backing off when the process stops are lost; use RedisQueue for jobs that must survive.
type MemoryQueue struct {
	cfg   MemoryQueueConfig
	ready chan Job

	mu      sync.Mutex
	delayed delayedJobs
	wake    chan struct{} // nudges the retry timer when a sooner retry is added
	dead    []DeadLetter
}

var _ Queue = (*MemoryQueue)(nil)

// NewMemoryQueue fills the config's defaults.
func NewMemoryQueue(cfg MemoryQueueConfig) *MemoryQueue {
	if cfg.Size <= 0 {
		cfg.Size = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = defaultBackoff
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = defaultHandlerTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &MemoryQueue{cfg: cfg, ready: make(chan Job, cfg.Size), wake: make(chan struct{}, 1)}
}

// Enqueue implements Queue.
func (q *MemoryQueue) Enqueue(_ context.Context, j Job) error {
	if err := prepare(&j, q.cfg.Clock.Now()); err != nil {
		return err
	}
	select {
	case q.ready <- j:
		return nil
	default:
		return fmt.Errorf("%w: %d jobs waiting", ErrQueueFull, q.cfg.Size)
	}
}

// Work implements Queue.
func (q *MemoryQueue) Work(ctx context.Context, handlers map[string]Handler) error {
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-q.ready:
					q.process(ctx, handlers, j)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.releaseRetries(ctx)
	}()
	wg.Wait()
	return ctx.Err()
}

func (q *MemoryQueue) process(ctx context.Context, handlers map[string]Handler, j Job) {
	j.Attempt++
	err := runHandler(ctx, handlers, j, q.cfg.HandlerTimeout)
	if err == nil {
		return
	}
	maxAttempts := j.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = q.cfg.MaxAttempts
	}
	j.LastError = err.Error()
	log := q.cfg.Logger.With("job", j.ID, "type", j.Type, "attempt", j.Attempt)
	if errors.Is(err, errNoHandler) || j.Attempt >= maxAttempts {
		log.ErrorContext(ctx, "jobs: job failed for good: dead letter", "err", err)
		q.mu.Lock()
		q.dead = append(q.dead, DeadLetter{Job: j, Err: err.Error(), At: q.cfg.Clock.Now()})
		q.mu.Unlock()
		return
	}
	wait := q.cfg.Backoff(j.Attempt)
	log.WarnContext(ctx, "jobs: job failed; retrying", "err", err, "in", wait)
	q.mu.Lock()
	heap.Push(&q.delayed, delayedJob{job: j, due: time.Now().Add(wait)})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// releaseRetries moves each retry into the ready buffer when its backoff has passed. Backoff
// waits are real time: they pace calls to real services.
func (q *MemoryQueue) releaseRetries(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		var next time.Duration = time.Hour
		for q.delayed.Len() > 0 {
			head := q.delayed[0]
			if wait := time.Until(head.due); wait > 0 {
				next = wait
				break
			}
			select {
			case q.ready <- head.job:
				heap.Pop(&q.delayed)
				continue
			default:
				next = 10 * time.Millisecond // the buffer is full: try again shortly
			}
			break
		}
		q.mu.Unlock()
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// DeadLetters returns the jobs that failed all their attempts, oldest first.
func (q *MemoryQueue) DeadLetters() []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.dead...)
}

type delayedJob struct {
	job Job
	due time.Time
}

// delayedJobs is a min-heap of retries by due time.
type delayedJobs []delayedJob

func (d delayedJobs) Len() int           { return len(d) }
func (d delayedJobs) Less(i, j int) bool { return d[i].due.Before(d[j].due) }
func (d delayedJobs) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *delayedJobs) Push(x any)        { *d = append(*d, x.(delayedJob)) }
func (d *delayedJobs) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
