package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// MemoryRateLimiter counts in this process only: the embedded default, exact for one replica
// (each replica of several counts on its own). It runs no goroutine: keys whose quota is whole
// again are dropped by a sweep that Allow runs at most once a minute of clock time, or sooner
// when the number of keys has doubled since the last sweep, so memory stays bounded by the
// callers active within one period.
type MemoryRateLimiter struct {
	clock session.Clock

	mu        sync.Mutex
	tat       map[string]time.Time // theoretical arrival time per key (GCRA)
	nextSweep time.Time
	highWater int
}

var _ RateLimiter = (*MemoryRateLimiter)(nil)

const (
	memorySweepEvery    = time.Minute
	memoryMinHighWater  = 1024
	memoryInitialKeyCap = 64
)

// NewMemoryRateLimiter returns an empty limiter. clock nil means the system clock.
func NewMemoryRateLimiter(clock session.Clock) *MemoryRateLimiter {
	if clock == nil {
		clock = session.SystemClock{}
	}
	return &MemoryRateLimiter{clock: clock, tat: make(map[string]time.Time, memoryInitialKeyCap), highWater: memoryMinHighWater}
}

// Allow counts one request for key.
func (m *MemoryRateLimiter) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.validate(); err != nil {
		return Decision{}, err
	}
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	tat, d := gcra(now, m.tat[key], limit)
	if d.Allowed {
		m.tat[key] = tat
	}
	return d, nil
}

// Len is the number of keys held (for tests and metrics).
func (m *MemoryRateLimiter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}

// sweepLocked drops keys whose quota is whole again: a missing key means the same.
func (m *MemoryRateLimiter) sweepLocked(now time.Time) {
	if now.Before(m.nextSweep) && len(m.tat) < m.highWater {
		return
	}
	for k, tat := range m.tat {
		if !tat.After(now) {
			delete(m.tat, k)
		}
	}
	m.nextSweep = now.Add(memorySweepEvery)
	m.highWater = max(memoryMinHighWater, 2*len(m.tat))
}
