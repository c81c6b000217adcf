package session

import "time"

// Clock is the one source of time for everything time-based (TTLs, reminders, budgets, jobs),
// so tests can move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

var _ Clock = SystemClock{}
