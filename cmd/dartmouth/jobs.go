package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/jobs"
	"github.com/redis/go-redis/v9"
)

var _ jobs.ReminderPoller = (*pa.Scheduler)(nil)

// validateJobs checks the scheduled jobs' settings.
func (c *Config) validateJobs() error {
	switch {
	case c.ReminderInterval <= 0:
		return errors.New("reminder-interval must be positive")
	case c.CleanupInterval < 0 || c.ArchiveInterval < 0 || c.AnalyticsInterval < 0 || c.WarmInterval < 0:
		return errors.New("job intervals must not be negative (0 turns a job off)")
	case c.SessionIdle <= 0:
		return errors.New("session-idle must be positive")
	case c.ArchiveDays < 0:
		return errors.New("archive-days must not be negative (0 turns archival off)")
	}
	return nil
}

// backgroundJobs is the scheduler of the periodic jobs and the workers of the job queue.
type backgroundJobs struct {
	scheduler *jobs.Scheduler
	queue     jobs.Queue
	handlers  map[string]jobs.Handler
}

// newBackgroundJobs builds the scheduled jobs: reminder firing, session cleanup, archival
// (through the job queue), the hourly analytics roll-up and, for each warmer given, cache
// warming. One replica at a time runs each: the lock is Redis's when replicas share one,
// else PostgreSQL's advisory locks when they share a database, else this process's; the run
// log in the SQL store makes each job run once per interval across replicas. The queue is a
// Redis stream with Redis, this process's memory without.
func newBackgroundJobs(cfg *Config, store *session.SQLStore, kv session.KV, blobs session.BlobStore, rdb *redis.Client,
	reminders jobs.ReminderPoller, logger *slog.Logger, warmers ...jobs.Warmer) (*backgroundJobs, error) {
	var locker jobs.Locker
	var queue jobs.Queue
	lockName := "memory (this process)"
	switch {
	case rdb != nil:
		l, err := jobs.NewRedisLocker(jobs.RedisLockerConfig{Client: rdb, Logger: logger})
		if err != nil {
			return nil, err
		}
		q, err := jobs.NewRedisQueue(jobs.RedisQueueConfig{Client: rdb, Logger: logger})
		if err != nil {
			return nil, err
		}
		locker, queue, lockName = l, q, "redis"
	case store.Dialect() == "postgres":
		l, err := jobs.NewPostgresLocker(store.DB(), logger)
		if err != nil {
			return nil, err
		}
		locker, lockName = l, "postgres advisory locks"
	default:
		locker = jobs.NewMemoryLocker(nil)
	}
	if queue == nil {
		queue = jobs.NewMemoryQueue(jobs.MemoryQueueConfig{Logger: logger})
	}
	scheduler, err := jobs.NewScheduler(jobs.SchedulerConfig{Locker: locker, RunLog: store, Logger: logger})
	if err != nil {
		return nil, err
	}
	b := &backgroundJobs{scheduler: scheduler, queue: queue, handlers: map[string]jobs.Handler{}}
	tasks := []jobs.Task{jobs.RemindersTask(reminders, cfg.ReminderInterval)}
	if cfg.CleanupInterval > 0 {
		cleanup, err := jobs.NewCleanup(jobs.CleanupConfig{Sessions: store, KV: kv, Idle: cfg.SessionIdle, Logger: logger})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, cleanup.Task(cfg.CleanupInterval))
	}
	if cfg.ArchiveInterval > 0 && cfg.ArchiveDays > 0 {
		archiver, err := jobs.NewArchiver(jobs.ArchiveConfig{Store: store, Blobs: blobs, After: time.Duration(cfg.ArchiveDays) * 24 * time.Hour, Queue: queue, Logger: logger})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, archiver.Task(cfg.ArchiveInterval))
		b.handlers[jobs.ArchiveJobType] = archiver.Handle
	}
	if cfg.AnalyticsInterval > 0 {
		rollUp, err := jobs.NewAnalyticsRollUp(jobs.AnalyticsConfig{Store: store, Logger: logger})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, rollUp.Task(cfg.AnalyticsInterval))
	}
	if len(warmers) > 0 && cfg.WarmInterval > 0 {
		tasks = append(tasks, jobs.WarmTask(cfg.WarmInterval, warmers...))
	}
	names := make([]string, 0, len(tasks))
	for _, t := range tasks {
		if err := scheduler.Add(t); err != nil {
			return nil, err
		}
		names = append(names, t.Name)
	}
	logger.Info("scheduled jobs", "jobs", names, "lock", lockName, "archiveAfterDays", cfg.ArchiveDays)
	return b, nil
}

// start runs the scheduler and the queue's workers until ctx ends; the channel closes once
// both have stopped.
func (b *backgroundJobs) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = b.scheduler.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = b.queue.Work(ctx, b.handlers)
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}
