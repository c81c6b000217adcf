package pa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// ReminderQueue is the scheduler's view of the reminders, across users; session.SQLStore
// implements it. Because the state is in the database, a pending reminder fires after a
// restart, and replicas sharing the database fire each reminder once.
type ReminderQueue interface {
	// DueReminders lists pending reminders due at or before now, oldest first.
	DueReminders(ctx context.Context, now time.Time, limit int) ([]session.Reminder, error)
	// MarkReminderFired claims a reminder: true for exactly one caller.
	MarkReminderFired(ctx context.Context, id string) (bool, error)
}

var _ ReminderQueue = (*session.SQLStore)(nil)

// Deliverer hands a fired reminder to the user: their open sessions, email, SMS.
type Deliverer interface {
	DeliverReminder(ctx context.Context, r session.Reminder) error
}

// DelivererFunc adapts a function to Deliverer.
type DelivererFunc func(ctx context.Context, r session.Reminder) error

// DeliverReminder implements Deliverer.
func (f DelivererFunc) DeliverReminder(ctx context.Context, r session.Reminder) error {
	return f(ctx, r)
}

// Deliverers fans a reminder out to every deliverer, each tried whatever the others did; the
// error joins their failures.
type Deliverers []Deliverer

// DeliverReminder implements Deliverer.
func (ds Deliverers) DeliverReminder(ctx context.Context, r session.Reminder) error {
	var errs []error
	for _, d := range ds {
		if err := d.DeliverReminder(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	_ Deliverer = DelivererFunc(nil)
	_ Deliverer = Deliverers(nil)
)

// ReminderEvent is the JSON frame a fired reminder is pushed to the user's open sessions as
// (WebSocket, WebRTC data channel): {"type":"reminder", "reminder":{...}, "text":...}.
type ReminderEvent struct {
	Type     string           `json:"type"`
	Text     string           `json:"text"`
	Reminder ReminderEventRef `json:"reminder"`
}

// ReminderEventRef is the reminder inside a ReminderEvent.
type ReminderEventRef struct {
	ID       string    `json:"id"`
	Text     string    `json:"text"`
	DueAt    time.Time `json:"dueAt"`
	TimeZone string    `json:"timeZone,omitempty"`
	// Local is the due time as the user set it, in words: "Tuesday, March 4 at 5:00 PM EST".
	Local string `json:"local"`
}

// NewReminderEvent builds the frame for a fired reminder.
func NewReminderEvent(r session.Reminder) ReminderEvent {
	loc := time.UTC
	if r.TimeZone != "" {
		if l, err := time.LoadLocation(r.TimeZone); err == nil {
			loc = l
		}
	}
	due := r.DueAt.In(loc)
	return ReminderEvent{
		Type: "reminder",
		Text: "Reminder: " + yourWords(r.Text),
		Reminder: ReminderEventRef{ID: r.ID, Text: r.Text, DueAt: r.DueAt.UTC(), TimeZone: r.TimeZone,
			Local: due.Format("Monday, January 2") + " at " + formatClock(due) + " " + zoneName(due)},
	}
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Reminders is the queue polled. Required.
	Reminders ReminderQueue
	// Deliverer receives each fired reminder. Required.
	Deliverer Deliverer
	// Clock says what is due. Default session.SystemClock.
	Clock session.Clock
	// Interval between polls: how late a reminder may fire. Default 1s.
	Interval time.Duration
	// Ticker starts the polling ticks; stop releases it. Default a time.Ticker of Interval.
	// Tests drive polls with their own channel.
	Ticker func(interval time.Duration) (ticks <-chan time.Time, stop func())
	// Batch is how many due reminders one poll takes at most. Default 100.
	Batch int
	// DeliverTimeout bounds each delivery. Default 30s.
	DeliverTimeout time.Duration
	// Logger receives poll and delivery failures. Default slog.Default().
	Logger *slog.Logger
}

// Scheduler fires due reminders: it polls the queue, claims each due reminder (so no other
// scheduler fires it too) and delivers it. Delivery is at most once: a reminder whose delivery
// fails is logged, not retried, because a retry could repeat the channels that did succeed.
type Scheduler struct {
	cfg SchedulerConfig
}

// NewScheduler checks the config and fills defaults.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Reminders == nil || cfg.Deliverer == nil {
		return nil, errors.New("pa: the scheduler needs a reminder queue and a deliverer")
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.DeliverTimeout <= 0 {
		cfg.DeliverTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{cfg: cfg}, nil
}

// Run polls until ctx ends, once at once (reminders that fell due while the process was down
// fire on start) and then on every tick. It returns ctx's error.
func (s *Scheduler) Run(ctx context.Context) error {
	ticks, stop := s.cfg.Ticker(s.cfg.Interval)
	defer stop()
	for {
		if _, err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "pa: reminder poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
		}
	}
}

// Poll fires the reminders due now and reports how many this scheduler fired. A full batch is
// followed by another, so a backlog drains in one poll.
func (s *Scheduler) Poll(ctx context.Context) (int, error) {
	fired := 0
	for {
		due, err := s.cfg.Reminders.DueReminders(ctx, s.cfg.Clock.Now(), s.cfg.Batch)
		if err != nil {
			return fired, fmt.Errorf("poll reminders: %w", err)
		}
		claimedAny := false
		for _, r := range due {
			if err := ctx.Err(); err != nil {
				return fired, err
			}
			claimed, err := s.cfg.Reminders.MarkReminderFired(ctx, r.ID)
			if err != nil {
				if ctx.Err() != nil {
					return fired, ctx.Err()
				}
				s.cfg.Logger.ErrorContext(ctx, "pa: claiming a reminder failed", "reminder", r.ID, "err", err)
				continue
			}
			if !claimed {
				continue // another scheduler has it
			}
			claimedAny = true
			fired++
			r.Status, r.FiredAt = session.ReminderFired, s.cfg.Clock.Now()
			s.deliver(ctx, r)
		}
		if len(due) < s.cfg.Batch || !claimedAny {
			return fired, nil
		}
	}
}

func (s *Scheduler) deliver(ctx context.Context, r session.Reminder) {
	// A delivery started is finished even if the scheduler is stopping: the reminder is
	// already claimed and would otherwise be lost.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DeliverTimeout)
	defer cancel()
	if err := s.cfg.Deliverer.DeliverReminder(dctx, r); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "pa: reminder delivery failed", "reminder", r.ID, "user", r.UserID, "err", err)
	}
}
