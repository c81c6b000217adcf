package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Names of the built-in tasks: their locks and run-log rows.
const (
	TaskSessionCleanup = "session-cleanup"
	TaskArchive        = "archive"
	TaskAnalytics      = "analytics-hourly"
	TaskCacheWarm      = "cache-warm"
	TaskReminders      = "reminders"
)

// SessionStates is the cleanup's view of the sessions; session.SQLStore implements it.
type SessionStates interface {
	// IdleSessions lists, by id after afterID, sessions idle since idleSince whose state was
	// not cleared since their last activity.
	IdleSessions(ctx context.Context, idleSince time.Time, afterID string, limit int) ([]session.IdleSession, error)
	// MarkSessionStateCleared records the clearing as of the activity seen.
	MarkSessionStateCleared(ctx context.Context, sessionID string, seenUpdatedAt time.Time) error
}

var _ SessionStates = (*session.SQLStore)(nil)

// CleanupConfig configures a Cleanup.
type CleanupConfig struct {
	// Sessions lists the idle sessions. Required.
	Sessions SessionStates
	// KV holds the sessions' short-lived state. Required.
	KV session.KV
	// Idle is how long a session must go without activity. Default 24h.
	Idle time.Duration
	// SummaryBlock is how many messages one rolling summary covers: the engine's
	// agents.ContextWindow.KeepMessages. Default 12, the engine's default.
	SummaryBlock int
	// Also clears more state of an idle session (voice state, caches), after the summaries.
	// Default none.
	Also func(ctx context.Context, s session.IdleSession) error
	// Batch is how many sessions one query lists. Default 500.
	Batch int
	// Clock says what is idle. Default session.SystemClock.
	Clock session.Clock
	// Logger receives failures. Default slog.Default().
	Logger *slog.Logger
}

// Cleanup clears the active state of sessions that have been idle for a day.
//
// A session's active state is what the gateway keeps only to continue the conversation
// quickly and can always rebuild from the SQL store: today its rolling summaries, the KV
// entries "summary:<session id>:<n>" that agents.Engine writes for every block of n older
// messages (n a multiple of the context window's KeepMessages). Messages, costs and the
// session row stay: archival moves them out after weeks. A session continued after its state
// was cleared has its summaries rebuilt on the next turn; each session is cleared once per
// idle period, not at every run.
type Cleanup struct {
	cfg CleanupConfig
}

// NewCleanup checks the config and fills defaults.
func NewCleanup(cfg CleanupConfig) (*Cleanup, error) {
	if cfg.Sessions == nil || cfg.KV == nil {
		return nil, errors.New("jobs: the session cleanup needs the sessions and the KV store")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 24 * time.Hour
	}
	if cfg.SummaryBlock <= 0 {
		cfg.SummaryBlock = 12
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Cleanup{cfg: cfg}, nil
}

// Task is the cleanup as a scheduled task.
func (c *Cleanup) Task(interval time.Duration) Task {
	return Task{Name: TaskSessionCleanup, Interval: interval, Run: c.Run}
}

// SummaryKeys are the KV keys of a session's rolling summaries, for a session of that many
// messages summarized in blocks of block messages (the format of agents.Engine).
func SummaryKeys(sessionID string, messages, block int) []string {
	var keys []string
	for end := block; block > 0 && end <= messages; end += block {
		keys = append(keys, "summary:"+sessionID+":"+strconv.Itoa(end))
	}
	return keys
}

// Run clears every idle session's state. A session that fails is logged and left for the
// next run; the run then fails too, so it is tried again at the next tick.
func (c *Cleanup) Run(ctx context.Context) error {
	idleSince := c.cfg.Clock.Now().Add(-c.cfg.Idle)
	after := ""
	cleared, failed := 0, 0
	var firstErr error
	for {
		batch, err := c.cfg.Sessions.IdleSessions(ctx, idleSince, after, c.cfg.Batch)
		if err != nil {
			return fmt.Errorf("session cleanup: %w", err)
		}
		for _, s := range batch {
			after = s.ID
			if err := c.clear(ctx, s); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed++
				firstErr = cmp.Or(firstErr, err)
				c.cfg.Logger.WarnContext(ctx, "session cleanup: a session's state was not cleared", "session", s.ID, "err", err)
				continue
			}
			cleared++
		}
		if len(batch) < c.cfg.Batch {
			break
		}
	}
	if cleared > 0 || failed > 0 {
		c.cfg.Logger.InfoContext(ctx, "session cleanup", "cleared", cleared, "failed", failed)
	}
	if failed > 0 {
		return fmt.Errorf("session cleanup: %d sessions failed, the first: %w", failed, firstErr)
	}
	return nil
}

func (c *Cleanup) clear(ctx context.Context, s session.IdleSession) error {
	for _, key := range SummaryKeys(s.ID, s.Messages, c.cfg.SummaryBlock) {
		if err := c.cfg.KV.Delete(ctx, key); err != nil {
			return err
		}
	}
	if c.cfg.Also != nil {
		if err := c.cfg.Also(ctx, s); err != nil {
			return err
		}
	}
	return c.cfg.Sessions.MarkSessionStateCleared(ctx, s.ID, s.UpdatedAt)
}
