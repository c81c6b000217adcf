package session

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// MemoryKV is the in-process KV. Expired keys are invisible at once and reclaimed by Sweep,
// which Run calls periodically.
type MemoryKV struct {
	clock Clock
	mu    sync.Mutex
	items map[string]memoryItem
}

type memoryItem struct {
	value   []byte
	expires time.Time // zero: never
}

var _ KV = (*MemoryKV)(nil)

// NewMemoryKV returns an empty store; a nil clock means the system clock.
func NewMemoryKV(clock Clock) *MemoryKV {
	if clock == nil {
		clock = SystemClock{}
	}
	return &MemoryKV{clock: clock, items: map[string]memoryItem{}}
}

func (m *MemoryKV) live(key string, now time.Time) (memoryItem, bool) {
	it, ok := m.items[key]
	if !ok {
		return memoryItem{}, false
	}
	if !it.expires.IsZero() && !now.Before(it.expires) {
		delete(m.items, key)
		return memoryItem{}, false
	}
	return it, true
}

func (m *MemoryKV) expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Get implements KV.
func (m *MemoryKV) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.live(key, m.clock.Now())
	if !ok {
		return nil, ErrKeyNotFound
	}
	return append([]byte(nil), it.value...), nil
}

// Set implements KV.
func (m *MemoryKV) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[key] = memoryItem{value: append([]byte(nil), value...), expires: m.expiry(m.clock.Now(), ttl)}
	return nil
}

// Delete implements KV.
func (m *MemoryKV) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, key)
	return nil
}

// Incr implements KV.
func (m *MemoryKV) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	it, ok := m.live(key, now)
	var n int64
	if ok {
		v, err := strconv.ParseInt(string(it.value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("kv incr %s: value is not an integer", key)
		}
		n = v
	} else {
		it.expires = m.expiry(now, ttl)
	}
	n += delta
	it.value = []byte(strconv.FormatInt(n, 10))
	m.items[key] = it
	return n, nil
}

// Ping implements KV.
func (m *MemoryKV) Ping(context.Context) error { return nil }

// Len returns the number of live keys.
func (m *MemoryKV) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(m.clock.Now())
	return len(m.items)
}

// Sweep drops every expired key.
func (m *MemoryKV) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(m.clock.Now())
}

func (m *MemoryKV) sweepLocked(now time.Time) {
	for k, it := range m.items {
		if !it.expires.IsZero() && !now.Before(it.expires) {
			delete(m.items, k)
		}
	}
}

// Run sweeps every interval until ctx ends, so keys nobody reads again do not pile up.
func (m *MemoryKV) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}
