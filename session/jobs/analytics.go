package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// AnalyticsStore rolls events up by the hour; session.SQLStore implements it.
type AnalyticsStore interface {
	// AggregateAnalytics (re)computes the roll-up of the UTC hour containing hour.
	AggregateAnalytics(ctx context.Context, hour time.Time) (int, error)
	// LatestAnalyticsHour is the latest hour rolled up; zero if none.
	LatestAnalyticsHour(ctx context.Context) (time.Time, error)
}

var _ AnalyticsStore = (*session.SQLStore)(nil)

// AnalyticsConfig configures an AnalyticsRollUp.
type AnalyticsConfig struct {
	// Store holds the events and the roll-up. Required.
	Store AnalyticsStore
	// Recent is how many past hours every run aggregates again, so events written late (the
	// analytics buffer flushes in batches) are counted. Default 3h.
	Recent time.Duration
	// Backfill is how far back a run reaches for hours never aggregated (after an outage, or
	// on the first run). Default 7 days.
	Backfill time.Duration
	// Clock says which hours are over. Default session.SystemClock.
	Clock session.Clock
	// Logger receives progress. Default slog.Default().
	Logger *slog.Logger
}

// AnalyticsRollUp is the hourly aggregation of analytics_events into analytics_hourly, which
// usage reports (GET /api/v2/analytics, session.SQLStore.AnalyticsUsage) read. Only hours that
// are over are aggregated; aggregating an hour again replaces its rows.
type AnalyticsRollUp struct {
	cfg AnalyticsConfig
}

// NewAnalyticsRollUp checks the config and fills defaults.
func NewAnalyticsRollUp(cfg AnalyticsConfig) (*AnalyticsRollUp, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: the analytics roll-up needs the store")
	}
	if cfg.Recent <= 0 {
		cfg.Recent = 3 * time.Hour
	}
	if cfg.Backfill < cfg.Recent {
		cfg.Backfill = max(7*24*time.Hour, cfg.Recent)
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &AnalyticsRollUp{cfg: cfg}, nil
}

// Task is the roll-up as a scheduled task.
func (a *AnalyticsRollUp) Task(interval time.Duration) Task {
	return Task{Name: TaskAnalytics, Interval: interval, Run: a.Run}
}

// Run aggregates the recent hours that are over, and any older ones never aggregated within
// Backfill.
func (a *AnalyticsRollUp) Run(ctx context.Context) error {
	end := a.cfg.Clock.Now().UTC().Truncate(time.Hour) // the current hour is not over
	from := end.Add(-a.cfg.Recent)
	latest, err := a.cfg.Store.LatestAnalyticsHour(ctx)
	if err != nil {
		return fmt.Errorf("analytics roll-up: %w", err)
	}
	if oldest := end.Add(-a.cfg.Backfill); latest.IsZero() || latest.Before(oldest) {
		from = oldest
	} else if latest.Before(from) {
		from = latest
	}
	hours, events := 0, 0
	for h := from; h.Before(end); h = h.Add(time.Hour) {
		n, err := a.cfg.Store.AggregateAnalytics(ctx, h)
		if err != nil {
			return fmt.Errorf("analytics roll-up: %w", err)
		}
		hours++
		events += n
	}
	a.cfg.Logger.DebugContext(ctx, "analytics roll-up", "hours", hours, "events", events, "from", from, "to", end)
	return nil
}
