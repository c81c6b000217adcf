package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestKV() (*MemoryKV, *testClock) {
	clock := newTestClock()
	return NewMemoryKV(clock), clock
}

func mustSet(t *testing.T, kv *MemoryKV, key, value string, ttl time.Duration) {
	t.Helper()
	if err := kv.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustIncr(t *testing.T, kv *MemoryKV, key string, delta int64, ttl time.Duration) int64 {
	t.Helper()
	n, err := kv.Incr(t.Context(), key, delta, ttl)
	if err != nil {
		t.Fatalf("Incr(%q, %d): %v", key, delta, err)
	}
	return n
}

// assertValue checks that key holds want.
func assertValue(t *testing.T, kv *MemoryKV, key, want string) {
	t.Helper()
	got, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// assertMissing checks that key reads as not found.
func assertMissing(t *testing.T, kv *MemoryKV, key string) {
	t.Helper()
	if v, err := kv.Get(t.Context(), key); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrKeyNotFound", key, v, err)
	}
}

// storedKeys is how many entries the map holds, expired or not (Len sweeps first).
func storedKeys(kv *MemoryKV) int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return len(kv.items)
}

func TestMemoryKVGetMissing(t *testing.T) {
	kv, _ := newTestKV()
	assertMissing(t, kv, "nope")
}

func TestMemoryKVSetGetDelete(t *testing.T) {
	kv, _ := newTestKV()
	mustSet(t, kv, "k", "v1", 0)
	assertValue(t, kv, "k", "v1")
	mustSet(t, kv, "k", "v2", 0)
	assertValue(t, kv, "k", "v2")
	mustSet(t, kv, "empty", "", 0)
	assertValue(t, kv, "empty", "")

	for _, key := range []string{"k", "k", "never-set"} { // deleting twice or a missing key is fine
		if err := kv.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
	}
	assertMissing(t, kv, "k")
	if err := kv.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestMemoryKVTTL(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name        string
		ttl         time.Duration
		advance     time.Duration
		wantPresent bool
	}{
		{"just before expiry", ttl, ttl - time.Nanosecond, true},
		{"at the expiry instant", ttl, ttl, false},
		{"after expiry", ttl, ttl + time.Hour, false},
		{"zero ttl never expires", 0, 10000 * time.Hour, true},
		{"negative ttl never expires", -time.Second, 10000 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv, clock := newTestKV()
			mustSet(t, kv, "k", "v", tt.ttl)
			clock.Advance(tt.advance)
			if tt.wantPresent {
				assertValue(t, kv, "k", "v")
			} else {
				assertMissing(t, kv, "k")
			}
		})
	}
}

func TestMemoryKVSetReplacesTTL(t *testing.T) {
	kv, clock := newTestKV()
	mustSet(t, kv, "k", "short", time.Second)
	mustSet(t, kv, "k", "forever", 0)
	clock.Advance(time.Hour)
	assertValue(t, kv, "k", "forever")
}

func TestMemoryKVIncr(t *testing.T) {
	kv, clock := newTestKV()

	if n := mustIncr(t, kv, "c", 5, 10*time.Second); n != 5 {
		t.Fatalf("Incr on a missing key = %d, want the delta 5", n)
	}
	clock.Advance(5 * time.Second)
	// A later ttl does not extend the expiry set at creation.
	if n := mustIncr(t, kv, "c", -2, time.Hour); n != 3 {
		t.Fatalf("Incr = %d, want 3", n)
	}
	assertValue(t, kv, "c", "3")
	clock.Advance(5*time.Second - time.Nanosecond)
	assertValue(t, kv, "c", "3")
	clock.Advance(time.Nanosecond)
	assertMissing(t, kv, "c")

	// An expired counter starts again from zero with the new ttl.
	if n := mustIncr(t, kv, "c", 1, time.Minute); n != 1 {
		t.Fatalf("Incr after expiry = %d, want 1", n)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	assertValue(t, kv, "c", "1")
	clock.Advance(time.Nanosecond)
	assertMissing(t, kv, "c")

	// No ttl: never expires.
	mustIncr(t, kv, "forever", 1, 0)
	clock.Advance(10000 * time.Hour)
	assertValue(t, kv, "forever", "1")
}

func TestMemoryKVIncrKeepsSetExpiry(t *testing.T) {
	kv, clock := newTestKV()
	mustSet(t, kv, "c", "41", time.Minute)
	if n := mustIncr(t, kv, "c", 1, time.Hour); n != 42 {
		t.Fatalf("Incr = %d, want 42", n)
	}
	clock.Advance(time.Minute)
	assertMissing(t, kv, "c")
}

func TestMemoryKVIncrNonInteger(t *testing.T) {
	for _, value := range []string{"abc", "1.5", "", " 1", "99999999999999999999"} {
		t.Run(fmt.Sprintf("%q", value), func(t *testing.T) {
			kv, _ := newTestKV()
			mustSet(t, kv, "k", value, 0)
			if n, err := kv.Incr(t.Context(), "k", 1, 0); err == nil {
				t.Fatalf("Incr on %q = %d, want an error", value, n)
			}
			assertValue(t, kv, "k", value)
		})
	}
}

func TestMemoryKVLenAndSweep(t *testing.T) {
	kv, clock := newTestKV()
	mustSet(t, kv, "1s", "v", time.Second)
	mustSet(t, kv, "2s", "v", 2*time.Second)
	mustSet(t, kv, "forever", "v", 0)
	if n := kv.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}

	clock.Advance(time.Second)
	if n := kv.Len(); n != 2 {
		t.Fatalf("Len after 1s = %d, want 2", n)
	}
	if n := storedKeys(kv); n != 2 {
		t.Fatalf("Len left %d entries stored, want 2", n)
	}

	clock.Advance(time.Second)
	if n := storedKeys(kv); n != 2 {
		t.Fatalf("before Sweep %d entries stored, want 2 (one expired, not yet reclaimed)", n)
	}
	kv.Sweep()
	if n := storedKeys(kv); n != 1 {
		t.Fatalf("after Sweep %d entries stored, want 1", n)
	}
	assertValue(t, kv, "forever", "v")
}

func TestMemoryKVCopiesValues(t *testing.T) {
	kv, _ := newTestKV()
	in := []byte("abc")
	if err := kv.Set(t.Context(), "k", in, 0); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	assertValue(t, kv, "k", "abc")

	out, err := kv.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	out[0] = 'Y'
	_ = append(out[:1], 'Z') // must not write into the stored array either
	assertValue(t, kv, "k", "abc")
}

func TestMemoryKVNilClockUsesSystemClock(t *testing.T) {
	kv := NewMemoryKV(nil)
	mustSet(t, kv, "k", "v", time.Hour)
	assertValue(t, kv, "k", "v")
}

func TestMemoryKVRunStopsOnCancel(t *testing.T) {
	kv, _ := newTestKV()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		kv.Run(ctx, time.Hour)
	}()
	cancel()
	<-done
}

// signalClock reports, once armed, each time it is read.
type signalClock struct {
	*testClock
	armed atomic.Bool
	reads chan struct{}
}

func (c *signalClock) Now() time.Time {
	if c.armed.Load() {
		select {
		case c.reads <- struct{}{}:
		default:
		}
	}
	return c.testClock.Now()
}

func TestMemoryKVRunSweeps(t *testing.T) {
	clock := &signalClock{testClock: newTestClock(), reads: make(chan struct{}, 1)}
	kv := NewMemoryKV(clock)
	mustSet(t, kv, "k", "v", time.Second)
	clock.Advance(time.Second)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	clock.armed.Store(true) // from here on only Run reads the clock
	go func() {
		defer close(done)
		kv.Run(ctx, time.Millisecond)
	}()
	<-clock.reads // a sweep has started; it holds the lock until it is finished
	if n := storedKeys(kv); n != 0 {
		t.Errorf("after a sweep by Run %d entries stored, want 0", n)
	}
	cancel()
	<-done
}

func TestMemoryKVConcurrentIncr(t *testing.T) {
	const goroutines, perGoroutine = 16, 500
	kv, _ := newTestKV()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			delta := int64(g + 1)
			for range perGoroutine {
				if _, err := kv.Incr(t.Context(), "n", delta, time.Hour); err != nil {
					t.Errorf("Incr: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := int64(perGoroutine * goroutines * (goroutines + 1) / 2)
	assertValue(t, kv, "n", fmt.Sprint(want))
}
