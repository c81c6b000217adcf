package jobs

import (
	"context"
	"time"
)

// ReminderPoller fires the reminders due now, once each; agents/pa.Scheduler's Poll is one.
type ReminderPoller interface {
	Poll(ctx context.Context) (int, error)
}

// RemindersTask polls for due reminders at every tick (default interval 1s) on whichever
// replica holds the lock. It uses EveryTick: a reminder's claim in the database already makes
// it fire once, so the lock only spares the other replicas the polling.
func RemindersTask(p ReminderPoller, interval time.Duration) Task {
	if interval <= 0 {
		interval = time.Second
	}
	return Task{Name: TaskReminders, Interval: interval, EveryTick: true, Timeout: max(interval, 30*time.Second),
		Run: func(ctx context.Context) error {
			_, err := p.Poll(ctx)
			return err
		}}
}
