package jobs

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The PostgreSQL tests share one server, stopped once they have run.
	goleak.VerifyTestMain(pgtest.Tests(m))
}

// epoch is a whole number of milliseconds, so times survive the store unchanged.
var epoch = time.UnixMilli(1_700_000_000_000).UTC()

// fakeClock only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var _ session.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openSQLite opens a fresh SQLite store stamped by clock, closed when the test ends.
func openSQLite(t *testing.T, clock session.Clock) *session.SQLStore {
	t.Helper()
	s, err := session.OpenSQLite(t.Context(), session.SQLiteConfig{Path: filepath.Join(t.TempDir(), "test.db"), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgres opens a store on url, closed when the test ends.
func openPostgres(t *testing.T, url string, clock session.Clock) *session.SQLStore {
	t.Helper()
	s, err := session.OpenPostgres(t.Context(), session.PostgresConfig{URL: url, Clock: clock, WriteRetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eventually polls cond until it holds or 10s pass: only for effects no channel announces
// (a dead letter written after the handler returned, a message idle long enough in Redis).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive waits for a value, failing the test after 10s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// background runs fn in a goroutine stopped (and waited for) when the test ends.
func background(t *testing.T, fn func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
