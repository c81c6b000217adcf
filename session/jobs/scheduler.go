// Package jobs runs the gateway's background work: a scheduler of periodic tasks (session
// cleanup, archival, the hourly analytics roll-up, cache warming, reminder firing) that runs
// each task on one replica at a time through a Locker, and a job queue with retries, backoff
// and a dead-letter list for work that must not block a request.
//
// A Task is scheduled work ("every hour, archive what is idle"); a Job is one queued unit of
// work ("archive session ses_x"), run by a Handler.
//
// The embedded defaults live in process memory (MemoryLocker, MemoryRunLog, MemoryQueue); at
// scale replicas share Redis (RedisLocker, RedisQueue) or PostgreSQL (PostgresLocker) and the
// SQL store's run log.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Task is work the scheduler runs every Interval, on one replica at a time.
type Task struct {
	// Name identifies the task in logs, the run log and its lock. Required, unique.
	Name string
	// Interval between runs. Required.
	Interval time.Duration
	// Run does the work. A failed run (an error or a panic) is logged and tried again at the
	// next tick. Required.
	Run func(ctx context.Context) error
	// Timeout ends a run's context. Default the larger of Interval and one minute.
	Timeout time.Duration
	// EveryTick runs the task at every tick of whichever replica takes the lock, without the
	// run log's once-per-interval check, and records no successful run: for cheap polls that
	// guard themselves, such as reminder firing. Default false: the task runs once per
	// Interval across all replicas sharing the run log.
	EveryTick bool
}

// RunLog remembers when each task last succeeded, across replicas; session.SQLStore
// implements it on the job_runs table.
type RunLog interface {
	// LastJobSuccess returns when the task last finished without error; zero if never.
	LastJobSuccess(ctx context.Context, name string) (time.Time, error)
	// RecordJobRun adds a finished run.
	RecordJobRun(ctx context.Context, r session.JobRun) error
}

var _ RunLog = (*session.SQLStore)(nil)

// MemoryRunLog is the RunLog of one process.
type MemoryRunLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	runs []session.JobRun
}

var _ RunLog = (*MemoryRunLog)(nil)

// NewMemoryRunLog returns an empty run log.
func NewMemoryRunLog() *MemoryRunLog { return &MemoryRunLog{last: map[string]time.Time{}} }

// LastJobSuccess implements RunLog.
func (m *MemoryRunLog) LastJobSuccess(_ context.Context, name string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[name], nil
}

// RecordJobRun implements RunLog.
func (m *MemoryRunLog) RecordJobRun(_ context.Context, r session.JobRun) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, r)
	if r.Err == "" {
		m.last[r.Name] = r.FinishedAt
	}
	return nil
}

// Runs returns every run recorded, oldest first.
func (m *MemoryRunLog) Runs() []session.JobRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]session.JobRun(nil), m.runs...)
}

// Outcome is what one tick of a task did.
type Outcome string

// Outcomes of a tick.
const (
	// Ran: the task ran and succeeded.
	Ran Outcome = "ran"
	// Failed: the task ran and failed (or panicked); the next tick tries again.
	Failed Outcome = "failed"
	// NotDue: the task succeeded less than an interval ago, here or on another replica.
	NotDue Outcome = "not-due"
	// Busy: another run holds the task's lock, in this process or another.
	Busy Outcome = "busy"
	// Skipped: the lock or the run log could not be reached, so nothing ran.
	Skipped Outcome = "skipped"
)

// TickResult reports one tick of a task.
type TickResult struct {
	Task    string
	Outcome Outcome
	// Err is the run's error (Failed) or why nothing ran (Skipped).
	Err error
	// Started and Finished bound the run (zero unless it ran).
	Started, Finished time.Time
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Locker makes runs exclusive across the replicas that share it. Default a MemoryLocker
	// (this process only).
	Locker Locker
	// RunLog makes each task run once per interval across the replicas that share it.
	// Default a MemoryRunLog (this process only).
	RunLog RunLog
	// Clock says when tasks are due. Default session.SystemClock.
	Clock session.Clock
	// Ticker starts the ticks of a task; stop releases them. Default a time.Ticker of the
	// interval. Tests drive ticks with their own channels, or call Tick.
	Ticker func(task string, interval time.Duration) (ticks <-chan time.Time, stop func())
	// LockTTL is how long the lock of a replica that died mid-run keeps the others out
	// (Redis renews it while the run lasts). Default 1m.
	LockTTL time.Duration
	// Replica names this process in the run log and logs. Default host:pid.
	Replica string
	// Observe receives the result of every tick of Run (metrics, tests), from the task's
	// goroutine; Tick returns its result instead. Default none.
	Observe func(TickResult)
	// Logger receives runs and failures. Default slog.Default().
	Logger *slog.Logger
}

// Scheduler runs tasks on intervals. Every task has its own goroutine in Run; a task's runs
// never overlap, in this process (a tick while it runs is Busy) or across replicas (its lock).
type Scheduler struct {
	cfg SchedulerConfig

	mu      sync.Mutex
	tasks   []*scheduled
	byName  map[string]*scheduled
	running bool
}

type scheduled struct {
	Task
	running sync.Mutex // held during a tick
}

// NewScheduler checks the config and fills defaults.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Locker == nil {
		cfg.Locker = NewMemoryLocker(cfg.Clock)
	}
	if cfg.RunLog == nil {
		cfg.RunLog = NewMemoryRunLog()
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(_ string, d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = time.Minute
	}
	if cfg.Replica == "" {
		host, _ := os.Hostname()
		cfg.Replica = host + ":" + strconv.Itoa(os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{cfg: cfg, byName: map[string]*scheduled{}}, nil
}

// Add registers a task; it must come before Run.
func (s *Scheduler) Add(t Task) error {
	switch {
	case t.Name == "":
		return errors.New("jobs: a task needs a name")
	case t.Interval <= 0:
		return fmt.Errorf("jobs: task %s: the interval must be positive", t.Name)
	case t.Run == nil:
		return fmt.Errorf("jobs: task %s: nothing to run", t.Name)
	}
	if t.Timeout <= 0 {
		t.Timeout = max(t.Interval, time.Minute)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("jobs: task %s: added after the scheduler started", t.Name)
	}
	if _, dup := s.byName[t.Name]; dup {
		return fmt.Errorf("jobs: two tasks are named %s", t.Name)
	}
	st := &scheduled{Task: t}
	s.tasks = append(s.tasks, st)
	s.byName[t.Name] = st
	return nil
}

// Run ticks every task until ctx ends (once at start, so work that fell due while the
// process was down runs at once, then every interval), waits for the runs in progress to
// stop, and returns ctx's error.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("jobs: the scheduler is already running")
	}
	s.running = true
	tasks := append([]*scheduled(nil), s.tasks...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, t)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (s *Scheduler) loop(ctx context.Context, t *scheduled) {
	ticks, stop := s.cfg.Ticker(t.Name, t.Interval)
	defer stop()
	for {
		if ctx.Err() != nil {
			return
		}
		res := s.tick(ctx, t)
		if s.cfg.Observe != nil {
			s.cfg.Observe(res)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

// Tick runs the named task now if it is due and its lock is free, as its own ticks do, and
// reports what happened. It serves operations ("run the archival now") and tests.
func (s *Scheduler) Tick(ctx context.Context, name string) TickResult {
	s.mu.Lock()
	t, ok := s.byName[name]
	s.mu.Unlock()
	if !ok {
		return TickResult{Task: name, Outcome: Skipped, Err: fmt.Errorf("jobs: no task named %s", name)}
	}
	return s.tick(ctx, t)
}

func (s *Scheduler) tick(ctx context.Context, t *scheduled) TickResult {
	res := TickResult{Task: t.Name}
	if !t.running.TryLock() {
		res.Outcome = Busy
		return res
	}
	defer t.running.Unlock()
	log := s.cfg.Logger.With("task", t.Name, "replica", s.cfg.Replica)
	if !t.EveryTick {
		// Asked before the lock, so replicas whose turn it is not do not even touch it.
		if due, err := s.due(ctx, t); err != nil || !due {
			return s.notRun(ctx, log, res, err)
		}
	}
	unlock, ok, err := s.cfg.Locker.TryLock(ctx, "job:"+t.Name, s.cfg.LockTTL)
	if err != nil || !ok {
		res.Outcome = Busy
		if err != nil {
			res.Outcome, res.Err = Skipped, err
			if ctx.Err() == nil {
				log.WarnContext(ctx, "jobs: the task's lock is unreachable; trying again at the next tick", "err", err)
			}
		}
		return res
	}
	defer unlock()
	if !t.EveryTick {
		// Again under the lock: another replica may have finished a run since.
		if due, err := s.due(ctx, t); err != nil || !due {
			return s.notRun(ctx, log, res, err)
		}
	}
	res.Started = s.cfg.Clock.Now()
	runCtx, cancel := context.WithTimeout(ctx, t.Timeout)
	err = safeRun(runCtx, t.Run)
	cancel()
	res.Finished = s.cfg.Clock.Now()
	res.Outcome, res.Err = Ran, err
	if err != nil {
		res.Outcome = Failed
	}
	if !t.EveryTick || err != nil {
		run := session.JobRun{Name: t.Name, Replica: s.cfg.Replica, StartedAt: res.Started, FinishedAt: res.Finished}
		if err != nil {
			run.Err = err.Error()
		}
		// Recorded even when shutting down, so the next replica knows.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if rerr := s.cfg.RunLog.RecordJobRun(rctx, run); rerr != nil {
			log.WarnContext(ctx, "jobs: the run was not recorded; it may run again before its interval", "err", rerr)
		}
		cancel()
	}
	took := res.Finished.Sub(res.Started)
	switch {
	case err != nil && ctx.Err() != nil:
		log.InfoContext(ctx, "jobs: run stopped by shutdown", "err", err)
	case err != nil:
		log.ErrorContext(ctx, "jobs: run failed; trying again at the next tick", "err", err, "took", took)
	case t.EveryTick:
		log.DebugContext(ctx, "jobs: ran", "took", took)
	default:
		log.InfoContext(ctx, "jobs: ran", "took", took)
	}
	return res
}

func (s *Scheduler) notRun(ctx context.Context, log *slog.Logger, res TickResult, err error) TickResult {
	if err == nil {
		res.Outcome = NotDue
		return res
	}
	res.Outcome, res.Err = Skipped, err
	if ctx.Err() == nil {
		log.WarnContext(ctx, "jobs: the run log is unreachable; trying again at the next tick", "err", err)
	}
	return res
}

// due reports whether the task last succeeded at least nine tenths of an interval ago: the
// slack keeps replicas whose clocks or ticks differ a little from skipping a whole interval.
func (s *Scheduler) due(ctx context.Context, t *scheduled) (bool, error) {
	last, err := s.cfg.RunLog.LastJobSuccess(ctx, t.Name)
	if err != nil {
		return false, err
	}
	return last.IsZero() || s.cfg.Clock.Now().Sub(last) >= t.Interval-t.Interval/10, nil
}

// safeRun runs fn, turning a panic into an error so one broken task cannot stop the others.
func safeRun(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(ctx)
}
