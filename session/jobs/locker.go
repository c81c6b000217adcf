package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Locker grants named locks across every process that shares it, so one replica at a time
// runs a scheduled task.
type Locker interface {
	// TryLock takes the lock called name without waiting: ok is false when someone else holds
	// it. A held lock lasts until unlock is called, or, if its holder vanishes, about ttl (what
	// "vanishes" means is the implementation's: a Redis key expires, a PostgreSQL connection
	// closes). unlock is idempotent and must be called.
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// MemoryLocker is the Locker of one process: enough when a single gateway runs.
type MemoryLocker struct {
	clock session.Clock

	mu    sync.Mutex
	held  map[string]memoryLock
	token uint64
}

type memoryLock struct {
	token   uint64
	expires time.Time
}

var _ Locker = (*MemoryLocker)(nil)

// NewMemoryLocker returns a locker whose locks expire by clock (nil: the system clock) when
// their ttl passes without unlock.
func NewMemoryLocker(clock session.Clock) *MemoryLocker {
	if clock == nil {
		clock = session.SystemClock{}
	}
	return &MemoryLocker{clock: clock, held: map[string]memoryLock{}}
}

// TryLock implements Locker.
func (m *MemoryLocker) TryLock(_ context.Context, name string, ttl time.Duration) (func(), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	if l, ok := m.held[name]; ok && now.Before(l.expires) {
		return nil, false, nil
	}
	m.token++
	token := m.token
	m.held[name] = memoryLock{token: token, expires: now.Add(ttl)}
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			// A lock that expired and was taken by another holder is theirs now.
			if l, ok := m.held[name]; ok && l.token == token {
				delete(m.held, name)
			}
		})
	}, true, nil
}
